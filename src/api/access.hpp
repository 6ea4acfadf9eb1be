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
// actor() says which user a request acts for (and applies that user's request limits), and
// owns() is the object-level check (someone else's session is a 404, as if it did not
// exist). Token, concurrency and budget limits apply to model calls in the chat pipeline
// (limits/admission.hpp), which takes the Actor, not the request.
//
// Every route is registered with its policy (http::RoutePolicy: public, authenticated or
// admin, and whether it honours Idempotency-Key) next to its handler, in the module that
// owns it; a route cannot be registered without one.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.hpp"
#include "auth/principal.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "http/message.hpp"
#include "http/router.hpp"
#include "idempotency/idempotency.hpp"
#include "limits/admission.hpp"
#include "limits/limiter.hpp"
#include "limits/policy.hpp"
#include "limits/settings.hpp"
#include "store/store.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::api {

// The end user a request acts for, with the limits that apply (limits/admission.hpp).
using Actor = limits::Actor;

class Access {
 public:
  Access(auth::Authenticator& authenticator, limits::RateLimiter& limiter,
         idempotency::IdempotencyStore& idempotency, BlockingPool& blocking, const Clock& clock,
         const limits::LimitSettings& limits, bool insecure_no_auth, obs::Metrics* metrics);

  // Puts the guard around every route of the router, those added before and after (every
  // non-public one: public routes carry no user data and run as they are).
  void protect(http::Router& router);

  // The user the request acts for: a user principal's own user (naming another is a 403);
  // for service and admin principals the user named in the request, else "anonymous".
  // Applies that user's request limits (429) when a service key names the user.
  Task<Result<Actor>> actor(http::Request& req, const std::optional<std::string>& requested_user);
  // actor() in two steps, for code that must resolve without awaiting: who, then the count.
  Result<Actor> resolve_actor(http::Request& req, const std::optional<std::string>& requested_user);
  Task<Result<void>> count_user_request(http::Request& req, const Actor& actor);

  // Object-level authorisation: whether the request's principal may see this tenant's user's
  // data. Handlers answer 404 when not.
  static bool owns(const http::Request& req, std::string_view tenant_id, std::string_view user_id);
  // The tenant a listing is confined to (nullopt: an admin sees every tenant).
  static std::optional<std::string> tenant_scope(const http::Request& req);

  auth::Authenticator& authenticator() { return authenticator_; }
  // A key was created, changed or revoked here ("*": many, as by an erasure): other replicas
  // are told (through Redis) so that they re-read it within a second.
  void key_changed(const std::string& key_id) {
    if (announce_key_change_) announce_key_change_(key_id);
  }
  void on_key_change(std::function<void(const std::string&)> announce) {
    announce_key_change_ = std::move(announce);
  }
  idempotency::IdempotencyStore& idempotency() { return idempotency_; }

 private:
  Task<http::Response> guard(const http::Handler& handler, http::RoutePolicy policy,
                             http::Request& req);
  int64_t now_ms() const;
  Task<Result<auth::Principal>> authenticate(http::Request& req, int64_t now_ms);
  Task<http::Response> run_idempotent(const http::Handler& handler, http::Request& req,
                                      std::string_view client_key);
  // The request quotas of a key or a user.
  struct RequestBucket {
    std::string bucket;
    limits::Limits limits;
    const char* minute_name;
    const char* hour_name;
  };
  RequestBucket key_bucket(const auth::Principal& who) const;
  // Applies the quotas of every bucket in one step of the limiter (one round trip when it is
  // shared); adds the headers; the refusal when over, or when the limiter cannot answer and
  // limits.on_backend_error is "deny".
  Task<std::optional<Error>> take_requests(http::Request& req, std::vector<RequestBucket> buckets,
                                           int64_t now_ms);

  auth::Authenticator& authenticator_;
  limits::RateLimiter& limiter_;
  idempotency::IdempotencyStore& idempotency_;
  BlockingPool& blocking_;
  const Clock& clock_;
  const limits::LimitSettings& limits_;  // defaults of every key and every end user
  bool insecure_no_auth_;
  obs::Metrics* metrics_;
  std::atomic<bool> refreshing_{false};
  std::function<void(const std::string&)> announce_key_change_;
};

}  // namespace parley::api
