#!/usr/bin/env bash
# The README's `npm start`, literally, as a new user runs it in a fresh clone: no DATABASE_URL, the
# default port and data directory (.data/pglite, which does not exist yet). Pastes the curl lines it
# prints, stops it as Ctrl-C does, starts it again and checks the token survived, then logs out.
# .ci/run calls this inside a private network namespace (no database server reachable); run on its
# own it refuses to start unless DATABASE_URL is unset and nothing answers on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DATABASE_URL:-}" ]; then
  echo "smoke-start: DATABASE_URL is set; the README's npm start runs without it" >&2
  exit 1
fi
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "smoke-start: a server answers on 127.0.0.1:5432; run this in a network namespace (.ci/run does)" >&2
  exit 1
fi

LOG=$(mktemp)
PID=
set -m # `npm start &` gets its own process group, so a signal reaches npm and node as Ctrl-C does
cleanup() {
  if [ -n "$PID" ]; then
    kill -INT -- "-$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # stopped from outside: still stop npm start

start() {
  : >"$LOG"
  npm start </dev/null >"$LOG" 2>&1 &
  PID=$!
  # Builds the library and the example, then the first start initialises PGlite: slow on a busy machine.
  for _ in $(seq 1 480); do
    grep -q 'running at' "$LOG" && { cat "$LOG"; return 0; }
    kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "npm start exited early"; exit 1; }
    sleep 0.5
  done
  cat "$LOG"; echo "npm start did not start within 240 s"; exit 1
}
stop() {
  kill -INT -- "-$PID"
  for _ in $(seq 1 60); do
    kill -0 -- "-$PID" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 -- "-$PID" 2>/dev/null; then
    cat "$LOG"; echo "npm start did not stop within 30 s of Ctrl-C (SIGINT)"; exit 1
  fi
  wait "$PID" 2>/dev/null || true
  PID=
}

line() { grep -E "^  $1" "$LOG" | head -n 1 | sed -E 's/^  //'; }

echo "$ npm start"
start
grep -q "embedded PostgreSQL (PGlite), data in $PWD/.data/pglite" "$LOG" ||
  { echo "npm start did not use the embedded PostgreSQL in .data/pglite"; exit 1; }
LOGIN=$(line 'TOKEN=')
ME=$(line 'curl -s http')
LOGOUT=$(line 'curl -s -X POST .*logout')
[ -n "$LOGIN" ] && [ -n "$ME" ] && [ -n "$LOGOUT" ] || { echo "banner lacks the curl lines"; exit 1; }
for printed in "$LOGIN" "$ME" "$LOGOUT"; do
  grep -qxF -- "$printed" README.md || { echo "README.md does not show this line npm start prints: $printed"; exit 1; }
done

echo "$ $LOGIN"
eval "$LOGIN"
[[ "$TOKEN" =~ ^[0-9a-f]{64}$ ]] || { echo "login printed no token: $TOKEN"; exit 1; }
echo "$ $ME"
out=$(eval "$ME"); echo "$out"; grep -q '"username":"demo"' <<<"$out"

echo "$ ^C  (SIGINT to npm start)"
stop
echo "$ npm start   # again: the token must survive the restart"
start
grep -q 'Seeded user' "$LOG" && { echo "the demo user was seeded again: the data did not persist"; exit 1; }
echo "$ $ME"
out=$(eval "$ME"); echo "$out"; grep -q '"username":"demo"' <<<"$out"

echo "$ $LOGOUT"
code=$(eval "$LOGOUT"); echo "$code"; [ "$code" = 204 ]
URL=$(grep -oE 'running at http://[^ ]+' "$LOG" | head -n 1 | sed 's/^running at //')
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/me" -H "Authorization: Token $TOKEN")
echo "after logout: $code"; [ "$code" = 401 ]
stop
echo "smoke test of npm start: ok"
