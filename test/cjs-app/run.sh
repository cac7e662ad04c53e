#!/usr/bin/env bash
# The CommonJS app test: packs nestjs-knox as `npm publish` would (after `npm run build`),
# installs the tarball into a scratch app beside the repo's own node_modules (without the
# optional peers), compiles src/main.ts with this folder's tsconfig (`module: commonjs`), and runs
# it with DATABASE_URL.
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
(cd "$ROOT" && npm run build --silent && npm pack --silent --pack-destination "$WORK" >/dev/null)

APP=$WORK/app
mkdir -p "$APP/node_modules/nestjs-knox"
tar -xzf "$WORK"/nestjs-knox-*.tgz -C "$APP/node_modules/nestjs-knox" --strip-components=1
# The app's other dependencies: the repo's own (symlinks, so one copy of each package), less the
# optional peers @nestjs/swagger and @nestjs/event-emitter: the package must boot without them.
for dep in "$ROOT"/node_modules/* "$ROOT"/node_modules/.bin; do
  name=$(basename "$dep")
  case "$name" in
  nestjs-knox) ;;
  @nestjs)
    mkdir -p "$APP/node_modules/@nestjs"
    for sub in "$dep"/*; do
      case "$(basename "$sub")" in
      swagger | event-emitter) ;;
      *) ln -s "$sub" "$APP/node_modules/@nestjs/$(basename "$sub")" ;;
      esac
    done
    ;;
  *) ln -s "$dep" "$APP/node_modules/$name" ;;
  esac
done
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
