# libFuzzer targets (tests/fuzz/fuzz_*.c), included by the root Makefile; paths are relative to the root.
# `make fuzz` fuzzes each target for FUZZ_SECONDS from its corpus; `make fuzz-regress` replays every
# corpus and regression file once (part of `make test`). See tests/fuzz/README.md.
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_PKGS := libevent libmicrohttpd libcurl jansson libcrypto sqlite3 hiredis
# The core and the targets share one sanitizer build: libFuzzer coverage, ASan, UBSan (UB aborts, so
# libFuzzer reports it as a crash). No -Werror: the core is written against gcc's warnings.
FUZZ_CFLAGS ?= -O1 -g -fno-omit-frame-pointer
override FUZZ_CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -pthread \
    $(shell pkg-config --cflags $(FUZZ_PKGS) 2>/dev/null) -I$(GEN)
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
FUZZ_LDLIBS := $(shell pkg-config --libs $(FUZZ_PKGS) 2>/dev/null) -lm -pthread
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

FUZZ_CORE_SRCS := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c)) $(wildcard providers/*.c dialects/*.c)
FUZZ_CORE_OBJS := $(FUZZ_CORE_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_TARGETS ?= $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

# Keep the root Makefile's default goal whether this file is included before or after its first target.
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

.PHONY: fuzz fuzz-bins fuzz-regress

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/src/io/fleet.o: $(GEN)/fleet.lua.h

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_CORE_OBJS)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(FUZZ_LDLIBS)

fuzz-bins: $(FUZZ_BINS)

# Reached only through pattern rules, the objects would count as intermediate and be deleted after each link.
.SECONDARY: $(FUZZ_CORE_OBJS) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/%.o)

# New corpus entries go to $(FUZZ_BUILD)/corpus/<target> (the first directory libFuzzer is given), so the
# seeds in the repository stay as written; crashes go to $(FUZZ_BUILD)/crashes/<target>/. Every target
# runs even when one crashes; the run fails at the end if any did.
fuzz: $(FUZZ_BINS)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes/$$t; \
	  dict=""; [ -f tests/fuzz/dict/$$t.dict ] && dict="-dict=tests/fuzz/dict/$$t.dict"; \
	  dirs="$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t"; \
	  [ -d tests/fuzz/regressions/$$t ] && dirs="$$dirs tests/fuzz/regressions/$$t"; \
	  echo "== $$t: fuzzing for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_ENV) $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t/ $$dict $(FUZZ_ARGS) $$dirs \
	    > $(FUZZ_BUILD)/$$t.log 2>&1 || failed="$$failed $$t"; \
	  grep -aE 'DONE |^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|^INFO: seed corpus|ERROR: |SUMMARY: |artifact_prefix|Test unit written' \
	    $(FUZZ_BUILD)/$$t.log | sed 's/^/   /'; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: crashed:$$failed (logs in $(FUZZ_BUILD)/<target>.log, inputs in $(FUZZ_BUILD)/crashes/)"; exit 1; \
	fi

# Replay, without fuzzing: libFuzzer runs the files it is given once each. Fails on any crash, leak,
# sanitizer report or timeout, printing that target's log.
fuzz-regress: $(FUZZ_BINS)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  files=$$(find tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t -type f ! -name '.*' 2>/dev/null | sort); \
	  [ -n "$$files" ] || { echo "== $$t: no corpus or regression files"; continue; }; \
	  if $(FUZZ_ENV) $(FUZZ_BUILD)/$$t -timeout=10 $$files > $(FUZZ_BUILD)/$$t.regress.log 2>&1; then \
	    echo "== $$t: $$(echo "$$files" | wc -l) inputs ok"; \
	  else \
	    echo "== $$t: FAILED"; cat $(FUZZ_BUILD)/$$t.regress.log; failed="$$failed $$t"; \
	  fi; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz-regress: failed:$$failed"; exit 1; }

-include $(FUZZ_CORE_OBJS:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/%.d)

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
