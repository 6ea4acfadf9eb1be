#!/usr/bin/env bash
# Runs each libFuzzer target for N seconds, seeded with (and adding to) its corpus in fuzz/corpus.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-60}
for target in "$build"/fuzz/fuzz_*; do
  [[ -x "$target" ]] || continue
  name=$(basename "$target"); name=${name#fuzz_}
  corpus=fuzz/corpus/$name
  mkdir -p "$corpus"
  echo "== fuzzing $name for ${seconds}s"
  dict=fuzz/$name.dict
  extra=()
  [[ -f "$dict" ]] && extra+=("-dict=$dict")
  "$target" "$corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1 "${extra[@]}"
done
