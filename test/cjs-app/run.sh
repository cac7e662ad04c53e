#!/usr/bin/env bash
# The CommonJS app test: packs nestjs-knox as `npm publish` would, installs the tarball into a
# scratch app beside the repo's own node_modules (without the optional peers), compiles
# src/main.ts with this folder's tsconfig (`module: commonjs`), and runs it with DATABASE_URL.
# Fails if the app fails, if the output is not CommonJS, or if Node prints a warning
# (require(esm) of the package must be silent on Node >= 20.19).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database (the app uses its own schema, knox_cjs_app)}"

node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    console.error(`Node ${process.versions.node}: require(esm) needs Node >= 20.19`);
    process.exit(1);
  }'

PGOPTIONS='-c client_min_messages=warning' psql "$DATABASE_URL" -qc 'CREATE SCHEMA IF NOT EXISTS knox_cjs_app' >/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/knox-cjs-app.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The app's dependencies: the packed tarball and the repo's own, less the optional peers
# @nestjs/swagger and @nestjs/event-emitter: the package must boot without them.
APP=$WORK/app
source "$ROOT/test/packed-app/packed-app.sh"
packed_app "$ROOT" "$APP" @nestjs/swagger @nestjs/event-emitter
cp -r "$HERE/src" "$HERE/tsconfig.json" "$APP/"
echo '{ "name": "knox-cjs-app", "private": true }' >"$APP/package.json"

(cd "$APP" && "$ROOT/node_modules/.bin/tsc" -p tsconfig.json)
grep -q 'require("nestjs-knox")' "$APP/dist/main.js" || {
  echo "dist/main.js does not require() nestjs-knox: not compiled as CommonJS" >&2
  exit 1
}
(cd "$APP" && node dist/main.js) 2>"$WORK/stderr" || {
  cat "$WORK/stderr" >&2
  exit 1
}
if grep -q 'Warning' "$WORK/stderr"; then
  echo "the CommonJS app printed warnings:" >&2
  cat "$WORK/stderr" >&2
  exit 1
fi
cat "$WORK/stderr" >&2
