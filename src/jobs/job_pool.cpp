// The bounded pool of long background jobs (see job_pool.hpp).
#include "jobs/job_pool.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "obs/log.hpp"

namespace parley::jobs {

JobPool::JobPool(JobPoolOptions options) : options_(std::move(options)) {
  threads_ = std::max(1, options_.threads);
  workers_.reserve(static_cast<size_t>(threads_));
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { work(); });
}

JobPool::~JobPool() { stop(); }

void JobPool::report(std::string_view outcome) const {
  if (options_.on_outcome) options_.on_outcome(outcome);
}

bool JobPool::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < static_cast<size_t>(options_.max_queued)) {
      queue_.push_back(std::move(job));
      wake_.notify_one();
      return true;
    }
  }
  report("rejected");
  return false;
}

void JobPool::stop() {
  std::vector<std::thread> workers;
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    workers = std::exchange(workers_, {});
    dropped.swap(queue_);
  }
  wake_.notify_all();
  // Outside the lock: a job's captures may call back into the pool when destroyed.
  for (size_t i = 0; i < dropped.size(); ++i) report("dropped");
  dropped.clear();
  for (auto& w : workers) {
    if (w.get_id() == std::this_thread::get_id()) {
      // A job that stops the pool cannot wait for its own thread: the next stop (the
      // destructor's, on the owner's thread) joins it.
      std::lock_guard lock(mutex_);
      workers_.push_back(std::move(w));
    } else if (w.joinable()) {
      w.join();
    }
  }
}

bool JobPool::stopped() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

size_t JobPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void JobPool::work() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job();
      report("done");
    } catch (const std::exception& e) {
      log::error("background job failed", {{"error", e.what()}});
      report("failed");
    } catch (...) {
      log::error("background job failed");
      report("failed");
    }
  }
}

}  // namespace parley::jobs
