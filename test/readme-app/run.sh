#!/usr/bin/env bash
# The Quick start of docs/getting-started.md, as a reader pastes it: its files (extract.mjs) compiled with `strict`
# (and the package's own type declarations checked) as an ES module app against the packed tarball, run against a database of its own
# (knox_readme_app, made afresh on DATABASE_URL's server), then driven with the Quick start's curl
# lines: login, /me, logout, and /me refused after it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL server (the app gets a database of its own, knox_readme_app)}"
PORT=3000 # the Quick start's

if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
  echo "port $PORT is taken: the Quick start listens on it" >&2
  exit 1
fi
export PGOPTIONS='-c client_min_messages=warning'
psql "$DATABASE_URL" -qc 'DROP DATABASE IF EXISTS knox_readme_app' -c 'CREATE DATABASE knox_readme_app'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/knox-readme-app.XXXXXX")
APP=$WORK/app
SERVER=
cleanup() {
  [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$ROOT/test/packed-app/packed-app.sh"
# Without @nestjs/swagger (optional) and @types/pg (an app need not have it): the package's type
# declarations must not need them (the tsconfig checks them: skipLibCheck is off).
packed_app "$ROOT" "$APP" @nestjs/swagger @types/pg
node "$HERE/extract.mjs" "$ROOT/docs/getting-started.md" "$APP"
cp "$HERE/tsconfig.json" "$APP/"
echo '{ "name": "knox-readme-app", "private": true, "type": "module" }' >"$APP/package.json"
(cd "$APP" && "$ROOT/node_modules/.bin/tsc" -p tsconfig.json)

(cd "$APP" && exec env DATABASE_URL="${DATABASE_URL%/*}/knox_readme_app" node dist/main.js) \
  >"$WORK/app.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 60); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  kill -0 "$SERVER" 2>/dev/null || break
  sleep 0.5
done

fail() {
  echo "docs/getting-started.md Quick start: $*" >&2
  cat "$WORK/app.log" >&2
  exit 1
}
login=$(curl -s -X POST -u alice:s3cret "http://127.0.0.1:$PORT/auth/login") || fail "no answer to login"
token=$(node -p 'JSON.parse(process.argv[1]).token ?? ""' "$login")
[[ "$token" =~ ^[0-9a-f]{64}$ ]] || fail "login answered $login"
me=$(curl -s "http://127.0.0.1:$PORT/me" -H "Authorization: Token $token")
[ "$(node -p 'JSON.parse(process.argv[1]).username' "$me")" = alice ] || fail "/me answered $me"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/auth/logout" -H "Authorization: Token $token")
[ "$status" = 204 ] || fail "logout answered $status"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/me" -H "Authorization: Token $token")
[ "$status" = 401 ] || fail "/me after logout answered $status"
echo "docs/getting-started.md Quick start: compiled (strict, ES modules) and answered login, /me, logout, then 401"
