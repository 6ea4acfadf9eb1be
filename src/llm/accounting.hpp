// Accounting: what each model call cost and who spent it. The gateway reports every attempt
// here (metrics: llm_requests_total, llm_tokens_total, api_costs_total, inference time, time
// to first token, circuit state). Usage records of the OpenAI-compatible API are queued,
// merged per (user, source, provider, model, status, minute), and written to storage in
// batches by a background thread: a proxied request never waits on a database write, and a
// busy gateway writes a row per user and model a minute, not one per call. Chat turns write
// their usage in the same transaction as the reply instead.
//
// Thread-safe. stop() (or the destructor) flushes what is queued.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

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
  // Writes what is queued now (tests; shutdown).
  void flush();
  void stop();

  int64_t queued() const;
  int64_t write_failures() const;

 private:
  void run();

  const ModelTable& models_;
  obs::Metrics* metrics_;
  store::Storage* storage_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // Merged records by key, in arrival order of their first record.
  std::unordered_map<std::string, size_t> index_;
  std::vector<store::UsageRecord> queue_;
  bool stopping_ = false;
  int64_t failures_ = 0;
  std::mutex flush_mutex_;  // one writer at a time
  std::thread thread_;
};

}  // namespace parley::llm
