// Creating, describing and revoking API keys: shared by `parley keys ...` (app/keys_cli.cpp)
// and the admin API (api/admin.cpp), so both validate the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/result.hpp"
#include "limits/policy.hpp"
#include "store/store.hpp"

namespace parley::auth {

struct NewKey {
  std::string name;
  std::string scope;  // "admin", "service" or "user"
  std::string tenant_id = "default";
  std::string user_id;  // required for "user", refused otherwise
  std::optional<int64_t> expires_at_ms;
  limits::KeyLimitOverrides limits;
  std::string created_by;
};

struct CreatedKey {
  store::ApiKey key;
  std::string token;  // shown once; never stored
};

// Validates (errors name the field: scope, user_id, tenant_id, name, expires_at) and stores.
Result<CreatedKey> create_key(store::ApiKeyRepository& keys, const NewKey& request, int64_t now_ms);

// A key as shown to admins: never the hash; "status" is active, expired or revoked.
nlohmann::json key_json(const store::ApiKey& key, int64_t now_ms);

// "30d", "12h" (from now), "2026-12-31" or "2026-12-31T12:00:00Z": the expiry as unix ms.
std::optional<int64_t> parse_expiry(const std::string& text, int64_t now_ms);

}  // namespace parley::auth
