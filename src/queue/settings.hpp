// `worker.*`: how background jobs from the database's queue are run (queue/worker.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace parley::config {
class Schema;
}

namespace parley::queue {

struct WorkerSettings {
  // Whether `parley serve` runs workers itself: "auto" (on SQLite, where one process is the
  // whole installation; not on PostgreSQL, where `parley worker` processes run them), "on" or
  // "off".
  std::string in_serve = "auto";
  int concurrency = 2;  // jobs at once per process
  std::chrono::milliseconds poll_interval{1'000};
  std::chrono::milliseconds visibility_timeout{300'000};
  std::chrono::milliseconds retry_delay{5'000};
  std::chrono::milliseconds retry_max_delay{900'000};
  int64_t max_attempts = 5;
  // `parley worker` answers health probes and /metrics here; empty: no listener.
  std::string listen = "127.0.0.1:9091";
  // How long done jobs stay listed (GET /api/v1/admin/jobs) before the hourly purge.
  std::chrono::milliseconds keep_done{7LL * 24 * 3'600'000};
  // How often each worker process enqueues the usage roll-up.
  std::chrono::milliseconds usage_rollup_interval{3'600'000};
};

void declare_settings(config::Schema& schema);

// Whether serve runs the workers itself, given its storage backend.
bool runs_in_serve(const WorkerSettings& settings, bool sqlite);

}  // namespace parley::queue
