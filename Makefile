# A thin wrapper over meson: every target installs what is missing, configures
# build/ once, and delegates to ninja/meson.
BUILD ?= build
DEB_DEPS = meson ninja-build pkg-config libffi-dev libcriterion-dev gcc valgrind gnuplot-nox memcached \
	clang-14 libclang-rt-14-dev
# The programs of the real-program suite (tests/realprogs, docs/compat.md).
REAL_DEPS = memcached haproxy unbound nginx ruby python3 redis-server nodejs caddy perl openjdk-17-jdk-headless

.PHONY: all deps real-deps build demo test test-sanitize bench install clean fuzz soak

all: build

deps:
	@./tools/install-deps $(DEB_DEPS)

real-deps:
	@./tools/install-deps $(REAL_DEPS)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

demo: build
	./tools/demo $(BUILD)

# The suite's control sockets go to a private runtime directory, removed
# afterwards: nothing is left in the user's.
test: build real-deps
	@rc=0; rd=$$(mktemp -d /tmp/nuwa-test.XXXXXX); \
	NUWA_RUNTIME_DIR=$$rd/run meson test -C $(BUILD) --print-errorlogs --num-processes 2 || rc=$$?; \
	rm -rf "$$rd"; ./tools/test-summary $(BUILD)/meson-logs/testlog.json; exit $$rc

# libnuwa, nuwa and every test and scenario program built with ASan+UBSan
# in $(SAN_BUILD), and the suites run there (docs/reliability.md).  The
# sanitizers write each report to $(SAN_BUILD)/sanitizer-logs/ (meson.build:
# log_path), so that a report in a clone nobody waits for fails the run too.
# Not run (SAN_EXCLUDE): the real-program suite (the Debian programs are not
# sanitized: ASan preloaded into node, the JVM, ruby would test ASan, not
# libnuwa, and cost more than the rest of the run), the benchmarks (their
# smoke runs callgrind: valgrind cannot run an ASan process), the fuzz
# targets (already ASan+UBSan, built by clang, in `make test`).
SAN_BUILD ?= build-san
SAN_DEPS = libasan8 libubsan1
SAN_EXCLUDE = --no-suite realprogs --no-suite bench --no-suite fuzz

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false

test-sanitize: deps $(SAN_BUILD)/build.ninja
	@./tools/install-deps $(SAN_DEPS)
	meson compile -C $(SAN_BUILD)
	@rc=0; rd=$$(mktemp -d /tmp/nuwa-test.XXXXXX); logs=$(SAN_BUILD)/sanitizer-logs; \
	rm -rf "$$logs"; mkdir -p "$$logs"; \
	NUWA_RUNTIME_DIR=$$rd/run meson test -C $(SAN_BUILD) $(SAN_EXCLUDE) --print-errorlogs \
		--num-processes 2 --timeout-multiplier 3 || rc=$$?; \
	rm -rf "$$rd"; ./tools/test-summary $(SAN_BUILD)/meson-logs/testlog.json; \
	n=$$(ls "$$logs" | wc -l); \
	if [ "$$n" -ne 0 ]; then \
		for f in "$$logs"/*; do echo "== $$f"; head -n 80 "$$f"; done; \
		echo "test-sanitize: $$n sanitizer report(s) in $$logs"; rc=1; \
	else echo "test-sanitize: no sanitizer report"; fi; exit $$rc

# Longer fuzzing runs (tests/fuzz): FUZZ_SECONDS per target (default 600).
FUZZ_SECONDS ?= 600
fuzz: build
	NUWA_FUZZ_SECONDS=$(FUZZ_SECONDS) meson test -C $(BUILD) --suite fuzz --print-errorlogs --num-processes 2 --timeout-multiplier 0

# The soak alone, with 5000 spawns (make test runs it too).
soak: build
	@rd=$$(mktemp -d /tmp/nuwa-test.XXXXXX); \
	NUWA_RUNTIME_DIR=$$rd/run meson test -C $(BUILD) --suite soak --print-errorlogs; rc=$$?; \
	rm -rf "$$rd"; exit $$rc

bench: build
	./bench/run $(BUILD)

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD)
