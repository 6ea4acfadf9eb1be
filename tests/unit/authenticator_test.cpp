// The Authenticator (auth/authenticator.hpp) over a real SQLite key table in a temporary
// directory, with keys made by auth::create_key: API keys in `Authorization: Bearer` and in
// `X-API-Key` give the key's principal (scope, tenant, user, limit overrides); a wrong secret,
// a revoked key and an expired key are refused (revocation and expiry told only to the holder
// of the secret); a key the cache does not hold is a lookup, then known after fetch() or still
// unknown if the store has none; missing and malformed credentials; the bootstrap admin key;
// HS256 JWTs when a secret is configured (with the issuer and audience checks and seconds taken
// from now_ms); protected mode, which no revocation ever turns back on; and the refresh timing.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "auth/api_key.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "auth/key_admin.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using parley::ErrorCode;
using parley::auth::Authenticator;
using parley::auth::AuthOptions;
using parley::auth::Check;
using parley::auth::CreatedKey;
using parley::auth::format_token;
using parley::auth::generate_key;
using parley::auth::KeyToken;
using parley::auth::kTokenPrefix;
using parley::auth::NewKey;
using parley::auth::parse_token;
using parley::auth::Scope;
using parley::auth::sign_jwt;
using parley::store::Storage;

constexpr int64_t kNow = 1'750'000'000'000;  // unix ms
constexpr std::string_view kJwtSecret = "jwt-secret-for-tests-32-bytes-ok";
constexpr std::string_view kBootstrapKey = "bootstrap-admin-key-with-40-characters!!";

using parley::testing::TempDir;

std::string bearer(std::string_view token) {
  std::string header = "Bearer ";
  header += token;
  return header;
}

// The same key id with a secret that is well-formed but not the key's.
std::string with_wrong_secret(const std::string& token) {
  auto parsed = parse_token(token);
  if (!parsed) {
    ADD_FAILURE() << "not a key token: " << token;
    return token;
  }
  KeyToken wrong = *parsed;
  wrong.secret = std::string(64, wrong.secret.front() == '0' ? '1' : '0');
  return format_token(wrong);
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() {
    parley::store::sqlite::Options options;
    options.path = dir_.path() + "/parley.db";
    auto opened = parley::store::sqlite::open(options);
    if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
    storage_ = std::move(opened).value();
  }
  ~AuthenticatorTest() override { storage_->close(); }

  CreatedKey create(NewKey request) {
    auto created = parley::auth::create_key(storage_->api_keys(), request, kNow);
    if (!created.ok()) throw std::runtime_error("create_key failed: " + created.error().message);
    return std::move(created).value();
  }
  CreatedKey create_service_key() {
    NewKey request;
    request.name = "backend";
    request.scope = "service";
    request.tenant_id = "acme";
    return create(request);
  }

  // An authenticator that has loaded the key table, as at startup.
  std::unique_ptr<Authenticator> loaded(AuthOptions options = {}) {
    auto auth = std::make_unique<Authenticator>(storage_->api_keys(), std::move(options));
    if (auto r = auth->load(kNow); !r.ok()) ADD_FAILURE() << r.error().message;
    return auth;
  }

  static void expect_denied(const Check& check, std::string_view reason) {
    EXPECT_EQ(check.kind, Check::Kind::kDenied);
    EXPECT_EQ(check.error.code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(check.error.reason, reason) << check.error.message;
  }

  TempDir dir_{"parley-auth"};
  std::unique_ptr<Storage> storage_;
};

TEST_F(AuthenticatorTest, NothingToCheckAgainstIsProtectedMode) {
  EXPECT_FALSE(loaded()->enforcing());
}

TEST_F(AuthenticatorTest, AnyCredentialSourceTurnsEnforcingOn) {
  AuthOptions bootstrap;
  bootstrap.bootstrap_admin_key = std::string(kBootstrapKey);
  EXPECT_TRUE(loaded(bootstrap)->enforcing());

  AuthOptions jwt;
  jwt.jwt_secret = std::string(kJwtSecret);
  EXPECT_TRUE(loaded(jwt)->enforcing());

  create_service_key();
  EXPECT_TRUE(loaded()->enforcing());
}

TEST_F(AuthenticatorTest, BearerServiceKeyGivesItsPrincipal) {
  const CreatedKey key = create_service_key();
  const Check check = loaded()->check(bearer(key.token), std::nullopt, kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.scope, Scope::kService);
  EXPECT_EQ(check.principal.key_id, key.key.id);
  EXPECT_EQ(check.principal.tenant_id, "acme");
  EXPECT_EQ(check.principal.user_id, "");
}

TEST_F(AuthenticatorTest, XApiKeyHeaderWorksLikeBearer) {
  const CreatedKey key = create_service_key();
  const Check check = loaded()->check(std::nullopt, key.token, kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.key_id, key.key.id);
}

TEST_F(AuthenticatorTest, AuthorizationHeaderIsTheOneReadWhenBothAreSent) {
  const CreatedKey key = create_service_key();
  const Check check = loaded()->check(bearer(key.token), "not-a-key", kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.key_id, key.key.id);
}

TEST_F(AuthenticatorTest, UserKeyActsAsItsUserWithItsLimits) {
  NewKey request;
  request.name = "alice's phone";
  request.scope = "user";
  request.tenant_id = "acme";
  request.user_id = "alice";
  request.limits.key.requests_per_minute = 5;
  request.limits.user.usd_per_day = 2.5;
  const CreatedKey key = create(request);

  const Check check = loaded()->check(bearer(key.token), std::nullopt, kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.scope, Scope::kUser);
  EXPECT_EQ(check.principal.tenant_id, "acme");
  EXPECT_EQ(check.principal.user_id, "alice");
  EXPECT_EQ(check.principal.limits.key.requests_per_minute, std::optional<int64_t>(5));
  EXPECT_EQ(check.principal.limits.user.usd_per_day, std::optional<double>(2.5));
  EXPECT_FALSE(check.principal.limits.key.tokens_per_minute.has_value());
}

TEST_F(AuthenticatorTest, AdminKeyIsAnAdmin) {
  NewKey request;
  request.name = "ops";
  request.scope = "admin";
  const CreatedKey key = create(request);
  const Check check = loaded()->check(bearer(key.token), std::nullopt, kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_TRUE(check.principal.admin());
  EXPECT_EQ(check.principal.tenant_id, "default");
}

TEST_F(AuthenticatorTest, BearerSchemeIsCaseInsensitiveAndSpacesAroundTheTokenDoNotCount) {
  const CreatedKey key = create_service_key();
  auto auth = loaded();
  for (const std::string& header :
       {std::string("bearer ") + key.token, std::string("BEARER ") + key.token,
        std::string("Bearer   ") + key.token + "  "}) {
    EXPECT_EQ(auth->check(header, std::nullopt, kNow).kind, Check::Kind::kOk) << header;
  }
}

TEST_F(AuthenticatorTest, WrongSecretIsRefused) {
  const CreatedKey key = create_service_key();
  auto auth = loaded();
  expect_denied(auth->check(bearer(with_wrong_secret(key.token)), std::nullopt, kNow),
                "invalid_api_key");
  expect_denied(auth->check(std::nullopt, with_wrong_secret(key.token), kNow), "invalid_api_key");
}

TEST_F(AuthenticatorTest, MissingCredentialsAreNamedAsSuch) {
  expect_denied(loaded()->check(std::nullopt, std::nullopt, kNow), "missing_api_key");
}

TEST_F(AuthenticatorTest, MalformedCredentialsAreRefused) {
  const CreatedKey key = create_service_key();
  auto auth = loaded();
  for (const std::string& header :
       {std::string("Basic dXNlcjpwYXNz"), std::string("Bearer"), std::string("Bearer "),
        std::string("Bearer    "), std::string("Token ") + key.token, key.token}) {
    expect_denied(auth->check(header, std::nullopt, kNow), "malformed_credentials");
  }
  expect_denied(auth->check(std::nullopt, "", kNow), "malformed_credentials");
}

TEST_F(AuthenticatorTest, TokensThatAreNotOurShapeAreInvalid) {
  const CreatedKey key = create_service_key();
  auto auth = loaded();
  std::string uppercase_secret = key.token;
  for (size_t i = uppercase_secret.size() - 64; i < uppercase_secret.size(); ++i) {
    uppercase_secret[i] = static_cast<char>(std::toupper(uppercase_secret[i]));
  }
  for (const std::string& token :
       {std::string("sk-not-ours"), key.token.substr(0, key.token.size() - 1), key.token + "0",
        uppercase_secret, key.token.substr(kTokenPrefix.size())}) {
    expect_denied(auth->check(bearer(token), std::nullopt, kNow), "invalid_api_key");
  }
}

TEST_F(AuthenticatorTest, KeyCreatedAfterLoadingIsLookedUpThenKnown) {
  auto auth = loaded();
  // Another process (`parley keys create`) adds a key the cache has never seen.
  const CreatedKey key = create_service_key();

  const Check first = auth->check(bearer(key.token), std::nullopt, kNow);
  ASSERT_EQ(first.kind, Check::Kind::kLookup);
  EXPECT_EQ(first.key_id, key.key.id);

  ASSERT_TRUE(auth->fetch(first.key_id).ok());
  const Check second = auth->check(bearer(key.token), std::nullopt, kNow);
  ASSERT_EQ(second.kind, Check::Kind::kOk) << second.error.message;
  EXPECT_EQ(second.principal.key_id, key.key.id);
}

TEST_F(AuthenticatorTest, FetchedKeyStillNeedsItsSecret) {
  auto auth = loaded();
  const CreatedKey key = create_service_key();
  const std::string forged = with_wrong_secret(key.token);
  const Check first = auth->check(bearer(forged), std::nullopt, kNow);
  ASSERT_EQ(first.kind, Check::Kind::kLookup);
  ASSERT_TRUE(auth->fetch(first.key_id).ok());
  expect_denied(auth->check(bearer(forged), std::nullopt, kNow), "invalid_api_key");
}

TEST_F(AuthenticatorTest, KeyIdTheStoreDoesNotHoldStaysALookup) {
  auto auth = loaded();
  const std::string token = format_token(generate_key());
  const Check first = auth->check(bearer(token), std::nullopt, kNow);
  ASSERT_EQ(first.kind, Check::Kind::kLookup);
  // A missing key is no error of the store: fetch succeeds and caches nothing, and the second
  // look is a lookup again, which the caller refuses.
  ASSERT_TRUE(auth->fetch(first.key_id).ok());
  EXPECT_EQ(auth->check(bearer(token), std::nullopt, kNow).kind, Check::Kind::kLookup);
}

TEST_F(AuthenticatorTest, RevokedKeyIsRefusedOnceTheCacheKnows) {
  const CreatedKey key = create_service_key();
  auto auth = loaded();
  auto revoked = storage_->api_keys().revoke(key.key.id, kNow + 1);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;

  // Revoked through this server's admin API: the cache changes at once.
  auth->remember(*revoked);
  expect_denied(auth->check(bearer(key.token), std::nullopt, kNow + 2), "revoked_api_key");
  // Revoked by another process: seen at the next reload.
  expect_denied(loaded()->check(bearer(key.token), std::nullopt, kNow + 2), "revoked_api_key");
}

TEST_F(AuthenticatorTest, RevocationIsToldOnlyToTheHolderOfTheSecret) {
  const CreatedKey key = create_service_key();
  ASSERT_TRUE(storage_->api_keys().revoke(key.key.id, kNow + 1).ok());
  expect_denied(loaded()->check(bearer(with_wrong_secret(key.token)), std::nullopt, kNow + 2),
                "invalid_api_key");
}

TEST_F(AuthenticatorTest, KeyExpiresAtItsExpiryTime) {
  NewKey request;
  request.name = "short-lived";
  request.scope = "service";
  request.expires_at_ms = kNow + 1'000;
  const CreatedKey key = create(request);
  auto auth = loaded();
  EXPECT_EQ(auth->check(bearer(key.token), std::nullopt, kNow + 999).kind, Check::Kind::kOk);
  expect_denied(auth->check(bearer(key.token), std::nullopt, kNow + 1'000), "expired_api_key");
  expect_denied(auth->check(bearer(with_wrong_secret(key.token)), std::nullopt, kNow + 1'000),
                "invalid_api_key");
}

TEST_F(AuthenticatorTest, RevokingTheLastKeyKeepsAuthenticationOn) {
  const CreatedKey key = create_service_key();
  auto auth = loaded();
  ASSERT_TRUE(auth->enforcing());
  auto revoked = storage_->api_keys().revoke(key.key.id, kNow + 1);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;

  auth->remember(*revoked);
  EXPECT_TRUE(auth->enforcing());
  ASSERT_TRUE(auth->refresh(kNow + 2).ok());
  EXPECT_TRUE(auth->enforcing());
  // A restart reads the revoked key too.
  EXPECT_TRUE(loaded()->enforcing());
}

TEST_F(AuthenticatorTest, ExpiredLastKeyKeepsAuthenticationOn) {
  NewKey request;
  request.name = "short-lived";
  request.scope = "service";
  request.expires_at_ms = kNow + 1'000;
  create(request);
  auto auth = std::make_unique<Authenticator>(storage_->api_keys(), AuthOptions{});
  ASSERT_TRUE(auth->load(kNow + 60'000).ok());
  EXPECT_TRUE(auth->enforcing());
}

TEST_F(AuthenticatorTest, BootstrapAdminKeyIsTheAdmin) {
  AuthOptions options;
  options.bootstrap_admin_key = std::string(kBootstrapKey);
  auto auth = loaded(options);
  for (const Check& check : {auth->check(bearer(kBootstrapKey), std::nullopt, kNow),
                             auth->check(std::nullopt, kBootstrapKey, kNow)}) {
    ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
    EXPECT_TRUE(check.principal.admin());
    EXPECT_EQ(check.principal.key_id, "bootstrap");
  }
  std::string almost(kBootstrapKey);
  almost.back() = '?';
  expect_denied(auth->check(bearer(almost), std::nullopt, kNow), "invalid_api_key");
}

TEST_F(AuthenticatorTest, BootstrapKeyAndStoredKeysWorkSideBySide) {
  const CreatedKey key = create_service_key();
  AuthOptions options;
  options.bootstrap_admin_key = std::string(kBootstrapKey);
  auto auth = loaded(options);
  EXPECT_EQ(auth->check(bearer(key.token), std::nullopt, kNow).principal.scope, Scope::kService);
  EXPECT_EQ(auth->check(bearer(kBootstrapKey), std::nullopt, kNow).principal.key_id, "bootstrap");
}

class AuthenticatorJwtTest : public AuthenticatorTest {
 protected:
  AuthOptions jwt_options() {
    AuthOptions options;
    options.jwt_secret = std::string(kJwtSecret);
    return options;
  }
  static std::string token(nlohmann::json claims) {
    if (!claims.contains("exp")) claims["exp"] = kNow / 1000 + 3600;
    return sign_jwt(claims.dump(), kJwtSecret);
  }
};

TEST_F(AuthenticatorJwtTest, TokenUserIsAUserOfItsTenant) {
  auto auth = loaded(jwt_options());
  const Check check =
      auth->check(bearer(token({{"sub", "alice"}, {"tenant", "acme"}})), std::nullopt, kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.scope, Scope::kUser);
  EXPECT_EQ(check.principal.tenant_id, "acme");
  EXPECT_EQ(check.principal.user_id, "alice");
  // Each token user is its own key for limits, usage and idempotency.
  EXPECT_EQ(check.principal.key_id, "jwt:acme:alice");
}

TEST_F(AuthenticatorJwtTest, TokenWithoutTenantIsInTheDefaultTenant) {
  const Check check = loaded(jwt_options())->check(std::nullopt, token({{"sub", "bob"}}), kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.tenant_id, "default");
  EXPECT_EQ(check.principal.key_id, "jwt:default:bob");
}

TEST_F(AuthenticatorJwtTest, BadTokenIsRefusedAsAnInvalidToken) {
  auto auth = loaded(jwt_options());
  const std::string other_secret =
      sign_jwt(nlohmann::json{{"sub", "alice"}, {"exp", kNow / 1000 + 3600}}.dump(),
               "another-secret-of-32-bytes-000000");
  expect_denied(auth->check(bearer(other_secret), std::nullopt, kNow), "invalid_token");
  expect_denied(auth->check(bearer(token({{"tenant", "acme"}})), std::nullopt, kNow),
                "invalid_token");
}

TEST_F(AuthenticatorJwtTest, TokensAreNotAcceptedWithoutAJwtSecret) {
  expect_denied(loaded()->check(bearer(token({{"sub", "alice"}})), std::nullopt, kNow),
                "invalid_api_key");
}

TEST_F(AuthenticatorJwtTest, ExpiryIsJudgedInSecondsOfNowMs) {
  auto auth = loaded(jwt_options());
  const int64_t exp = kNow / 1000;
  const int64_t leeway = parley::auth::JwtOptions{}.leeway_seconds;
  const std::string t = token({{"sub", "alice"}, {"exp", exp}});
  EXPECT_EQ(auth->check(bearer(t), std::nullopt, (exp + leeway - 1) * 1000 + 999).kind,
            Check::Kind::kOk);
  expect_denied(auth->check(bearer(t), std::nullopt, (exp + leeway + 1) * 1000), "invalid_token");
}

TEST_F(AuthenticatorJwtTest, IssuerAndAudienceAreThoseConfigured) {
  AuthOptions options = jwt_options();
  options.jwt_issuer = "https://app.example";
  options.jwt_audience = "parley";
  auto auth = loaded(options);
  const std::string both =
      token({{"sub", "alice"}, {"iss", "https://app.example"}, {"aud", "parley"}});
  EXPECT_EQ(auth->check(bearer(both), std::nullopt, kNow).kind, Check::Kind::kOk);
  expect_denied(
      auth->check(bearer(token({{"sub", "alice"}, {"aud", "parley"}})), std::nullopt, kNow),
      "invalid_token");
  expect_denied(auth->check(bearer(token({{"sub", "alice"}, {"iss", "https://app.example"}})),
                            std::nullopt, kNow),
                "invalid_token");
}

TEST_F(AuthenticatorJwtTest, ApiKeysStillWorkBesideTokens) {
  const CreatedKey key = create_service_key();
  const Check check = loaded(jwt_options())->check(bearer(key.token), std::nullopt, kNow);
  ASSERT_EQ(check.kind, Check::Kind::kOk) << check.error.message;
  EXPECT_EQ(check.principal.key_id, key.key.id);
}

TEST_F(AuthenticatorTest, RefreshIsDueOnceTheIntervalHasPassed) {
  AuthOptions options;
  options.key_refresh_interval = std::chrono::milliseconds(10'000);
  auto auth = loaded(options);
  EXPECT_FALSE(auth->refresh_due(kNow + 9'999));
  EXPECT_TRUE(auth->refresh_due(kNow + 10'000));
  ASSERT_TRUE(auth->refresh(kNow + 10'000).ok());
  EXPECT_FALSE(auth->refresh_due(kNow + 10'001));
}

TEST_F(AuthenticatorTest, RefreshPicksUpKeysCreatedElsewhere) {
  auto auth = loaded();
  const CreatedKey key = create_service_key();
  ASSERT_EQ(auth->check(bearer(key.token), std::nullopt, kNow).kind, Check::Kind::kLookup);
  ASSERT_TRUE(auth->refresh(kNow + 10'000).ok());
  EXPECT_EQ(auth->check(bearer(key.token), std::nullopt, kNow + 10'000).kind, Check::Kind::kOk);
}

}  // namespace
