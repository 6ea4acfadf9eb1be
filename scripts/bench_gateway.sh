#!/usr/bin/env bash
# The LLM gateway benchmarks, appended to docs/benchmarks.md by `make bench`:
#
# 1. Gateway overhead. One upstream (nginx answering a fixed chat completion) and one wrk
#    load, side by side in one run: the upstream alone, Parley's /v1/chat/completions, and the
#    Portkey gateway (@portkey-ai/gateway from npm, headless, NODE_ENV=production), each at 1
#    and 64 connections.
# 2. Shared state. The same gateway row and a session read with an API key (its and its
#    user's per-minute quotas too high to refuse, still taken on every request) on SQLite
#    alone, on SQLite with the limiter in Redis, and on PostgreSQL + Redis
#    (tests/services/services.sh starts both on loopback, PostgreSQL with its durable
#    defaults): throughput, latency, the limiter's added p99 with Redis at one connection, and
#    Redis round trips per request (redis_commands_total).
# 3. Streaming capacity. 5,000 concurrent SSE streams through Parley from a slow upstream
#    (parley_fake_upstream: 20 events 500 ms apart, 10 s a stream): errors, Parley's peak
#    resident memory, and the time to first byte Parley adds.
#
# Usage: scripts/bench_gateway.sh PARLEY FAKE_UPSTREAM [OUT]. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

PARLEY=$(realpath "${1:-build/parley}")
FAKE=$(realpath "${2:-build/tests/unit/parley_fake_upstream}")
OUT=${3:-${BENCH_OUT:-docs/benchmarks.md}}
DURATION=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-3}
STREAMS=${BENCH_STREAMS:-5000}
PORTKEY_VERSION=1.15.2
PORTKEY_DIR=build/bench-portkey

work=$(mktemp -d /tmp/parley-gw-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -f "$work/svc/redis.url" || -f "$work/svc/postgres.url" ]] && tests/services/services.sh stop "$work/svc"
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # port
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2
  return 1
}

# --- What the benchmark needs beyond `make test` ------------------------------------------
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x "$NGINX" ]]; then
  echo "bench: installing nginx-light (the fixed upstream)"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
if [[ ! -f "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js" ]]; then
  echo "bench: installing @portkey-ai/gateway@$PORTKEY_VERSION into $PORTKEY_DIR"
  mkdir -p "$PORTKEY_DIR"
  npm install --prefix "$PORTKEY_DIR" --no-audit --no-fund --silent "@portkey-ai/gateway@$PORTKEY_VERSION"
fi
# 5,000 client and 5,000 upstream sockets in one process.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- The upstream, Parley and Portkey -----------------------------------------------------
upstream_port=$(free_port)
mkdir -p "$work/nginx"
completion='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}'
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$upstream_port;
    location /v1/chat/completions {
      default_type application/json;
      return 200 '$completion';
    }
  }
}
EOF
"$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" >/dev/null 2>&1 &
pids+=($!)
wait_port "$upstream_port"

parley_port=$(free_port)
cat >"$work/parley.yaml" <<EOF
server:
  listen: "127.0.0.1:$parley_port"
  max_connections: 20000
data_dir: $work/parley-data
log:
  access_log: false
llm:
  default_model: up/bench-model
providers:
  up:
    type: openai
    base_url: http://127.0.0.1:$upstream_port/v1
    api_key: sk-bench
    models: [bench-model]
EOF
"$PARLEY" serve --config "$work/parley.yaml" >"$work/parley.log" 2>&1 &
parley_pid=$!
pids+=($parley_pid)
wait_port "$parley_port"

portkey_port=$(free_port)
NODE_ENV=production node "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js" \
  --port="$portkey_port" --headless >"$work/portkey.log" 2>&1 &
pids+=($!)
wait_port "$portkey_port"

body='{"model":"bench-model","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hello there, how are you?"}]}'
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.headers["x-portkey-provider"] = "openai"
wrk.headers["x-portkey-custom-host"] = "http://127.0.0.1:$upstream_port/v1"
wrk.body = '$body'
EOF
# Every server answers the same request with the same completion before it is measured.
for port in "$upstream_port" "$parley_port" "$portkey_port"; do
  answer=$(curl -s -X POST "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer sk-bench' -H 'x-portkey-provider: openai' \
    -H "x-portkey-custom-host: http://127.0.0.1:$upstream_port/v1" -d "$body")
  grep -q 'Hello! How can I help you today?' <<<"$answer" || { echo "port $port answered: $answer"; exit 1; }
done
# Warm-up (Node's JIT especially), not measured.
for port in "$parley_port" "$portkey_port"; do
  wrk -t2 -c16 -d3s -s "$work/post.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
done

cpu_jiffies() { awk '/^cpu / {t=0; for (i=2; i<=NF; i++) t+=$i; print $9, t}' /proc/stat; }
to_us() {  # wrk latency ("35.00us", "1.20ms", "1.05s") in microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'
}

declare -A RPS P50 P99 ERR ALL
rows=()
read -r steal_start total_start < <(cpu_jiffies)
declare -A LINES
measure_once() {  # key port conns [wrk script] [path]: one run, kept under `key`
  local key=$1 port=$2 conns=$3 script=${4:-$work/post.lua} path=${5:-/v1/chat/completions}
  local threads=2 out rps p50 p99 errors
  [[ $conns -eq 1 ]] && threads=1
  out=$(wrk "-t$threads" "-c$conns" "-d$DURATION" --latency -s "$script" "http://127.0.0.1:$port$path")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  LINES[$key]+="$rps|$p50|$p99|${errors:-none}"$'\n'
}
summarize() {  # key label conns: the median of the runs kept under `key`, as a table row
  local key=$1 label=$2 conns=$3 runs median
  runs=$(grep -c . <<<"${LINES[$key]}")
  median=$(grep . <<<"${LINES[$key]}" | sort -t'|' -k1,1 -g | sed -n "$(( (runs + 1) / 2 ))p")
  IFS='|' read -r RPS[$key] P50[$key] P99[$key] ERR[$key] <<<"$median"
  ALL[$key]=$(grep . <<<"${LINES[$key]}" | cut -d'|' -f1 | tr '\n' ' ')
  rows+=("| $label | $conns | ${RPS[$key]} | ${P50[$key]} | ${P99[$key]} | ${ERR[$key]} | ${ALL[$key]} |")
  echo "$label c=$conns: ${RPS[$key]} req/s p50=${P50[$key]} p99=${P99[$key]} (runs: ${ALL[$key]}) ${ERR[$key]}"
}
measure() {  # key label port conns [wrk script] [path]: RUNS runs back to back
  for _ in $(seq 1 "$RUNS"); do measure_once "$1" "$3" "$4" "${5:-}" "${6:-}"; done
  summarize "$1" "$2" "$4"
}
for conns in 1 64; do
  measure "up$conns" "upstream alone (nginx, fixed completion)" "$upstream_port" "$conns"
  measure "parley$conns" "Parley /v1/chat/completions → upstream" "$parley_port" "$conns"
  measure "portkey$conns" "Portkey gateway $PORTKEY_VERSION → upstream" "$portkey_port" "$conns"
done
overhead_rows=("${rows[@]}")
rows=()
read -r steal_end total_end < <(cpu_jiffies)
steal_pct=$(awk -v s=$((steal_end - steal_start)) -v t=$((total_end - total_start)) 'BEGIN {printf "%.1f", t ? 100*s/t : 0}')
added_p50=$(( $(to_us "${P50[parley1]}" | cut -d. -f1) - $(to_us "${P50[up1]}" | cut -d. -f1) ))
added_p99=$(( $(to_us "${P99[parley1]}" | cut -d. -f1) - $(to_us "${P99[up1]}" | cut -d. -f1) ))
# An upper bound that the upstream's own tail cannot hide: Parley's p99 minus the upstream's p50.
added_p99_bound=$(( $(to_us "${P99[parley1]}" | cut -d. -f1) - $(to_us "${P50[up1]}" | cut -d. -f1) ))
ratio=$(awk -v a="${RPS[parley64]}" -v b="${RPS[portkey64]}" 'BEGIN {printf "%.1f", b ? a / b : 0}')

# --- Streaming capacity -------------------------------------------------------------------
kill "$parley_pid"; wait "$parley_pid" 2>/dev/null || true
fake_log="$work/fake.log"
"$FAKE" >"$fake_log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q port "$fake_log" && break; sleep 0.05; done
fake_port=$(sed -E 's/.*"port": ?([0-9]+).*/\1/' "$fake_log" | head -1)
pieces=$(printf '"word%d ",' $(seq 1 20)); pieces="[${pieces%,}]"
curl -s -X POST "http://127.0.0.1:$fake_port/_fake/default" \
  -d "{\"openai_stream\": $pieces, \"delay_between_pieces_ms\": 500}" >/dev/null
stream_port=$(free_port)
sed -e "s/127.0.0.1:$parley_port/127.0.0.1:$stream_port/" \
    -e "s#http://127.0.0.1:$upstream_port/v1#http://127.0.0.1:$fake_port/v1#" \
    -e "s#$work/parley-data#$work/stream-data#" "$work/parley.yaml" >"$work/stream.yaml"
"$PARLEY" serve --config "$work/stream.yaml" >"$work/stream.log" 2>&1 &
stream_pid=$!
pids+=($stream_pid)
wait_port "$stream_port"
cat >"$work/stream.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Tell me a story."}]}'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() incomplete = 0; complete = 0 end
function response(status, headers, body)
  if status == 200 and body:find("[DONE]", 1, true) and body:find("word20", 1, true) then
    complete = complete + 1
  else
    incomplete = incomplete + 1
  end
end
function done()
  local c, i = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("complete"); i = i + t:get("incomplete") end
  io.write(string.format("STREAMS complete=%d incomplete=%d\n", c, i))
end
EOF
ttfb() {  # port: median time to first byte of 5 streams, in ms
  for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' -X POST "http://127.0.0.1:$1/v1/chat/completions" \
      -H 'Content-Type: application/json' \
      -d '{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
  done | sort -g | sed -n 3p | awk '{printf "%.2f", $1 * 1000}'
}
ttfb_direct_idle=$(ttfb "$fake_port")
ttfb_parley_idle=$(ttfb "$stream_port")
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$stream_pid/status")
wrk -t2 "-c$STREAMS" -d25s --timeout 30s -s "$work/stream.lua" \
  "http://127.0.0.1:$stream_port/v1/chat/completions" >"$work/stream.out" 2>&1 &
wrk_pid=$!
sleep 12  # every connection is in the middle of a stream now
open_streams=$(curl -s "http://127.0.0.1:$stream_port/metrics" | awk '/^http_connections_open / {print $2}')
ttfb_direct_load=$(ttfb "$fake_port")
ttfb_parley_load=$(ttfb "$stream_port")
wait "$wrk_pid" || true
rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$stream_pid/status")
stream_summary=$(grep -E '^STREAMS' "$work/stream.out" || echo "STREAMS complete=? incomplete=?")
stream_errors=$(awk '/Non-2xx|Socket errors/ {print}' "$work/stream.out" | tr '\n' ' ')
echo "streams: $stream_summary ${stream_errors:-no socket errors}; open connections mid-run: $open_streams; peak RSS ${rss_peak} KiB"

# --- Shared state: SQLite, SQLite + Redis, PostgreSQL + Redis ------------------------------
kill "$stream_pid"; wait "$stream_pid" 2>/dev/null || true
SERVICES_DURABLE=1 tests/services/services.sh start "$work/svc" >/dev/null
pg_url=$(cat "$work/svc/postgres.url")
redis_url=$(cat "$work/svc/redis.url")
admin_key=bench-admin-key-0c4e9a7f21d35b86
metric() {  # port name: the value of an unlabelled metric
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}
requests_of() {  # port route: requests served on that route so far
  curl -s "http://127.0.0.1:$1/metrics" |
    awk -v r="route=\"$2\"" '/^http_requests_total/ && index($0, r) {s += $2} END {print s + 0}'
}
declare -A KEYED_PORT KEYED_PID SESSION
start_keyed() {  # name [--set KEY=VALUE]...
  local name=$1 port key
  shift
  port=$(free_port)
  PARLEY_ADMIN_KEY=$admin_key "$PARLEY" serve --config "$work/parley.yaml" --listen "127.0.0.1:$port" \
    --data-dir "$work/data-$name" "$@" >"$work/$name.log" 2>&1 &
  KEYED_PID[$name]=$!
  pids+=(${KEYED_PID[$name]})
  wait_port "$port"
  KEYED_PORT[$name]=$port
  key=$(curl -s -X POST "http://127.0.0.1:$port/api/v1/admin/keys" -H "Authorization: Bearer $admin_key" \
    -H 'Content-Type: application/json' \
    -d '{"scope":"service","limits":{"key":{"requests_per_minute":1000000000},"user":{"requests_per_minute":1000000000}}}' |
    sed -E 's/.*"key":"([^"]+)".*/\1/')
  SESSION[$name]=$(curl -s -X POST "http://127.0.0.1:$port/api/v1/sessions" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"user_id":"bench","title":"benchmark session"}' |
    sed -E 's/.*"id":"([^"]+)".*/\1/')
  sed -e "s/Bearer sk-bench/Bearer $key/" "$work/post.lua" >"$work/$name-post.lua"
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$key" >"$work/$name-get.lua"
  wrk -t2 -c16 -d2s -s "$work/$name-post.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
}
declare -A COMMANDS REQUESTS
counted_once() {  # key name route conns script [path]: one run, counting Redis commands and requests
  local key=$1 name=$2 route=$3 port=${KEYED_PORT[$2]} c0 r0
  c0=$(metric "$port" redis_commands_total) r0=$(requests_of "$port" "$route")
  measure_once "$key" "$port" "$4" "$5" "${6:-}"
  COMMANDS[$key]=$(( ${COMMANDS[$key]:-0} + $(metric "$port" redis_commands_total | cut -d. -f1) - ${c0%.*} ))
  REQUESTS[$key]=$(( ${REQUESTS[$key]:-0} + $(requests_of "$port" "$route") - r0 ))
}
# The three configurations run side by side (an idle one costs next to nothing) and take turns,
# run by run, so a change in the machine's speed during the benchmark reaches each alike.
start_keyed sqlite
start_keyed sqlite_redis --set "redis.url=$redis_url" --set redis.key_prefix=bench-a:
start_keyed pg_redis --set "storage.url=$pg_url" --set "redis.url=$redis_url" --set redis.key_prefix=bench-b:
declare -A LABEL=([sqlite]="SQLite" [sqlite_redis]="SQLite + Redis" [pg_redis]="PostgreSQL + Redis")
for _ in $(seq 1 "$RUNS"); do
  for conns in 1 64; do
    for name in sqlite sqlite_redis pg_redis; do
      counted_once "$name-gw$conns" "$name" /v1/chat/completions "$conns" "$work/$name-post.lua"
      counted_once "$name-get$conns" "$name" "/api/v1/sessions/{id}" "$conns" "$work/$name-get.lua" \
        "/api/v1/sessions/${SESSION[$name]}"
    done
  done
done
shared_rows=()
declare -A TRIPS
for name in sqlite sqlite_redis pg_redis; do
  for conns in 1 64; do
    for row in gw get; do
      key=$name-$row$conns
      label="${LABEL[$name]}: POST /v1/chat/completions → upstream"
      [[ $row == get ]] && label="${LABEL[$name]}: GET /api/v1/sessions/{id}"
      summarize "$key" "$label" "$conns"
      TRIPS[$key]=$(awk -v c="${COMMANDS[$key]}" -v r="${REQUESTS[$key]}" 'BEGIN {printf "%.2f", r ? c / r : 0}')
      shared_rows+=("${rows[-1]} ${TRIPS[$key]} |")
    done
  done
done
limiter_p99=$(( $(to_us "${P99[sqlite_redis-get1]}" | cut -d. -f1) - $(to_us "${P99[sqlite-get1]}" | cut -d. -f1) ))
limiter_p50=$(( $(to_us "${P50[sqlite_redis-get1]}" | cut -d. -f1) - $(to_us "${P50[sqlite-get1]}" | cut -d. -f1) ))

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo
  echo "# Gateway benchmarks"
  echo
  echo "Measured by \`make bench\` (scripts/bench_gateway.sh) on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu),"
  echo "everything on the same machine over loopback: wrk, the upstream, and the gateway under test."
  echo "CPU time stolen by the hypervisor during the overhead runs: ${steal_pct}%."
  echo
  echo "## Gateway overhead (wrk, $RUNS runs of $DURATION per row; the median run is shown)"
  echo
  echo "The same request (\`POST /v1/chat/completions\`, non-streamed, $(wc -c <<<"$body") bytes) through"
  echo "each gateway to the same upstream: nginx answering a fixed chat completion. Parley routes the"
  echo "model to an \`openai\`-type provider; Portkey gets \`x-portkey-provider: openai\` and a custom host."
  echo
  echo "| target | connections | requests/s | p50 | p99 | errors | requests/s of each run |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${overhead_rows[@]}"
  echo
  echo "- Latency Parley adds at 1 connection: p50 ${added_p50} µs; p99 ${added_p99} µs as the difference of"
  echo "  the two p99s, at most ${added_p99_bound} µs as Parley's p99 minus the upstream's p50 (a bound the"
  echo "  upstream's own tail cannot distort; target: p99 ≤ 500 µs)."
  echo "- Throughput through Parley at 64 connections: ${RPS[parley64]} requests/s (target: ≥ 15,000)."
  echo "- Parley / Portkey at 64 connections: ${ratio}× (target: ≥ 15×)."
  echo
  echo "## On PostgreSQL + Redis (wrk, $RUNS runs of $DURATION per row; the median run is shown)"
  echo
  echo "Parley with API keys: each request authenticated with a service key whose per-minute quota,"
  echo "and its user's, are too high to refuse and are still taken, on SQLite alone (limits in the"
  echo "process), on SQLite with Redis (limits, leases and claims in Redis), and on PostgreSQL 15 +"
  echo "Redis 7 (both on this"
  echo "machine, started by tests/services/services.sh with PostgreSQL's durable defaults: fsync on"
  echo "every commit, as SQLite's synchronous=FULL). Everything shares the two cores: wrk, Parley,"
  echo "nginx, PostgreSQL and Redis. The gateway rows write a usage record per call (batched); the"
  echo "session rows read from the database. The three configurations run side by side and take"
  echo "turns run by run, so a change in the machine's speed during the benchmark reaches each alike."
  echo
  echo "| row | connections | requests/s | p50 | p99 | errors | requests/s of each run | Redis round trips per request |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${shared_rows[@]}"
  echo
  echo "- Gateway through Parley on PostgreSQL + Redis at 64 connections: ${RPS[pg_redis-gw64]} requests/s"
  echo "  (target: ≥ 15,000); on SQLite alone ${RPS[sqlite-gw64]}."
  echo "- Redis round trips per request: ${TRIPS[pg_redis-get64]} on the session read and ${TRIPS[pg_redis-gw64]} on the"
  echo "  gateway row at 64 connections (${TRIPS[pg_redis-get1]} and ${TRIPS[pg_redis-gw1]} at 1). One Lua script call takes"
  echo "  every bucket of a request (on the gateway row the service key names its end user in the"
  echo "  body, and the key's buckets are taken with the user's once the handler has read it), and"
  echo "  the requests that reach the limiter on one I/O thread in the same turn of its event loop"
  echo "  share one call. Target: at most 1."
  echo "- The limiter in Redis at one connection (the session read, SQLite + Redis against SQLite alone):"
  echo "  +${limiter_p50} µs at p50, +${limiter_p99} µs at p99 (${P99[sqlite-get1]} → ${P99[sqlite_redis-get1]})."
  echo
  echo "## Streaming capacity"
  echo
  echo "$STREAMS connections, each streaming \`/v1/chat/completions\` with \`\"stream\": true\` from a slow"
  echo "upstream (parley_fake_upstream: 20 events 500 ms apart, so about 10 s a stream) for 25 s."
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| streams finished with every event and [DONE] / cut or failed | $(sed -E 's/STREAMS complete=([^ ]+) incomplete=([^ ]+)/\1 \/ \2/' <<<"$stream_summary") |"
  echo "| wrk socket errors or non-2xx | ${stream_errors:-none} |"
  echo "| client connections open mid-run | $open_streams |"
  echo "| Parley resident memory: idle before / peak | $((rss_before / 1024)) MiB / $((rss_peak / 1024)) MiB (target: ≤ 250 MB) |"
  echo "| time to first byte, idle: upstream direct / through Parley | $ttfb_direct_idle ms / $ttfb_parley_idle ms |"
  echo "| time to first byte, with the streams held: upstream direct / through Parley | $ttfb_direct_load ms / $ttfb_parley_load ms |"
  echo
  echo "Reproduce: \`make bench\`, or \`scripts/bench_gateway.sh build/parley build/tests/unit/parley_fake_upstream\`"
  echo "(BENCH_DURATION, BENCH_RUNS and BENCH_STREAMS change the run length, the runs per row and the streams)."
} >>"$OUT"
echo "appended to $OUT"
