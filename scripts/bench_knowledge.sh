#!/usr/bin/env bash
# Knowledge-base and response-cache benchmarks, appended to docs/benchmarks.md by `make bench`:
#
# 1. parley_knowledge_bench on a generated corpus of 100,000 chunks (and 1,000,000 with
#    BENCH_KNOWLEDGE_MILLION=1: about 35 minutes on 2 cores): ingestion, index build, hybrid
#    search latency on one thread, recall@10 of the ANN side, resident memory.
# 2. The same binary's --eval on bench/eval/knowledge: hit@1, hit@5 and MRR@5.
#    Then the ANN side's recall on a real embedding model's vectors of the machine's manual
#    pages (scripts/bench_real_embeddings.sh: about 25 minutes on 2 cores the first time, a few
#    minutes once its vectors are kept in BENCH_REAL_DIR; skipped with BENCH_REAL_EMBEDDINGS=0),
#    and with BENCH_REAL_100K=1 the same at 100,000 chunks of at most 64 tokens (about an hour
#    and a half of embedding on 2 cores the first time).
# 3. A cache hit through the gateway: wrk at 1 connection on a deterministic
#    /v1/chat/completions answered by the exact cache (the fake provider behind it is called
#    once), beside GET /v1/models on the same server (the request path without a cache).
#
# Usage: scripts/bench_knowledge.sh BUILD_DIR [OUT]. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DURATION=${BENCH_DURATION:-10s}
OUT=${2:-${BENCH_OUT:-docs/benchmarks.md}}
work=$(mktemp -d /tmp/parley-kb-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

{
echo
echo "## Knowledge bases and the response cache"
echo
echo "Reproduce: \`make bench\`, or \`scripts/bench_knowledge.sh build\` (BENCH_KNOWLEDGE_MILLION=1"
echo "adds the 1,000,000-chunk run). One thread for every search measure; index builds use every"
echo "core. The corpus is generated (bench/knowledge_bench.cpp): documentation organised by topic,"
echo "document and section, common words in most chunks, a vocabulary that grows with the corpus"
echo "by Heaps' law; questions ask about one section. Embedded by the built-in embedder (384"
echo "dimensions)."
sizes=(100000)
[[ "${BENCH_KNOWLEDGE_MILLION:-0}" == 1 ]] && sizes+=(1000000)
for n in "${sizes[@]}"; do
  echo
  echo "### Generated corpus, $n chunks"
  echo
  echo "\`/usr/bin/time -v $BUILD/bench/parley_knowledge_bench --chunks $n --queries 1000\`"
  echo
  /usr/bin/time -v "$BUILD/bench/parley_knowledge_bench" --chunks "$n" --queries 1000 \
    --dir "$work/kb-$n" 2>"$work/time-$n" | grep '^|'
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-$n")
  echo "| peak resident memory of the whole run (store, indexes, queries), MiB | $((rss / 1024)) |"
done

echo
echo "### Retrieval quality on the evaluation set"
echo
echo "\`$BUILD/bench/parley_knowledge_bench --eval bench/eval/knowledge\`"
echo
"$BUILD/bench/parley_knowledge_bench" --eval bench/eval/knowledge --dir "$work/eval" 2>/dev/null

if [[ "${BENCH_REAL_EMBEDDINGS:-1}" == 1 ]]; then
  echo
  echo "### The ANN side on a real embedding model's vectors"
  echo
  echo "\`scripts/bench_real_embeddings.sh DIR 20000\`: the machine's English manual pages as text,"
  echo "chunked as ingestion chunks (default sizes), embedded by the Universal Sentence Encoder"
  echo "(512 dimensions); queries are the pages' one-line descriptions. Searches on one thread."
  echo
  # Kept between runs (BENCH_REAL_DIR): the pages and their vectors are reused.
  BUILD_DIR=$BUILD scripts/bench_real_embeddings.sh "${BENCH_REAL_DIR:-/tmp/parley-real-embeddings}" \
    20000 >"$work/real.out" 2>"$work/real.err" ||
    { echo "Not measured: scripts/bench_real_embeddings.sh failed:"; echo; tail -5 "$work/real.err" | sed 's/^/    /'; }
  grep '^|' "$work/real.out" || true
  if [[ "${BENCH_REAL_100K:-0}" == 1 ]]; then
    echo
    echo "\`scripts/bench_real_embeddings.sh DIR 100000 64\`: the same pages in chunks of at most 64"
    echo "tokens, 100,000 of them (about an hour and a half of embedding on 2 cores the first time)."
    echo
    BUILD_DIR=$BUILD scripts/bench_real_embeddings.sh \
      "${BENCH_REAL_DIR:-/tmp/parley-real-embeddings}-100k" 100000 64 >"$work/real100k.out" \
      2>"$work/real100k.err" ||
      { echo "Not measured: scripts/bench_real_embeddings.sh failed:"; echo; tail -5 "$work/real100k.err" | sed 's/^/    /'; }
    grep '^|' "$work/real100k.out" || true
  fi
fi

echo
echo "### A response-cache hit through the gateway"
echo
fake_port=$(free_port)
"$BUILD/tests/unit/parley_fake_upstream" --port "$fake_port" >"$work/fake.log" 2>&1 &
pids+=($!)
wait_port "$fake_port"
port=$(free_port)
cat >"$work/parley.yaml" <<YAML
llm:
  default_model: fake/fake-model
providers:
  fake:
    type: openai
    base_url: http://127.0.0.1:$fake_port/v1
    api_key: sk-bench
    models: [fake-model]
YAML
"$BUILD/parley" serve --config "$work/parley.yaml" --data-dir "$work/data" \
  --listen "127.0.0.1:$port" --set server.threads=1 --set server.blocking_threads=1 \
  --set log.level=warn >"$work/parley.log" 2>&1 &
pids+=($!)
wait_port "$port"
echo "| request | requests/s | p50 | p99 | command |"
echo "|---|---|---|---|---|"
for mode in models hit; do
  out=$(wrk -t1 -c1 -d"$DURATION" --latency -s bench/cached_chat.lua "http://127.0.0.1:$port/" -- "$mode")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  label=$([[ $mode == hit ]] && echo "POST /v1/chat/completions, answered by the exact cache" || echo "GET /v1/models (no cache, same path)")
  echo "| $label | $rps | $p50 | $p99 | \`wrk -t1 -c1 -d$DURATION --latency -s bench/cached_chat.lua URL -- $mode\` |"
done
hits=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^response_cache_requests_total\{cache="exact",outcome="hit"\}/ {print $2}')
calls=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^llm_requests_total/ {s += $2} END {print s + 0}')
echo
echo "Exact-cache hits: $hits; calls to the provider in all: $calls."
} >>"$OUT"
echo "appended to $OUT"
