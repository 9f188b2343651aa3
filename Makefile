# llmux build. `make` builds build/llmux; `make run` installs missing Debian packages, builds and starts
# the gateway on conf/llmux.json; `make test` runs the whole test suite.
CC ?= cc
BUILD ?= build
PKGS := libevent libmicrohttpd libcurl jansson libcrypto sqlite3 hiredis
CFLAGS ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -fno-strict-aliasing -pthread \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
override LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread

# The layers (src/core, io, server, engine, api), the wire formats (providers/, dialects/) and the
# composition root's config.c; main.c alone makes the binary.
CORE_SRCS := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c)) $(wildcard providers/*.c dialects/*.c)

# Generated files (the same for every build): the Redis function libraries (src/io/fleet.lua for limits
# and provider state, src/engine/store_redis.lua for conversations), each as a C string.
GEN := build/gen
override CFLAGS += -I$(GEN)
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)
DEPS := $(CORE_OBJS:.o=.d) $(BUILD)/src/main.d

# Debian packages for building and testing (python3-*: the FastAPI example of docs/async-guide.md, run
# by the docs test). Node.js and npm come from Debian only when no node/npm is
# on the PATH (a NodeSource node already ships npm, and Debian's npm would conflict with it).
DEB_PKGS := build-essential pkg-config libevent-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libssl-dev \
            libcmocka-dev libsqlite3-dev sqlite3 curl jq clang libclang-rt-14-dev valgrind gcovr systemd \
            python3-fastapi python3-uvicorn python3-httpx libhiredis-dev redis-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install
.PHONY: all run test deps unit unit-bins check-includes integration integration-asan shell-tests valgrind coverage bench clean
all: $(BUILD)/llmux

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

LUA_TO_C = @mkdir -p $(dir $@) && sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< >$@
$(GEN)/%.lua.h: src/io/%.lua
	$(LUA_TO_C)
$(GEN)/%.lua.h: src/engine/%.lua
	$(LUA_TO_C)
$(BUILD)/src/io/fleet.o: $(GEN)/fleet.lua.h
$(BUILD)/src/engine/store_redis.o: $(GEN)/store_redis.lua.h

$(BUILD)/llmux: $(CORE_OBJS) $(BUILD)/src/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Install whatever Debian package is missing (apt-get, through sudo when not root).
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

run: deps
	$(MAKE) all
	$(BUILD)/llmux --config conf/llmux.json

# --- tests ---
TEST_CFLAGS = $(CFLAGS) -Wno-unused-function $(shell pkg-config --cflags cmocka)
# tests/unit mirrors the source folders: tests/unit/core/test_sse.c tests src/core/sse.c.
UNIT_SRCS := $(wildcard tests/unit/test_*.c tests/unit/*/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

# Unit tests link against an archive of every object, so each takes in only what its subject reaches,
# and without libmicrohttpd: below the MHD glue (src/server/mhd.c) nothing may need it, so a test that
# drives an endpoint through a fake transport proves the handlers run without it.
UNIT_LDLIBS = $(shell pkg-config --libs libevent libcurl jansson libcrypto sqlite3 hiredis cmocka 2>/dev/null) -lm -pthread

$(BUILD)/libllmux.a: $(CORE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libllmux.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libllmux.a $(UNIT_LDLIBS)

MOCK_SRCS := $(wildcard tests/mock_upstream/*.c)
# The MCP client alone on a loop, driven by JSON lines (tests/integration/mcp_*.test.mjs, the conformance suite).
$(BUILD)/tests/mcp-probe: tests/tools/mcp_probe.c $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJS) $(LDLIBS)

$(BUILD)/tests/notify-recv: tests/tools/notify_recv.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# The config an installed llmux (make install, the container image) starts with: the shipped one without its
# MCP demo server, which runs `npx` (Node and npm are on a developer's machine, not in the image or under a
# hardened systemd unit).
$(BUILD)/llmux.installed.json: conf/llmux.json
	@mkdir -p $(dir $@)
	jq 'del(.mcp_servers) | del(.aliases.agent)' $< >$@

# `make install` (PREFIX=/usr/local, DESTDIR for staging): the binary, the systemd unit (ExecStart pointed
# at this PREFIX) and, unless one exists, a starting config in /etc/llmux.
PREFIX ?= /usr/local
SYSTEMD_UNIT_DIR ?= /lib/systemd/system
install: $(BUILD)/llmux $(BUILD)/llmux.installed.json
	install -D -m 0755 $(BUILD)/llmux $(DESTDIR)$(PREFIX)/bin/llmux
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)/etc/llmux
	sed 's|^ExecStart=/usr/local/bin/llmux|ExecStart=$(PREFIX)/bin/llmux|' systemd/llmux.service \
	  >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/llmux.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/llmux.service
	[ -e $(DESTDIR)/etc/llmux/llmux.json ] || install -m 0644 $(BUILD)/llmux.installed.json $(DESTDIR)/etc/llmux/llmux.json

$(BUILD)/tests/mock-upstream: $(MOCK_SRCS) $(wildcard tests/mock_upstream/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(MOCK_SRCS) $(shell pkg-config --cflags --libs libevent jansson) -lm

unit-bins: $(UNIT_BINS)

# The layers' include rules (docs/architecture.md), and a proof that the check catches planted violations.
check-includes:
	bash tests/tools/check_includes.sh
	bash tests/tools/check_includes_test.sh

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The clients under test (openai 7, the AI SDK, LangChain) need Node.js >= 22, newer than Debian 12's 18:
# tests/package.json brings a Node 22 binary from the npm registry (the optional node-linux-* packages)
# and the suites run on it (Debian's node and npm only install the packages). Elsewhere: node on the PATH.
TEST_NODE = $(or $(firstword $(wildcard $(abspath tests/node_modules/node-linux-*/bin/node))),node)

integration: $(BUILD)/llmux $(BUILD)/tests/mock-upstream tests/node_modules/.installed $(BUILD)/tests/notify-recv $(BUILD)/tests/mcp-probe
	cd tests && LLMUX_BIN=$(abspath $(BUILD)/llmux) MOCK_UPSTREAM_BIN=$(abspath $(BUILD)/tests/mock-upstream) NOTIFY_RECV_BIN=$(abspath $(BUILD)/tests/notify-recv) \
	  MCP_PROBE_BIN=$(abspath $(BUILD)/tests/mcp-probe) \
	  $(TEST_NODE) --test --test-concurrency=1 integration/*.test.mjs

# The integration suite once more against an AddressSanitizer + UndefinedBehaviorSanitizer build (its own
# build directory); any sanitizer report fails the run. LLMUX_SANITIZED tells tests that measure llmux's
# memory that ASan's quarantine holds freed memory.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
integration-asan: $(BUILD)/tests/mock-upstream tests/node_modules/.installed $(BUILD)/tests/notify-recv
	$(MAKE) BUILD=build-asan CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" build-asan/llmux build-asan/tests/mcp-probe
	cd tests && LLMUX_BIN=$(abspath build-asan/llmux) MOCK_UPSTREAM_BIN=$(abspath $(BUILD)/tests/mock-upstream) NOTIFY_RECV_BIN=$(abspath $(BUILD)/tests/notify-recv) \
	  MCP_PROBE_BIN=$(abspath build-asan/tests/mcp-probe) \
	  ASAN_OPTIONS=detect_leaks=1:exitcode=99 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LLMUX_SANITIZED=1 \
	  $(TEST_NODE) --test --test-concurrency=1 integration/*.test.mjs

# The integration suite with llmux under valgrind memcheck: any leak or error fails the run.
VALGRIND := valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --track-fds=no --quiet
valgrind: $(BUILD)/llmux $(BUILD)/tests/mock-upstream tests/node_modules/.installed $(BUILD)/tests/notify-recv $(BUILD)/tests/mcp-probe
	@command -v valgrind >/dev/null || $(SUDO) apt-get install -y -qq valgrind
	cd tests && LLMUX_BIN=$(abspath $(BUILD)/llmux) MOCK_UPSTREAM_BIN=$(abspath $(BUILD)/tests/mock-upstream) NOTIFY_RECV_BIN=$(abspath $(BUILD)/tests/notify-recv) \
	  MCP_PROBE_BIN=$(abspath $(BUILD)/tests/mcp-probe) \
	  LLMUX_WRAP="$(VALGRIND)" LLMUX_SLOW=1 $(TEST_NODE) --test --test-concurrency=1 integration/*.test.mjs

# Line and branch coverage of src/, providers/ and dialects/ from the unit and integration tests. The run fails
# below COVERAGE_MIN percent of lines: raise it as coverage grows, never lower it.
COVERAGE_MIN ?= 92
coverage: $(BUILD)/tests/mock-upstream tests/node_modules/.installed $(BUILD)/tests/notify-recv
	@command -v gcovr >/dev/null || $(SUDO) apt-get install -y -qq gcovr
	rm -rf build-cov
	$(MAKE) BUILD=build-cov CFLAGS="-O0 -g --coverage" LDFLAGS="--coverage" build-cov/llmux build-cov/tests/mcp-probe unit-bins
	@set -e; for t in $(UNIT_BINS:$(BUILD)/%=build-cov/%); do $$t >/dev/null; done
	cd tests && LLMUX_BIN=$(abspath build-cov/llmux) MOCK_UPSTREAM_BIN=$(abspath $(BUILD)/tests/mock-upstream) NOTIFY_RECV_BIN=$(abspath $(BUILD)/tests/notify-recv) \
	  MCP_PROBE_BIN=$(abspath build-cov/tests/mcp-probe) \
	  $(TEST_NODE) --test --test-concurrency=1 integration/*.test.mjs >/dev/null
	gcovr -r . --object-directory build-cov --filter 'src/' --filter 'providers/' --filter 'dialects/' --print-summary \
	  --fail-under-line $(COVERAGE_MIN) -o build-cov/coverage.txt
	@cat build-cov/coverage.txt | tail -30

# curl and jq used the way shell scripts use them.
shell-tests: $(BUILD)/llmux $(BUILD)/tests/mock-upstream
	LLMUX_BIN=$(BUILD)/llmux MOCK_UPSTREAM_BIN=$(BUILD)/tests/mock-upstream bash tests/shell/test_curl.sh
	bash tests/shell/test_systemd.sh

# Side-by-side benchmark against nginx and the bare mock upstream (numbers, not pass/fail).
bench: all $(BUILD)/tests/mock-upstream
	$(MAKE) -C bench BUILD=$(abspath $(BUILD))

test: deps
	$(MAKE) check-includes
	$(MAKE) unit
	$(MAKE) fuzz-regress
	$(MAKE) integration
	$(MAKE) shell-tests
	$(MAKE) integration-asan

clean:
	rm -rf $(BUILD) build-asan build-cov build-fuzz

include tests/fuzz/fuzz.mk

-include $(DEPS) $(UNIT_BINS:=.d)
