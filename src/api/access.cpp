// The access guard and the per-user checks handlers call (see access.hpp).
#include "api/access.hpp"

#include <algorithm>
#include <chrono>

#include "api/anthropic_format.hpp"
#include "auth/crypto.hpp"
#include "core/clock.hpp"
#include "http/errors.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::api {
namespace {

using http::Method;

bool is_loopback(std::string_view remote) {
  // "127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"
  if (remote.substr(0, 4) == "127.") return true;
  if (remote.substr(0, 5) == "[::1]") return true;
  if (remote.substr(0, 13) == "[::ffff:127.") return true;
  return false;
}

bool valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

std::string quota_text(std::string_view name, int64_t quota, int64_t window_ms) {
  std::string out = "\"";
  out += name;
  out += "\";q=";
  out += std::to_string(quota);
  out += ";w=";
  out += std::to_string(window_ms / 1000);
  return out;
}

int64_t seconds_up(int64_t ms) { return std::max<int64_t>(0, (ms + 999) / 1000); }

http::Response fail(const Error& e, const http::Request& req) {
  return http::error_response(e, req.request_id);
}

}  // namespace

int64_t Access::now_ms() const { return to_unix_ms(clock_.now()); }

Access::Access(auth::Authenticator& authenticator, limits::RateLimiter& limiter,
               idempotency::IdempotencyStore& idempotency, BlockingPool& blocking,
               const Clock& clock, const limits::LimitSettings& limits, bool insecure_no_auth,
               obs::Metrics* metrics)
    : authenticator_(authenticator),
      limiter_(limiter),
      idempotency_(idempotency),
      blocking_(blocking),
      clock_(clock),
      limits_(limits),
      insecure_no_auth_(insecure_no_auth),
      metrics_(metrics) {}

namespace {

// A route answering in Anthropic's envelope: its errors, and the guard's refusals, rewritten.
Task<http::Response> in_anthropic_envelope(Task<http::Response> guarded) {
  http::Response res = co_await std::move(guarded);
  co_return anthropic_format::to_anthropic_error(std::move(res));
}

}  // namespace

void Access::protect(http::Router& router) {
  router.guard([this](const http::Route& route) -> http::Handler {
    const http::RoutePolicy policy = route.policy;
    if (policy.audience == http::Audience::kPublic) return route.handler;
    if (policy.errors == http::ErrorFormat::kAnthropic) {
      return [this, handler = route.handler, policy](http::Request& req) {
        return in_anthropic_envelope(guard(handler, policy, req));
      };
    }
    return [this, handler = route.handler, policy](http::Request& req) {
      return guard(handler, policy, req);
    };
  });
}

Task<Result<auth::Principal>> Access::authenticate(http::Request& req, int64_t now) {
  if (!authenticator_.enforcing()) {
    // Protected mode: no credentials exist, so only the machine itself may call (the server
    // refuses to listen elsewhere unless told --insecure-no-auth).
    if (!insecure_no_auth_ && !is_loopback(req.remote)) {
      co_return Error::unauthenticated(
          "no API keys are configured, so this server only answers its own machine; create one "
          "with `parley keys create`",
          "auth_not_configured");
    }
    auth::Principal local;
    local.scope = auth::Scope::kAdmin;
    local.key_id = "local";
    co_return local;
  }
  if (authenticator_.refresh_due(now) && !refreshing_.exchange(true)) {
    // Keys another process created or revoked; this request does not wait for it.
    blocking_.post([this, now] {
      if (auto r = authenticator_.refresh(now); !r) {
        log::warn("API keys could not be reloaded", {{"error", r.error().message}});
      }
      refreshing_.store(false);
    });
  }
  auto check = authenticator_.check(req.header("authorization"), req.header("x-api-key"), now);
  if (check.kind == auth::Check::Kind::kLookup) {
    const std::string key_id = check.key_id;
    auto fetched = co_await blocking_.run([this, &key_id] { return authenticator_.fetch(key_id); });
    if (!fetched) co_return std::move(fetched).error();
    check = authenticator_.check(req.header("authorization"), req.header("x-api-key"), now);
    if (check.kind == auth::Check::Kind::kLookup) {
      co_return Error::unauthenticated("the API key is not valid");
    }
  }
  if (check.kind == auth::Check::Kind::kDenied) co_return std::move(check.error);
  co_return std::move(check.principal);
}

Task<std::optional<Error>> Access::take_requests(http::Request& req,
                                                 std::vector<RequestBucket> buckets, int64_t now) {
  std::vector<limits::Take> takes;
  std::vector<size_t> first_take;  // per bucket, the index of its first take
  for (const auto& b : buckets) {
    first_take.push_back(takes.size());
    if (b.limits.requests_per_minute > 0) {
      takes.push_back({b.bucket + "\n" + b.minute_name,
                       {b.minute_name, b.limits.requests_per_minute, 60'000, b.limits.burst}});
    }
    if (b.limits.requests_per_hour > 0) {
      takes.push_back(
          {b.bucket + "\n" + b.hour_name, {b.hour_name, b.limits.requests_per_hour, 3'600'000, 0}});
    }
  }
  first_take.push_back(takes.size());
  if (takes.empty()) co_return std::nullopt;
  auto decided = co_await limiter_.acquire(takes, now);
  if (!decided) {
    if (metrics_) metrics_->count_limiter_error();
    if (limits_.allow_on_backend_error()) co_return std::nullopt;
    Error e = Error::unavailable("rate limits cannot be checked: " + decided.error().message,
                                 "limits_unavailable");
    e.retry_after_ms = 1000;
    co_return e;
  }
  const std::vector<limits::Decision>& decisions = *decided;
  std::optional<Error> refusal;
  for (size_t b = 0; b + 1 < first_take.size(); ++b) {
    if (first_take[b] == first_take[b + 1]) continue;  // no quota on this bucket
    std::string policy_header;
    size_t tightest = first_take[b];
    for (size_t i = first_take[b]; i < first_take[b + 1]; ++i) {
      if (!policy_header.empty()) policy_header += ", ";
      policy_header +=
          quota_text(takes[i].quota.name, takes[i].quota.quota, takes[i].quota.window_ms);
      const bool refused = !decisions[i].allowed;
      const bool tightest_refused = !decisions[tightest].allowed;
      if ((refused && !tightest_refused) ||
          (refused == tightest_refused &&
           (refused ? decisions[i].retry_after_ms > decisions[tightest].retry_after_ms
                    : decisions[i].remaining < decisions[tightest].remaining))) {
        tightest = i;
      }
    }
    const limits::Decision& d = decisions[tightest];
    const limits::Quota& q = takes[tightest].quota;
    req.response_headers.emplace_back("RateLimit-Policy", policy_header);
    std::string state = "\"";
    state += q.name;
    state += "\";r=" + std::to_string(d.remaining) +
             ";t=" + std::to_string(seconds_up(d.allowed ? d.reset_ms : d.retry_after_ms));
    req.response_headers.emplace_back("RateLimit", state);
    if (d.allowed || refusal) continue;
    if (metrics_) metrics_->count_rate_limited(q.name);
    const bool hour = q.window_ms > 60'000;
    refusal = Error::too_many_requests(
        "rate limit '" + std::string(q.name) + "' reached: " + std::to_string(q.quota) +
            " requests per " + (hour ? "hour" : "minute") + "; retry in " +
            std::to_string(seconds_up(d.retry_after_ms)) + " s",
        "rate_limited", d.retry_after_ms);
  }
  co_return refusal;
}

Task<http::Response> Access::guard(const http::Handler& handler, http::RoutePolicy policy,
                                   http::Request& req) {
  const int64_t now = now_ms();
  auto principal = co_await authenticate(req, now);
  if (!principal) {
    if (metrics_) metrics_->count_auth_failure(principal.error().reason);
    http::Response res = fail(principal.error(), req);
    if (principal.error().code == ErrorCode::kUnauthenticated) {
      res.header("WWW-Authenticate", "Bearer realm=\"parley\"");
    }
    co_return res;
  }
  if (policy.audience == http::Audience::kAdmin && !principal->admin()) {
    co_return fail(Error::permission_denied("this route needs an admin key", "admin_required"),
                   req);
  }
  req.principal = &*principal;
  // The key's quotas and, for an end user's own key or token, the user's: one step. A service
  // key names its user in the body: on the routes whose handler counts that user
  // (names_user), the key's quotas wait to be taken with the user's, in one step too.
  std::vector<RequestBucket> buckets;
  if (policy.names_user && principal->scope == auth::Scope::kService) {
    req.key_quota_pending = true;
  } else if (!principal->local()) {
    buckets.push_back(key_bucket(*principal));
  }
  if (principal->scope == auth::Scope::kUser) {
    buckets.push_back({"user:" + principal->tenant_id + "\n" + principal->user_id,
                       principal->limits.user.apply(limits_.user), "user-minute", "user-hour"});
  }
  if (!buckets.empty()) {
    auto refused = co_await take_requests(req, std::move(buckets), now);
    if (refused) co_return fail(*refused, req);
  }
  std::optional<std::string_view> idempotency_key;
  if (policy.idempotent) idempotency_key = req.header("idempotency-key");
  http::Response res;
  if (idempotency_key) {
    res = co_await run_idempotent(handler, req, *idempotency_key);
  } else {
    res = co_await handler(req);
  }
  if (req.key_quota_pending) {
    // The handler answered without naming a user (a bad request, a replayed answer): the
    // request still counts against the key's quotas.
    req.key_quota_pending = false;
    std::vector<RequestBucket> key_only;
    key_only.push_back(key_bucket(*principal));
    auto counted = co_await take_requests(req, std::move(key_only), now);
    (void)counted;
  }
  co_return res;
}

Access::RequestBucket Access::key_bucket(const auth::Principal& who) const {
  return {"key:" + who.key_id, who.limits.key.apply(limits_.key), "key-minute", "key-hour"};
}

Task<http::Response> Access::run_idempotent(const http::Handler& handler, http::Request& req,
                                            std::string_view client_key) {
  if (!valid_idempotency_key(client_key)) {
    co_return fail(Error::invalid_field("Idempotency-Key",
                                        "Idempotency-Key must be 1 to 255 visible ASCII "
                                        "characters"),
                   req);
  }
  const auth::Principal& who = *req.principal;
  // Scoped to the caller: another key's identical Idempotency-Key is another request.
  std::string key = who.key_id;
  key += "\n";
  key += client_key;
  std::string material(req.method_text);
  material += ' ';
  material += req.target;
  material += '\n';
  // Accept chooses between a JSON answer and an event stream on the chat routes.
  material += req.header("accept").value_or("");
  material += '\n';
  material += req.body;
  const std::string fingerprint = auth::to_hex(auth::sha256(material));

  auto claimed = co_await idempotency_.claim(key, fingerprint, now_ms());
  if (!claimed) co_return fail(claimed.error(), req);
  idempotency::Claim claim = std::move(*claimed);
  if (claim.kind == idempotency::Claim::Kind::kReplayLoad) {
    auto loaded = co_await blocking_.run([&] { return idempotency_.load(key); });
    if (!loaded) co_return fail(loaded.error(), req);
    if (*loaded) {
      claim.kind = idempotency::Claim::Kind::kReplay;
      claim.response = std::move(**loaded);
    } else {
      // Expired meanwhile, or lost (load() freed the key): the request runs, unless a
      // concurrent retry claimed it first.
      auto again = co_await idempotency_.claim(key, fingerprint, now_ms());
      if (!again) co_return fail(again.error(), req);
      claim = std::move(*again);
    }
  }
  switch (claim.kind) {
    case idempotency::Claim::Kind::kMismatch:
      co_return fail(Error{ErrorCode::kUnprocessable,
                           "this Idempotency-Key was used for a different request (method, path "
                           "or body); use a new key for a new request",
                           "idempotency_key_reused",
                           "Idempotency-Key",
                           {}},
                     req);
    case idempotency::Claim::Kind::kReplayLoad:  // answered again meanwhile: retry to read it
    case idempotency::Claim::Kind::kInProgress: {
      auto e = Error::conflict(
          "a request with this Idempotency-Key is still running; retry when it has finished",
          "idempotency_key_in_use");
      e.retry_after_ms = 1000;
      co_return fail(e, req);
    }
    case idempotency::Claim::Kind::kReplay: {
      if (metrics_) metrics_->count_idempotent_replay();
      http::Response res;
      res.status = claim.response.status;
      res.content_type = claim.response.content_type;
      res.body = std::move(claim.response.body);
      res.header("Idempotent-Replayed", "true");
      co_return res;
    }
    case idempotency::Claim::Kind::kClaimed:
      break;
  }

  http::Recording recording;
  recording.limit = idempotency_.max_response_size();
  if (req.channel) req.channel->record(&recording);
  http::Response res;
  try {
    res = co_await handler(req);
  } catch (...) {
    if (req.channel) req.channel->record(nullptr);
    idempotency_.release(key);
    throw;
  }
  if (req.channel) req.channel->record(nullptr);
  idempotency::StoredResponse stored;
  bool storable = true;
  if (res.already_sent) {
    stored.status = recording.status;
    stored.content_type = recording.content_type;
    stored.body = std::move(recording.body);
    storable = !recording.truncated;
  } else {
    stored.status = res.status;
    stored.content_type = res.content_type;
    stored.body = res.body;
    storable = res.body.size() <= idempotency_.max_response_size();
  }
  // "Try again" answers are not kept: the retry runs the request again.
  const bool client_left = req.channel && req.channel->gone();
  if (stored.status >= 500 || stored.status == 429 || stored.status == 409 || client_left ||
      !storable) {
    idempotency_.release(key);
  } else {
    const std::string tenant = req.actor_tenant.empty() ? who.tenant_id : req.actor_tenant;
    const std::string user = req.actor_user.empty() ? who.user_id : req.actor_user;
    idempotency_.complete(key, fingerprint, std::move(stored), tenant, user, now_ms());
  }
  co_return res;
}

Task<Result<Actor>> Access::actor(http::Request& req, const std::optional<std::string>& requested) {
  auto a = resolve_actor(req, requested);
  if (!a) co_return std::move(a).error();
  auto counted = co_await count_user_request(req, *a);
  if (!counted) co_return std::move(counted).error();
  co_return std::move(*a);
}

Task<Result<void>> Access::count_user_request(http::Request& req, const Actor& a) {
  const auth::Principal* who = req.principal;
  if (!who) co_return success();
  std::vector<RequestBucket> buckets;
  if (req.key_quota_pending) {
    req.key_quota_pending = false;
    buckets.push_back(key_bucket(*who));
  }
  if (!a.unlimited && who->scope == auth::Scope::kService) {
    buckets.push_back(
        {"user:" + a.tenant_id + "\n" + a.user_id, a.user_limits, "user-minute", "user-hour"});
  }
  if (buckets.empty()) co_return success();
  auto refused = co_await take_requests(req, std::move(buckets), now_ms());
  if (refused) co_return std::move(*refused);
  co_return success();
}

Result<Actor> Access::resolve_actor(http::Request& req,
                                    const std::optional<std::string>& requested) {
  const auth::Principal* who = req.principal;
  Actor a;
  if (!who) return Actor::local(requested);
  a.tenant_id = who->tenant_id;
  a.key_id = who->key_id;
  if (who->scope == auth::Scope::kUser) {
    if (requested && *requested != who->user_id) {
      return Error::permission_denied("this key acts only for its own user; leave the user out",
                                      "user_mismatch");
    }
    a.user_id = who->user_id;
  } else {
    a.user_id = requested.value_or("anonymous");
  }
  a.key_limits = who->limits.key.apply(limits_.key);
  a.user_limits = who->limits.user.apply(limits_.user);
  // The operator on its own machine, and admins, are not held to end users' limits.
  a.unlimited = who->local() || who->admin();
  req.actor_tenant = a.tenant_id;
  req.actor_user = a.user_id;
  return a;
}

bool Access::owns(const http::Request& req, std::string_view tenant_id, std::string_view user_id) {
  const auth::Principal* who = req.principal;
  if (!who || who->admin()) return true;
  if (who->tenant_id != tenant_id) return false;
  if (who->scope == auth::Scope::kService) return true;
  return who->user_id == user_id;
}

std::optional<std::string> Access::tenant_scope(const http::Request& req) {
  const auth::Principal* who = req.principal;
  if (!who || who->admin()) return std::nullopt;
  return who->tenant_id;
}

}  // namespace parley::api
