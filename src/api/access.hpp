// The access guard: what runs around every route's handler, in this order.
//
//   authenticate    credentials -> Principal (auth/authenticator.hpp); 401 when missing,
//                   malformed, unknown, revoked or expired
//   authorise       the route's access level (public, any principal, admin); 403
//   key limits      the key's requests per minute / hour (limits/limiter.hpp); 429 with
//                   Retry-After and the IETF RateLimit / RateLimit-Policy headers
//   idempotency     Idempotency-Key on routes that create or call a model
//                   (idempotency/idempotency.hpp): replay, 409 or 422
//   handler
//
// Everything that depends on who the end user is happens in the handler, through this class:
// actor() says which user a request acts for (and applies that user's request limits),
// owns() is the object-level check (someone else's session is a 404, as if it did not
// exist), admit_model_call() applies token, concurrency and budget limits before a model is
// called, and record_usage() books what it cost.
//
// Every route's access level is in one table (access.cpp, route_policy()); a route missing
// from it is admin-only, so a new route is never accidentally public.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.hpp"
#include "auth/principal.hpp"
#include "core/blocking_pool.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "http/message.hpp"
#include "http/router.hpp"
#include "idempotency/idempotency.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "limits/policy.hpp"
#include "store/store.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::api {

enum class RouteAccess { kPublic, kAuthenticated, kAdmin };

struct RoutePolicy {
  RouteAccess access = RouteAccess::kAdmin;
  bool idempotent = false;  // honours Idempotency-Key
};

RoutePolicy route_policy(http::Method method, std::string_view pattern);

struct AccessOptions {
  limits::Limits key_limits;   // defaults for every key
  limits::Limits user_limits;  // defaults for every end user
  bool insecure_no_auth = false;
  size_t idempotency_max_response_bytes = size_t{4} * 1024 * 1024;
};

// The end user a request acts for.
struct Actor {
  std::string tenant_id;
  std::string user_id;
  std::string key_id;  // the principal's key ("key_...", "jwt", "bootstrap", "local")
  limits::Limits user_limits;
  limits::Limits key_limits;
  bool unlimited = false;  // the local operator in protected mode

  // A request served without the guard (handler tests): the named user, or "anonymous", in
  // the default tenant, with no limits.
  static Actor unguarded(const std::optional<std::string>& requested);
};

// Slots held while a model call runs; given back when this goes.
class ModelAdmission {
 public:
  ModelAdmission() = default;
  ModelAdmission(limits::RateLimiter* limiter, std::string key_slot, std::string user_slot)
      : limiter_(limiter), key_slot_(std::move(key_slot)), user_slot_(std::move(user_slot)) {}
  ModelAdmission(ModelAdmission&& other) noexcept
      : limiter_(std::exchange(other.limiter_, nullptr)),
        key_slot_(std::move(other.key_slot_)),
        user_slot_(std::move(other.user_slot_)) {}
  ModelAdmission& operator=(ModelAdmission&&) = delete;
  ModelAdmission(const ModelAdmission&) = delete;
  ModelAdmission& operator=(const ModelAdmission&) = delete;
  ~ModelAdmission();

 private:
  limits::RateLimiter* limiter_ = nullptr;
  std::string key_slot_;
  std::string user_slot_;
};

class Access {
 public:
  Access(auth::Authenticator& authenticator, limits::RateLimiter& limiter,
         limits::BudgetBook& budgets, idempotency::IdempotencyStore& idempotency,
         BlockingPool& blocking, AccessOptions options, obs::Metrics* metrics);

  // Puts the guard around every route of the router.
  void protect(http::Router& router);

  // The user the request acts for: a user principal's own user (naming another is a 403);
  // for service and admin principals the user named in the request, else "anonymous".
  // Applies that user's request limits (429).
  Result<Actor> actor(http::Request& req, const std::optional<std::string>& requested_user);

  // Object-level authorisation: whether the request's principal may see this tenant's user's
  // data. Handlers answer 404 when not.
  static bool owns(const http::Request& req, std::string_view tenant_id, std::string_view user_id);
  // The tenant a listing is confined to (nullopt: an admin sees every tenant).
  static std::optional<std::string> tenant_scope(const http::Request& req);

  // Before a model call: tokens per minute, concurrent streams (when `stream`) and the USD
  // budgets of the user and the key. May read the store (budgets).
  Task<Result<ModelAdmission>> admit_model_call(const Actor& actor, bool stream);
  // After it: the tokens and cost it used.
  void record_usage(const Actor& actor, int64_t tokens, double cost_usd);

  auth::Authenticator& authenticator() { return authenticator_; }
  idempotency::IdempotencyStore& idempotency() { return idempotency_; }

 private:
  Task<http::Response> guard(const http::Handler& handler, RoutePolicy policy, http::Request& req);
  Task<Result<auth::Principal>> authenticate(http::Request& req, int64_t now_ms);
  Task<http::Response> run_idempotent(const http::Handler& handler, http::Request& req,
                                      std::string_view client_key);
  // Applies the request quotas of one bucket; adds the headers; the refusal when over.
  std::optional<Error> take_requests(http::Request& req, const std::string& bucket,
                                     const limits::Limits& limits, const char* minute_name,
                                     const char* hour_name, int64_t now_ms);

  auth::Authenticator& authenticator_;
  limits::RateLimiter& limiter_;
  limits::BudgetBook& budgets_;
  idempotency::IdempotencyStore& idempotency_;
  BlockingPool& blocking_;
  AccessOptions options_;
  obs::Metrics* metrics_;
  std::atomic<bool> refreshing_{false};
};

}  // namespace parley::api
