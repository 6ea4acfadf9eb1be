// `parley worker`: a process that only runs background jobs from the database's queue (see
// queue/worker.hpp), beside any number of `parley serve` replicas on the same PostgreSQL (or
// SQLite) and Redis. Start-up runs in named phases like serve's (storage, redis, workers,
// listen) and fails the same way: one line naming the phase.
//
// It answers /health, /api/v1/health/readiness (database and Redis) and /metrics on
// worker.listen, for probes and scraping. SIGTERM/SIGINT: no job is taken any more, those
// running finish, and it exits 0; a job cut short by kill -9 is taken again once its lock
// lapses (worker.visibility_timeout).
#pragma once

#include <chrono>

#include "config/settings.hpp"

namespace parley::app {

int run_worker(const config::Settings& settings,
               std::chrono::steady_clock::time_point process_started);

}  // namespace parley::app
