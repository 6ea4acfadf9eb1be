#!/usr/bin/env bash
# Runs each libFuzzer target for N seconds, seeded with its checked-in corpus (fuzz/corpus/NAME).
# New inputs go to BUILD_DIR/corpus/NAME so the repository keeps a small, curated seed set;
# crashes go to BUILD_DIR/artifacts (add them to fuzz/corpus once fixed: they become tests).
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-60}
for target in "$build"/fuzz/fuzz_*; do
  [[ -x "$target" ]] || continue
  name=$(basename "$target"); name=${name#fuzz_}
  seeds=fuzz/corpus/$name
  corpus=$build/corpus/$name
  mkdir -p "$corpus"
  echo "== fuzzing $name for ${seconds}s"
  dict=fuzz/$name.dict
  extra=()
  [[ -f "$dict" ]] && extra+=("-dict=$dict")
  mkdir -p "$build/artifacts"
  "$target" "$corpus" "$seeds" -artifact_prefix="$build/artifacts/" -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1 "${extra[@]}"
done
