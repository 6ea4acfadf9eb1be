// Credential checks against the cached key table (see authenticator.hpp).
#include "auth/authenticator.hpp"

#include <nlohmann/json.hpp>

#include "auth/api_key.hpp"
#include "auth/crypto.hpp"
#include "core/clock.hpp"

namespace parley::auth {
namespace {

// Header names and schemes are ASCII; std::tolower on a negative char is undefined.
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

Error unauthenticated(std::string message, std::string reason = "invalid_api_key") {
  return Error{ErrorCode::kUnauthenticated, std::move(message), std::move(reason), {}, {}};
}

Check denied(Error error) {
  Check c;
  c.kind = Check::Kind::kDenied;
  c.error = std::move(error);
  return c;
}

}  // namespace

std::string_view scope_name(Scope scope) {
  switch (scope) {
    case Scope::kAdmin:
      return "admin";
    case Scope::kService:
      return "service";
    case Scope::kUser:
      return "user";
  }
  return "user";
}

bool parse_scope(std::string_view text, Scope& out) {
  if (text == "admin") {
    out = Scope::kAdmin;
  } else if (text == "service") {
    out = Scope::kService;
  } else if (text == "user") {
    out = Scope::kUser;
  } else {
    return false;
  }
  return true;
}

Authenticator::Authenticator(store::ApiKeyRepository& keys, AuthOptions options)
    : keys_(keys), options_(std::move(options)), map_(std::make_shared<Map>()) {
  jwt_.secret = options_.jwt_secret;
  jwt_.issuer = options_.jwt_issuer;
  jwt_.audience = options_.jwt_audience;
  if (!options_.bootstrap_admin_key.empty()) {
    bootstrap_hash_ = hash_secret(options_.bootstrap_admin_key);
  }
}

Authenticator::Entry Authenticator::make_entry(const store::ApiKey& key) {
  Entry e;
  e.secret_hash = key.secret_hash;
  if (!parse_scope(key.scope, e.principal.scope)) e.principal.scope = Scope::kUser;
  e.principal.key_id = key.id;
  e.principal.tenant_id = key.tenant_id;
  e.principal.user_id = key.user_id;
  auto limits = nlohmann::json::parse(key.limits_json, nullptr, false);
  if (auto parsed = limits::parse_overrides(limits, "limits")) e.principal.limits = *parsed;
  e.expires_at_ms = key.expires_at_ms;
  e.revoked_at_ms = key.revoked_at_ms;
  return e;
}

Result<void> Authenticator::load(int64_t now_ms) {
  auto all = keys_.list(std::nullopt, /*include_revoked=*/true);
  if (!all) return std::move(all).error();
  auto map = std::make_shared<Map>();
  // Any key ever made, revoked and expired ones too: authentication stays on once it was on.
  const auto count = static_cast<int64_t>(all->size());
  for (const auto& k : *all) map->emplace(k.id, make_entry(k));
  {
    std::lock_guard lock(mutex_);
    map_ = std::move(map);
  }
  active_keys_.store(count);
  loaded_at_ms_.store(now_ms);
  return success();
}

bool Authenticator::refresh_due(int64_t now_ms) const {
  return now_ms - loaded_at_ms_.load(std::memory_order_relaxed) >=
         options_.key_refresh_interval.count();
}

Result<void> Authenticator::fetch(std::string_view key_id) {
  auto key = keys_.get(key_id);
  if (!key) {
    if (key.error().code == ErrorCode::kNotFound) return success();
    return std::move(key).error();
  }
  remember(*key);
  return success();
}

void Authenticator::remember(const store::ApiKey& key) {
  std::lock_guard lock(mutex_);
  auto map = std::make_shared<Map>(*map_);
  auto [it, inserted] = map->insert_or_assign(key.id, make_entry(key));
  (void)it;
  map_ = std::move(map);
  active_keys_.store(static_cast<int64_t>(map_->size()));
}

std::shared_ptr<const Authenticator::Map> Authenticator::snapshot() const {
  std::lock_guard lock(mutex_);
  return map_;
}

bool Authenticator::enforcing() const {
  return active_keys_.load(std::memory_order_relaxed) > 0 || !bootstrap_hash_.empty() ||
         !jwt_.secret.empty();
}

Check Authenticator::check(std::optional<std::string_view> authorization,
                           std::optional<std::string_view> api_key, int64_t now_ms) const {
  std::string_view token;
  if (authorization) {
    std::string_view value = *authorization;
    constexpr std::string_view kBearer = "Bearer ";
    if (value.size() <= kBearer.size() ||
        !std::equal(kBearer.begin(), kBearer.end(), value.begin(),
                    [](char a, char b) { return ascii_lower(a) == ascii_lower(b); })) {
      return denied(unauthenticated("the Authorization header must be 'Bearer <API key or token>'",
                                    "malformed_credentials"));
    }
    token = value.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  } else if (api_key) {
    token = *api_key;
  } else {
    return denied(unauthenticated(
        "this route needs credentials: send 'Authorization: Bearer <API key>'", "missing_api_key"));
  }
  if (token.empty()) {
    return denied(unauthenticated("the credentials are empty", "malformed_credentials"));
  }
  return check_token(token, now_ms);
}

Check Authenticator::check_token(std::string_view token, int64_t now_ms) const {
  if (auto parsed = parse_token(token)) {
    auto map = snapshot();
    auto it = map->find(parsed->key_id);
    if (it == map->end()) {
      Check c;
      c.kind = Check::Kind::kLookup;
      c.key_id = parsed->key_id;
      return c;
    }
    const Entry& e = it->second;
    if (!secret_matches(parsed->secret, e.secret_hash)) {
      return denied(unauthenticated("the API key is not valid"));
    }
    // Only the holder of the secret learns why a real key no longer works.
    if (e.revoked_at_ms) {
      return denied(unauthenticated("the API key has been revoked", "revoked_api_key"));
    }
    if (e.expires_at_ms && *e.expires_at_ms <= now_ms) {
      return denied(unauthenticated("the API key expired at " + format_utc_ms(*e.expires_at_ms),
                                    "expired_api_key"));
    }
    Check c;
    c.kind = Check::Kind::kOk;
    c.principal = e.principal;
    return c;
  }
  if (!jwt_.secret.empty() && looks_like_jwt(token)) {
    auto claims = verify_jwt(token, jwt_, now_ms / 1000);
    if (!claims) return denied(std::move(claims).error());
    Check c;
    c.kind = Check::Kind::kOk;
    c.principal.scope = Scope::kUser;
    c.principal.user_id = claims->subject;
    if (!claims->tenant_id.empty()) c.principal.tenant_id = claims->tenant_id;
    // Each token user is its own key for limits, usage and idempotency scoping.
    c.principal.key_id = "jwt:" + c.principal.tenant_id + ":" + claims->subject;
    return c;
  }
  if (!bootstrap_hash_.empty() && secret_matches(token, bootstrap_hash_)) {
    Check c;
    c.kind = Check::Kind::kOk;
    c.principal.scope = Scope::kAdmin;
    c.principal.key_id = "bootstrap";
    return c;
  }
  return denied(unauthenticated("the API key is not valid"));
}

}  // namespace parley::auth
