// Accounting: what each model call cost and who spent it. The gateway reports every attempt
// here (metrics: llm_requests_total, llm_tokens_total, api_costs_total, inference time, time
// to first token, circuit state). Usage records of the OpenAI-compatible API are queued,
// merged per (user, source, provider, model, status, minute), and written to storage in
// batches by a BatchWriter (jobs/batch_writer.hpp: at most 100'000 queued, the oldest dropped
// and counted in background_items_dropped_total{writer="usage"}; a failed write is retried): a
// proxied request never waits on a database write, and a busy gateway writes a row per user and
// model a minute, not one per call. Chat turns write their usage in the same transaction as the
// reply instead.
//
// Thread-safe. flush() is synchronous; stop() (or the destructor) flushes what is queued.
#pragma once

#include <chrono>
#include <cstdint>

#include "jobs/batch_writer.hpp"
#include "llm/gateway.hpp"
#include "llm/pricing.hpp"
#include "obs/metrics.hpp"
#include "store/store.hpp"

namespace parley::llm {

class Accountant {
 public:
  Accountant(const ModelTable& models, obs::Metrics* metrics, store::Storage* storage,
             std::chrono::milliseconds flush_interval);
  ~Accountant();
  Accountant(const Accountant&) = delete;
  Accountant& operator=(const Accountant&) = delete;

  const ModelTable& models() const { return models_; }
  double cost(std::string_view model, const Usage& usage) const {
    return models_.cost(model, usage.input_tokens, usage.output_tokens);
  }

  // The observer to give the gateway.
  GatewayObserver observer();

  // Queues a usage record for the next batch write.
  void enqueue(store::UsageRecord record);
  // Writes what is queued now and returns when it is done (GET /api/v1/usage, tests).
  void flush();
  // Stops the writer thread and writes what is left. Idempotent.
  void stop();

  // Distinct records waiting to be written.
  int64_t queued() const;
  // Failed batch writes plus records dropped for the bound.
  int64_t write_failures() const;

 private:
  const ModelTable& models_;
  obs::Metrics* metrics_;
  store::Storage* storage_;
  jobs::BatchWriter<store::UsageRecord> writer_;  // last: its thread uses the members above
};

}  // namespace parley::llm
