# Parley — the two commands that matter are `make run` and `make test`.
# Everything else is a convenience around CMake + Ninja.

BUILD_DIR      ?= build
ASAN_DIR       ?= build-asan
TSAN_DIR       ?= build-tsan
FUZZ_DIR       ?= build-fuzz
BUILD_TYPE     ?= Release
JOBS           ?= $(shell nproc)
PARLEY_ARGS    ?=

CMAKE_CONFIGURE = cmake -S . -G Ninja -Wno-dev

.PHONY: all bootstrap configure build run test test-fast sanitize tsan bench fuzz format tidy clean

all: build

bootstrap:
	@scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja: | bootstrap
	$(CMAKE_CONFIGURE) -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD_DIR)/build.ninja

build: bootstrap configure
	cmake --build $(BUILD_DIR) --target parley -j $(JOBS)

run: build
	$(BUILD_DIR)/parley serve $(PARLEY_ARGS)

test: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS)
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

# The fast tier only: unit tests, no processes spawned.
test-fast: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS)
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

sanitize: bootstrap
	@test -f $(ASAN_DIR)/build.ninja || $(CMAKE_CONFIGURE) -B $(ASAN_DIR) \
	  -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 -LE lint

# ThreadSanitizer over the same suite: the server core is multi-threaded.
tsan: bootstrap
	@test -f $(TSAN_DIR)/build.ninja || $(CMAKE_CONFIGURE) -B $(TSAN_DIR) \
	  -DCMAKE_BUILD_TYPE=Debug -DPARLEY_TSAN=ON
	cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 -LE lint

bench: bootstrap configure
	cmake --build $(BUILD_DIR) --target parley parley_micro_bench parley_floor_server parley_fake_upstream parley_knowledge_bench parley_real_recall_bench parley_memory_eval -j $(JOBS)
	scripts/bench.sh $(BUILD_DIR)/parley
	scripts/bench_gateway.sh $(BUILD_DIR)/parley $(BUILD_DIR)/tests/unit/parley_fake_upstream
	scripts/bench_knowledge.sh $(BUILD_DIR)
	scripts/bench_memory.sh $(BUILD_DIR)
	scripts/npm_install.sh tests/browser bench && PARLEY_BINARY=$(BUILD_DIR)/parley PARLEY_FAKE_UPSTREAM=$(BUILD_DIR)/tests/unit/parley_fake_upstream node tests/browser/bench_webchat.mjs 30

# libFuzzer targets build with clang in their own tree; FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: bootstrap
	@test -f $(FUZZ_DIR)/build.ninja || CC=clang-14 CXX=clang++-14 $(CMAKE_CONFIGURE) -B $(FUZZ_DIR) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_FUZZ=ON -DPARLEY_TESTS=OFF -DPARLEY_BENCH=OFF
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_targets
	scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

format:
	find src tests fuzz bench -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

TIDY_DIR ?= build-tidy
tidy: bootstrap
	scripts/tidy.sh $(TIDY_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR) $(TIDY_DIR)
