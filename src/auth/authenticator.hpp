// Turns a request's credentials into a Principal (principal.hpp).
//
// Credentials are a bearer token in `Authorization: Bearer <token>` (what OpenAI's SDKs send)
// or in `X-API-Key` (what Anthropic-style clients send):
// - an API key (api_key.hpp), checked against an in-memory copy of the key table;
// - the bootstrap admin key from PARLEY_ADMIN_KEY / PARLEY_ADMIN_KEY_FILE (any secret of at
//   least 32 characters, kept only as a hash);
// - an HS256 JWT for end users, when `auth.jwt_secret` is set (jwt.hpp).
//
// The key cache: every active key is loaded at start. Keys created or revoked through this
// server's admin API change the cache at once; keys created or revoked by another process
// (`parley keys create|revoke` beside a running server) are seen within
// `auth.key_refresh_interval`, and a token whose key id is not cached is looked up once in
// the store before it is refused.
//
// Protected mode: with no key ever created in the store (revoked and expired ones count: the
// last revocation never turns authentication off), no bootstrap key and no JWT secret, nothing is
// "enforcing": every request is the local operator (an admin), and app/server_app.cpp makes
// sure that only happens on a loopback address unless told `--insecure-no-auth`.
//
// Thread-safety: every method may be called from any thread. check() never blocks; fetch()
// and refresh() read the store (call them on the blocking pool).
#pragma once

#include <chrono>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/jwt.hpp"
#include "auth/principal.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace parley::config {
class Schema;
}

namespace parley::auth {

struct AuthOptions {
  std::string bootstrap_admin_key;  // empty = none
  std::string jwt_secret;           // empty = JWTs not accepted
  std::string jwt_issuer;
  std::string jwt_audience;
  std::chrono::milliseconds key_refresh_interval{10'000};
};

// `admin_key` and `auth.*`, bound to AuthOptions.
void declare_settings(config::Schema& schema);

// The outcome of looking at a request's credentials without touching the store.
struct Check {
  enum class Kind {
    kOk,      // `principal` is set
    kDenied,  // `error` says why (401)
    kLookup,  // a well-formed key this cache does not hold: fetch(key_id), then check again
  };
  Kind kind = Kind::kDenied;
  Principal principal;
  Error error;
  std::string key_id;
};

class Authenticator {
 public:
  Authenticator(store::ApiKeyRepository& keys, AuthOptions options);

  // Loads every key (startup; then refresh() keeps the cache current).
  Result<void> load(int64_t now_ms);
  // Reloads when the refresh interval has passed; true when it did.
  bool refresh_due(int64_t now_ms) const;
  Result<void> refresh(int64_t now_ms) { return load(now_ms); }
  // Reads one key from the store into the cache (a key another process created).
  Result<void> fetch(std::string_view key_id);

  // Whether credentials are required (see protected mode above).
  bool enforcing() const;

  // `authorization` is the Authorization header, `api_key` the X-API-Key header.
  Check check(std::optional<std::string_view> authorization,
              std::optional<std::string_view> api_key, int64_t now_ms) const;

  // Keeps the cache in step with the admin API's changes.
  void remember(const store::ApiKey& key);

 private:
  struct Entry {
    std::string secret_hash;
    Principal principal;  // what the key acts as
    std::optional<int64_t> expires_at_ms;
    std::optional<int64_t> revoked_at_ms;
  };
  using Map = std::unordered_map<std::string, Entry>;

  static Entry make_entry(const store::ApiKey& key);
  std::shared_ptr<const Map> snapshot() const;
  Check check_token(std::string_view token, int64_t now_ms) const;

  store::ApiKeyRepository& keys_;
  AuthOptions options_;
  JwtOptions jwt_;
  std::string bootstrap_hash_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Map> map_;
  std::atomic<int64_t> loaded_at_ms_{0};
  std::atomic<int64_t> active_keys_{0};
};

}  // namespace parley::auth
