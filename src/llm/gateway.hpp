// The gateway: turns a request's `model` into an ordered list of (provider, model) targets
// and gets a reply from the first that gives one, with retries, back-off, fallbacks and a
// circuit breaker per target.
//
// Model names resolve in this order:
//   1. a route name from the configuration ("fast", "smart"): its targets, in order;
//   2. "provider/model": that provider, that model;
//   3. a model a provider lists in its `models`: that provider;
//   4. anything else: the default provider with that model;
//   and an empty name means the default route.
//
// For each target in turn, while its breaker lets calls through:
//   - a call that fails with a retryable error (unreachable, 429, 5xx, broken or stalled
//     stream, first-token timeout) is retried up to `max_retries` times, after a back-off of
//     full jitter (uniform in [0, min(cap, base * 2^attempt)]) or the upstream's Retry-After
//     when it is longer (capped by `max_retry_after`);
//   - a streamed call whose reply has begun reaching the client (its stream started, so the
//     client has the response head and perhaps tokens) is never retried or passed to another
//     target: the error ends the reply;
//   - a request the upstream rejected (400/413/422) is not retried anywhere: it would fail the
//     same way; credentials or model refused (401/403/404) move on to the next target.
//
// Breakers read the time from the injected Clock (GatewayOptions::clock), so a test can move
// past a cooldown without sleeping; back-off waits and the latencies reported per attempt are
// real time (an asio timer, and what the caller actually waited).
//
// Thread-safe: one Gateway serves all I/O threads; the breakers are the only shared state.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "llm/provider.hpp"

namespace parley::llm {

// A breaker per (provider, model): `failure_threshold` retryable failures in a row open it;
// while open, calls are refused without trying; after `cooldown` one call (half-open) probes,
// and its outcome closes or reopens it.
class CircuitBreaker {
 public:
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
  using Clock = std::chrono::steady_clock;

  CircuitBreaker(int failure_threshold, std::chrono::milliseconds cooldown)
      : threshold_(failure_threshold), cooldown_(cooldown) {}

  // Whether a call may go now. In half-open state only one probe is let through at a time.
  bool allow(Clock::time_point now);
  void record_success();
  void record_failure(Clock::time_point now);
  // The call said nothing about the upstream's health (cancelled, or the request refused):
  // a half-open probe slot is given back.
  void record_neutral();
  State state(Clock::time_point now) const;

 private:
  mutable std::mutex mutex_;
  int threshold_;
  std::chrono::milliseconds cooldown_;
  int consecutive_failures_ = 0;
  bool open_ = false;
  bool probing_ = false;
  Clock::time_point opened_at_{};
};

std::string_view to_string(CircuitBreaker::State state);

struct Target {
  Provider* provider = nullptr;
  std::string model;
};

struct Route {
  std::string name;  // the route name, or the model string it was resolved from
  std::vector<Target> targets;
  // "fallback": targets in order. "cost": targets are listed cheapest first, and
  // plan_cost_route() orders them per request (llm/cost_routing.hpp).
  std::string strategy = "fallback";
  double complexity_threshold = 0.5;
  double daily_budget_usd = 0;  // per user; 0 = none
};

struct GatewayOptions {
  int max_retries = 2;
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{8'000};
  // A Retry-After longer than this is not waited for: the next target is tried instead.
  std::chrono::milliseconds max_retry_after{20'000};
  int breaker_failures = 5;
  std::chrono::milliseconds breaker_cooldown{30'000};
  CallLimits limits;
  // The time breakers decide by (steady_now(): failures, cooldowns, half-open probes). Null:
  // Clock::system(). Not owned; must outlive the Gateway.
  const Clock* clock = nullptr;
};

// One try at one target, for logs and the response's diagnostics.
struct Attempt {
  std::string provider;
  std::string model;
  std::string outcome;  // "ok", or the error reason ("upstream_rate_limited", "circuit_open")
  double seconds = 0;
  double time_to_first_token = -1;  // seconds; -1 when nothing was streamed in this attempt
};

struct GatewayResult {
  Completion completion;
  std::string provider;  // the target that answered (or was tried last)
  std::string model;
  std::vector<Attempt> attempts;
  double time_to_first_token = 0;  // seconds; 0 when nothing was streamed
  double duration = 0;             // seconds, all attempts and back-offs included
};

// Observes every attempt (metrics, logs); may be empty.
struct GatewayObserver {
  std::function<void(const Attempt&, const Completion&, CircuitBreaker::State)> on_attempt;
};

class Gateway {
 public:
  Gateway(std::vector<std::unique_ptr<Provider>> providers, std::map<std::string, Route> routes,
          std::string default_route, GatewayOptions options, GatewayObserver observer = {});

  // Resolves a model name (see above). kInvalidArgument "model_not_found" when a route or
  // provider named in it does not exist.
  Result<Route> resolve(std::string_view model) const;

  // Gets a reply for `request` (its `model` is replaced per target). With a sink the reply
  // streams through it. On failure `out.completion` holds whatever was received, and the
  // Error is the last target's.
  Task<Result<void>> chat(const Route& route, const ChatRequest& request, Cancellation& cancel,
                          const DeltaSink* sink, GatewayResult& out);

  // Embeddings from the first target of the route that makes them.
  Task<Result<Embeddings>> embed(const Route& route, EmbeddingRequest request,
                                 Cancellation& cancel);

  const std::vector<std::unique_ptr<Provider>>& providers() const { return providers_; }
  const std::map<std::string, Route>& routes() const { return routes_; }
  const std::string& default_route() const { return default_route_; }
  Provider* provider(std::string_view name) const;

  struct BreakerStatus {
    std::string provider;
    std::string model;
    CircuitBreaker::State state;
  };
  std::vector<BreakerStatus> breakers() const;

 private:
  CircuitBreaker& breaker(const Target& target);
  std::chrono::milliseconds backoff(int attempt, const Error& error);
  static Task<Result<void>> run_chat(Gateway& self, const Route& route, const ChatRequest& request,
                                     Cancellation& cancel, const DeltaSink* sink,
                                     GatewayResult& out);
  static Task<Result<Embeddings>> run_embed(Gateway& self, const Route& route,
                                            EmbeddingRequest request, Cancellation& cancel);

  std::vector<std::unique_ptr<Provider>> providers_;
  std::map<std::string, Route> routes_;
  std::string default_route_;
  GatewayOptions options_;
  const Clock& clock_;  // options_.clock, or the system clock
  GatewayObserver observer_;
  mutable std::mutex mutex_;  // guards breakers_ (the map; each breaker locks itself) and rng_
  std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_;
  std::mt19937_64 rng_;
};

// Whether an error is worth another try (at the same target or the next).
bool retryable(const Error& error);

}  // namespace parley::llm
