#!/usr/bin/env bash
# check_includes.sh [ROOT]: the include rules of llmux's layers (see docs/architecture.md), checked by
# grepping every #include of src/, providers/ and dialects/ under ROOT (default: the checkout). Prints
# each include that breaks a rule, with its rule, and exits 1 if there is any.
#
#   src/core/     includes nothing of ours outside src/core/
#   src/io/       src/core/ and src/io/
#   src/server/   src/core/, src/io/, src/server/
#   src/engine/   src/core/, src/io/, src/engine/, providers/
#   src/api/      anything but the composition root (src/*.c, src/*.h)
#   providers/    src/core/ and providers/        dialects/  src/core/, dialects/, providers/*_map.h
#   providers/*_map.[ch] (the maps a provider and a dialect of the same API share): src/core/ only
#   src/main.c, src/config.c: anything (the composition root)
# and for library headers: event2/, curl/, pthread.h and hiredis/ only in src/io/; microhttpd.h only in
# one file, and that one in src/server/.
set -u
ROOT=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
cd "$ROOT" || exit 2
bad=0
complain() { echo "$1: #include \"$2\": $3"; bad=1; }

# The folder a path belongs to, for the rules: core io server engine api providers dialects root.
layer_of() {
  case "$1" in
    src/core/*) echo core ;; src/io/*) echo io ;; src/server/*) echo server ;; src/engine/*) echo engine ;;
    src/api/*) echo api ;; providers/*) echo providers ;; dialects/*) echo dialects ;; src/*) echo root ;;
    *) echo outside ;;
  esac
}

allowed() { # allowed FROM TO
  case "$1" in
    core) [ "$2" = core ] ;;
    io) [ "$2" = core ] || [ "$2" = io ] ;;
    server) [ "$2" = core ] || [ "$2" = io ] || [ "$2" = server ] ;;
    engine) [ "$2" = core ] || [ "$2" = io ] || [ "$2" = engine ] || [ "$2" = providers ] ;;
    api) [ "$2" != root ] && [ "$2" != outside ] ;;
    providers) [ "$2" = core ] || [ "$2" = providers ] ;;
    dialects) [ "$2" = core ] || [ "$2" = dialects ] ;;
    root) [ "$2" != outside ] ;;
    *) false ;;
  esac
}

mhd_files=()
while IFS= read -r f; do
  from=$(layer_of "$f")
  dir=$(dirname "$f")
  while IFS= read -r line; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$line")
    if [[ "$line" =~ \<  ]]; then
      case "$inc" in
        event2/*|curl/*|pthread.h|hiredis/*)
          [ "$from" = io ] || complain "$f" "$inc" "library header outside src/io/" ;;
        microhttpd.h)
          mhd_files+=("$f")
          [ "$from" = server ] || complain "$f" "$inc" "microhttpd.h outside src/server/" ;;
      esac
      continue
    fi
    target=$(realpath -m --relative-to="$ROOT" "$dir/$inc")
    to=$(layer_of "$target")
    case "$f" in
      providers/*_map.[ch])
        [ "$to" = core ] || [ "$target" = "${f%.c}.h" ] || complain "$f" "$inc" "a shared map may include src/core/ only ($target)"
        continue ;;
    esac
    if [ "$from" = dialects ] && [[ "$target" == providers/*_map.h ]]; then
      continue # the maps a dialect shares with the provider of its API
    fi
    allowed "$from" "$to" || complain "$f" "$inc" "$from may not include $to ($target)"
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f")
done < <(find src providers dialects -name '*.[ch]' 2>/dev/null | sort)

if [ "${#mhd_files[@]}" -gt 1 ]; then
  echo "microhttpd.h is included by ${#mhd_files[@]} files (${mhd_files[*]}): only one may"
  bad=1
fi
[ "$bad" = 0 ] && echo "check_includes: every include keeps to its layer's rule"
exit "$bad"
