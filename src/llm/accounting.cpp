// Metrics per provider call, and the batched usage writer (a BatchWriter merging by key).
#include "llm/accounting.hpp"

#include <string>
#include <utility>
#include <vector>

namespace parley::llm {

namespace {
// A queue this long is written at once instead of waiting for the interval; beyond
// kMaxQueued distinct records (storage down for long), the oldest are dropped and counted.
constexpr size_t kFlushAt = 512;
constexpr size_t kMaxQueued = 100'000;

std::string usage_key(const store::UsageRecord& r) {
  std::string key = r.user_id;
  key.append("\n").append(r.source).append("\n").append(r.provider);
  key.append("\n").append(r.model).append("\n").append(r.status).append("\n");
  key.append(std::to_string(r.at_ms / 60'000));
  return key;
}

jobs::BatchWriter<store::UsageRecord>::Options writer_options(std::chrono::milliseconds interval,
                                                              obs::Metrics* metrics) {
  jobs::BatchWriter<store::UsageRecord>::Options o;
  o.name = "usage";
  o.interval = interval;
  o.flush_at = kFlushAt;
  o.max_queued = kMaxQueued;
  o.key = usage_key;
  o.merge = [](store::UsageRecord& into, store::UsageRecord&& from) {
    into.input_tokens += from.input_tokens;
    into.output_tokens += from.output_tokens;
    into.cost_usd += from.cost_usd;
    into.requests += from.requests;
  };
  if (metrics) {
    o.on_drop = [metrics](std::string_view writer, int64_t n) {
      metrics->count_dropped(writer, n);
    };
  }
  return o;
}
}  // namespace

Accountant::Accountant(const ModelTable& models, obs::Metrics* metrics, store::Storage* storage,
                       std::chrono::milliseconds flush_interval)
    : models_(models),
      metrics_(metrics),
      storage_(storage),
      writer_(writer_options(flush_interval, metrics),
              [this](const std::vector<store::UsageRecord>& batch) -> Result<void> {
                // Without storage (tests) the records are counted in metrics only.
                if (!storage_) return success();
                return storage_->usage().record(batch);
              }) {
  if (storage_) writer_.start();
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

void Accountant::enqueue(store::UsageRecord record) { writer_.enqueue(std::move(record)); }

void Accountant::flush() { (void)writer_.flush(); }

void Accountant::stop() { writer_.stop(); }

int64_t Accountant::queued() const { return static_cast<int64_t>(writer_.queued()); }

int64_t Accountant::write_failures() const { return writer_.failed_writes() + writer_.dropped(); }

}  // namespace parley::llm
