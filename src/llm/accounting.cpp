// Metrics per provider call, and the batched usage writer.
#include "llm/accounting.hpp"

#include "obs/log.hpp"

namespace parley::llm {

namespace {
// A queue this long is flushed at once instead of waiting for the interval; beyond
// kMaxQueued distinct records (storage down for long), new ones are dropped and counted.
constexpr size_t kFlushAt = 512;
constexpr size_t kMaxQueued = 100'000;
}  // namespace

Accountant::Accountant(const ModelTable& models, obs::Metrics* metrics, store::Storage* storage,
                       std::chrono::milliseconds flush_interval)
    : models_(models), metrics_(metrics), storage_(storage), interval_(flush_interval) {
  if (storage_) thread_ = std::thread([this] { run(); });
}

Accountant::~Accountant() { stop(); }

GatewayObserver Accountant::observer() {
  GatewayObserver o;
  o.on_attempt = [this](const Attempt& attempt, const Completion& completion,
                        CircuitBreaker::State state) {
    if (!metrics_) return;
    const double usd = cost(attempt.model, completion.usage);
    metrics_->observe_llm_call(attempt.provider, attempt.model, attempt.outcome,
                               completion.usage.input_tokens, completion.usage.output_tokens, usd,
                               attempt.seconds, attempt.time_to_first_token);
    metrics_->set_circuit_state(attempt.provider, attempt.model, static_cast<int>(state));
  };
  return o;
}

void Accountant::enqueue(store::UsageRecord record) {
  std::string key = record.user_id;
  key.append("\n").append(record.source).append("\n").append(record.provider);
  key.append("\n").append(record.model).append("\n").append(record.status).append("\n");
  key.append(std::to_string(record.at_ms / 60'000));
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      auto& merged = queue_[it->second];
      merged.input_tokens += record.input_tokens;
      merged.output_tokens += record.output_tokens;
      merged.cost_usd += record.cost_usd;
      merged.requests += record.requests;
      return;
    }
    if (queue_.size() >= kMaxQueued) {
      ++failures_;  // storage has been failing for long: drop rather than grow without bound
      return;
    }
    index_.emplace(std::move(key), queue_.size());
    queue_.push_back(std::move(record));
    wake = queue_.size() >= kFlushAt;
  }
  if (wake) wake_.notify_one();
}

void Accountant::flush() {
  std::lock_guard writer(flush_mutex_);
  std::vector<store::UsageRecord> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(queue_);
    index_.clear();
  }
  if (batch.empty() || !storage_) return;
  if (auto r = storage_->usage().record(batch); !r) {
    log::warn("usage records not written; will retry",
              {{"records", static_cast<int64_t>(batch.size())}, {"error", r.error().message}});
    std::lock_guard lock(mutex_);
    ++failures_;
    // Put them back in front of anything queued since, for the next attempt (records queued
    // meanwhile are not merged into them: a few more rows, never a lost one).
    batch.insert(batch.end(), std::make_move_iterator(queue_.begin()),
                 std::make_move_iterator(queue_.end()));
    queue_ = std::move(batch);
    index_.clear();
  }
}

void Accountant::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [&] { return stopping_ || queue_.size() >= kFlushAt; });
    lock.unlock();
    flush();
    lock.lock();
  }
}

void Accountant::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  flush();
}

int64_t Accountant::queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queue_.size());
}

int64_t Accountant::write_failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

}  // namespace parley::llm
