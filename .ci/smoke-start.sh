#!/usr/bin/env bash
# Runs the README's `npm start` on the embedded database, then the curl lines it prints, as a
# user would paste them; restarts it and checks the token survived; then logs out.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${SMOKE_PORT:-3917}
DATA_DIR=$(mktemp -d)
LOG=$(mktemp)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

start() {
  : >"$LOG"
  env -u DATABASE_URL PORT="$PORT" KNOX_DATA_DIR="$DATA_DIR" node example/dist/main.js >"$LOG" 2>&1 &
  PID=$!
  for _ in $(seq 1 120); do
    grep -q 'running at' "$LOG" && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "example exited early"; exit 1; }
    sleep 0.5
  done
  cat "$LOG"; echo "example did not start"; exit 1
}
stop() { kill -INT "$PID"; wait "$PID" || true; PID=; }

line() { grep -E "^  $1" "$LOG" | head -n 1 | sed -E 's/^  //'; }

start
cat "$LOG"
LOGIN=$(line 'TOKEN=')
ME=$(line 'curl -s http')
LOGOUT=$(line 'curl -s -X POST .*logout')
[ -n "$LOGIN" ] && [ -n "$ME" ] && [ -n "$LOGOUT" ] || { echo "banner lacks the curl lines"; exit 1; }

eval "$LOGIN"
[[ "$TOKEN" =~ ^[0-9a-f]{64}$ ]] || { echo "login printed no token: $TOKEN"; exit 1; }
out=$(eval "$ME"); echo "$out"; grep -q '"username":"demo"' <<<"$out"

stop
start
out=$(eval "$ME"); echo "after restart: $out"; grep -q '"username":"demo"' <<<"$out"

code=$(eval "$LOGOUT"); echo "logout: $code"; [ "$code" = 204 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$PORT/me" -H "Authorization: Token $TOKEN")
echo "after logout: $code"; [ "$code" = 401 ]
grep -q 'embedded PostgreSQL' "$LOG"
echo "smoke test of npm start: ok"
