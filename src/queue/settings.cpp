// `worker.*` (see settings.hpp).
#include "queue/settings.hpp"

#include "config/settings.hpp"

namespace parley::queue {

using std::chrono::milliseconds;

void declare_settings(config::Schema& schema) {
  schema.group<WorkerSettings>("worker")
      .text("in_serve", &WorkerSettings::in_serve,
            "Whether `parley serve` runs background jobs itself: `auto` (yes on SQLite; on "
            "PostgreSQL run `parley worker` processes), `on` or `off`.",
            [](const std::string& v) -> std::optional<std::string> {
              if (v == "auto" || v == "on" || v == "off") return std::nullopt;
              return "must be auto, on or off";
            })
      .integer("concurrency", &WorkerSettings::concurrency,
               "Jobs a process runs at once (threads taking jobs from the queue).", 1, 256)
      .duration("poll_interval", &WorkerSettings::poll_interval,
                "How often an idle worker looks for due jobs.", milliseconds(10),
                milliseconds(60'000))
      .duration("visibility_timeout", &WorkerSettings::visibility_timeout,
                "How long a taken job stays locked to its worker; the worker renews the lock "
                "every third of this while the job runs, and one that dies holding it leaves it "
                "to be taken again after this.",
                milliseconds(1'000), std::chrono::hours(24))
      .duration("retry_delay", &WorkerSettings::retry_delay,
                "Wait before the first retry of a failed job; doubles each attempt.",
                milliseconds(10), std::chrono::hours(1))
      .duration("retry_max_delay", &WorkerSettings::retry_max_delay,
                "The longest wait between retries.", milliseconds(10), std::chrono::hours(24))
      .integer("max_attempts", &WorkerSettings::max_attempts,
               "Attempts before a job is dead (kept with its last error; an admin may retry it).",
               1, 1'000)
      .text("listen", &WorkerSettings::listen,
            "Where `parley worker` answers health probes and /metrics (HOST:PORT); empty: not at "
            "all.")
      .duration("keep_done", &WorkerSettings::keep_done,
                "How long finished jobs stay listed before they are deleted (dead jobs stay "
                "until retried).",
                milliseconds(60'000), std::chrono::hours(24 * 3650))
      .duration("usage_rollup_interval", &WorkerSettings::usage_rollup_interval,
                "How often each worker process queues the usage roll-up (daily totals of days "
                "that have ended).",
                milliseconds(1'000), std::chrono::hours(24));
}

bool runs_in_serve(const WorkerSettings& settings, bool sqlite) {
  if (settings.in_serve == "on") return true;
  if (settings.in_serve == "off") return false;
  return sqlite;
}

}  // namespace parley::queue
