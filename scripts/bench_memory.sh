#!/usr/bin/env bash
# Memory, summaries and intents, appended to docs/benchmarks.md by `make bench`:
#
# 1. Intent classification without a model (BM_IntentClassify in parley_micro_bench): the
#    order-taking agent of docs/examples/order-agent.yaml over ten customer messages.
# 2. A worker's memory extraction (BM_MemoryExtract): 5,000 stored turns' jobs with the
#    built-in rules and embedder on a real SQLite file, one worker thread.
# 3. The long-conversation evaluation (parley_memory_eval): facts stated early, some changed
#    halfway, asked about at the end; right with memory against right from history alone.
# 4. Recall at scale (parley_recall_bench): the recall stage's time at 100k memories for one
#    user and at 10M across 100k users, with the index, and at 100k without it. The 10M run
#    writes a SQLite file of about 17 GB under BUILD_DIR and holds the index (about 3.5 GB) in
#    memory; RECALL_SCALE=small runs 1M across 10k users instead.
#
# Usage: scripts/bench_memory.sh BUILD_DIR [OUT]. No network.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=${2:-${BENCH_OUT:-docs/benchmarks.md}}
micro=$("$BUILD/bench/parley_micro_bench" --benchmark_filter='BM_IntentClassify|BM_MemoryExtract' \
  2>/dev/null | grep -E '^BM_')
intent=$(grep '^BM_IntentClassify' <<<"$micro")
extract=$(grep '^BM_MemoryExtract' <<<"$micro")
p99=$(sed -E 's/.*p99_us=([0-9.]+).*/\1/' <<<"$intent")
# Google Benchmark writes 1.2k/s for 1200 a second.
rate=$(sed -E 's/.*items_per_second=([0-9.]+)(k?).*/\1 \2/' <<<"$extract" |
  awk '{ printf "%d", ($2 == "k") ? $1 * 1000 : $1 }')
eval_table=$("$BUILD/bench/parley_memory_eval")
scratch="$BUILD/recall-bench"
if [[ "${RECALL_SCALE:-full}" == small ]]; then many=(10000 100); else many=(100000 100); fi
# One user's 100k: five runs, the one with the median p99 shown (p99 is the 9th '|' field).
one_user=$(for _ in 1 2 3 4 5; do "$BUILD/bench/parley_recall_bench" 1 100000 2000 "$scratch"; done |
  sort -t'|' -k9,9n | sed -n 3p)
recall_rows=$(
  echo "$one_user"
  "$BUILD/bench/parley_recall_bench" 1 100000 300 "$scratch" --database
  "$BUILD/bench/parley_recall_bench" "${many[0]}" "${many[1]}" 2000 "$scratch"
)
{
  echo
  echo "# Memory, summaries and intents"
  echo
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores. Reproduce: \`scripts/bench_memory.sh build\` (part of \`make bench\`)."
  echo
  echo "## Intent classification without a model"
  echo
  echo "The order-taking agent of \`docs/examples/order-agent.yaml\` (five intents, 28 examples) over"
  echo "ten customer messages, each classification timed on its own (\`BM_IntentClassify\`):"
  echo
  echo '```'
  echo "$intent"
  echo '```'
  echo
  echo "p99 ${p99} µs against the issue's 1 ms. Nearly all of it is embedding the message with the"
  echo "built-in embedder (words, word pairs and character trigrams hashed into 384 buckets);"
  echo "comparing it with the examples is about a microsecond."
  echo
  echo "## A worker's memory extraction"
  echo
  echo "The \`memory.extract\` jobs of 5,000 stored turns of 500 users, with the built-in rules and"
  echo "embedder: each reads the turn and the user's memories, decides, embeds and commits its"
  echo "changes to a real SQLite file (\`BM_MemoryExtract\`, one worker thread, wall time):"
  echo
  echo '```'
  echo "$extract"
  echo '```'
  echo
  echo "About ${rate} extractions a second on one worker thread. With a model extracting, the"
  echo "model's answer time dominates instead."
  echo
  echo "## Remembering over a long conversation"
  echo
  echo "\`parley_memory_eval\`: each user states six facts about themselves, makes small talk,"
  echo "changes two of the facts halfway (a move, a new job), makes more small talk, then asks about"
  echo "each fact. Every turn is stored and its extraction job run as the server does; each question"
  echo "is recalled as the recall stage does (8 memories within 500 tokens). An answer counts as"
  echo "right when what the model is given holds the current value and not an outdated one: with"
  echo "memory, the recalled memories; from history only, the newest turns that fit a 4,096-token"
  echo "context less 1,024 for the reply."
  echo
  echo "$eval_table"
  echo
  echo "## Recall at scale"
  echo
  echo "\`parley_recall_bench\`: a SQLite file filled with users' memories (four-word sentences from a"
  echo "3,000-word vocabulary, each with the built-in embedder's 384-dimension vector), the recall"
  echo "index built from it as a starting server does, then the recall stage timed on messages of"
  echo "random users, each asking about one of their memories by two of its words: the time the"
  echo "stage adds to a turn (the message embedded, the index caught up with the change log and"
  echo "searched, the candidates read back from the database, the best chosen within 8 memories and"
  echo "500 tokens). \"Found\" is the share of messages whose memory was among those recalled;"
  echo "\"as exact\" counts, of the first 50 messages, those whose recalled memories are exactly what"
  echo "scoring every memory of the user with its full vector would have chosen."
  echo
  echo "| users × memories | recall from | fill | index build | index memory | p50 ms | p90 ms | p99 ms | max ms | search alone p50 / p99 ms | found | as exact |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  echo "$recall_rows"
  echo
  echo "The one-user row is the median of five runs by p99. The issue's bound is 5 ms at p99"
  echo "added to a turn. The index keeps each vector as 4-bit codes (the message's are 8-bit): a"
  echo "user with many memories costs a scan of all of them, and the codes are most of its bytes."
  echo "Without the index (a server whose index is still being built), each turn reads the user's"
  echo "newest 2,000 memories with their vectors and never sees the older ones."
  echo
  echo "What it does and does not show: after about a hundred turns the early facts have left any"
  echo "4k-token window, so history alone answers none of them, and memory answers all, the two"
  echo "changed facts with their new values only. The statements are explicit (\"I live in Porto\","
  echo "the built-in rules' ground) and the questions share words with the memories; paraphrased"
  echo "or implied facts are left to a model extracting (\`memory.model\`), which this does not"
  echo "measure."
} >>"$OUT"
echo "appended memory, summaries and intents to $OUT"
