#!/usr/bin/env bash
# check_includes_test.sh: proves tests/tools/check_includes.sh catches what it is for. On a copy of the
# tree it must pass; with each planted violation, one at a time, it must fail and name the file.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CHECK="$HERE/check_includes.sh"
TMP=$(mktemp -d /tmp/llmux-includes.XXXXXX) || exit 2
trap 'rm -rf "$TMP"' EXIT
fail=0

fresh() {
  rm -rf "$TMP/tree"
  mkdir -p "$TMP/tree"
  cp -r "$ROOT/src" "$ROOT/providers" "$ROOT/dialects" "$TMP/tree/"
}

fresh
if ! out=$("$CHECK" "$TMP/tree"); then
  echo "FAIL: the check refuses the tree as it is:"; echo "$out"; exit 1
fi

# plant FILE LINE WHY: with LINE added to FILE the check must fail and name FILE.
plant() {
  fresh
  sed -i "0,/^#include/s||$2\n#include|" "$TMP/tree/$1"
  if out=$("$CHECK" "$TMP/tree" 2>&1); then
    echo "FAIL: not caught: $3 ($1: $2)"; fail=1
  elif ! grep -q "$1" <<<"$out"; then
    echo "FAIL: caught, but $1 is not named: $out"; fail=1
  else
    echo "ok: caught $3"
  fi
}

plant src/core/buf.c '#include "../server/req.h"' "the core including the server"
plant src/core/json.c '#include <pthread.h>' "pthread.h in the core"
plant src/io/upstream.c '#include "../../providers/provider.h"' "io including a provider header"
plant src/server/auth.c '#include "../config.h"' "the server including the composition root"
plant src/server/req.c '#include "../engine/exec.h"' "the server including the engine"
plant src/server/req.c '#include <microhttpd.h>' "a second file including microhttpd.h"
plant src/engine/exec.c '#include "../api/relay.h"' "the engine including the API layer"
plant src/engine/exec.c '#include "../../dialects/dialect.h"' "the engine including a dialect"
plant src/engine/router.c '#include <event2/event.h>' "event2/ outside io"
plant src/engine/call.c '#include <curl/curl.h>' "curl/ outside io"
plant src/api/chat.c '#include <microhttpd.h>' "microhttpd.h outside the server"
plant src/api/chat.c '#include "../config.h"' "the API layer including the composition root"
plant providers/mock.c '#include "../src/io/loop.h"' "a provider including io"
plant dialects/openai_chat.c '#include "../src/server/req.h"' "a dialect including the server"
plant dialects/openai_chat.c '#include "../providers/provider.h"' "a dialect including a provider header"
plant dialects/anthropic_stream.c '#include "../providers/openai.h"' "a dialect including a provider header that is not a shared map"
plant providers/anthropic_map.c '#include "provider.h"' "a shared map including the provider interface"
plant providers/anthropic_map.h '#include "../src/io/loop.h"' "a shared map including io"
exit "$fail"
