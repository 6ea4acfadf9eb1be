// Prometheus metrics for the whole process, over prometheus-cpp's core registry.
//
// Label values are always bounded: routes are templates ("/api/v1/sessions/{id}", or
// "unmatched"), methods are the known HTTP methods or "other", statuses are numbers. The hot
// path (one request) looks its counters up in a per-thread cache, so it takes no lock after
// warm-up. Thread-safe; one instance lives for the life of the server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace parley::obs {

struct BuildInfo {
  std::string version;
  std::string commit;
  std::string compiler;
  std::string build_type;
};

class Metrics {
 public:
  explicit Metrics(const BuildInfo& build);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }

  // One finished HTTP request. `route_id` identifies the route template (the router's index,
  // -1 for unmatched) and keys the per-thread cache; `route` is its label value.
  void observe_request(int route_id, std::string_view route, std::string_view method, int status,
                       double seconds);
  prometheus::Gauge& requests_in_flight() { return *requests_in_flight_; }
  prometheus::Gauge& connections_open() { return *connections_open_; }

  // One storage call; `operation` must be a string literal (its address keys the cache).
  void observe_storage_query(const char* operation, double seconds);

  // One call to a model provider (one attempt: retries and fallbacks count each). `status` is
  // "ok" or the failure's reason; `ttft_seconds` < 0 when nothing was streamed.
  void observe_llm_call(std::string_view provider, std::string_view model, std::string_view status,
                        int64_t input_tokens, int64_t output_tokens, double cost_usd,
                        double seconds, double ttft_seconds);
  // llm_circuit_state{provider,model}: 0 closed, 1 open, 2 half-open.
  void set_circuit_state(std::string_view provider, std::string_view model, int state);
  // A chat session had a turn now; active_sessions counts sessions with a turn in the
  // last 15 minutes.
  void note_session_activity(std::string_view session_id);

  // auth_failures_total{reason}: requests refused for their credentials.
  void count_auth_failure(std::string_view reason);
  // rate_limited_total{limit}: requests refused by a limit ("key-minute", "user-budget", ...).
  void count_rate_limited(std::string_view limit);
  // idempotent_replays_total: answers served again for a retried Idempotency-Key.
  void count_idempotent_replay();
  // limiter_backend_errors_total: limit checks the shared limiter (Redis) could not answer.
  void count_limiter_error();
  // redis_commands_total: commands sent to Redis (a script call is one).
  void count_redis_command();
  // moderation_decisions_total{stage,category,action}: one per category found, or
  // category="none" when the text passed.
  void count_moderation(std::string_view stage, std::string_view category, std::string_view action);
  // background_items_dropped_total{writer}: items a background writer (jobs/batch_writer.hpp:
  // "usage", "moderation_log", "idempotency") dropped because its queue was full.
  void count_dropped(std::string_view writer, int64_t n);
  // jobs_total{outcome}: background jobs done, failed, or rejected by a full queue.
  void count_job(std::string_view outcome);

  // The text exposition format (version 0.0.4).
  std::string serialize() const;

  static std::string_view normalize_method(std::string_view method);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> process_;  // /proc readings, gathered per scrape
  uint64_t instance_id_;
  prometheus::Family<prometheus::Counter>* requests_total_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Histogram>* storage_duration_;
  prometheus::Gauge* requests_in_flight_;
  prometheus::Gauge* connections_open_;
  prometheus::Family<prometheus::Counter>* llm_requests_;
  prometheus::Family<prometheus::Counter>* llm_tokens_;
  prometheus::Family<prometheus::Counter>* api_costs_;
  prometheus::Family<prometheus::Histogram>* inference_duration_;
  prometheus::Family<prometheus::Histogram>* time_to_first_token_;
  prometheus::Family<prometheus::Gauge>* circuit_state_;
  prometheus::Gauge* active_sessions_;
  prometheus::Family<prometheus::Counter>* auth_failures_;
  prometheus::Family<prometheus::Counter>* rate_limited_;
  prometheus::Counter* idempotent_replays_;
  prometheus::Counter* limiter_errors_;
  prometheus::Counter* redis_commands_;
  prometheus::Family<prometheus::Counter>* moderation_decisions_;
  prometheus::Family<prometheus::Counter>* items_dropped_;
  prometheus::Family<prometheus::Counter>* jobs_;
  struct SessionActivity;
  std::shared_ptr<SessionActivity> sessions_;
};

}  // namespace parley::obs
