// The job runner (see worker.hpp).
#include "queue/worker.hpp"

#include <algorithm>
#include <random>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::queue {
namespace {

using Clock = std::chrono::steady_clock;

// How often the queue's depth is read from the database (by one thread of the process).
constexpr int64_t kDepthRefreshMs = 5'000;
const char* const kStates[] = {"queued", "running", "done", "dead"};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Spreads retries of jobs that failed together over ±25% of their delay.
std::chrono::milliseconds jittered(std::chrono::milliseconds delay) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.75, 1.25);
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(delay.count()) * factor(random)));
}

}  // namespace

struct Worker::Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : depth(prometheus::BuildGauge()
                  .Name("job_queue_depth")
                  .Help("Jobs in the database's queue by state (queued, running, done, dead).")
                  .Register(registry)),
        duration(prometheus::BuildHistogram()
                     .Name("job_duration_seconds")
                     .Help("Time a job's handler ran, by kind and outcome (done, failed).")
                     .Register(registry)),
        failures(prometheus::BuildCounter()
                     .Name("job_failures_total")
                     .Help("Job attempts that failed, by kind and what followed: retry, or dead "
                           "(no attempts left).")
                     .Register(registry)) {}

  prometheus::Family<prometheus::Gauge>& depth;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Counter>& failures;
};

Worker::Worker(store::JobRepository& jobs, WorkerSettings settings, const parley::Clock& clock,
               obs::Metrics* metrics, std::string id)
    : jobs_(jobs),
      settings_(std::move(settings)),
      clock_(clock),
      id_(std::move(id)),
      metrics_(metrics ? std::make_unique<Metrics>(metrics->registry()) : nullptr) {}

Worker::~Worker() { stop(); }

void Worker::handle(std::string kind, Handler handler) {
  handlers_[std::move(kind)] = std::move(handler);
}

void Worker::every(Periodic periodic) { periodic_.push_back(std::move(periodic)); }

void Worker::start() {
  // Each thread holds jobs under a name of its own ("wrk_.../2"): a job whose lock lapsed
  // while its handler still ran, and which a sibling took again, can then only be finished by
  // the sibling that holds it now.
  for (int i = 0; i < settings_.concurrency; ++i) {
    threads_.emplace_back([this, i] { work(id_ + "/" + std::to_string(i + 1)); });
  }
  keeper_ = std::thread([this] { keep_locks(); });
  log::info("workers started", {{"worker", id_},
                                {"concurrency", settings_.concurrency},
                                {"handlers", static_cast<int64_t>(handlers_.size())}});
}

void Worker::stop() {
  std::lock_guard stopping(stop_mutex_);  // a second caller waits for the first
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // The keeper renews locks until the last job running has finished.
  {
    std::lock_guard lock(mutex_);
    keeper_stopping_ = true;
  }
  keeper_wake_.notify_all();
  if (keeper_.joinable()) keeper_.join();
}

void Worker::keep_locks() {
  const auto every = std::max(settings_.visibility_timeout / 3, std::chrono::milliseconds(10));
  std::unique_lock lock(mutex_);
  for (;;) {
    keeper_wake_.wait_for(lock, every, [this] { return keeper_stopping_; });
    if (keeper_stopping_) return;
    const auto held = running_;
    lock.unlock();
    const int64_t now = now_ms();
    for (const auto& [holder, id] : held) {
      if (id.empty()) continue;  // its lock was lost: nothing to renew
      auto r = jobs_.extend(id, holder, now + settings_.visibility_timeout.count(), now);
      // Not held any more: another worker took it after the lock lapsed (this process was
      // stalled or cut off from the database for a whole timeout). The handler runs on;
      // finishing it will be refused, and idempotent handlers make the second run harmless.
      if (r) continue;
      bool still_running = false;  // else it finished meanwhile, and there is nothing to renew
      {
        std::lock_guard relock(mutex_);
        auto it = running_.find(holder);
        still_running = it != running_.end() && it->second == id;
        if (still_running) it->second.clear();  // said once; not renewed again
      }
      if (still_running) {
        log::warn("a running job's lock could not be renewed",
                  {{"job", id}, {"error", r.error().message}});
      }
    }
    lock.lock();
  }
}

void Worker::wake() {
  {
    std::lock_guard lock(mutex_);
    ++wakes_;
  }
  wake_.notify_one();
}

std::chrono::milliseconds Worker::backoff(const WorkerSettings& settings, int64_t attempt) {
  auto delay = settings.retry_delay;
  for (int64_t i = 1; i < attempt && delay < settings.retry_max_delay; ++i) delay *= 2;
  return std::min(delay, settings.retry_max_delay);
}

int64_t Worker::now_ms() const { return to_unix_ms(clock_.now()); }

void Worker::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void Worker::work(const std::string& holder) {
  bool failing = false;  // storage errors are logged when they start and end, not every poll
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    const int64_t now = now_ms();
    enqueue_periodic(now);
    refresh_depth(now);
    auto taken = jobs_.take(holder, 1, now, settings_.visibility_timeout.count());
    if (!taken != failing) {
      failing = !taken;
      if (failing) {
        log::warn("workers cannot read the job queue", {{"error", taken.error().message}});
      } else {
        log::info("workers read the job queue again");
      }
    }
    if (taken && !taken->empty()) {
      run(taken->front(), holder);
      continue;
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, settings_.poll_interval, [this] { return stopping_ || wakes_ > 0; });
    if (wakes_ > 0) --wakes_;
  }
}

void Worker::run(const store::Job& job, const std::string& holder) {
  const auto started = Clock::now();
  Result<nlohmann::json> outcome = Error::internal("not run");
  std::string answer;  // the outcome as kept on the job
  if (job.attempts > job.max_attempts) {
    // Taken again after every lock lapsed: whatever runs it dies each time (a crash, the
    // out-of-memory killer). It goes to the dead jobs rather than around the fleet forever.
    outcome = Error::internal("its worker was lost on every attempt (the lock lapsed " +
                              std::to_string(job.attempts - 1) + " times)");
  } else if (auto it = handlers_.find(job.kind); it == handlers_.end()) {
    outcome = Error::internal("no handler for job kind '" + job.kind + "' in this version");
  } else {
    {
      std::lock_guard lock(mutex_);
      running_[holder] = job.id;
    }
    try {
      outcome = it->second(job);
      if (outcome) answer = outcome->dump();  // here: an answer that is not UTF-8 throws
    } catch (const std::exception& e) {
      outcome = Error::internal(std::string("the handler threw: ") + e.what());
    }
    std::lock_guard lock(mutex_);
    running_.erase(holder);
  }
  const double seconds = seconds_since(started);
  if (metrics_) {
    metrics_->duration
        .Add({{"kind", job.kind}, {"outcome", outcome ? "done" : "failed"}},
             prometheus::Histogram::BucketBoundaries{0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600})
        .Observe(seconds);
  }
  const int64_t now = now_ms();
  if (outcome) {
    auto done = jobs_.succeed(job.id, holder, answer, now);
    if (!done) {
      // Its lock lapsed while it ran (or storage failed): it may run again, which idempotent
      // handlers allow.
      log::warn("a job finished but could not be marked done",
                {{"job", job.id}, {"kind", job.kind}, {"error", done.error().message}});
    } else {
      log::info("job done",
                {{"job", job.id}, {"kind", job.kind}, {"duration_ms", seconds * 1000.0}});
    }
    return;
  }
  const auto delay = jittered(backoff(settings_, job.attempts));
  auto failed = jobs_.fail(job.id, holder, outcome.error().message, now + delay.count(), now);
  if (!failed) {
    log::warn("a job failed and could not be marked so",
              {{"job", job.id}, {"kind", job.kind}, {"error", failed.error().message}});
    return;
  }
  const bool dead = failed->state == "dead";
  if (metrics_) {
    metrics_->failures.Add({{"kind", job.kind}, {"outcome", dead ? "dead" : "retry"}}).Increment();
  }
  if (dead) {
    log::error("job dead: no attempts left", {{"job", job.id},
                                              {"kind", job.kind},
                                              {"attempts", job.attempts},
                                              {"error", outcome.error().message}});
  } else {
    log::warn("job failed; it will be retried", {{"job", job.id},
                                                 {"kind", job.kind},
                                                 {"attempt", job.attempts},
                                                 {"retry_in_ms", delay.count()},
                                                 {"error", outcome.error().message}});
  }
}

void Worker::enqueue_periodic(int64_t now) {
  std::vector<std::string> due;
  {
    std::lock_guard lock(mutex_);
    for (const auto& p : periodic_) {
      int64_t& next = next_periodic_ms_[p.kind];
      if (now < next) continue;
      next = now + p.every.count();
      due.push_back(p.kind);
    }
  }
  for (const auto& kind : due) {
    auto r = jobs_.enqueue({kind, "{}", 0, settings_.max_attempts, ""}, now);
    if (!r) {
      log::warn("a periodic job could not be queued",
                {{"kind", kind}, {"error", r.error().message}});
      std::lock_guard lock(mutex_);
      next_periodic_ms_[kind] = now + settings_.poll_interval.count();  // soon again
    }
  }
}

void Worker::refresh_depth(int64_t now) {
  if (!metrics_) return;
  int64_t read = depth_read_ms_.load();
  if (now - read < kDepthRefreshMs || !depth_read_ms_.compare_exchange_strong(read, now)) return;
  auto counts = jobs_.counts();
  if (!counts) return;
  for (const char* state : kStates) {
    int64_t n = 0;
    for (const auto& [s, count] : *counts) {
      if (s == state) n = count;
    }
    metrics_->depth.Add({{"state", state}}).Set(static_cast<double>(n));
  }
}

}  // namespace parley::queue
