#!/usr/bin/env bash
# The systemd unit as `make install` writes it passes `systemd-analyze verify`, and `make install` puts
# binary, unit and config where they belong under DESTDIR and PREFIX.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v systemd-analyze >/dev/null || { echo "systemd-analyze is missing (Debian package systemd)"; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
make -s install DESTDIR="$stage" PREFIX=/opt/llmux >/dev/null
for f in opt/llmux/bin/llmux lib/systemd/system/llmux.service etc/llmux/llmux.json; do
  [ -e "$stage/$f" ] || { echo "FAIL: make install did not write $f"; exit 1; }
done
# The installed config is valid and starts no MCP demo server (it needs npx, which a server may not have).
"$stage/opt/llmux/bin/llmux" --check-config --config "$stage/etc/llmux/llmux.json" >/dev/null 2>&1 ||
  { echo "FAIL: the installed config does not pass --check-config"; exit 1; }
[ "$(jq -c '.mcp_servers // null' "$stage/etc/llmux/llmux.json")" = null ] ||
  { echo "FAIL: the installed config starts the MCP demo server"; exit 1; }
grep -q '^ExecStart=/opt/llmux/bin/llmux ' "$stage/lib/systemd/system/llmux.service" ||
  { echo "FAIL: ExecStart does not follow PREFIX"; exit 1; }
# verify checks that ExecStart exists: point it at the staged binary, the rest of the unit unchanged.
unit="$stage/llmux.service"
sed "s|^ExecStart=/opt/llmux/bin/llmux|ExecStart=$stage/opt/llmux/bin/llmux|" \
  "$stage/lib/systemd/system/llmux.service" >"$unit"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" 2>&1) || { echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; }
# verify also prints warnings it does not fail on; the unit must have none of its own.
if grep -F "llmux.service" <<<"$out"; then echo "FAIL: systemd-analyze warns about the unit"; exit 1; fi
for k in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' 'DynamicUser=yes' 'StateDirectory=llmux' \
  'ProtectSystem=strict' 'NoNewPrivileges=yes' 'LimitNOFILE=65536' 'EnvironmentFile=-/etc/llmux/env'; do
  grep -qxF "$k" systemd/llmux.service || { echo "FAIL: the unit lacks $k"; exit 1; }
done
echo "ok - systemd unit verifies; make install honours DESTDIR and PREFIX"
