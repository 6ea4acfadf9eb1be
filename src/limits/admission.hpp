// Admission: whether a model call may start for a caller, and what it used once it ended.
// It takes a caller value (Actor: tenant, user, key and the limits that apply), not an HTTP
// request, so every way in (REST, the OpenAI-compatible API, later channels) applies the
// same checks through the chat pipeline's `admit` and `account` stages.
//
//   admit()   tokens per minute (a bucket still in debt from earlier calls refuses), the USD
//             budgets per day and month of the user and of the key (read through Budgets:
//             the usage table, or running totals in Redis), and for streams the concurrent-stream
//             slots. Refusals are kTooManyRequests with reasons token_limit_reached,
//             budget_exceeded or concurrency_limit_reached and a retry time; each is counted in
//             rate_limited_total{limit}.
//   book()    the tokens and cost a call used, against the same buckets and budgets.
//
// Thread-safety: every method from any thread; admit() runs on an I/O thread (Budgets reads the
// store through the blocking pool). The slots a ModelAdmission holds go back when it is
// destroyed.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "limits/policy.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::limits {

// The end user a call acts for, with the limits that apply to it.
struct Actor {
  std::string tenant_id = "default";
  std::string user_id = "anonymous";
  std::string key_id = "local";  // the credentials' key ("key_...", "jwt", "bootstrap", "local")
  Limits user_limits;
  Limits key_limits;
  bool unlimited = false;  // the local operator in protected mode, and admins

  // The local operator acting for `user` (or "anonymous"), held to no limit: how tests and
  // tools that serve no credentials run the pipeline.
  static Actor local(const std::optional<std::string>& user);
};

// Places in the concurrent-stream limits held while a model call runs; given back when this
// goes. With a shared limiter the places are leases, renewed here every third of the lease
// while the call runs, so the places of a replica that died free themselves.
class ModelAdmission {
 public:
  ModelAdmission() = default;
  ModelAdmission(RateLimiter* limiter, std::vector<std::string> slots, std::string holder,
                 const IoExecutor& executor, const Clock& clock);
  ModelAdmission(ModelAdmission&& other) noexcept
      : limiter_(std::exchange(other.limiter_, nullptr)),
        slots_(std::move(other.slots_)),
        holder_(std::move(other.holder_)),
        renewal_(std::move(other.renewal_)) {}
  ModelAdmission& operator=(ModelAdmission&& other) noexcept;
  ModelAdmission(const ModelAdmission&) = delete;
  ModelAdmission& operator=(const ModelAdmission&) = delete;
  ~ModelAdmission();

 private:
  struct Renewal;
  void release();
  RateLimiter* limiter_ = nullptr;
  std::vector<std::string> slots_;
  std::string holder_;
  std::shared_ptr<Renewal> renewal_;  // null when the limiter's places need no renewal
};

class Admission {
 public:
  Admission(RateLimiter& limiter, Budgets& budgets, const Clock& clock, obs::Metrics* metrics,
            bool allow_on_backend_error = false);

  Task<Result<ModelAdmission>> admit(const Actor& actor, bool stream);
  void book(const Actor& actor, int64_t tokens, double cost_usd);

  RateLimiter& limiter() { return limiter_; }

 private:
  RateLimiter& limiter_;
  Budgets& budgets_;
  const Clock& clock_;
  obs::Metrics* metrics_;
  bool allow_on_backend_error_;
};

}  // namespace parley::limits
