// The bounded pool of long background jobs (see job_pool.hpp).
#include "jobs/job_pool.hpp"

#include <algorithm>
#include <exception>

#include "obs/log.hpp"

namespace parley::jobs {

JobPool::JobPool(JobPoolOptions options) : options_(std::move(options)) {
  const int threads = std::max(1, options_.threads);
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
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
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
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
