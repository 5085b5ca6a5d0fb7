# A thin wrapper over meson: every target installs what is missing, configures
# build/ once, and delegates to ninja/meson.
BUILD ?= build
DEB_DEPS = meson ninja-build pkg-config libffi-dev libcriterion-dev gcc valgrind gnuplot-nox memcached \
	clang-14 libclang-rt-14-dev
# The programs of the real-program suite (tests/realprogs, docs/compat.md).
REAL_DEPS = memcached haproxy unbound nginx ruby python3 redis-server nodejs caddy perl openjdk-17-jdk-headless

.PHONY: all deps real-deps build demo test bench install clean fuzz soak

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
