# nudge — plain GNU Makefile. Outputs under build/ (release) and build/asan/ (ASan+UBSan, used by
# `make test`). Every library comes through pkg-config; `deps` installs missing Debian packages
# when run as root, so `make run` and `make test` work on a fresh Debian 12 machine.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
B       := build

PKGS      := libuv libwebsockets msgpack jansson openssl hiredis
DEB_BUILD := pkg-config libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libmsgpack-dev \
             libjansson-dev libssl-dev libhiredis-dev
DEB_TEST  := libcriterion-dev clang libclang-rt-14-dev valgrind tmux
DEB_PROM  := prometheus
DEB_REDIS := redis-server
DEB_HAPROXY := haproxy
DEB_BROWSER := chromium

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRIT_LIBS  = $(shell pkg-config --libs criterion 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes -Werror
BASEFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -g $(WARN) $(PKG_CFLAGS) -MMD -MP

# Layers, one way (docs/architecture.md): each compiles with only its own and lower layers'
# headers on the include path, so including a higher layer's header fails to build.
INC_PROTO   := -Iprotocol
INC_ENGINE  := $(INC_PROTO) -Ibroker/engine
INC_HUB     := $(INC_ENGINE) -Ibroker/hub
INC_SESSION := $(INC_HUB) -Ibroker/session
INC_NET     := $(INC_SESSION) -Ibroker/net -Ibroker/vendor
INC_CLIENT  := $(INC_PROTO) -Iclients/c
INC_TESTS   := $(INC_NET) -Iclients/c -Itests/support
inc_of = $(strip $(if $(filter protocol/%,$(1)),$(INC_PROTO),\
  $(if $(filter broker/engine/%,$(1)),$(INC_ENGINE),\
  $(if $(filter broker/hub/%,$(1)),$(INC_HUB),\
  $(if $(filter broker/session/%,$(1)),$(INC_SESSION),\
  $(if $(filter broker/net/%,$(1)),$(INC_NET),\
  $(if $(filter clients/% bench/%,$(1)),$(INC_CLIENT),$(INC_TESTS))))))))
CFLAGS_REL  = $(BASEFLAGS) -O2
CFLAGS_ASAN = $(BASEFLAGS) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
LDFLAGS_ASAN = -fsanitize=address,undefined

PROTO_SRC := $(wildcard protocol/*.c)
# The client library carries what clients speak; relay.c is between nodes and Redis only.
PROTO_LIB := $(filter-out protocol/relay.c,$(PROTO_SRC))
LAYER_SRC := $(wildcard broker/engine/*.c broker/hub/*.c broker/session/*.c)
# Third-party code kept as released (broker/vendor/README.md): built with the transports, with
# the warnings its authors build it with (-Wconversion would want casts in their code).
VENDOR_SRC := $(wildcard broker/vendor/*.c)
CORE_SRC  := $(LAYER_SRC) $(filter-out broker/net/main.c,$(wildcard broker/net/*.c)) $(VENDOR_SRC)
LIB_SRC   := clients/c/nudge.c clients/c/outbox.c
CLI_SRC   := $(filter-out $(LIB_SRC),$(wildcard clients/c/*.c))
TEST_SRC  := $(wildcard tests/unit/*.c tests/integration/*.c tests/scenarios/*.c tests/support/*.c)
BENCH_SRC := $(wildcard bench/*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
$(foreach d,$(B) $(B)/asan $(B)/tsan,$(call obj,$(d),$(VENDOR_SRC))): WARN := -Wall -Wextra -Werror

.PHONY: cluster bench-cluster all deps deps-test deps-chromium deps-python example run test test-js test-node test-python test-long asan tsan test-tsan valgrind fuzz fuzz-smoke bench bench-smoke bench-load bench-compare bench-workers bench-durable bench-memory install \
        install-systemd uninstall man deb test-pkg test-pkg-base clean format lint help
.DEFAULT_GOAL := all

all: deps $(B)/nudged $(B)/nudge $(B)/libnudge.a $(B)/libnudge.so $(B)/nudge-bench

help:
	@echo "make            build build/nudged, build/nudge, build/libnudge.{a,so}, build/nudge-bench"
	@echo "make run        build and start the broker on its defaults (127.0.0.1:7400/7401/7402)"
	@echo "make test       install deps, build with ASan+UBSan, run every test, then the"
	@echo "                cross-thread suites against a ThreadSanitizer broker (make test-tsan)"
	@echo "make test-js    the JavaScript client's tests and browser stories against the ASan broker"
	@echo "make test-node  the Node publisher's tests (clients/node) against the ASan broker"
	@echo "make test-python  the Python publisher's tests (clients/python) against the ASan broker"
	@echo "make example    the example app (React + TanStack Query) on http://127.0.0.1:8080/"
	@echo "make tsan       build build/tsan/nudged and nudge with ThreadSanitizer (clang)"
	@echo "make valgrind   run a pub/sub scenario against the release broker under valgrind"
	@echo "make fuzz       run the libFuzzer targets (FUZZ_SECONDS=60 each)"
	@echo "make bench      fan-out benchmark (see docs/bench.md)"
	@echo "make cluster    three nodes on one Redis behind HAProxy, on this machine (docs/cluster.md)"
	@echo "make bench-load the load generator: broadcast and per-user to 10,000 (docs/bench.md)"
	@echo "make bench-compare  nudge side by side with Redis, NATS, Mosquitto, Socket.IO (docs/performance.md)"
	@echo "make bench-workers  broker CPU per delivery, --workers 1 against 2 (docs/bench.md)"
	@echo "make bench-durable  fsync modes, resume catch-up, start-up with 1M topics (docs/bench.md)"
	@echo "make bench-memory   broker RSS per idle subscribed WebSocket (docs/bench.md)"
	@echo "make install    install nudged, nudge, libnudge, its headers and nudge.pc, the man pages"
	@echo "                under PREFIX=$(PREFIX) (and DESTDIR); make install-systemd: the unit"
	@echo "make deb        build/nudge_VERSION_ARCH.deb (docs/operations.md §Deployment)"
	@echo "make lint       check layering (nm -u: no libuv/lws below the transports) and format"

# ---- dependencies ---------------------------------------------------------------------------
# Checks with pkg-config first; installs with apt-get only what is missing, and only as root.
deps:
	@if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists $(PKGS) \
	    && ls /usr/lib/*/libwebsockets-evlib_uv.so >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing $(DEB_BUILD)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_BUILD) \
	    >/dev/null || exit 1; \
	else echo "deps: missing packages; as root run: apt-get install $(DEB_BUILD)"; exit 1; fi

deps-test: deps
	@if ! pkg-config --exists criterion || ! command -v clang >/dev/null 2>&1 \
	    || ! command -v valgrind >/dev/null 2>&1 || ! command -v tmux >/dev/null 2>&1 \
	    || ! ls /usr/lib/llvm-14/lib/clang/14*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps-test: installing $(DEB_TEST)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_TEST) \
	      >/dev/null || exit 1; \
	  else echo "deps-test: missing packages; as root run: apt-get install $(DEB_TEST)"; exit 1; fi; \
	fi
	@# redis-server and haproxy (the cluster's tests start their own), and promtool (tests check
	@# GET /metrics with it; in Debian's prometheus package) come with services whose postinst
	@# would start them (:6379, :9090, haproxy's): installed without starting them, nor at boot.
	@tests/deb-no-service.sh redis-server $(DEB_REDIS) redis-server "for the Redis engine's tests"
	@tests/deb-no-service.sh promtool $(DEB_PROM) prometheus "for promtool"
	@tests/deb-no-service.sh haproxy $(DEB_HAPROXY) haproxy "for the three-node cluster's tests"

# Three nudged nodes on one redis-server behind HAProxy, in the foreground (docs/cluster.md).
cluster: all
	@command -v redis-server >/dev/null && command -v haproxy >/dev/null || { \
	  echo "cluster: needs redis-server and haproxy (make deps-test installs both)"; exit 1; }
	broker/dist/cluster/run.sh $(B)

# ---- release build --------------------------------------------------------------------------
# Every compile waits for `deps` (order-only: it runs first but never makes an object stale), so
# `make -j` on a fresh machine does not compile before the headers are installed; test and fuzz
# objects wait for `deps-test` (Criterion, clang). PKG_CFLAGS is expanded when a recipe runs,
# i.e. after deps.
$(B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) $(call inc_of,$<) -c $< -o $@

$(B)/nudged: $(call obj,$(B),$(PROTO_SRC) $(CORE_SRC) broker/net/main.c)
	$(CC) -o $@ $^ $(PKG_LIBS) -lm

$(B)/libnudge.a: $(call obj,$(B),$(LIB_SRC) $(PROTO_LIB))
	@rm -f $@
	ar rcs $@ $^

$(B)/libnudge.so: $(call obj,$(B),$(LIB_SRC) $(PROTO_LIB))
	$(CC) -shared -Wl,-soname,libnudge.so.$(SOMAJOR) -o $@ $^ \
	  $(shell pkg-config --libs msgpack jansson openssl 2>/dev/null) -lm

$(B)/nudge: $(call obj,$(B),$(CLI_SRC)) $(B)/libnudge.a
	$(CC) -o $@ $^ $(PKG_LIBS) -lm

$(B)/nudge-bench: $(call obj,$(B),$(BENCH_SRC) $(LIB_SRC) $(PROTO_SRC))
	$(CC) -o $@ $^ $(PKG_LIBS) -lm

# ---- sanitizer build (make test) ------------------------------------------------------------
A := $(B)/asan
$(A)/obj/%.o: %.c | deps-test
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) $(call inc_of,$<) -c $< -o $@

$(A)/nudged: $(call obj,$(A),$(PROTO_SRC) $(CORE_SRC) broker/net/main.c)
	$(CC) $(LDFLAGS_ASAN) -o $@ $^ $(PKG_LIBS) -lm

$(A)/nudge: $(call obj,$(A),$(CLI_SRC) $(LIB_SRC) $(PROTO_SRC))
	$(CC) $(LDFLAGS_ASAN) -o $@ $^ $(PKG_LIBS) -lm

$(A)/nudge-bench: $(call obj,$(A),$(BENCH_SRC) $(LIB_SRC) $(PROTO_SRC))
	$(CC) $(LDFLAGS_ASAN) -o $@ $^ $(PKG_LIBS) -lm

$(A)/tests: $(call obj,$(A),$(TEST_SRC) $(CORE_SRC) $(LIB_SRC) $(PROTO_SRC))
	$(CC) $(LDFLAGS_ASAN) -o $@ $^ $(PKG_LIBS) $(CRIT_LIBS) -lm

asan: deps-test $(A)/nudged $(A)/nudge $(A)/nudge-bench $(A)/tests

# ---- ThreadSanitizer build (make tsan, and the tsan step of make test) -----------------------
# clang (its TSan runtime comes with libclang-rt-14-dev); the broker's and CLI's sources as in the
# asan build. The test binary itself is not built with TSan: Criterion 2.4's sandbox cannot start
# under it ("Could not initialize inheritable arena", Criterion issue #274), and what TSan must
# watch is the multi-threaded broker, which the ASan test binary starts from $(T).
T := $(B)/tsan
CFLAGS_TSAN = $(BASEFLAGS) -O1 -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS_TSAN = -fsanitize=thread
$(T)/obj/%.o: %.c | deps-test
	@mkdir -p $(dir $@)
	clang $(CFLAGS_TSAN) $(call inc_of,$<) -c $< -o $@

$(T)/nudged: $(call obj,$(T),$(PROTO_SRC) $(CORE_SRC) broker/net/main.c)
	clang $(LDFLAGS_TSAN) -o $@ $^ $(PKG_LIBS) -lm

$(T)/nudge: $(call obj,$(T),$(CLI_SRC) $(LIB_SRC) $(PROTO_SRC))
	clang $(LDFLAGS_TSAN) -o $@ $^ $(PKG_LIBS) -lm

tsan: deps-test $(T)/nudged $(T)/nudge

# The integration and scenario suites that drive several workers at once, against the TSan
# broker with 4 workers whatever the machine has. A report ends the broker at once (exit 66):
# the test fails, and the report is in the broker's log, printed below. About 1-2 minutes on 2
# cores; TSan slows the broker 5-15x, hence the longer per-test timeout. libuv, libwebsockets
# and OpenSSL are not instrumented: tests/tsan.supp says what may be suppressed (one glibc race).
TSAN_SUITES := e2e model cluster cluster_model history wildcard coalesce survival stats contract restart nudged threads workers topics \
               descriptors handshake publisher_deadlines slow_log security ip_conns sub_budget \
               replay_budget rates origin tls http reload admin logs
empty :=
space := $(empty) $(empty)
test-tsan: asan tsan
	@touch $(T)/run.stamp
	$(TEST_ENV) NUDGE_BIN=$(T) NUDGE_WORKERS=4 \
	  TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  $(A)/tests --filter '@($(subst $(space),|,$(strip $(TSAN_SUITES))))/*' --jobs=2 --timeout=300 || { \
	  for f in $$(find /tmp -maxdepth 1 -name 'nudge-test-*.err' -newer $(T)/run.stamp); do \
	    grep -q ThreadSanitizer $$f && { echo "---- $$f"; cat $$f; }; done; exit 1; }

# One runner: the Criterion binary holds unit and integration tests; integration tests start
# $(A)/nudged on ephemeral loopback ports. Then the fuzz targets replay their seed corpus and the
# benchmark smoke-runs (tiny, untimed), and the model walk (seed 1) runs alone while every core
# is kept busy (tests/support/busy.h; ~20-40 s): timing the contract does not promise must not
# decide a test. Then the main runs, the clients' suites, the packaging checks (test-pkg: ~40 s
# once its chroot exists; as root make test starts making that first, in the background), and
# last, once they passed, the cross-thread suites against the ThreadSanitizer broker (test-tsan,
# ~1-2 min).
TEST_ENV = NUDGE_BIN=$(A) ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test: asan
	@$(MAKE) --no-print-directory test-pkg-base
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory bench-smoke
	$(TEST_ENV) NUDGE_BUSY=1 NUDGE_WORKERS=4 $(A)/tests --filter 'busy/*' --timeout=120
	@for w in 1 4; do echo "test: every suite against nudged --workers $$w"; \
	  NUDGE_WORKERS=$$w $(TEST_ENV) $(A)/tests --jobs=2 --timeout=120 || exit 1; done
	@$(MAKE) --no-print-directory test-js
	@$(MAKE) --no-print-directory test-node
	@$(MAKE) --no-print-directory test-python
	@$(MAKE) --no-print-directory test-pkg
	@$(MAKE) --no-print-directory test-tsan

# The JavaScript client (clients/js, docs/clients.md), its TanStack Query adapter
# (clients/js/tanstack) and the example app with the browser stories (clients/js/example, whose
# backend publishes with clients/node, installed first; both
# reuse the core's test support and so its node_modules): npm ci (package-lock.json), then their
# node:test suites against $(A)/nudged, the bundle-size checks (core min+gzip <= 6 KiB) and tsc on
# the declarations. The browser stories run Debian's chromium headless (installed here as root).
# Needs node >= 20 and npm.
test-js: $(A)/nudged deps-chromium
	cd clients/js && npm ci --no-audit --no-fund --loglevel=error && NUDGE_BIN=$(CURDIR)/$(A) npm test
	cd clients/js/tanstack && npm ci --no-audit --no-fund --loglevel=error && \
	  NUDGE_BIN=$(CURDIR)/$(A) npm test
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error
	cd clients/js/example && npm ci --no-audit --no-fund --loglevel=error && \
	  NUDGE_BIN=$(CURDIR)/$(A) npm test

# The Node publisher (clients/node, docs/clients.md §Node publisher): npm ci, then its node:test
# suites against $(A)/nudged, node --check on the examples and tsc on the declarations. The tests
# reuse the core's test support and typescript, so clients/js's packages come first (npm ci
# there when test-js has not run). Needs node >= 20, npm and the openssl command.
test-node: $(A)/nudged
	@[ -d clients/js/node_modules/ws ] || (cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error && NUDGE_BIN=$(CURDIR)/$(A) npm test

deps-chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps-chromium: installing $(DEB_BROWSER) (headless, for the browser stories)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(DEB_BROWSER) >/dev/null || exit 1; \
	  else echo "deps-chromium: missing; as root run: apt-get install $(DEB_BROWSER)"; exit 1; fi; \
	fi

# The Python publisher (clients/python, docs/clients.md §Python publisher): its unittest scenarios
# against $(A)/nudged, both the threaded and the asyncio API (~10 s). Debian's interpreter
# (/usr/bin/python3) with Debian's python3-msgpack, installed here as root; nothing is pip-installed.
PY := /usr/bin/python3
test-python: $(A)/nudged deps-python
	NUDGE_BIN=$(CURDIR)/$(A) $(PY) -m unittest discover -s clients/python/tests
	$(PY) -m py_compile clients/python/examples/flask_app.py clients/python/examples/fastapi_app.py

deps-python:
	@if ! $(PY) -c 'import msgpack' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps-python: installing python3-msgpack"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends python3 python3-msgpack >/dev/null || exit 1; \
	  else echo "deps-python: missing; as root run: apt-get install python3-msgpack"; exit 1; fi; \
	fi

# The example app (docs/clients.md §Example app): nudged and the demo backend, on
# http://127.0.0.1:8080/ (open it in two windows).
example: all
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error
	cd clients/js/example && npm ci --no-audit --no-fund --loglevel=error && \
	  node server.js --nudged $(CURDIR)/$(B)/nudged

# The model-based test with a random seed and longer runs (the seed is printed with a one-line
# repro); `make test` runs it with a fixed seed.
test-long: asan
	NUDGE_BIN=$(A) NUDGE_MODEL_SEED=random NUDGE_MODEL_STEPS=$${NUDGE_MODEL_STEPS:-20000} \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  $(A)/tests --filter 'model/*' --timeout=900
	NUDGE_BIN=$(A) NUDGE_CLUSTER_SEED=random NUDGE_CLUSTER_STEPS=$${NUDGE_CLUSTER_STEPS:-20000} \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  $(A)/tests --filter 'cluster_model/*' --timeout=900

run: all
	$(B)/nudged --data-dir $(B)/data

# ---- valgrind -------------------------------------------------------------------------------
valgrind: all
	tests/valgrind.sh $(B)

# ---- fuzzing (clang + libFuzzer) ------------------------------------------------------------
F := $(B)/fuzz
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(F)/%,$(FUZZ_SRC))
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -Iprotocol -Ibroker/vendor $(PKG_CFLAGS) \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60
# fuzz_match includes broker/engine/match.c and table.c itself, fuzz_journal journal.c,
# fuzz_record record.c, fuzz_token broker/session/token.c, fuzz_hreq broker/net/hreq.c and the
# vendored picohttpparser (see their top comments).
FUZZ_DEPS := $(PROTO_SRC) $(wildcard protocol/*.h) broker/engine/match.c broker/engine/table.c \
             broker/engine/journal.c broker/engine/record.c \
             $(wildcard broker/engine/*.h) broker/session/token.c broker/session/token.h \
             broker/net/hreq.c broker/net/hreq.h $(VENDOR_SRC)
$(F)/%: tests/fuzz/%.c $(FUZZ_DEPS) | deps-test
	@mkdir -p $(F)
	clang $(FUZZ_CFLAGS) -o $@ $< $(PROTO_SRC) $(PKG_LIBS) -lm

fuzz-smoke: deps-test $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  echo "fuzz-smoke: $$n over tests/fuzz/corpus/$$n + 2000 runs"; \
	  rm -rf $(F)/smoke-$$n; mkdir -p $(F)/smoke-$$n; \
	  $$f -runs=2000 -seed=1 $(F)/smoke-$$n tests/fuzz/corpus/$$n >/dev/null 2>$(F)/$$n.log \
	    || { tail -30 $(F)/$$n.log; exit 1; }; done

fuzz: deps-test $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(F)/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(F)/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

# ---- benchmark ------------------------------------------------------------------------------
bench: all
	bench/run.sh $(B)

bench-smoke: asan
	bench/run.sh $(A) --smoke
	bench/durable.sh $(A) --smoke
	bench/load.sh $(A) --smoke
	SMOKE=1 SUBS=50 RATES_B=20 RATES_U=100 DURATION=1 bench/cluster.sh $(A)

# A real run of the load generator (docs/bench.md, "The load generator"): broadcast and per-user
# over 10,000 WebSocket subscribers in open-loop rate steps, nudged pinned to CPU 0 and the
# generator to CPU 1; JSON lines appended to build/load.json. LOAD_ARGS adds options to both.
# Exit status 3 of a run (a step not sustained) is a result, not a failure.
bench-load: all
	bench/load.sh $(B) --broker-cpu 0 --gen-cpu 1 --scenario broadcast --subs 10000 \
	  --rates 20,50,100,200,300 --duration 3 --p99-bound 1000 --json $(B)/load.json $(LOAD_ARGS) \
	  || [ $$? = 3 ]
	bench/load.sh $(B) --broker-cpu 0 --gen-cpu 1 --scenario per-user --subs 10000 \
	  --rates 10000,25000,50000,75000,100000 --duration 3 --until-fail --json $(B)/load.json \
	  $(LOAD_ARGS) || [ $$? = 3 ]

# The persisted store's benchmarks: fsync modes, resume catch-up, start-up with 1M topics
# (bench/durable.sh; REPS=3 default; docs/bench.md).
bench-durable: all
	bench/durable.sh $(B)

# Broker CPU per million deliveries, --workers 1 against 2 (bench/workers.sh; REPS=3 default).
bench-workers: all
	bench/workers.sh $(B)

# One node in-process, one on the Redis engine, three behind HAProxy (docs/cluster.md).
bench-cluster: all
	bench/cluster.sh $(B)

# nudge side by side with Redis pub/sub, NATS, Mosquitto and Socket.IO: installs the peers,
# finds each one's highest sustained rate, one table, plots (bench/peers.sh; docs/performance.md).
# SUBS, DURATION, SYSTEMS, SCENARIOS make it shorter.
bench-compare: all
	bench/peers.sh $(B)

# Broker RSS per idle subscribed WebSocket connection, 10,000 and 18,000 of them, --workers 1
# and 2, with tokens and resume positions (bench/memory.sh; docs/bench.md §Memory per
# connection). nudge-idle holds the connections: the tests' crowd (tests/support/crowd.c).
bench-memory: all $(B)/nudge-idle
	bench/memory.sh $(B)

$(B)/nudge-idle: bench/memory/idle.c tests/support/crowd.c tests/support/jwt.c
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(PKG_CFLAGS) -Itests/support -o $@ $^ $(PKG_LIBS)

# ---- housekeeping ---------------------------------------------------------------------------
# ---- installing and packaging (docs/operations.md §Deployment) -------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the broker, the CLI, libnudge (static, and shared
# with its soname), its headers, nudge.pc and the man pages. make install-systemd: the unit (its
# paths rewritten for PREFIX) and, if none is there yet, /etc/nudge/nudged.conf. make deb: a
# Debian package of all that, build/nudge_VERSION_ARCH.deb. The version is protocol/version.h's.
VERSION  := $(shell sed -n 's/^\#define NUDGE_VERSION "\(.*\)"$$/\1/p' protocol/version.h)
SOMAJOR  := 0
LIBDIR   ?= $(PREFIX)/lib
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR  ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,/etc/systemd/system)
MAN      := $(B)/man/man8/nudged.8 $(B)/man/man1/nudge.1

# Man pages: the templates' OPTIONS from the binaries' own --help (docs/man/mkman.sh).
$(B)/man/man8/%.8: docs/man/%.8.in docs/man/mkman.sh $(B)/nudged protocol/version.h
	@mkdir -p $(dir $@)
	docs/man/mkman.sh $< $(B) $(VERSION) >$@.tmp && mv $@.tmp $@
$(B)/man/man1/%.1: docs/man/%.1.in docs/man/mkman.sh $(B)/nudge protocol/version.h
	@mkdir -p $(dir $@)
	docs/man/mkman.sh $< $(B) $(VERSION) >$@.tmp && mv $@.tmp $@
man: $(MAN)

install: all $(MAN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include/nudge \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(B)/nudged $(B)/nudge $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(B)/libnudge.a $(DESTDIR)$(LIBDIR)/
	install -m 644 $(B)/libnudge.so $(DESTDIR)$(LIBDIR)/libnudge.so.$(VERSION)
	ln -sf libnudge.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libnudge.so.$(SOMAJOR)
	ln -sf libnudge.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libnudge.so
	install -m 644 clients/c/nudge.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 protocol/wire.h protocol/pub.h protocol/sub.h $(DESTDIR)$(PREFIX)/include/nudge/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	  clients/c/nudge.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/nudge.pc
	install -m 644 $(B)/man/man8/nudged.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 $(B)/man/man1/nudge.1 $(DESTDIR)$(MANDIR)/man1/

install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/nudge
	sed -e 's|/usr/bin/nudged|$(PREFIX)/bin/nudged|' -e 's|/etc/nudge/|$(SYSCONFDIR)/nudge/|' \
	  broker/dist/nudged.service >$(DESTDIR)$(UNITDIR)/nudged.service
	chmod 644 $(DESTDIR)$(UNITDIR)/nudged.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/nudge/nudged.conf ] || \
	  install -m 644 broker/dist/nudged.conf $(DESTDIR)$(SYSCONFDIR)/nudge/nudged.conf

# Leaves /etc/nudge/nudged.conf (it may hold local changes) and the data directory.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/nudged $(DESTDIR)$(PREFIX)/bin/nudge \
	  $(DESTDIR)$(LIBDIR)/libnudge.a $(DESTDIR)$(LIBDIR)/libnudge.so \
	  $(DESTDIR)$(LIBDIR)/libnudge.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libnudge.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/nudge.pc $(DESTDIR)$(PREFIX)/include/nudge.h \
	  $(DESTDIR)$(MANDIR)/man8/nudged.8 $(DESTDIR)$(MANDIR)/man1/nudge.1 \
	  $(DESTDIR)$(UNITDIR)/nudged.service
	rm -rf $(DESTDIR)$(PREFIX)/include/nudge

# The Debian package: one binary package `nudge` (broker, CLI, library, headers), built with
# dpkg-deb from a staged make install (no debhelper). Its Depends are the packages that own the
# shared libraries the binaries need (objdump -p, dpkg -S), plus the libuv event-lib plugin
# libwebsockets loads at run time and passwd (useradd, for the nudge user). Files in
# broker/dist/debian/: the maintainer scripts (user, state directory, systemd enable/start).
DEB_ARCH  = $(shell dpkg --print-architecture)
DEB_MA    = $(shell $(CC) -print-multiarch)
DEB_STAGE = $(B)/pkg/stage
DEB_FILE  = $(B)/nudge_$(VERSION)_$(DEB_ARCH).deb
deb: $(DEB_FILE)
$(DEB_FILE): all $(MAN) broker/dist/nudged.service broker/dist/nudged.conf clients/c/nudge.pc.in \
             $(wildcard broker/dist/debian/*)
	rm -rf $(DEB_STAGE)
	$(MAKE) --no-print-directory install install-systemd DESTDIR=$(CURDIR)/$(DEB_STAGE) \
	  PREFIX=/usr LIBDIR=/usr/lib/$(DEB_MA) SYSCONFDIR=/etc >/dev/null
	strip --strip-unneeded $(DEB_STAGE)/usr/bin/* $(DEB_STAGE)/usr/lib/$(DEB_MA)/libnudge.so.$(VERSION)
	gzip -9n $(DEB_STAGE)/usr/share/man/man*/*
	install -d $(DEB_STAGE)/DEBIAN $(DEB_STAGE)/usr/share/doc/nudge
	install -m 644 README.md $(DEB_STAGE)/usr/share/doc/nudge/
	install -m 755 broker/dist/debian/postinst broker/dist/debian/prerm broker/dist/debian/postrm \
	  $(DEB_STAGE)/DEBIAN/
	install -m 644 broker/dist/debian/conffiles broker/dist/debian/triggers $(DEB_STAGE)/DEBIAN/
	deps=$$(for f in $(DEB_STAGE)/usr/bin/* $(DEB_STAGE)/usr/lib/$(DEB_MA)/libnudge.so.$(VERSION); do \
	    objdump -p $$f | awk '/NEEDED/ { print $$2 }'; done | sort -u | while read -r so; do \
	    dpkg -S "*/$$so" 2>/dev/null | grep "^[^ ]*:$(DEB_ARCH): " | grep -v -- '-dev:' | \
	      head -1 | cut -d: -f1; done | sort -u | tr '\n' ' '); \
	  [ -n "$$deps" ] || { echo "deb: no library packages found (objdump, dpkg -S)"; exit 1; }; \
	  deps=$$(printf '%s\n' $$deps libwebsockets-evlib-uv passwd | sort -u | paste -sd, | sed 's/,/, /g'); \
	  sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' -e "s|@DEPENDS@|$$deps|" \
	    -e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_STAGE) | cut -f1)|" \
	    broker/dist/debian/control.in >$(DEB_STAGE)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_STAGE) $@
	@dpkg-deb --field $@ Package Version Depends

# Packaging checks (docs/operations.md §Deployment): the man pages and the sample config name
# every option --help does (tests/pkg/man.sh), the unit passes systemd-analyze verify and
# security (unit.sh), make install/uninstall and nudge.pc work (install.sh), and, as root, the
# .deb installs on a clean Debian 12 and its nudged serves (deb.sh: a debootstrapped chroot
# under build/pkg, made once, then copied afresh for each run).
test-pkg: all $(MAN) $(DEB_FILE)
	tests/pkg/man.sh $(B) $(B)/man
	tests/pkg/unit.sh $(B) $(B)/man
	tests/pkg/install.sh
	tests/pkg/deb.sh $(DEB_FILE) $(B)/pkg

# make test starts the one-time debootstrap (2-4 min) in the background, at the lowest CPU and
# I/O priority, so that it overlaps the suites; test-pkg waits for it (deb.sh takes a lock).
test-pkg-base:
	@if [ "$$(id -u)" = 0 ] && [ ! -e $(B)/pkg/base/.complete ]; then mkdir -p $(B)/pkg; \
	  echo "test: making test-pkg's Debian 12 chroot in the background ($(B)/pkg/base.log)"; \
	  nice -n 19 ionice -c 3 tests/pkg/deb.sh --base $(B)/pkg >$(B)/pkg/base.log 2>&1 </dev/null & \
	fi

# Layering, proven on the objects: nothing below the transports calls libuv or libwebsockets
# (nm -u), no header of theirs is included there, and every source is clang-formatted.
FMT_FILES = $(filter-out broker/vendor/%,\
  $(wildcard protocol/*.[ch] broker/*/*.[ch] clients/c/*.[ch] tests/*/*.[ch] bench/*.c))
lint: $(call obj,$(B),$(PROTO_SRC) $(LAYER_SRC))
	@bad=$$(for o in $^; do nm -u $$o | grep -qE ' (uv|lws)_' && echo $$o; done); \
	 if [ -n "$$bad" ]; then echo "lint: libuv/lws called from a core layer: $$bad"; exit 1; fi
	@bad=$$(grep -lE '#include *[<"](uv|libwebsockets)\.h' protocol/* broker/engine/* \
	        broker/hub/* broker/session/* 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "lint: layering broken in: $$bad"; exit 1; fi
	@clang-format --dry-run -Werror $(FMT_FILES)
	@echo "lint: layering and format ok"

format:
	clang-format -i $(FMT_FILES)

clean:
	rm -rf $(B)

# (not into build/pkg: the Debian test's chroot has directories named *.d)
-include $(shell find $(B) -path $(B)/pkg -prune -o -name '*.d' -type f -print 2>/dev/null)
