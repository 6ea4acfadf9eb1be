// Worker: runs the durable jobs of the database's queue (store::JobRepository), in `parley
// worker` processes and, by default on SQLite, inside `parley serve`.
//
// Delivery is at least once. A job is taken under a lock that lapses after
// `worker.visibility_timeout`; while its handler runs, the process renews the lock every third
// of that, so a job may run far longer than the timeout. A worker that dies holding it
// (kill -9, a lost machine) leaves it to be taken again by any worker once the lock lapses, so
// every handler must be
// idempotent (erasing an erased user deletes nothing; a roll-up folds only days after its
// mark). Each thread holds jobs under a name of its own, so only the holder of a job can finish
// it, even after its lock lapsed and another thread took it. A handler
// that fails is retried with exponential back-off (`worker.retry_delay` doubling up to
// `worker.retry_max_delay`, with jitter so a burst of failures does not retry in step) until
// the job's max_attempts, then the job is dead with its last error, until an admin retries it
// (POST /api/v1/admin/jobs/{id}/retry).
//
// Threads: `worker.concurrency` threads of its own, each taking one job at a time; idle ones
// poll every `worker.poll_interval`, and wake() (an enqueue in this process) wakes one at
// once. Storage calls block those threads, never an event loop.
//
// Metrics: job_queue_depth{state} (read from the database at most every few seconds, so every
// worker reports the whole queue), job_duration_seconds{kind,outcome} and
// job_failures_total{kind,outcome="retry"|"dead"}.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "queue/settings.hpp"
#include "store/store.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::queue {

// Runs one job; its answer is kept on the finished job (GET /api/v1/admin/jobs/{id}). An error
// is retried (or kills the job at its last attempt). Called on a worker thread; may block.
using Handler = std::function<Result<nlohmann::json>(const store::Job& job)>;

// What a periodic job is: every `every`, each worker process enqueues one (idempotent
// handlers make the copies from several processes harmless).
struct Periodic {
  std::string kind;
  std::chrono::milliseconds every;
};

class Worker {
 public:
  // `id` names this process in the jobs it holds (its replica id; each thread adds "/N").
  // `metrics` may be null.
  Worker(store::JobRepository& jobs, WorkerSettings settings, const Clock& clock,
         obs::Metrics* metrics, std::string id);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before start(): what runs each kind of job, and what is enqueued periodically.
  void handle(std::string kind, Handler handler);
  void every(Periodic periodic);

  void start();
  // Takes no more jobs and waits for those running to finish. Idempotent.
  void stop();
  // Takes no more jobs, without waiting (a server beginning to drain); stop() still joins.
  void request_stop();
  // A job was enqueued in this process: an idle thread takes it now rather than at its next poll.
  void wake();

  const std::string& id() const { return id_; }

  // The back-off before retrying a job that failed its `attempt`-th attempt (1-based), before
  // jitter: retry_delay * 2^(attempt-1), at most retry_max_delay.
  static std::chrono::milliseconds backoff(const WorkerSettings& settings, int64_t attempt);

 private:
  struct Metrics;
  void work(const std::string& holder);
  void run(const store::Job& job, const std::string& holder);
  void keep_locks();
  void enqueue_periodic(int64_t now_ms);
  void refresh_depth(int64_t now_ms);
  int64_t now_ms() const;

  store::JobRepository& jobs_;
  const WorkerSettings settings_;
  const Clock& clock_;
  const std::string id_;
  std::unique_ptr<Metrics> metrics_;
  std::map<std::string, Handler, std::less<>> handlers_;
  std::vector<Periodic> periodic_;

  std::mutex stop_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  int wakes_ = 0;                                    // wake() calls not yet consumed by a thread
  std::map<std::string, int64_t> next_periodic_ms_;  // kind -> when it is enqueued next
  std::atomic<int64_t> depth_read_ms_{0};
  std::vector<std::thread> threads_;
  std::map<std::string, std::string> running_;  // holder -> the job it runs ("" once lost)
  std::condition_variable keeper_wake_;
  bool keeper_stopping_ = false;
  std::thread keeper_;  // renews the locks of the jobs in running_
};

}  // namespace parley::queue
