// API key administration (see key_admin.hpp).
#include "auth/key_admin.hpp"

#include <ctime>

#include <nlohmann/json.hpp>

#include "auth/api_key.hpp"
#include "auth/principal.hpp"
#include "config/units.hpp"
#include "core/clock.hpp"

namespace parley::auth {
namespace {

bool valid_name_text(const std::string& s, size_t max) {
  if (s.size() > max) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;  // no control characters (they end up in logs)
  }
  return true;
}

bool valid_tenant(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<int64_t> parse_expiry(const std::string& text, int64_t now_ms) {
  if (auto d = config::parse_duration(text); d && d->count() > 0) return now_ms + d->count();
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    tm = {};
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  }
  if (!end) return std::nullopt;
  const std::string_view rest(end);
  if (!rest.empty() && rest != "Z" && rest != "+00:00") return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

Result<CreatedKey> create_key(store::ApiKeyRepository& keys, const NewKey& r, int64_t now_ms) {
  Scope scope;
  if (!parse_scope(r.scope, scope)) {
    return Error::invalid_field("scope", "scope must be admin, service or user");
  }
  if (scope == Scope::kUser && r.user_id.empty()) {
    return Error::invalid_field("user_id", "a user key needs the user_id it acts for");
  }
  if (scope != Scope::kUser && !r.user_id.empty()) {
    return Error::invalid_field("user_id",
                                "only user keys are bound to a user; service keys name the user "
                                "in each request");
  }
  if (!valid_name_text(r.user_id, 256)) {
    return Error::invalid_field("user_id", "user_id must be at most 256 printable characters");
  }
  if (!valid_tenant(r.tenant_id)) {
    return Error::invalid_field("tenant_id",
                                "tenant_id must be 1 to 128 letters, digits, '-', '_' or '.'");
  }
  if (!valid_name_text(r.name, 200)) {
    return Error::invalid_field("name", "name must be at most 200 printable characters");
  }
  if (r.expires_at_ms && *r.expires_at_ms <= now_ms) {
    return Error::invalid_field("expires_at", "expires_at must be in the future");
  }
  const KeyToken token = generate_key();
  CreatedKey out;
  out.key.id = token.key_id;
  out.key.name = r.name;
  out.key.scope = std::string(scope_name(scope));
  out.key.tenant_id = r.tenant_id;
  out.key.user_id = r.user_id;
  out.key.secret_hash = hash_secret(token.secret);
  out.key.limits_json = limits::to_json(r.limits).dump();
  out.key.created_by = r.created_by;
  out.key.created_at_ms = now_ms;
  out.key.expires_at_ms = r.expires_at_ms;
  if (auto stored = keys.create(out.key); !stored) return std::move(stored).error();
  out.token = format_token(token);
  return out;
}

nlohmann::json key_json(const store::ApiKey& key, int64_t now_ms) {
  using nlohmann::json;
  std::string status = "active";
  if (key.revoked_at_ms) {
    status = "revoked";
  } else if (key.expires_at_ms && *key.expires_at_ms <= now_ms) {
    status = "expired";
  }
  json limits = json::parse(key.limits_json, nullptr, false);
  if (!limits.is_object()) limits = json::object();
  return {
      {"id", key.id},
      {"object", "api_key"},
      {"name", key.name},
      {"scope", key.scope},
      {"tenant_id", key.tenant_id},
      {"user_id", key.user_id.empty() ? json(nullptr) : json(key.user_id)},
      {"prefix", std::string(kTokenPrefix) + key.id},
      {"limits", limits},
      {"status", status},
      {"created_by", key.created_by},
      {"created_at", format_utc_ms(key.created_at_ms)},
      {"expires_at", key.expires_at_ms ? json(format_utc_ms(*key.expires_at_ms)) : json(nullptr)},
      {"revoked_at", key.revoked_at_ms ? json(format_utc_ms(*key.revoked_at_ms)) : json(nullptr)}};
}

}  // namespace parley::auth
