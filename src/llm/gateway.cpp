// Routing, retries, back-off, fallbacks and circuit breakers (see gateway.hpp).
#include "llm/gateway.hpp"

#include <algorithm>

#include <boost/asio/this_coro.hpp>

#include "core/signal.hpp"

namespace parley::llm {

// --- CircuitBreaker ----------------------------------------------------------------------

bool CircuitBreaker::allow(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!open_) return true;
  if (now - opened_at_ < cooldown_ || probing_) return false;
  probing_ = true;  // half-open: this call is the probe
  return true;
}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mutex_);
  consecutive_failures_ = 0;
  open_ = false;
  probing_ = false;
}

void CircuitBreaker::record_failure(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  ++consecutive_failures_;
  if (probing_ || consecutive_failures_ >= threshold_) {
    open_ = true;
    opened_at_ = now;
  }
  probing_ = false;
}

void CircuitBreaker::record_neutral() {
  std::lock_guard lock(mutex_);
  probing_ = false;
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (!open_) return State::kClosed;
  if (probing_ || now - opened_at_ >= cooldown_) return State::kHalfOpen;
  return State::kOpen;
}

std::string_view to_string(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

// --- Gateway -----------------------------------------------------------------------------

bool retryable(const Error& error) {
  switch (error.code) {
    case ErrorCode::kUnavailable:
    case ErrorCode::kTooManyRequests:
    case ErrorCode::kBadGateway:
    case ErrorCode::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

Gateway::Gateway(std::vector<std::unique_ptr<Provider>> providers,
                 std::map<std::string, Route> routes, std::string default_route,
                 GatewayOptions options, GatewayObserver observer)
    : providers_(std::move(providers)),
      routes_(std::move(routes)),
      default_route_(std::move(default_route)),
      options_(options),
      clock_(options.clock ? *options.clock : Clock::system()),
      observer_(std::move(observer)),
      rng_(std::random_device{}()) {}

Provider* Gateway::provider(std::string_view name) const {
  for (const auto& p : providers_) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

Result<Route> Gateway::resolve(std::string_view model) const {
  if (model.empty()) {
    auto it = routes_.find(default_route_);
    if (it == routes_.end())
      return Error::unavailable("no default route is configured", "no_route");
    return it->second;
  }
  if (auto it = routes_.find(std::string(model)); it != routes_.end()) return it->second;
  // "provider/model", where the prefix names a configured provider. Model ids may contain
  // slashes themselves ("meta-llama/Llama-3.3-70B"), so an unknown prefix is not an error.
  if (auto slash = model.find('/'); slash != std::string_view::npos) {
    if (Provider* p = provider(model.substr(0, slash))) {
      std::string rest(model.substr(slash + 1));
      if (rest.empty()) rest = p->default_model();
      return Route{std::string(model), {{p, rest}}};
    }
  }
  for (const auto& p : providers_) {
    const auto& listed = p->models();
    if (std::find(listed.begin(), listed.end(), model) != listed.end()) {
      return Route{std::string(model), {{p.get(), std::string(model)}}};
    }
  }
  auto def = routes_.find(default_route_);
  if (def == routes_.end() || def->second.targets.empty()) {
    return Error::invalid("no route or provider serves model '" + std::string(model) + "'",
                          "model_not_found", "model");
  }
  return Route{std::string(model), {{def->second.targets.front().provider, std::string(model)}}};
}

CircuitBreaker& Gateway::breaker(const Target& target) {
  std::lock_guard lock(mutex_);
  auto& slot = breakers_[target.provider->name() + "\n" + target.model];
  if (!slot) {
    slot = std::make_unique<CircuitBreaker>(options_.breaker_failures, options_.breaker_cooldown);
  }
  return *slot;
}

std::vector<Gateway::BreakerStatus> Gateway::breakers() const {
  std::lock_guard lock(mutex_);
  std::vector<BreakerStatus> out;
  const auto now = clock_.steady_now();
  for (const auto& [key, breaker] : breakers_) {
    const auto nl = key.find('\n');
    out.push_back({key.substr(0, nl), key.substr(nl + 1), breaker->state(now)});
  }
  return out;
}

std::chrono::milliseconds Gateway::backoff(int attempt, const Error& error) {
  // Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): uniform in
  // [0, min(cap, base * 2^attempt)], so clients that failed together do not retry together.
  const int64_t ceiling =
      std::min<int64_t>(options_.backoff_max.count(),
                        options_.backoff_base.count() * (int64_t{1} << std::min(attempt, 20)));
  int64_t wait = 0;
  {
    std::lock_guard lock(mutex_);
    wait = std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(0, ceiling))(rng_);
  }
  if (error.retry_after_ms) wait = std::max(wait, *error.retry_after_ms);
  return std::chrono::milliseconds(wait);
}

Task<Result<void>> Gateway::chat(const Route& route, const ChatRequest& request,
                                 Cancellation& cancel, const DeltaSink* sink, GatewayResult& out) {
  return run_chat(*this, route, request, cancel, sink, out);
}

Task<Result<void>> Gateway::run_chat(Gateway& self, const Route& route, const ChatRequest& request,
                                     Cancellation& cancel, const DeltaSink* sink,
                                     GatewayResult& out) {
  // Latencies and back-off waits are real time; breaker decisions read the injected clock.
  using Steady = std::chrono::steady_clock;
  const parley::Clock& breaker_clock = self.clock_;
  const auto started = Steady::now();
  auto seconds_since = [](Steady::time_point t) {
    return std::chrono::duration<double>(Steady::now() - t).count();
  };
  Error last = Error::unavailable("route '" + route.name + "' has no provider to try", "no_target");
  Signal backoff_done(co_await boost::asio::this_coro::executor);

  // The client's sink, timing the first token (of the reply, and of each attempt).
  bool first = true;
  Steady::time_point attempt_started = started;
  double attempt_ttft = -1;
  DeltaSink timed;
  if (sink) {
    timed = [&](const Delta& delta) -> Task<bool> {
      const bool token = !delta.content.empty() || !delta.tool_calls.empty();
      if (token && attempt_ttft < 0) attempt_ttft = seconds_since(attempt_started);
      if (token && first) {
        first = false;
        out.time_to_first_token = seconds_since(started);
      }
      const bool keep_going = co_await (*sink)(delta);
      co_return keep_going;
    };
  }

  std::optional<ChatRequest> retargeted;
  for (const auto& target : route.targets) {
    auto& breaker = self.breaker(target);
    for (int attempt = 0; attempt <= self.options_.max_retries; ++attempt) {
      if (cancel.requested()) {
        out.duration = seconds_since(started);
        co_return Error::cancelled("the call was cancelled: " + cancel.reason());
      }
      out.provider = target.provider->name();
      out.model = target.model;
      if (!breaker.allow(breaker_clock.steady_now())) {
        Attempt skipped{target.provider->name(), target.model, "circuit_open", 0, -1};
        out.attempts.push_back(skipped);
        if (self.observer_.on_attempt) {
          self.observer_.on_attempt(skipped, Completion{},
                                    breaker.state(breaker_clock.steady_now()));
        }
        last = Error::unavailable("provider '" + target.provider->name() + "' model '" +
                                      target.model + "' is failing; its circuit is open",
                                  "circuit_open");
        break;  // to the next target
      }
      // The request as this target needs it; copied only when the model differs.
      const ChatRequest* effective = &request;
      if (request.model != target.model) {
        if (!retargeted) retargeted.emplace(request);
        retargeted->model = target.model;
        effective = &*retargeted;
      }
      Completion completion;
      attempt_started = Steady::now();
      attempt_ttft = -1;
      auto result = co_await target.provider->chat(*effective, self.options_.limits, cancel,
                                                   sink ? &timed : nullptr, completion);
      Attempt tried{target.provider->name(), target.model, "ok", seconds_since(attempt_started),
                    attempt_ttft};
      if (result) {
        breaker.record_success();
        out.attempts.push_back(tried);
        if (self.observer_.on_attempt) {
          self.observer_.on_attempt(tried, completion, breaker.state(breaker_clock.steady_now()));
        }
        out.completion = std::move(completion);
        out.duration = seconds_since(started);
        co_return success();
      }
      Error error = std::move(result).error();
      tried.outcome = error.reason.empty() ? "error" : error.reason;
      // Only the upstream's own failures count against it; a cancelled or rejected request
      // says nothing about its health.
      if (retryable(error)) {
        breaker.record_failure(breaker_clock.steady_now());
      } else {
        breaker.record_neutral();
      }
      out.attempts.push_back(tried);
      if (self.observer_.on_attempt) {
        self.observer_.on_attempt(tried, completion, breaker.state(breaker_clock.steady_now()));
      }
      const bool reached_client = completion.deltas > 0;
      if (reached_client || error.code == ErrorCode::kCancelled ||
          error.code == ErrorCode::kInvalidArgument) {
        // Part of this reply is already with the client (a retry would repeat or contradict
        // it), or the client left, or the request itself was refused: this is the end.
        out.completion = std::move(completion);
        out.duration = seconds_since(started);
        co_return error;
      }
      last = std::move(error);
      if (!retryable(last) || attempt == self.options_.max_retries) break;
      const auto wait = self.backoff(attempt, last);
      if (wait > self.options_.max_retry_after) break;  // not worth waiting for: next target
      cancel.set_hook([&] { backoff_done.notify(); });
      (void)co_await backoff_done.wait_until(Steady::now() + wait);
      cancel.clear_hook();
    }
  }
  out.duration = seconds_since(started);
  if (last.code == ErrorCode::kPermissionDenied) {
    // The upstream refused our credentials or model: the server's configuration, not the
    // client's permissions.
    last.code = ErrorCode::kBadGateway;
  }
  co_return last;
}

Task<Result<Embeddings>> Gateway::embed(const Route& route, EmbeddingRequest request,
                                        Cancellation& cancel) {
  return run_embed(*this, route, std::move(request), cancel);
}

Task<Result<Embeddings>> Gateway::run_embed(Gateway& self, const Route& route,
                                            EmbeddingRequest request, Cancellation& cancel) {
  Error last = Error::invalid("no provider of route '" + route.name + "' makes embeddings",
                              "embeddings_unsupported", "model");
  for (const auto& target : route.targets) {
    if (!target.provider->supports_embeddings()) continue;
    auto& breaker = self.breaker(target);
    if (!breaker.allow(self.clock_.steady_now())) continue;
    request.model = target.model;
    auto result = co_await target.provider->embed(request, self.options_.limits, cancel);
    if (result) {
      breaker.record_success();
      co_return result;
    }
    if (retryable(result.error())) {
      breaker.record_failure(self.clock_.steady_now());
    } else {
      breaker.record_neutral();
    }
    last = std::move(result).error();
    if (!retryable(last)) break;
  }
  if (last.code == ErrorCode::kPermissionDenied) last.code = ErrorCode::kBadGateway;
  co_return last;
}

}  // namespace parley::llm
