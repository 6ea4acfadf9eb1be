#!/usr/bin/env bash
# The real servers the slow tier of the test suite talks to: PostgreSQL 15 and Redis 7, from
# Debian's packages, each on a free loopback port in a temporary directory of its own.
#
#   services.sh start DIR   start both; write DIR/postgres.url and DIR/redis.url
#   services.sh stop DIR    stop both and remove their data
#
# ctest runs `start` as the fixture services_start before any test that needs them and `stop`
# as services_stop after the last (CMakeLists.txt). PostgreSQL refuses to run as root, so as
# root it runs as the `postgres` user its package creates; tests reach it over TCP only.
set -euo pipefail

command=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -x "$bin/initdb" ]] || { echo "services: PostgreSQL is not installed (scripts/bootstrap.sh installs postgresql-15)" >&2; exit 1; }
  echo "$bin"
}

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

random_port() { echo $((20000 + RANDOM % 40000)); }

start_postgres() {
  local bin data port
  bin=$(pg_bin)
  data=$(mktemp -d /tmp/parley-test-postgres-XXXXXX)
  [[ $(id -u) -eq 0 ]] && chown postgres: "$data"
  echo "$data" >"$dir/postgres.data"
  as_postgres "$bin/initdb" -D "$data/cluster" -U postgres -A trust -E UTF8 --no-sync \
    >"$dir/postgres-initdb.log" 2>&1 || { cat "$dir/postgres-initdb.log" >&2; exit 1; }
  # Durability settings off: the tests kill Parley, never this server, and speed matters.
  # SERVICES_DURABLE=1 keeps PostgreSQL's defaults (fsync on every commit): the benchmarks,
  # which compare it with SQLite's durable commits.
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [[ ${SERVICES_DURABLE:-0} == 1 ]] && durability=""
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(random_port)
    if as_postgres "$bin/pg_ctl" -D "$data/cluster" -l "$data/server.log" -w -t 60 start -o \
      "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' $durability \
       -c max_connections=400 -c shared_buffers=64MB" >/dev/null 2>&1; then
      echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/postgres.url"
      echo "$bin/pg_ctl" >"$dir/postgres.ctl"
      return 0
    fi
  done
  echo "services: PostgreSQL did not start:" >&2
  cat "$data/server.log" >&2 || true
  exit 1
}

stop_postgres() {
  [[ -f "$dir/postgres.data" ]] || return 0
  local data
  data=$(cat "$dir/postgres.data")
  if [[ -f "$dir/postgres.ctl" ]]; then
    as_postgres "$(cat "$dir/postgres.ctl")" -D "$data/cluster" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
  rm -f "$dir"/postgres.*
}

start_redis() {
  command -v redis-server >/dev/null ||
    { echo "services: redis-server is not installed (scripts/bootstrap.sh installs it)" >&2; exit 1; }
  local data port
  data=$(mktemp -d /tmp/parley-test-redis-XXXXXX)
  echo "$data" >"$dir/redis.data"
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(random_port)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$data" --save '' --appendonly no \
      --daemonize yes --pidfile "$data/redis.pid" --logfile "$data/redis.log" >/dev/null 2>&1 || continue
    for _ in $(seq 1 50); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        echo "redis://127.0.0.1:$port" >"$dir/redis.url"
        return 0
      fi
      sleep 0.1
    done
    [[ -f "$data/redis.pid" ]] && kill "$(cat "$data/redis.pid")" 2>/dev/null || true
  done
  echo "services: Redis did not start:" >&2
  cat "$data/redis.log" >&2 || true
  exit 1
}

stop_redis() {
  [[ -f "$dir/redis.data" ]] || return 0
  local data
  data=$(cat "$dir/redis.data")
  if [[ -f "$data/redis.pid" ]]; then
    local pid
    pid=$(cat "$data/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Its files go only once it has exited (it may still be writing its log).
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$data" 2>/dev/null || { sleep 0.2; rm -rf "$data"; }
  rm -f "$dir"/redis.*
}

case "$command" in
  start)
    mkdir -p "$dir"
    # A run that was interrupted may have left servers behind.
    stop_postgres
    stop_redis
    start_postgres
    start_redis
    echo "services: $(cat "$dir/postgres.url") $(cat "$dir/redis.url")"
    ;;
  stop)
    stop_postgres
    stop_redis
    ;;
  *)
    echo "usage: services.sh start|stop DIR" >&2
    exit 2
    ;;
esac
