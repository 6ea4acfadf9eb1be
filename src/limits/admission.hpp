// Admission: whether a model call may start for a caller, and what it used once it ended.
// It takes a caller value (Actor: tenant, user, key and the limits that apply), not an HTTP
// request, so every way in (REST, the OpenAI-compatible API, later channels) applies the
// same checks through the chat pipeline's `admit` and `account` stages.
//
//   admit()   tokens per minute (a bucket still in debt from earlier calls refuses), the USD
//             budgets per day and month of the user and of the key (read through BudgetBook,
//             which may read the usage table), and for streams the concurrent-stream slots.
//             Refusals are kTooManyRequests with reasons token_limit_reached, budget_exceeded
//             or concurrency_limit_reached and a retry time; each is counted in
//             rate_limited_total{limit}.
//   book()    the tokens and cost a call used, against the same buckets and budgets.
//
// Thread-safety: every method from any thread; admit() runs on an I/O thread and reads the
// store through the blocking pool. The slots a ModelAdmission holds go back when it is
// destroyed.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <optional>
#include <string>

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

// Slots held while a model call runs; given back when this goes.
class ModelAdmission {
 public:
  ModelAdmission() = default;
  ModelAdmission(RateLimiter* limiter, std::string key_slot, std::string user_slot)
      : limiter_(limiter), key_slot_(std::move(key_slot)), user_slot_(std::move(user_slot)) {}
  ModelAdmission(ModelAdmission&& other) noexcept
      : limiter_(std::exchange(other.limiter_, nullptr)),
        key_slot_(std::move(other.key_slot_)),
        user_slot_(std::move(other.user_slot_)) {}
  ModelAdmission& operator=(ModelAdmission&& other) noexcept;
  ModelAdmission(const ModelAdmission&) = delete;
  ModelAdmission& operator=(const ModelAdmission&) = delete;
  ~ModelAdmission();

 private:
  void release();
  RateLimiter* limiter_ = nullptr;
  std::string key_slot_;
  std::string user_slot_;
};

class Admission {
 public:
  Admission(RateLimiter& limiter, BudgetBook& budgets, BlockingPool& blocking, const Clock& clock,
            obs::Metrics* metrics);

  Task<Result<ModelAdmission>> admit(const Actor& actor, bool stream);
  void book(const Actor& actor, int64_t tokens, double cost_usd);

  RateLimiter& limiter() { return limiter_; }

 private:
  RateLimiter& limiter_;
  BudgetBook& budgets_;
  BlockingPool& blocking_;
  const Clock& clock_;
  obs::Metrics* metrics_;
};

}  // namespace parley::limits
