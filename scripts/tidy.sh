#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over src/, failing on any finding. clang-tidy cannot read g++'s
# precompiled headers, so it reads a compile database configured without them.
# Usage: scripts/tidy.sh [TIDY_BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-tidy}
# Configured every run (a second or two): a database from before a source file was added
# would not know how to compile it.
cmake -S . -B "$dir" -G Ninja -Wno-dev -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON \
  -DPARLEY_TESTS=OFF -DPARLEY_BENCH=OFF >/dev/null
find src -name '*.cpp' -print0 | xargs -0 -P"$(nproc)" -n4 clang-tidy -p "$dir" --quiet --warnings-as-errors='*'
echo "clang-tidy: no findings"
