// JobPool: in-process background work off the request path, on threads of its own, apart from
// the BlockingPool that serves requests' storage calls, so a burst of slow work never delays a
// reply's database write. Its queue is lost at a stop: work that must survive one (document
// ingestion, embeddings, memory extraction, summaries) is a durable job (queue/worker.hpp).
//
// Bounded: at most `jobs.max_queued` jobs wait; submit() refuses more (counted in
// jobs_total{outcome="rejected"}), so the caller can say "busy, try later" or leave the job in the
// database for a later pass. Jobs run in the order submitted, on `jobs.threads` threads.
//
// Thread-safety: every method from any thread. A job must not throw (an exception is caught,
// logged and counted as a failure). stop() stops taking jobs, lets the running ones finish,
// and drops those still waiting, counted as "dropped" (durable jobs live in the database and
// are picked up again at the next start; the in-memory queue is not the record).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace parley::config {
class Schema;
}

namespace parley::jobs {

struct JobPoolOptions {
  int threads = 1;
  int max_queued = 1000;
  // Called with "done", "failed", "rejected" (a full queue) or "dropped" (waiting at stop) for
  // each job (metrics); may be empty. Never called with the pool's lock held.
  std::function<void(std::string_view outcome)> on_outcome;
};

// `jobs.threads` and `jobs.max_queued`.
void declare_settings(config::Schema& schema);

class JobPool {
 public:
  explicit JobPool(JobPoolOptions options);
  ~JobPool();
  JobPool(const JobPool&) = delete;
  JobPool& operator=(const JobPool&) = delete;

  // Queues `job`; false when the queue is full or the pool has stopped.
  bool submit(std::function<void()> job);
  void stop();

  size_t queued() const;
  // Whether stop() has begun (new jobs are refused from then on).
  bool stopped() const;
  int threads() const { return threads_; }

 private:
  void work();
  void report(std::string_view outcome) const;

  JobPoolOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  int threads_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace parley::jobs
