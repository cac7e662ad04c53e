# Sourced by the scratch-app tests (test/cjs-app, test/readme-app).
#
# packed_app ROOT APP [EXCLUDED_PACKAGE...]
#   Packs nestjs-knox as `npm publish` would (`prepack` builds it), installs the tarball into
#   APP/node_modules, and links the repo's other dependencies beside it (symlinks, so one copy of
#   each package), less the packages named (e.g. `@nestjs/swagger`: optional peers the app must
#   boot without, or `@types/pg`: types an app need not have).
packed_app() {
  local root=$1 app=$2
  shift 2
  local excluded=" $* "
  mkdir -p "$app/node_modules/nestjs-knox"
  (cd "$root" && npm pack --silent --pack-destination "$app" >/dev/null)
  tar -xzf "$app"/nestjs-knox-*.tgz -C "$app/node_modules/nestjs-knox" --strip-components=1
  rm "$app"/nestjs-knox-*.tgz
  local dep name sub
  for dep in "$root"/node_modules/* "$root"/node_modules/.bin; do
    name=$(basename "$dep")
    case "$name" in
    nestjs-knox) ;;
    @*)
      mkdir -p "$app/node_modules/$name"
      for sub in "$dep"/*; do
        [[ "$excluded" == *" $name/$(basename "$sub") "* ]] ||
          ln -s "$sub" "$app/node_modules/$name/$(basename "$sub")"
      done
      ;;
    *) [[ "$excluded" == *" $name "* ]] || ln -s "$dep" "$app/node_modules/$name" ;;
    esac
  done
}
