// Access control end to end, against the real `parley serve` (and, where a model is called, the
// fake provider process): API keys and JWTs, tenants and users, limits, Idempotency-Key,
// privacy (export and erasure), CORS and security headers, and protected mode.
//
// Tests are grouped by the OWASP API Security Top 10 (2023) category they guard:
//   Api1ObjectLevelAuthorization     every route that takes an object id, tried by the wrong
//                                    principal: someone else's session or user is "not found"
//   Api2Authentication               credentials: missing, malformed, wrong, revoked, expired,
//                                    JWTs, the CLI's keys, protected mode's end, no secret in logs
//   Api3PropertyLevelAuthorization   mass assignment; no secret or hash in key listings
//   Api4ResourceConsumption          request, token, budget and stream limits; body and batch caps
//   Api5FunctionLevelAuthorization   admin routes with user, service and token principals
//   Api8SecurityMisconfiguration     protected mode, CORS allow-list, security headers
// plus Idempotency (retries must not repeat paid calls) and Privacy (export and erasure).
//
// Route tables below mirror the policy table in src/api/access.cpp (kPolicies): a route added
// there should be added here too, so that it is tried with the wrong principal.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

// Bootstrap admin key (PARLEY_ADMIN_KEY needs at least 32 characters) and JWT secret.
const std::string kAdminKey = "itest-bootstrap-admin-key-5f0c2a9e7b31d48c";
const std::string kJwtSecret = "itest-jwt-secret-9d8c7b6a5f4e3d2c1b0a99887766";

const std::regex kTokenShape(R"(^parley_key_[0-9a-z]+_[0-9a-f]{64}$)");

// ---------------------------------------------------------------------------------------------
// Credentials.

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

HeaderList with_header(HeaderList headers, const std::string& name, const std::string& value) {
  headers.emplace_back(name, value);
  return headers;
}

struct Key {
  std::string id;
  std::string token;
  bool ok() const { return !id.empty() && !token.empty(); }
  // The 64 hex digits after the last underscore.
  std::string secret() const { return token.substr(token.rfind('_') + 1); }
};

// The key id inside a token ("parley_" + id + "_" + secret).
std::string key_id_of(const std::string& token) {
  const auto last = token.rfind('_');
  if (token.rfind("parley_", 0) != 0 || last == std::string::npos || last < 7) return "";
  return token.substr(7, last - 7);
}

// Creates a key through the admin API. `admin` empty: no credentials (protected mode).
Key create_key(int port, const json& spec, const std::string& admin = kAdminKey) {
  auto r = http("POST", port, "/api/v1/admin/keys", spec.dump(),
                admin.empty() ? HeaderList{} : bearer(admin));
  EXPECT_EQ(r.status, 201) << spec.dump() << "\n" << r.describe();
  auto j = r.json_or_discarded();
  if (r.status != 201 || !j.is_object() || !j.contains("key") || !j["key"].is_string() ||
      !j.contains("id") || !j["id"].is_string()) {
    return {};
  }
  return {j["id"].get<std::string>(), j["key"].get<std::string>()};
}

Key user_key(int port, const std::string& user, const std::string& tenant = "default") {
  return create_key(port, {{"scope", "user"}, {"user_id", user}, {"tenant_id", tenant}});
}

Key service_key(int port, const std::string& tenant = "default") {
  return create_key(port, {{"scope", "service"}, {"tenant_id", tenant}});
}

// `parley keys create ... --data-dir DIR`: the token printed on stdout.
std::string cli_create_key(const std::string& data_dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"keys", "create", "--data-dir", data_dir};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_parley(args);
  EXPECT_EQ(r.exit_code(), 0) << r.describe();
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

ServeOptions with_admin(std::vector<std::string> args = {}) {
  return {.args = std::move(args), .env = {{"PARLEY_ADMIN_KEY", kAdminKey}}};
}

// ---------------------------------------------------------------------------------------------
// HS256 JWTs, made here rather than with the product's own signer.

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  if (bytes.size() - i == 1) {
    const uint32_t n = byte(i) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
  } else if (bytes.size() - i == 2) {
    const uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string sign_jwt(const json& header, const json& claims, std::string_view secret) {
  const std::string signing_input = base64url(header.dump()) + "." + base64url(claims.dump());
  return signing_input + "." + base64url(hmac_sha256(secret, signing_input));
}

const json kHs256Header = {{"alg", "HS256"}, {"typ", "JWT"}};

// A valid token for `sub` (in `tenant` when given), expiring in ten minutes.
std::string user_jwt(const std::string& sub, const std::string& tenant = "") {
  json claims = {{"sub", sub}, {"exp", unix_now() + 600}, {"iat", unix_now()}};
  if (!tenant.empty()) claims["tenant"] = tenant;
  return sign_jwt(kHs256Header, claims, kJwtSecret);
}

// ---------------------------------------------------------------------------------------------
// Responses.

std::string error_code(const Response& r) {
  auto j = r.json_or_discarded();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return "";
  return j["error"].value("code", "");
}

std::string error_param(const Response& r) {
  auto j = r.json_or_discarded();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return "";
  return j["error"].value("param", "");
}

// Every value of the headers called `name`.
std::vector<std::string> header_values(const Response& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers) {
    if (iequals(k, name)) out.push_back(v);
  }
  return out;
}

bool any_header_contains(const Response& r, std::string_view name, std::string_view text) {
  for (const auto& v : header_values(r, name)) {
    if (v.find(text) != std::string::npos) return true;
  }
  return false;
}

bool replayed(const Response& r) {
  return iequals(r.header("Idempotent-Replayed").value_or(""), "true");
}

// A 401 says how to authenticate.
::testing::AssertionResult is_unauthenticated(const Response& r, std::string_view code = "") {
  auto e = is_error(r, 401, code);
  if (!e) return e;
  if (!icontains(r.header("WWW-Authenticate").value_or(""), "Bearer")) {
    return ::testing::AssertionFailure() << "401 without WWW-Authenticate: Bearer\n"
                                         << r.describe();
  }
  return ::testing::AssertionSuccess();
}

// The error body with what legitimately differs between two requests taken out: the request id,
// and the object id inside the message.
json error_shape(const Response& r, const std::string& id) {
  json j = r.json_or_discarded();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return j;
  j["error"].erase("request_id");
  if (j["error"].contains("message") && j["error"]["message"].is_string()) {
    std::string m = j["error"]["message"];
    for (auto pos = m.find(id); !id.empty() && pos != std::string::npos; pos = m.find(id))
      m.replace(pos, id.size(), "<id>");
    j["error"]["message"] = m;
  }
  return j;
}

// Header names, lowercased and sorted, without those whose presence varies by time.
std::vector<std::string> header_names(const Response& r) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers) {
    std::string name = k;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "date") continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

void expect_security_headers(const Response& r, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(r.header("X-Content-Type-Options").value_or(""), "nosniff") << r.describe();
  EXPECT_TRUE(iequals(r.header("X-Frame-Options").value_or(""), "DENY")) << r.describe();
  EXPECT_FALSE(r.header("Content-Security-Policy").value_or("").empty()) << r.describe();
  EXPECT_FALSE(r.header("Referrer-Policy").value_or("").empty()) << r.describe();
  EXPECT_TRUE(icontains(r.header("Cache-Control").value_or(""), "no-store"))
      << "responses carry user data and must not be stored by any cache\n"
      << r.describe();
}

// ---------------------------------------------------------------------------------------------
// A server in front of the fake provider (harness.hpp).

// Parley with provider "fake" (OpenAI format) on the fake upstream, and the bootstrap admin key.
struct Stack {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  std::unique_ptr<ParleyProcess> parley;

  explicit Stack(const std::string& extra_yaml = "", std::vector<std::string> args = {}) {
    auto file = config_dir.write_file("parley.yaml", fake.base_config() + extra_yaml);
    ServeOptions opts = with_admin({"--config", file});
    opts.args.insert(opts.args.end(), args.begin(), args.end());
    parley = std::make_unique<ParleyProcess>(opts);
  }
  int port() const { return parley->port(); }
};

// A priced model, so that calls cost money: 11 prompt and 6 completion tokens (the fake's
// default usage) cost $0.00007.
const std::string kPricedModel = "models:\n  fake-model:\n    input: 2.0\n    output: 8.0\n";

// ---------------------------------------------------------------------------------------------
// The policy table (src/api/access.cpp), with a concrete path and a valid body for each route.

struct TableRoute {
  std::string method;
  std::string path;
  std::string body;
  bool is_public = false;
};

std::vector<TableRoute> policy_table() {
  return {
      {"GET", "/health", "", true},
      {"GET", "/api/v1/health/liveness", "", true},
      {"GET", "/api/v1/health/readiness", "", true},
      {"GET", "/metrics", "", true},
      {"GET", "/api/v1/health/diagnostics", ""},
      {"POST", "/api/v1/sessions", "{}"},
      {"GET", "/api/v1/sessions", ""},
      {"GET", "/api/v1/sessions/sess_probe", ""},
      {"PATCH", "/api/v1/sessions/sess_probe", R"({"title":"x"})"},
      {"DELETE", "/api/v1/sessions/sess_probe", ""},
      {"GET", "/api/v1/sessions/sess_probe/messages", ""},
      {"POST", "/api/v1/sessions/sess_probe/messages", R"({"content":"hi"})"},
      {"POST", "/api/v1/chat", R"({"message":"hi"})"},
      {"GET", "/api/v1/assistants", ""},
      {"GET", "/api/v1/usage", ""},
      {"GET", "/api/v1/users/alice/export", ""},
      {"DELETE", "/api/v1/users/alice", ""},
      {"POST", "/v1/chat/completions",
       R"({"model":"builtin","messages":[{"role":"user","content":"hi"}]})"},
      {"POST", "/v1/embeddings", R"({"model":"builtin","input":"hi"})"},
      {"GET", "/v1/models", ""},
      {"GET", "/v1/models/builtin", ""},
      {"POST", "/v1/moderations", R"({"input":"hi"})"},
      {"POST", "/api/v1/admin/keys", R"({"scope":"admin"})"},
      {"GET", "/api/v1/admin/keys", ""},
      {"GET", "/api/v1/admin/keys/key_probe", ""},
      {"DELETE", "/api/v1/admin/keys/key_probe", ""},
      {"GET", "/api/v1/admin/moderation/logs", ""},
      {"GET", "/api/v1/admin/jobs", ""},
      {"GET", "/api/v1/admin/jobs/job_probe", ""},
      {"POST", "/api/v1/admin/jobs/job_probe/retry", ""},
  };
}

// =============================================================================================
// API2: broken authentication.

TEST(Api2Authentication, EveryNonPublicRouteInThePolicyTableNeedsCredentials) {
  ParleyProcess p(with_admin());
  const std::string unknown_key = "parley_key_0000000000000000_" + std::string(64, 'a');
  for (const auto& route : policy_table()) {
    SCOPED_TRACE(route.method + " " + route.path);
    auto bare = http(route.method, p.port(), route.path, route.body);
    if (route.is_public) {
      EXPECT_NE(bare.status, 401) << bare.describe();
      EXPECT_NE(bare.status, 403) << bare.describe();
      EXPECT_LT(bare.status, 500) << bare.describe();
      continue;
    }
    EXPECT_TRUE(is_unauthenticated(bare, "missing_api_key"));
    EXPECT_TRUE(is_unauthenticated(
        http(route.method, p.port(), route.path, route.body, bearer(unknown_key)),
        "invalid_api_key"));
    EXPECT_TRUE(is_unauthenticated(
        http(route.method, p.port(), route.path, route.body, {{"Authorization", "Basic YTpi"}}),
        "malformed_credentials"));
    EXPECT_TRUE(is_unauthenticated(
        http(route.method, p.port(), route.path, route.body, {{"X-API-Key", "not-a-key"}}),
        "invalid_api_key"));
  }
}

TEST(Api2Authentication, KeysAreCheckedAndEachFailureSaysWhy) {
  ParleyProcess p(with_admin());
  const Key alice = user_key(p.port(), "alice");
  const Key doomed = user_key(p.port(), "alice");
  const Key brief =
      create_key(p.port(), {{"scope", "user"}, {"user_id", "alice"}, {"expires_at", "2s"}});
  ASSERT_TRUE(alice.ok() && doomed.ok() && brief.ok());
  EXPECT_TRUE(std::regex_match(alice.token, kTokenShape)) << alice.token;
  EXPECT_EQ(key_id_of(alice.token), alice.id);

  // Both header forms, and the scheme in any case.
  const std::string path = "/api/v1/sessions";
  EXPECT_EQ(http("GET", p.port(), path, "", bearer(alice.token)).status, 200);
  EXPECT_EQ(http("GET", p.port(), path, "", {{"X-API-Key", alice.token}}).status, 200);
  EXPECT_EQ(http("GET", p.port(), path, "", {{"Authorization", "bearer " + alice.token}}).status,
            200);
  EXPECT_EQ(http("GET", p.port(), path, "", bearer(kAdminKey)).status, 200);
  EXPECT_EQ(http("GET", p.port(), path, "", bearer(brief.token)).status, 200);

  // The right key id with a wrong secret; an unknown id; garbage; the wrong bootstrap key.
  std::string wrong_secret = alice.token;
  wrong_secret.back() = wrong_secret.back() == '0' ? '1' : '0';
  for (const auto& token :
       {wrong_secret, "parley_key_zzzzzzzzzzzzzzzz_" + alice.secret(), std::string("hello"),
        kAdminKey + "0", kAdminKey.substr(0, kAdminKey.size() - 1)}) {
    auto r = http("GET", p.port(), path, "", bearer(token));
    EXPECT_TRUE(is_unauthenticated(r, "invalid_api_key")) << token;
    EXPECT_EQ(r.body.find(token), std::string::npos) << "the error echoes the credential";
  }
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), path), "missing_api_key"));
  EXPECT_TRUE(is_unauthenticated(
      http("GET", p.port(), path, "", {{"Authorization", "Basic " + alice.token}}),
      "malformed_credentials"));
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), path, "", {{"Authorization", alice.token}}),
                                 "malformed_credentials"));

  // Revoked: said so to the holder of the secret only.
  auto revoke = http("DELETE", p.port(), "/api/v1/admin/keys/" + doomed.id, "", bearer(kAdminKey));
  ASSERT_EQ(revoke.status, 200) << revoke.describe();
  EXPECT_EQ(revoke.json()["status"], "revoked");
  EXPECT_TRUE(
      is_unauthenticated(http("GET", p.port(), path, "", bearer(doomed.token)), "revoked_api_key"));
  std::string doomed_guess = doomed.token;
  doomed_guess.back() = doomed_guess.back() == '0' ? '1' : '0';
  EXPECT_TRUE(
      is_unauthenticated(http("GET", p.port(), path, "", bearer(doomed_guess)), "invalid_api_key"))
      << "a wrong secret must not learn that the key exists and was revoked";
  EXPECT_EQ(http("GET", p.port(), path, "", bearer(alice.token)).status, 200)
      << "revoking one of a user's keys leaves the others working";

  // Expired: within a bounded wait of its two seconds.
  EXPECT_TRUE(eventually(
      [&] {
        return error_code(http("GET", p.port(), path, "", bearer(brief.token))) ==
               "expired_api_key";
      },
      Millis{6000}, Millis{100}));
  EXPECT_TRUE(
      is_unauthenticated(http("GET", p.port(), path, "", bearer(brief.token)), "expired_api_key"));
  auto listed = http("GET", p.port(), "/api/v1/admin/keys/" + brief.id, "", bearer(kAdminKey));
  EXPECT_EQ(listed.json_or_discarded().value("status", ""), "expired") << listed.describe();
}

TEST(Api2Authentication, JwtBearerTokensActAsTheirSubjectAndForgeriesAreRefused) {
  ParleyProcess p(with_admin({"--set", "auth.jwt_secret=" + kJwtSecret}));
  const std::string alice = user_jwt("alice");

  auto created = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(alice));
  ASSERT_EQ(created.status, 201) << created.describe();
  EXPECT_EQ(created.json()["user_id"], "alice");
  const std::string sid = created.json()["id"];
  EXPECT_EQ(http("GET", p.port(), "/api/v1/sessions/" + sid, "", bearer(alice)).status, 200);
  EXPECT_TRUE(
      is_error(http("POST", p.port(), "/api/v1/sessions", R"({"user_id":"bob"})", bearer(alice)),
               403, "user_mismatch"));
  EXPECT_TRUE(
      is_error(http("GET", p.port(), "/api/v1/sessions/" + sid, "", bearer(user_jwt("bob"))), 404,
               "session_not_found"));
  // The tenant claim: the same user name in another tenant is another user.
  EXPECT_TRUE(is_error(
      http("GET", p.port(), "/api/v1/sessions/" + sid, "", bearer(user_jwt("alice", "acme"))), 404,
      "session_not_found"));
  auto in_acme =
      http("POST", p.port(), "/api/v1/sessions", "{}", bearer(user_jwt("alice", "acme")));
  ASSERT_EQ(in_acme.status, 201) << in_acme.describe();
  auto acme_list =
      http("GET", p.port(), "/api/v1/sessions?tenant_id=acme", "", bearer(kAdminKey)).json();
  ASSERT_EQ(acme_list["data"].size(), 1u) << acme_list.dump();
  EXPECT_EQ(acme_list["data"][0]["id"], in_acme.json()["id"]);

  const int64_t now = unix_now();
  const json good_claims = {{"sub", "alice"}, {"exp", now + 600}};
  const std::string good_input =
      base64url(kHs256Header.dump()) + "." + base64url(good_claims.dump());
  const std::string real_signature = base64url(hmac_sha256(kJwtSecret, good_input));
  const json none_header = {{"alg", "none"}, {"typ", "JWT"}};
  const std::string none_input =
      base64url(none_header.dump()) + "." + base64url(good_claims.dump());
  const json admin_claims = {{"sub", "admin"}, {"exp", now + 600}};

  const std::map<std::string, std::string> forgeries = {
      {"alg none, no signature", none_input + "."},
      {"alg none, a signature", none_input + "." + base64url(hmac_sha256(kJwtSecret, none_input))},
      {"alg HS512 named, HS256 made",
       sign_jwt({{"alg", "HS512"}, {"typ", "JWT"}}, good_claims, kJwtSecret)},
      {"signed with another secret",
       sign_jwt(kHs256Header, good_claims, "another-secret-0123456789abcdef0123456789")},
      {"claims swapped after signing", base64url(kHs256Header.dump()) + "." +
                                           base64url(admin_claims.dump()) + "." + real_signature},
      {"expired an hour ago",
       sign_jwt(kHs256Header, {{"sub", "alice"}, {"exp", now - 3600}}, kJwtSecret)},
      {"no exp", sign_jwt(kHs256Header, {{"sub", "alice"}}, kJwtSecret)},
      {"no sub", sign_jwt(kHs256Header, {{"exp", now + 600}}, kJwtSecret)},
      {"empty sub", sign_jwt(kHs256Header, {{"sub", ""}, {"exp", now + 600}}, kJwtSecret)},
      {"not valid before an hour from now",
       sign_jwt(kHs256Header, {{"sub", "alice"}, {"exp", now + 7200}, {"nbf", now + 3600}},
                kJwtSecret)},
      {"signature cut short", good_input + "." + real_signature.substr(0, 20)},
  };
  for (const auto& [what, token] : forgeries) {
    auto r = http("GET", p.port(), "/api/v1/sessions", "", bearer(token));
    EXPECT_TRUE(is_unauthenticated(r)) << what;
    EXPECT_EQ(r.body.find(token), std::string::npos) << what;
  }
  // The control: the same claims, properly signed, are accepted.
  EXPECT_EQ(http("GET", p.port(), "/api/v1/sessions", "", bearer(good_input + "." + real_signature))
                .status,
            200);
  // A token is a user: never an admin.
  EXPECT_TRUE(is_error(http("GET", p.port(), "/api/v1/admin/keys", "", bearer(alice)), 403,
                       "admin_required"));
}

TEST(Api2Authentication, KeysFromTheCommandLine) {
  auto dir = std::make_shared<TempDir>("parley-data");
  const std::string admin =
      cli_create_key(dir->path(), {"--scope", "admin", "--name", "operations"});
  ASSERT_TRUE(std::regex_match(admin, kTokenShape)) << admin;
  const std::string alice = cli_create_key(
      dir->path(), {"--scope", "user", "--user", "alice", "--tenant", "acme", "--expires", "30d",
                    "--limits", R"({"user":{"requests_per_minute":5}})"});
  ASSERT_TRUE(std::regex_match(alice, kTokenShape)) << alice;

  // What the CLI refuses creates nothing.
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"--scope", "user"},
           {"--scope", "root"},
           {"--scope", "service", "--user", "bob"},
           {"--scope", "user", "--user", "bob", "--expires", "2001-01-01"},
           {"--scope", "user", "--user", "bob", "--limits", R"({"key":{"requests_per_hour":-1}})"},
           {"--scope", "user", "--user", "bob", "--tenant", "bad tenant!"}}) {
    std::vector<std::string> args{"keys", "create", "--data-dir", dir->path()};
    args.insert(args.end(), bad.begin(), bad.end());
    auto r = run_parley(args);
    EXPECT_NE(r.exit_code(), 0) << r.describe();
    EXPECT_TRUE(r.out.find("parley_key_") == std::string::npos) << r.describe();
  }

  auto listed = run_parley({"keys", "list", "--json", "--data-dir", dir->path()});
  ASSERT_EQ(listed.exit_code(), 0) << listed.describe();
  auto keys = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(keys.is_array()) << listed.out;
  ASSERT_EQ(keys.size(), 2u) << listed.out;
  for (const auto& token : {admin, alice}) {
    const std::string secret = token.substr(token.rfind('_') + 1);
    EXPECT_EQ(listed.out.find(secret), std::string::npos);
    EXPECT_EQ(listed.out.find(sha256_hex(secret)), std::string::npos);
  }
  for (const auto& k : keys) {
    EXPECT_FALSE(k.contains("secret_hash") || k.contains("key") || k.contains("secret")) << k;
    if (k["id"] == key_id_of(alice)) {
      EXPECT_EQ(k["scope"], "user");
      EXPECT_EQ(k["tenant_id"], "acme");
      EXPECT_EQ(k["user_id"], "alice");
      EXPECT_EQ(k["status"], "active");
      EXPECT_TRUE(k["expires_at"].is_string()) << k;
      EXPECT_EQ(k["limits"], json::parse(R"({"user":{"requests_per_minute":5}})")) << k;
    }
  }

  ParleyProcess p({.args = {"--set", "auth.key_refresh_interval=100ms"}, .shared_data_dir = dir});
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/sessions"), "missing_api_key"));
  auto all = http("GET", p.port(), "/api/v1/admin/keys", "", bearer(admin));
  ASSERT_EQ(all.status, 200) << all.describe();
  EXPECT_EQ(all.json()["data"].size(), 2u);
  auto session = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(alice));
  ASSERT_EQ(session.status, 201) << session.describe();
  EXPECT_EQ(session.json()["user_id"], "alice");

  // A key revoked from the shell stops working within the refresh interval.
  auto revoked = run_parley({"keys", "revoke", key_id_of(alice), "--data-dir", dir->path()});
  EXPECT_EQ(revoked.exit_code(), 0) << revoked.describe();
  EXPECT_TRUE(eventually(
      [&] {
        return error_code(http("GET", p.port(), "/api/v1/sessions", "", bearer(alice))) ==
               "revoked_api_key";
      },
      Millis{3000}));
  // One created from the shell works at once.
  const std::string bob = cli_create_key(dir->path(), {"--scope", "user", "--user", "bob"});
  EXPECT_EQ(http("GET", p.port(), "/api/v1/sessions", "", bearer(bob)).status, 200);
}

TEST(Api2Authentication, TheFirstKeyEndsProtectedMode) {
  ParleyProcess p;
  // No key anywhere: the operator on this machine is an admin without credentials.
  EXPECT_EQ(http("GET", p.port(), "/api/v1/admin/keys").status, 200);
  const Key admin = create_key(p.port(), {{"scope", "admin"}, {"name", "first"}}, "");
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/admin/keys"), "missing_api_key"));
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/sessions"), "missing_api_key"));
  EXPECT_EQ(http("GET", p.port(), "/api/v1/admin/keys", "", bearer(admin.token)).status, 200);
}

// Once keys have been issued, losing the last active one (revoked, or expired) must not turn
// authentication off again: the server would fail open to every client that reaches it through
// a local reverse proxy.
TEST(Api2Authentication, RevokingTheLastKeyDoesNotTurnAuthenticationOff) {
  ParleyProcess p;
  const Key admin = create_key(p.port(), {{"scope", "admin"}}, "");
  ASSERT_TRUE(admin.ok());
  const Key user = create_key(p.port(), {{"scope", "user"}, {"user_id", "alice"}}, admin.token);
  ASSERT_TRUE(user.ok());
  ASSERT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/sessions"), "missing_api_key"));
  ASSERT_EQ(
      http("DELETE", p.port(), "/api/v1/admin/keys/" + user.id, "", bearer(admin.token)).status,
      200);
  ASSERT_EQ(
      http("DELETE", p.port(), "/api/v1/admin/keys/" + admin.id, "", bearer(admin.token)).status,
      200);
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/admin/keys")))
      << "with every issued key revoked, an anonymous request became an admin";
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/sessions")));
  EXPECT_TRUE(is_unauthenticated(
      http("GET", p.port(), "/api/v1/admin/keys", "", bearer(admin.token)), "revoked_api_key"));
}

TEST(Api2Authentication, CredentialsNeverReachTheLogOrErrorBodies) {
  ParleyProcess p(
      with_admin({"--set", "auth.jwt_secret=" + kJwtSecret, "--set", "log.level=debug"}));
  const Key alice = user_key(p.port(), "alice");
  ASSERT_TRUE(alice.ok());
  std::string wrong = alice.token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  const std::string jwt = user_jwt("alice");
  const std::string forged_jwt =
      sign_jwt(kHs256Header, {{"sub", "alice"}, {"exp", unix_now() + 60}},
               "not-the-secret-0123456789abcdef0123456789");

  std::vector<Response> answers;
  auto ask = [&](const std::string& method, const std::string& path, const HeaderList& headers,
                 const std::string& body = "") {
    answers.push_back(http(method, p.port(), path, body, headers));
    return answers.back();
  };
  EXPECT_EQ(ask("GET", "/api/v1/sessions", bearer(alice.token)).status, 200);
  EXPECT_EQ(ask("POST", "/api/v1/sessions", {{"X-API-Key", alice.token}}, "{}").status, 201);
  EXPECT_EQ(ask("GET", "/api/v1/sessions", bearer(jwt)).status, 200);
  EXPECT_EQ(ask("GET", "/api/v1/sessions", bearer(wrong)).status, 401);
  EXPECT_EQ(ask("GET", "/api/v1/sessions", bearer(forged_jwt)).status, 401);
  EXPECT_EQ(ask("GET", "/api/v1/sessions", bearer(kAdminKey + "0")).status, 401);
  EXPECT_EQ(ask("GET", "/api/v1/sessions", {{"Authorization", "Basic " + alice.token}}).status,
            401);
  EXPECT_EQ(ask("GET", "/api/v1/admin/keys", bearer(alice.token)).status, 403);
  EXPECT_EQ(ask("GET", "/api/v1/admin/keys", bearer(jwt)).status, 403);
  EXPECT_EQ(ask("POST", "/api/v1/sessions", bearer(alice.token), R"({"user_id":"bob"})").status,
            403);
  EXPECT_EQ(ask("DELETE", "/api/v1/admin/keys/" + alice.id, bearer(kAdminKey)).status, 200);
  EXPECT_EQ(ask("GET", "/api/v1/sessions", bearer(alice.token)).status, 401);

  const std::vector<std::string> secrets = {kAdminKey,   kJwtSecret,
                                            alice.token, alice.secret(),
                                            wrong,       wrong.substr(wrong.rfind('_') + 1),
                                            jwt,         jwt.substr(jwt.rfind('.') + 1),
                                            forged_jwt};
  for (const auto& r : answers) {
    for (const auto& s : secrets) {
      EXPECT_EQ(r.body.find(s), std::string::npos) << "a response body shows a credential\n"
                                                   << r.describe();
      for (const auto& [name, value] : r.headers) {
        EXPECT_EQ(value.find(s), std::string::npos) << "header " << name << " shows a credential";
      }
    }
  }

  // The access log has the last request: stop, then read everything the process wrote.
  EXPECT_TRUE(p.wait_for_log(
      [](const json& j) {
        return j.value("message", "") == "request" && j.value("status", 0) == 401 &&
               j.value("route", "") == "/api/v1/sessions";
      },
      Millis{3000}));
  ASSERT_TRUE(p.send_signal(SIGTERM));
  EXPECT_TRUE(p.wait_exit(Millis{10000}).has_value());
  p.drain_output();
  size_t lines = 0;
  for (const auto& line : p.logs()) {
    ++lines;
    for (const auto& s : secrets) {
      EXPECT_EQ(line.find(s), std::string::npos) << "log line shows a credential: " << line;
    }
  }
  for (const auto& line : p.stderr_lines()) {
    for (const auto& s : secrets) {
      EXPECT_EQ(line.find(s), std::string::npos) << "stderr shows a credential: " << line;
    }
  }
  EXPECT_GT(lines, answers.size()) << "the access log is missing requests";
}

// =============================================================================================
// API1: broken object level authorisation.

TEST(Api1ObjectLevelAuthorization, EveryRouteTreatsAnotherUsersObjectsAsMissing) {
  ParleyProcess p(with_admin({"--set", "auth.jwt_secret=" + kJwtSecret}));
  const int port = p.port();
  const Key alice = user_key(port, "alice");
  const Key bob = user_key(port, "bob");
  const Key carol = user_key(port, "carol", "other");
  const Key alice_elsewhere = user_key(port, "alice", "other");
  const Key service = service_key(port, "default");
  const Key other_service = service_key(port, "other");
  ASSERT_TRUE(alice.ok() && bob.ok() && carol.ok() && alice_elsewhere.ok() && service.ok() &&
              other_service.ok());

  // Alice's data: a conversation (the built-in provider answers), so messages and usage exist.
  auto chat =
      http("POST", port, "/api/v1/chat", R"({"message":"my secret plan"})", bearer(alice.token));
  ASSERT_EQ(chat.status, 201) << chat.describe();
  const std::string sid = chat.json()["session_id"];
  ASSERT_TRUE(sid.rfind("sess_", 0) == 0) << sid;
  const std::string missing = "sess_" + std::string(sid.size() - 5, '0');
  auto session_before = http("GET", port, "/api/v1/sessions/" + sid, "", bearer(alice.token));
  ASSERT_EQ(session_before.status, 200);
  auto messages_before =
      http("GET", port, "/api/v1/sessions/" + sid + "/messages", "", bearer(alice.token)).json();
  ASSERT_EQ(messages_before["data"].size(), 2u) << messages_before.dump();
  auto usage_of_alice = [&] {
    return http("GET", port, "/api/v1/usage?user_id=alice&tenant_id=default", "", bearer(kAdminKey))
        .json()["total"]["requests"]
        .get<int64_t>();
  };
  const int64_t usage_before = usage_of_alice();
  ASSERT_GE(usage_before, 1);

  struct Principal {
    std::string name;
    HeaderList headers;
  };
  const std::vector<Principal> intruders = {
      {"bob's user key (same tenant)", bearer(bob.token)},
      {"carol's user key (tenant other)", bearer(carol.token)},
      {"a user key for 'alice' of tenant other", bearer(alice_elsewhere.token)},
      {"a service key of tenant other", {{"X-API-Key", other_service.token}}},
      {"bob's JWT", bearer(user_jwt("bob"))},
      {"a JWT for 'alice' of tenant other", bearer(user_jwt("alice", "other"))},
  };
  struct Route {
    std::string method;
    std::string path;
    std::string body;
  };
  // Every route in the policy table that names a session.
  const std::vector<Route> session_routes = {
      {"GET", "/api/v1/sessions/{sid}", ""},
      {"PATCH", "/api/v1/sessions/{sid}", R"({"title":"taken over"})"},
      {"DELETE", "/api/v1/sessions/{sid}", ""},
      {"GET", "/api/v1/sessions/{sid}/messages", ""},
      {"POST", "/api/v1/sessions/{sid}/messages", R"({"content":"what is alice's plan?"})"},
      {"POST", "/api/v1/chat", R"({"message":"what is alice's plan?","session_id":"{sid}"})"},
  };
  for (const auto& who : intruders) {
    for (const auto& route : session_routes) {
      SCOPED_TRACE(who.name + ": " + route.method + " " + route.path);
      auto theirs = http(route.method, port, replace_all(route.path, "{sid}", sid),
                         replace_all(route.body, "{sid}", sid), who.headers);
      auto nobodys = http(route.method, port, replace_all(route.path, "{sid}", missing),
                          replace_all(route.body, "{sid}", missing), who.headers);
      EXPECT_TRUE(is_error(theirs, 404, "session_not_found"));
      EXPECT_EQ(theirs.body.find("secret plan"), std::string::npos);
      // Indistinguishable from an id that does not exist: same body, same headers.
      EXPECT_EQ(error_shape(theirs, sid), error_shape(nobodys, missing)) << nobodys.describe();
      EXPECT_EQ(header_names(theirs), header_names(nobodys));
    }
  }

  // Listings are confined to the principal; naming another user is refused.
  auto ids_in = [](const Response& r) {
    std::set<std::string> ids;
    auto j = r.json_or_discarded();
    if (j.is_object() && j["data"].is_array()) {
      for (const auto& s : j["data"]) ids.insert(s.value("id", ""));
    }
    return ids;
  };
  for (const auto& who : intruders) {
    SCOPED_TRACE(who.name);
    auto list = http("GET", port, "/api/v1/sessions?tenant_id=default", "", who.headers);
    ASSERT_EQ(list.status, 200) << list.describe();
    EXPECT_EQ(ids_in(list).count(sid), 0u) << list.describe();
    auto usage =
        http("GET", port, "/api/v1/usage?group_by=user&tenant_id=default", "", who.headers);
    ASSERT_EQ(usage.status, 200) << usage.describe();
    for (const auto& row : usage.json()["data"]) {
      EXPECT_NE(row.value("user", ""), "alice") << usage.body;
    }
  }
  for (const auto& who : {bearer(bob.token), bearer(user_jwt("bob"))}) {
    EXPECT_TRUE(is_error(http("GET", port, "/api/v1/sessions?user_id=alice", "", who), 403,
                         "user_mismatch"));
    EXPECT_TRUE(
        is_error(http("GET", port, "/api/v1/usage?user_id=alice", "", who), 403, "user_mismatch"));
  }
  auto foreign_usage = http("GET", port, "/api/v1/usage?user_id=alice&tenant_id=default", "",
                            {{"X-API-Key", other_service.token}});
  ASSERT_EQ(foreign_usage.status, 200) << foreign_usage.describe();
  EXPECT_EQ(foreign_usage.json()["total"]["requests"], 0) << foreign_usage.body;

  // Acting for another user is refused on every route that acts for one.
  const std::vector<Route> on_behalf = {
      {"POST", "/api/v1/sessions", R"({"user_id":"alice"})"},
      {"POST", "/api/v1/chat", R"({"message":"hi","user_id":"alice"})"},
      {"POST", "/v1/chat/completions",
       R"({"model":"builtin","user":"alice","messages":[{"role":"user","content":"hi"}]})"},
      {"POST", "/v1/embeddings", R"({"model":"builtin","input":"hi","user":"alice"})"},
  };
  for (const auto& route : on_behalf) {
    SCOPED_TRACE(route.method + " " + route.path);
    EXPECT_TRUE(is_error(http(route.method, port, route.path, route.body, bearer(bob.token)), 403,
                         "user_mismatch"));
  }

  // A user's export: someone else's user is not found (or, for a principal of another tenant,
  // that tenant's own, empty, user of the same name).
  auto expect_nothing_of_alice = [&](const Response& r, const std::string& name) {
    SCOPED_TRACE(name);
    if (r.status == 404) {
      EXPECT_TRUE(is_error(r, 404, "user_not_found"));
      return;
    }
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body.find("secret plan"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(sid), std::string::npos) << r.body;
  };
  for (const auto& who : intruders) {
    expect_nothing_of_alice(http("GET", port, "/api/v1/users/alice/export", "", who.headers),
                            who.name + ": export");
  }
  EXPECT_TRUE(is_error(http("GET", port, "/api/v1/users/alice/export", "", bearer(bob.token)), 404,
                       "user_not_found"));

  // Erasure last (a principal erasing its own tenant's 'alice' revokes that alice's keys).
  for (const auto& who : intruders) {
    auto r = http("DELETE", port, "/api/v1/users/alice", "", who.headers);
    SCOPED_TRACE(who.name + ": erase");
    if (r.status == 404) {
      EXPECT_TRUE(is_error(r, 404, "user_not_found"));
      continue;
    }
    ASSERT_EQ(r.status, 202) << r.describe();
    const auto job = wait_for_job(port, r.json()["job"]["id"], bearer(kAdminKey));
    ASSERT_EQ(job["state"], "done") << job.dump();
    const auto deleted = job["result"]["deleted"];
    EXPECT_EQ(deleted["sessions"], 0) << job.dump();
    EXPECT_EQ(deleted["messages"], 0) << job.dump();
    EXPECT_EQ(deleted["usage_records"], 0) << job.dump();
  }
  EXPECT_TRUE(is_error(http("DELETE", port, "/api/v1/users/alice", "", bearer(bob.token)), 404,
                       "user_not_found"));

  // Nothing of Alice's changed, and those allowed still see it.
  auto session_after = http("GET", port, "/api/v1/sessions/" + sid, "", bearer(alice.token));
  ASSERT_EQ(session_after.status, 200) << "an intruder deleted alice's session";
  EXPECT_EQ(session_after.json(), session_before.json()) << "an intruder changed alice's session";
  EXPECT_EQ(http("GET", port, "/api/v1/sessions/" + sid + "/messages", "", bearer(alice.token))
                .json()["data"]
                .size(),
            2u)
      << "an intruder added to alice's conversation";
  EXPECT_EQ(usage_of_alice(), usage_before);
  for (const auto& allowed :
       {bearer(alice.token), HeaderList{{"X-API-Key", service.token}}, bearer(kAdminKey)}) {
    EXPECT_EQ(http("GET", port, "/api/v1/sessions/" + sid, "", allowed).status, 200);
    EXPECT_EQ(http("GET", port, "/api/v1/sessions/" + sid + "/messages", "", allowed).status, 200);
    auto exported = http("GET", port, "/api/v1/users/alice/export", "", allowed);
    ASSERT_EQ(exported.status, 200) << exported.describe();
    EXPECT_NE(exported.body.find(sid), std::string::npos);
    EXPECT_EQ(ids_in(http("GET", port, "/api/v1/sessions?user_id=alice", "", allowed)).count(sid),
              1u);
  }
  // A service key acts for any user of its own tenant.
  auto renamed = http("PATCH", port, "/api/v1/sessions/" + sid, R"({"title":"renamed"})",
                      {{"X-API-Key", service.token}});
  EXPECT_EQ(renamed.status, 200) << renamed.describe();
}

// =============================================================================================
// Privacy: a user's export and erasure.

TEST(Privacy, AUserExportsAndErasesTheirOwnData) {
  ParleyProcess p(with_admin());
  const Key alice = user_key(p.port(), "alice");
  const Key bob = user_key(p.port(), "bob");
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto chat = http("POST", p.port(), "/api/v1/chat", R"({"message":"remember my cat Tibbles"})",
                   bearer(alice.token));
  ASSERT_EQ(chat.status, 201) << chat.describe();
  const std::string sid = chat.json()["session_id"];
  auto second =
      http("POST", p.port(), "/api/v1/sessions", R"({"title":"second"})", bearer(alice.token));
  ASSERT_EQ(second.status, 201);
  auto bobs =
      http("POST", p.port(), "/api/v1/chat", R"({"message":"bob was here"})", bearer(bob.token));
  ASSERT_EQ(bobs.status, 201);
  const std::string bob_sid = bobs.json()["session_id"];

  auto exported = http("GET", p.port(), "/api/v1/users/alice/export", "", bearer(alice.token));
  ASSERT_EQ(exported.status, 200) << exported.describe();
  auto e = exported.json();
  EXPECT_EQ(e["user_id"], "alice");
  ASSERT_EQ(e["sessions"].size(), 2u) << e.dump();
  bool found_conversation = false;
  for (const auto& s : e["sessions"]) {
    EXPECT_EQ(s["user_id"], "alice");
    if (s["id"] == sid) {
      found_conversation = true;
      ASSERT_EQ(s["messages"].size(), 2u) << s.dump();
      EXPECT_EQ(s["messages"][0]["content"], "remember my cat Tibbles");
      EXPECT_EQ(s["messages"][1]["role"], "assistant");
    }
  }
  EXPECT_TRUE(found_conversation) << e.dump();
  EXPECT_GE(e["usage"].size(), 1u) << e.dump();
  EXPECT_TRUE(e["moderation"].is_array());
  ASSERT_EQ(e["api_keys"].size(), 1u) << e.dump();
  EXPECT_EQ(e["api_keys"][0]["id"], alice.id);
  EXPECT_EQ(exported.body.find(alice.secret()), std::string::npos);
  EXPECT_EQ(exported.body.find(sha256_hex(alice.secret())), std::string::npos);
  EXPECT_EQ(exported.body.find("bob was here"), std::string::npos);

  // Accepted at once; a job erases it (and revokes the key that asked) a moment later.
  auto erased = http("DELETE", p.port(), "/api/v1/users/alice", "", bearer(alice.token));
  ASSERT_EQ(erased.status, 202) << erased.describe();
  EXPECT_EQ(erased.json()["status"], "queued");
  EXPECT_EQ(erased.json()["job"]["kind"], "user.erase");
  const auto job = wait_for_job(p.port(), erased.json()["job"]["id"], bearer(kAdminKey));
  ASSERT_EQ(job["state"], "done") << job.dump();
  auto d = job["result"]["deleted"];
  EXPECT_EQ(d["sessions"], 2) << job.dump();
  EXPECT_EQ(d["messages"], 2) << job.dump();
  EXPECT_GE(d["usage_records"].get<int64_t>(), 1) << job.dump();
  EXPECT_EQ(job["result"]["revoked_api_keys"], 1) << job.dump();

  // Gone: through the API, and from the database itself.
  EXPECT_TRUE(is_unauthenticated(http("GET", p.port(), "/api/v1/sessions", "", bearer(alice.token)),
                                 "revoked_api_key"));
  EXPECT_TRUE(is_error(http("GET", p.port(), "/api/v1/sessions/" + sid, "", bearer(kAdminKey)), 404,
                       "session_not_found"));
  auto after = http("GET", p.port(), "/api/v1/users/alice/export", "", bearer(kAdminKey)).json();
  EXPECT_TRUE(after["sessions"].empty()) << after.dump();
  EXPECT_TRUE(after["usage"].empty()) << after.dump();
  EXPECT_TRUE(after["moderation"].empty()) << after.dump();
  EXPECT_EQ(http("GET", p.port(), "/api/v1/usage?user_id=alice", "", bearer(kAdminKey))
                .json()["total"]["requests"],
            0);
  std::string err;
  auto rows = sqlite_query(p.data_dir() + "/parley.db",
                           "SELECT COUNT(*) FROM messages WHERE content LIKE '%Tibbles%'", &err);
  ASSERT_TRUE(rows.has_value()) << err;
  EXPECT_EQ((*rows)[0][0], "0") << "the erased conversation is still in the database";
  // Bob's data is untouched.
  EXPECT_EQ(http("GET", p.port(), "/api/v1/sessions/" + bob_sid, "", bearer(bob.token)).status,
            200);
}

// =============================================================================================
// API3: broken object property level authorisation.

TEST(Api3PropertyLevelAuthorization, ClientsCannotSetServerOwnedFields) {
  ParleyProcess p(with_admin());
  const Key alice = user_key(p.port(), "alice");
  ASSERT_TRUE(alice.ok());
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"id", "sess_mine"},
                                                 {"tenant_id", "other"},
                                                 {"cost_usd", 0},
                                                 {"input_tokens", 0},
                                                 {"output_tokens", 0},
                                                 {"created_at", "2001-01-01T00:00:00Z"},
                                                 {"updated_at", "2001-01-01T00:00:00Z"},
                                                 {"object", "session"}}) {
    const json body = {{"title", "t"}, {field, value}};
    for (const auto& who : {bearer(alice.token), bearer(kAdminKey)}) {
      auto r = http("POST", p.port(), "/api/v1/sessions", body.dump(), who);
      EXPECT_TRUE(is_error(r, 400, "invalid_field")) << field;
      EXPECT_EQ(error_param(r), field);
    }
  }
  EXPECT_TRUE(is_error(http("POST", p.port(), "/api/v1/sessions", R"({"user_id":"someone-else"})",
                            bearer(alice.token)),
                       403, "user_mismatch"));
  auto own =
      http("POST", p.port(), "/api/v1/sessions", R"({"user_id":"alice"})", bearer(alice.token));
  ASSERT_EQ(own.status, 201) << own.describe();
  EXPECT_EQ(own.json()["user_id"], "alice");
  auto implicit = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(alice.token));
  ASSERT_EQ(implicit.status, 201) << implicit.describe();
  EXPECT_EQ(implicit.json()["user_id"], "alice");
  const std::string sid = own.json()["id"];
  auto list = http("GET", p.port(), "/api/v1/sessions", "", bearer(alice.token)).json();
  EXPECT_EQ(list["data"].size(), 2u) << "a refused request created a session: " << list.dump();

  struct Case {
    std::string method, path, body, param;
  };
  for (const auto& c : std::vector<Case>{
           {"PATCH", "/api/v1/sessions/" + sid, R"({"user_id":"bob"})", "user_id"},
           {"PATCH", "/api/v1/sessions/" + sid, R"({"tenant_id":"other"})", "tenant_id"},
           {"PATCH", "/api/v1/sessions/" + sid, R"({"created_at":"2001-01-01"})", "created_at"},
           {"POST", "/api/v1/sessions/" + sid + "/messages", R"({"content":"x","role":"system"})",
            "role"},
           {"POST", "/api/v1/sessions/" + sid + "/messages", R"({"content":"x","cost_usd":0})",
            "cost_usd"},
           {"POST", "/api/v1/chat", R"({"message":"x","tenant_id":"other"})", "tenant_id"},
       }) {
    SCOPED_TRACE(c.method + " " + c.path + " " + c.body);
    auto r = http(c.method, p.port(), c.path, c.body, bearer(alice.token));
    EXPECT_TRUE(is_error(r, 400, "invalid_field"));
    EXPECT_EQ(error_param(r), c.param);
  }
  EXPECT_EQ(
      http("GET", p.port(), "/api/v1/sessions/" + sid, "", bearer(alice.token)).json()["user_id"],
      "alice");

  // Keys: the server makes the id, the secret, its hash, the creator and the dates.
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"id", "key_chosenbyme"},
                                                 {"secret_hash", std::string(64, '0')},
                                                 {"key", "parley_key_x_" + std::string(64, '0')},
                                                 {"created_by", "someone"},
                                                 {"revoked_at", nullptr},
                                                 {"status", "active"}}) {
    const json body = {{"scope", "user"}, {"user_id", "x"}, {field, value}};
    auto r = http("POST", p.port(), "/api/v1/admin/keys", body.dump(), bearer(kAdminKey));
    EXPECT_TRUE(is_error(r, 400, "invalid_field")) << field;
    EXPECT_EQ(error_param(r), field);
  }
}

TEST(Api3PropertyLevelAuthorization, KeyListingsNeverShowSecretsOrHashes) {
  ParleyProcess p(with_admin());
  auto created = http("POST", p.port(), "/api/v1/admin/keys",
                      R"({"scope":"user","user_id":"alice","name":"phone"})", bearer(kAdminKey));
  ASSERT_EQ(created.status, 201) << created.describe();
  auto c = created.json();
  const Key first{c["id"].get<std::string>(), c["key"].get<std::string>()};
  EXPECT_TRUE(std::regex_match(first.token, kTokenShape)) << first.token;
  EXPECT_EQ(c["prefix"], "parley_" + first.id);
  EXPECT_FALSE(c.contains("secret_hash") || c.contains("secret") || c.contains("hash")) << c;
  EXPECT_TRUE(created.header("Location").value_or("").ends_with("/api/v1/admin/keys/" + first.id));
  const Key second = user_key(p.port(), "alice");
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(
      http("DELETE", p.port(), "/api/v1/admin/keys/" + first.id, "", bearer(kAdminKey)).status,
      200);

  std::vector<std::string> forbidden;
  for (const auto& k : {first, second}) {
    forbidden.push_back(k.secret());
    forbidden.push_back(sha256_hex(k.secret()));
  }
  auto expect_clean = [&](const std::string& text, const std::string& what) {
    for (const auto& s : forbidden) {
      EXPECT_EQ(text.find(s), std::string::npos) << what << " shows a secret or its hash:\n"
                                                 << text;
    }
  };
  auto list =
      http("GET", p.port(), "/api/v1/admin/keys?include_revoked=true", "", bearer(kAdminKey));
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_GE(list.json()["data"].size(), 2u);
  for (const auto& k : list.json()["data"]) {
    EXPECT_FALSE(k.contains("secret_hash") || k.contains("key") || k.contains("secret")) << k;
  }
  expect_clean(list.body, "GET /api/v1/admin/keys");
  expect_clean(http("GET", p.port(), "/api/v1/admin/keys/" + first.id, "", bearer(kAdminKey)).body,
               "GET /api/v1/admin/keys/{id}");
  expect_clean(
      http("DELETE", p.port(), "/api/v1/admin/keys/" + second.id, "", bearer(kAdminKey)).body,
      "DELETE /api/v1/admin/keys/{id}");
  expect_clean(http("GET", p.port(), "/api/v1/users/alice/export", "", bearer(kAdminKey)).body,
               "the user's export");
  auto cli = run_parley({"keys", "list", "--all", "--json", "--data-dir", p.data_dir()});
  EXPECT_EQ(cli.exit_code(), 0) << cli.describe();
  expect_clean(cli.out, "parley keys list --json");
  auto table = run_parley({"keys", "list", "--all", "--data-dir", p.data_dir()});
  expect_clean(table.out, "parley keys list");
  // Only the hash is stored.
  std::string err;
  auto rows = sqlite_query(p.data_dir() + "/parley.db", "SELECT * FROM api_keys", &err);
  ASSERT_TRUE(rows.has_value()) << err;
  for (const auto& row : *rows) {
    for (const auto& cell : row) {
      EXPECT_EQ(cell.find(first.secret()), std::string::npos);
      EXPECT_EQ(cell.find(second.secret()), std::string::npos);
    }
  }
}

// A key is shown once. With an Idempotency-Key, its creation's answer (token included) is kept
// for replays: that copy must not be the plaintext token in the database, which otherwise holds
// only hashes of key secrets.
TEST(Api3PropertyLevelAuthorization, AnIdempotentKeyCreationKeepsNoPlaintextKeyInTheDatabase) {
  ParleyProcess p(with_admin());
  auto r = http("POST", p.port(), "/api/v1/admin/keys", R"({"scope":"service"})",
                with_header(bearer(kAdminKey), "Idempotency-Key", "create-service-key-1"));
  ASSERT_EQ(r.status, 201) << r.describe();
  const Key key{r.json()["id"].get<std::string>(), r.json()["key"].get<std::string>()};
  const std::string db = p.data_dir() + "/parley.db";
  // Stored answers are written within moments; give them that long.
  (void)eventually(
      [&] {
        auto n = sqlite_query(db, "SELECT COUNT(*) FROM idempotency_keys", nullptr);
        return n && !n->empty() && (*n)[0][0] != "0";
      },
      Millis{1000});
  std::string err;
  auto rows = sqlite_query(db, "SELECT key, body FROM idempotency_keys", &err);
  ASSERT_TRUE(rows.has_value()) << err;
  for (const auto& row : *rows) {
    for (const auto& cell : row) {
      EXPECT_EQ(cell.find(key.secret()), std::string::npos)
          << "the idempotency table holds the new key's secret in plaintext";
    }
  }
}

// =============================================================================================
// API4: unrestricted resource consumption.

TEST(Api4ResourceConsumption, PerUserRequestLimitSpansKeysButNotAdmins) {
  ParleyProcess p(with_admin({"--set", "limits.user.requests_per_minute=3"}));
  const Key alice = user_key(p.port(), "alice");
  const Key alice_phone = user_key(p.port(), "alice");
  const Key bob = user_key(p.port(), "bob");
  const Key service = service_key(p.port());
  ASSERT_TRUE(alice.ok() && alice_phone.ok() && bob.ok() && service.ok());

  for (int i = 0; i < 3; ++i) {
    auto r = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(alice.token));
    ASSERT_EQ(r.status, 201) << r.describe();
    EXPECT_TRUE(any_header_contains(r, "RateLimit-Policy", R"("user-minute";q=3;w=60)"))
        << r.describe();
    EXPECT_TRUE(any_header_contains(r, "RateLimit", R"("user-minute";r=)" + std::to_string(2 - i)))
        << r.describe();
  }
  // The fourth request for alice, whichever key or service acts for her.
  for (const auto& [who, body] : std::vector<std::pair<HeaderList, std::string>>{
           {bearer(alice.token), "{}"},
           {bearer(alice_phone.token), "{}"},
           {{{"X-API-Key", service.token}}, R"({"user_id":"alice"})"}}) {
    auto r = http("POST", p.port(), "/api/v1/sessions", body, who);
    EXPECT_TRUE(is_error(r, 429, "rate_limited"));
    const auto retry = r.header("Retry-After");
    ASSERT_TRUE(retry.has_value()) << r.describe();
    EXPECT_GE(std::stoi(*retry), 1);
    EXPECT_LE(std::stoi(*retry), 60);
    EXPECT_TRUE(any_header_contains(r, "RateLimit-Policy", R"("user-minute";q=3;w=60)"))
        << r.describe();
    EXPECT_TRUE(any_header_contains(r, "RateLimit", R"("user-minute";r=0)")) << r.describe();
  }
  // Other users have their own allowance; admins are not held to end users' limits.
  EXPECT_EQ(http("POST", p.port(), "/api/v1/sessions", "{}", bearer(bob.token)).status, 201);
  EXPECT_EQ(http("POST", p.port(), "/api/v1/sessions", R"({"user_id":"alice"})", bearer(kAdminKey))
                .status,
            201);
  auto sessions = http("GET", p.port(), "/api/v1/sessions?user_id=alice", "", bearer(kAdminKey));
  EXPECT_EQ(sessions.json()["data"].size(), 4u) << "refused requests created sessions";

  // Nor is the operator on a server without keys.
  ParleyProcess local({.args = {"--set", "limits.user.requests_per_minute=1"}});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(http("POST", local.port(), "/api/v1/sessions", R"({"user_id":"alice"})").status, 201);
  }
}

TEST(Api4ResourceConsumption, PerKeyRequestLimitFromSettingsAndFromTheKey) {
  auto dir = std::make_shared<TempDir>("parley-data");
  const std::string a = cli_create_key(dir->path(), {"--scope", "user", "--user", "alice"});
  const std::string b = cli_create_key(dir->path(), {"--scope", "user", "--user", "bob", "--limits",
                                                     R"({"key":{"requests_per_minute":1}})"});
  const std::string c = cli_create_key(dir->path(), {"--scope", "service"});
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  ParleyProcess p({.args = {"--set", "limits.key.requests_per_minute=3"}, .shared_data_dir = dir});

  for (int i = 0; i < 3; ++i) {
    auto r = http("GET", p.port(), "/api/v1/assistants", "", bearer(a));
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_TRUE(any_header_contains(r, "RateLimit-Policy", R"("key-minute";q=3;w=60)"))
        << r.describe();
  }
  auto over = http("GET", p.port(), "/api/v1/sessions", "", bearer(a));
  EXPECT_TRUE(is_error(over, 429, "rate_limited"));
  EXPECT_TRUE(over.header("Retry-After").has_value()) << over.describe();
  EXPECT_TRUE(any_header_contains(over, "RateLimit-Policy", R"("key-minute";q=3;w=60)"));

  auto first = http("GET", p.port(), "/api/v1/assistants", "", bearer(b));
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_TRUE(any_header_contains(first, "RateLimit-Policy", R"("key-minute";q=1;w=60)"))
      << "the key's own limit replaces the default\n"
      << first.describe();
  EXPECT_TRUE(
      is_error(http("GET", p.port(), "/api/v1/assistants", "", bearer(b)), 429, "rate_limited"));

  // Each key has its own bucket; public routes are not limited.
  EXPECT_EQ(http("GET", p.port(), "/api/v1/assistants", "", bearer(c)).status, 200);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(http("GET", p.port(), "/health").status, 200);
}

TEST(Api4ResourceConsumption, DailyBudgetsOfUsersAndKeys) {
  Stack s(kPricedModel, {"--set", "limits.user.usd_per_day=0.00001"});
  const Key alice = user_key(s.port(), "alice");
  const Key bob = user_key(s.port(), "bob");
  const Key thrifty = create_key(
      s.port(), {{"scope", "service"}, {"limits", {{"key", {{"usd_per_day", 0.00001}}}}}});
  ASSERT_TRUE(alice.ok() && bob.ok() && thrifty.ok());

  auto spent = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("hi"),
                    bearer(alice.token));
  ASSERT_EQ(spent.status, 200) << spent.describe();
  ASSERT_EQ(s.fake.calls(), 1);
  auto refused = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("again"),
                      bearer(alice.token));
  EXPECT_TRUE(is_error(refused, 429, "budget_exceeded"));
  const std::string message = refused.json_or_discarded()["error"].value("message", "");
  EXPECT_TRUE(icontains(message, "daily")) << message;
  EXPECT_NE(message.find("alice"), std::string::npos) << message;
  EXPECT_TRUE(refused.header("Retry-After").has_value()) << refused.describe();
  // The chat API is held to the same budget.
  auto turn = http("POST", s.port(), "/api/v1/chat", R"({"message":"hi"})", bearer(alice.token));
  EXPECT_TRUE(is_error(turn, 429, "budget_exceeded"));
  EXPECT_EQ(s.fake.calls(), 1) << "a refused call reached the provider";

  // Bob has his own budget; an admin acting for alice is not held to hers.
  EXPECT_EQ(
      http("POST", s.port(), "/v1/chat/completions", openai_chat_request("hi"), bearer(bob.token))
          .status,
      200);
  EXPECT_EQ(http("POST", s.port(), "/v1/chat/completions",
                 openai_chat_request("hi", false, "alice"), bearer(kAdminKey))
                .status,
            200);
  EXPECT_EQ(s.fake.calls(), 3);

  // A key's budget covers every user it acts for.
  EXPECT_EQ(http("POST", s.port(), "/v1/chat/completions", openai_chat_request("hi", false, "dave"),
                 {{"X-API-Key", thrifty.token}})
                .status,
            200);
  auto key_refused = http("POST", s.port(), "/v1/chat/completions",
                          openai_chat_request("hi", false, "erin"), {{"X-API-Key", thrifty.token}});
  EXPECT_TRUE(is_error(key_refused, 429, "budget_exceeded"));
  EXPECT_NE(key_refused.body.find(thrifty.id), std::string::npos) << key_refused.describe();
  EXPECT_EQ(s.fake.calls(), 4);
}

TEST(Api4ResourceConsumption, TokensPerMinuteOfAUser) {
  Stack s("", {"--set", "limits.user.tokens_per_minute=10"});
  const Key alice = user_key(s.port(), "alice");
  ASSERT_TRUE(alice.ok());
  // The fake reports 17 tokens: the first call is let through, the debt refuses the next.
  ASSERT_EQ(
      http("POST", s.port(), "/v1/chat/completions", openai_chat_request("hi"), bearer(alice.token))
          .status,
      200);
  auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("hi"),
                bearer(alice.token));
  EXPECT_TRUE(is_error(r, 429, "token_limit_reached"));
  EXPECT_TRUE(r.header("Retry-After").has_value()) << r.describe();
  EXPECT_EQ(s.fake.calls(), 1);
  EXPECT_EQ(http("POST", s.port(), "/v1/chat/completions",
                 openai_chat_request("hi", false, "alice"), bearer(kAdminKey))
                .status,
            200);
}

TEST(Api4ResourceConsumption, ConcurrentStreamsOfAUser) {
  Stack s("", {"--set", "limits.user.concurrent_streams=1"});
  const Key alice = user_key(s.port(), "alice");
  const Key bob = user_key(s.port(), "bob");
  ASSERT_TRUE(alice.ok() && bob.ok());
  // Alice's first stream stays open: one delta, then the upstream says nothing more.
  s.fake.enqueue(
      {{"pieces", {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Held \"}}]}\n\n"}},
       {"content_type", "text/event-stream"},
       {"stall", true}});
  RawConnection held(s.port());
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held.send_all(raw_request(
      "POST", "/v1/chat/completions",
      {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + alice.token}},
      openai_chat_request("hold on", true))));
  ASSERT_TRUE(eventually(
      [&] {
        held.read_some(Millis{50});
        return held.buffer().find("Held ") != std::string::npos;
      },
      Millis{5000}))
      << held.buffer();

  auto second = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("me too", true),
                     bearer(alice.token));
  EXPECT_TRUE(is_error(second, 429, "concurrency_limit_reached"));
  EXPECT_TRUE(second.header("Retry-After").has_value()) << second.describe();
  auto chat_stream = http("POST", s.port(), "/api/v1/chat", R"({"message":"me too","stream":true})",
                          bearer(alice.token));
  EXPECT_TRUE(is_error(chat_stream, 429, "concurrency_limit_reached"));
  EXPECT_EQ(s.fake.calls(), 1) << "a refused stream reached the provider";
  // Not a stream, another user, or an admin: not limited by alice's open stream.
  EXPECT_EQ(http("POST", s.port(), "/v1/chat/completions", openai_chat_request("plain"),
                 bearer(alice.token))
                .status,
            200);
  auto bobs = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("bob", true),
                   bearer(bob.token));
  EXPECT_EQ(bobs.status, 200) << bobs.describe();
  EXPECT_NE(bobs.body.find("[DONE]"), std::string::npos);
  EXPECT_EQ(http("POST", s.port(), "/v1/chat/completions",
                 openai_chat_request("admin", true, "alice"), bearer(kAdminKey))
                .status,
            200);

  // When the first stream's client leaves, its slot is free again.
  held.close();
  EXPECT_TRUE(eventually(
      [&] {
        return http("POST", s.port(), "/v1/chat/completions", openai_chat_request("now", true),
                    bearer(alice.token))
                   .status == 200;
      },
      Millis{3000}, Millis{50}));
}

TEST(Api4ResourceConsumption, BodiesPagesAndBatchesAreBounded) {
  ParleyProcess p(with_admin({"--set", "server.max_body_size=64KiB"}));
  const Key alice = user_key(p.port(), "alice");
  ASSERT_TRUE(alice.ok());
  const std::string huge = json{{"metadata", {{"pad", std::string(100 * 1024, 'x')}}}}.dump();
  EXPECT_TRUE(is_error(http("POST", p.port(), "/api/v1/sessions", huge, bearer(alice.token)), 413,
                       "body_too_large"));
  EXPECT_TRUE(is_error(http("POST", p.port(), "/api/v1/sessions", huge), 413, "body_too_large"))
      << "an anonymous client's body is bounded as well";

  struct Case {
    std::string method, path, body, param;
  };
  auto session = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(alice.token));
  ASSERT_EQ(session.status, 201);
  const std::string sid = session.json()["id"];
  json many_inputs = json::array();
  for (int i = 0; i < 2049; ++i) many_inputs.push_back("a");
  for (const auto& c : std::vector<Case>{
           {"POST", "/api/v1/sessions",
            json{{"metadata", {{"pad", std::string(20 * 1024, 'x')}}}}.dump(), "metadata"},
           {"GET", "/api/v1/sessions?limit=101", "", "limit"},
           {"GET", "/api/v1/sessions?limit=-1", "", "limit"},
           {"GET", "/api/v1/sessions/" + sid + "/messages?limit=100000", "", "limit"},
           {"POST", "/v1/embeddings", json{{"model", "builtin"}, {"input", many_inputs}}.dump(),
            "input"},
           {"POST", "/v1/chat/completions",
            R"({"model":"builtin","n":5,"messages":[{"role":"user","content":"hi"}]})", "n"},
           {"POST", "/v1/chat/completions",
            R"({"model":"builtin","max_tokens":0,"messages":[{"role":"user","content":"hi"}]})",
            "max_tokens"},
       }) {
    SCOPED_TRACE(c.method + " " + c.path);
    auto r = http(c.method, p.port(), c.path, c.body, bearer(alice.token));
    EXPECT_TRUE(is_error(r, 400, "invalid_field"));
    EXPECT_EQ(error_param(r), c.param);
  }
  auto long_key = http("POST", p.port(), "/api/v1/sessions", "{}",
                       with_header(bearer(alice.token), "Idempotency-Key", std::string(256, 'k')));
  EXPECT_TRUE(is_error(long_key, 400));
  EXPECT_EQ(error_param(long_key), "Idempotency-Key");
}

// =============================================================================================
// API5: broken function level authorisation.

TEST(Api5FunctionLevelAuthorization, AdminRoutesRefuseUserServiceAndTokenPrincipals) {
  ParleyProcess p(
      with_admin({"--set", "auth.jwt_secret=" + kJwtSecret, "--set", "diagnostics.enabled=true"}));
  const Key alice = user_key(p.port(), "alice");
  const Key service = service_key(p.port());
  const Key other_service = service_key(p.port(), "other");
  const Key target = user_key(p.port(), "victim");
  ASSERT_TRUE(alice.ok() && service.ok() && other_service.ok() && target.ok());
  auto key_count = [&] {
    return http("GET", p.port(), "/api/v1/admin/keys", "", bearer(kAdminKey)).json()["data"].size();
  };
  const size_t keys_before = key_count();

  struct Route {
    std::string method, path, body;
    long admin_status;
  };
  // Every admin-only route of the policy table; the revocation last.
  const std::vector<Route> admin_routes = {
      {"GET", "/api/v1/health/diagnostics", "", 200},
      {"POST", "/api/v1/admin/keys", R"({"scope":"admin","name":"escalated"})", 201},
      {"GET", "/api/v1/admin/keys", "", 200},
      {"GET", "/api/v1/admin/keys/" + target.id, "", 200},
      {"GET", "/api/v1/admin/moderation/logs", "", 200},
      {"DELETE", "/api/v1/admin/keys/" + target.id, "", 200},
  };
  const std::vector<std::pair<std::string, HeaderList>> principals = {
      {"user key", bearer(alice.token)},
      {"user key as X-API-Key", {{"X-API-Key", alice.token}}},
      {"service key", bearer(service.token)},
      {"service key of another tenant", bearer(other_service.token)},
      {"JWT", bearer(user_jwt("alice"))},
      {"JWT named 'admin'", bearer(user_jwt("admin"))},
  };
  for (const auto& route : admin_routes) {
    for (const auto& [name, headers] : principals) {
      SCOPED_TRACE(name + ": " + route.method + " " + route.path);
      auto r = http(route.method, p.port(), route.path, route.body, headers);
      EXPECT_TRUE(is_error(r, 403, "admin_required"));
    }
    EXPECT_TRUE(is_unauthenticated(http(route.method, p.port(), route.path, route.body)));
  }
  EXPECT_EQ(key_count(), keys_before) << "a non-admin created a key";
  EXPECT_EQ(http("GET", p.port(), "/api/v1/sessions", "", bearer(target.token)).status, 200)
      << "a non-admin revoked a key";

  for (const auto& route : admin_routes) {
    SCOPED_TRACE("admin: " + route.method + " " + route.path);
    auto r = http(route.method, p.port(), route.path, route.body, bearer(kAdminKey));
    EXPECT_EQ(r.status, route.admin_status) << r.describe();
  }
  EXPECT_TRUE(is_unauthenticated(
      http("GET", p.port(), "/api/v1/sessions", "", bearer(target.token)), "revoked_api_key"));
}

// =============================================================================================
// Idempotency-Key: a retry never repeats a side effect or a paid call.

TEST(Idempotency, ARetryReplaysTheFirstAnswerOnEveryIdempotentRoute) {
  Stack s;
  const Key alice = user_key(s.port(), "alice");
  ASSERT_TRUE(alice.ok());
  auto made = http("POST", s.port(), "/api/v1/sessions", "{}", bearer(alice.token));
  ASSERT_EQ(made.status, 201);
  const std::string sid = made.json()["id"];
  auto count_sessions = [&] {
    return http("GET", s.port(), "/api/v1/sessions?limit=100", "", bearer(alice.token))
        .json()["data"]
        .size();
  };
  auto count_messages = [&] {
    return http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages", "", bearer(alice.token))
        .json()["data"]
        .size();
  };

  struct Case {
    std::string path;
    std::string body;
    std::string token;
    int upstream_calls;                 // what one run costs
    std::function<size_t()> resources;  // what one run creates (may be null)
    size_t created;
  };
  const std::vector<Case> cases = {
      {"/api/v1/sessions", R"({"title":"once"})", alice.token, 0, count_sessions, 1},
      {"/api/v1/sessions/" + sid + "/messages", R"({"content":"once"})", alice.token, 1,
       count_messages, 2},
      {"/api/v1/chat", R"({"message":"once"})", alice.token, 1, count_sessions, 1},
      {"/v1/chat/completions", openai_chat_request("once"), alice.token, 1, nullptr, 0},
      {"/v1/chat/completions", openai_chat_request("once, streamed", true), alice.token, 1, nullptr,
       0},
      {"/v1/embeddings", R"({"model":"fake/fake-embed","input":"once"})", alice.token, 1, nullptr,
       0},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE("POST " + c.path + " " + c.body);
    const HeaderList headers =
        with_header(bearer(c.token), "Idempotency-Key", "retry-" + std::to_string(++n));
    const int calls_before = s.fake.calls();
    const size_t resources_before = c.resources ? c.resources() : 0;
    auto first = http("POST", s.port(), c.path, c.body, headers);
    ASSERT_LT(first.status, 300) << first.describe();
    EXPECT_FALSE(replayed(first)) << first.describe();
    for (int retry = 0; retry < 2; ++retry) {
      auto again = http("POST", s.port(), c.path, c.body, headers);
      EXPECT_EQ(again.status, first.status) << again.describe();
      EXPECT_EQ(again.body, first.body);
      EXPECT_TRUE(replayed(again)) << again.describe();
      EXPECT_EQ(again.header("Content-Type"), first.header("Content-Type"));
    }
    EXPECT_EQ(s.fake.calls() - calls_before, c.upstream_calls) << "a retry reached the provider";
    if (c.resources) {
      EXPECT_EQ(c.resources() - resources_before, c.created) << "a retry created another";
    }
  }
}

TEST(Idempotency, AKeyNamesOneRequestOfOnePrincipal) {
  Stack s("", {"--set", "auth.jwt_secret=" + kJwtSecret});
  const Key alice = user_key(s.port(), "alice");
  const Key bob = user_key(s.port(), "bob");
  ASSERT_TRUE(alice.ok() && bob.ok());
  const HeaderList as_alice = with_header(bearer(alice.token), "Idempotency-Key", "k-1");
  auto first = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("A"), as_alice);
  ASSERT_EQ(first.status, 200) << first.describe();

  // The same key for another body, or another route: refused, and nothing runs.
  auto other_body =
      http("POST", s.port(), "/v1/chat/completions", openai_chat_request("B"), as_alice);
  EXPECT_TRUE(is_error(other_body, 422, "idempotency_key_reused"));
  EXPECT_EQ(error_param(other_body), "Idempotency-Key");
  EXPECT_TRUE(is_error(http("POST", s.port(), "/v1/embeddings",
                            R"({"model":"fake/fake-embed","input":"A"})", as_alice),
                       422, "idempotency_key_reused"));
  EXPECT_EQ(s.fake.calls(), 1);

  // Another principal's identical key is another request.
  auto bobs = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("A"),
                   with_header(bearer(bob.token), "Idempotency-Key", "k-1"));
  EXPECT_EQ(bobs.status, 200) << bobs.describe();
  EXPECT_FALSE(replayed(bobs));
  EXPECT_EQ(s.fake.calls(), 2);  // ran anew (the fake's answers are alike, so count calls)
  // Tokens all share one issuer: still scoped to their user.
  for (const auto& user : {"carol", "dave"}) {
    auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("A"),
                  with_header(bearer(user_jwt(user)), "Idempotency-Key", "k-1"));
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_FALSE(replayed(r)) << user << " got another user's stored answer";
  }
  EXPECT_EQ(s.fake.calls(), 4);
  auto carol_again = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("A"),
                          with_header(bearer(user_jwt("carol")), "Idempotency-Key", "k-1"));
  EXPECT_TRUE(replayed(carol_again)) << carol_again.describe();

  auto alice_again =
      http("POST", s.port(), "/v1/chat/completions", openai_chat_request("A"), as_alice);
  EXPECT_TRUE(replayed(alice_again));
  EXPECT_EQ(alice_again.body, first.body);
  EXPECT_EQ(s.fake.calls(), 4);
}

TEST(Idempotency, ConcurrentDuplicatesReachTheProviderOnce) {
  Stack s;
  const Key alice = user_key(s.port(), "alice");
  ASSERT_TRUE(alice.ok());
  s.fake.enqueue(
      {{"body", openai_completion_body("slow and single")}, {"delay_before_head_ms", 1500}});
  const std::string body = openai_chat_request("only once, please");
  const HeaderList headers = with_header(bearer(alice.token), "Idempotency-Key", "concurrent");

  Response first;
  std::thread runner([&] {
    first = http("POST", s.port(), "/v1/chat/completions", body, headers, Millis{20000});
  });
  const bool running = eventually([&] { return s.fake.calls() == 1; }, Millis{5000});
  std::vector<Response> duplicates(3);
  std::vector<std::thread> threads;
  if (running) {
    for (size_t i = 0; i < duplicates.size(); ++i) {
      threads.emplace_back([&, i] {
        duplicates[i] = http("POST", s.port(), "/v1/chat/completions", body, headers);
      });
    }
  }
  for (auto& t : threads) t.join();
  runner.join();
  ASSERT_TRUE(running) << "the first request never reached the provider";
  ASSERT_EQ(first.status, 200) << first.describe();
  for (const auto& d : duplicates) {
    if (d.status == 409) {
      EXPECT_TRUE(is_error(d, 409, "idempotency_key_in_use"));
      EXPECT_TRUE(d.header("Retry-After").has_value()) << d.describe();
    } else {
      EXPECT_EQ(d.status, 200) << d.describe();
      EXPECT_TRUE(replayed(d));
      EXPECT_EQ(d.body, first.body);
    }
  }
  auto later = http("POST", s.port(), "/v1/chat/completions", body, headers);
  EXPECT_TRUE(replayed(later)) << later.describe();
  EXPECT_EQ(later.body, first.body);
  EXPECT_EQ(s.fake.calls(), 1);
}

TEST(Idempotency, ServerErrorsAreNotStoredSoARetryRunsAgain) {
  Stack s("", {"--set", "llm.max_retries=0"});
  const Key alice = user_key(s.port(), "alice");
  ASSERT_TRUE(alice.ok());
  s.fake.enqueue({{"status", 500}, {"body", {{"error", {{"message", "boom"}}}}}});
  const HeaderList headers = with_header(bearer(alice.token), "Idempotency-Key", "after-a-5xx");
  const std::string body = openai_chat_request("try me");
  auto failed = http("POST", s.port(), "/v1/chat/completions", body, headers);
  ASSERT_GE(failed.status, 500) << failed.describe();
  EXPECT_FALSE(replayed(failed));
  auto retried = http("POST", s.port(), "/v1/chat/completions", body, headers);
  EXPECT_EQ(retried.status, 200) << retried.describe();
  EXPECT_FALSE(replayed(retried)) << "a stored 5xx was replayed";
  EXPECT_EQ(s.fake.calls(), 2);
  auto replay = http("POST", s.port(), "/v1/chat/completions", body, headers);
  EXPECT_TRUE(replayed(replay));
  EXPECT_EQ(replay.body, retried.body);
  EXPECT_EQ(s.fake.calls(), 2);
}

// =============================================================================================
// API8: security misconfiguration.

TEST(Api8SecurityMisconfiguration, WithoutKeysOnlyLoopbackIsServedUnlessToldOtherwise) {
  TempDir data;
  auto refused = run_parley({"serve", "--listen", "0.0.0.0:0", "--data-dir", data.path()},
                            {.timeout = Millis{10000}});
  ASSERT_FALSE(refused.timed_out) << "serve on every address with no key did not refuse\n"
                                  << refused.describe();
  EXPECT_NE(refused.exit_code(), 0) << refused.describe();
  EXPECT_NE(refused.err.find("--insecure-no-auth"), std::string::npos) << refused.describe();

  ParleyProcess local;
  EXPECT_EQ(http("GET", local.port(), "/api/v1/admin/keys").status, 200)
      << "no key, loopback: the local operator is an admin";

  ParleyProcess open({.args = {"--set", "server.listen=0.0.0.0:0", "--insecure-no-auth"}});
  EXPECT_EQ(http("GET", open.port(), "/api/v1/admin/keys").status, 200);
  EXPECT_TRUE(open.wait_for_log(
      [](const json& j) { return j.dump().find("insecure-no-auth") != std::string::npos; },
      Millis{2000}))
      << "serving without authentication is not announced\n"
      << open.output_dump();

  ParleyProcess keyed(
      {.args = {"--set", "server.listen=0.0.0.0:0"}, .env = {{"PARLEY_ADMIN_KEY", kAdminKey}}});
  EXPECT_TRUE(
      is_unauthenticated(http("GET", keyed.port(), "/api/v1/admin/keys"), "missing_api_key"));
  EXPECT_EQ(http("GET", keyed.port(), "/api/v1/admin/keys", "", bearer(kAdminKey)).status, 200);
}

TEST(Api8SecurityMisconfiguration, CorsAllowsOnlyTheConfiguredOrigins) {
  const std::string origin = "https://app.example.com";
  ParleyProcess p(with_admin({"--set", "server.cors_origins=" + origin}));
  const Key alice = user_key(p.port(), "alice");
  ASSERT_TRUE(alice.ok());

  // A preflight carries no credentials, and is answered for the allowed origin only.
  auto preflight = http("OPTIONS", p.port(), "/api/v1/sessions", "",
                        {{"Origin", origin},
                         {"Access-Control-Request-Method", "POST"},
                         {"Access-Control-Request-Headers", "authorization, idempotency-key"}});
  EXPECT_EQ(preflight.status, 204) << preflight.describe();
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin").value_or(""), origin);
  EXPECT_TRUE(icontains(preflight.header("Access-Control-Allow-Methods").value_or(""), "POST"));
  EXPECT_TRUE(
      icontains(preflight.header("Access-Control-Allow-Headers").value_or(""), "Authorization"));
  EXPECT_TRUE(
      icontains(preflight.header("Access-Control-Allow-Headers").value_or(""), "Idempotency-Key"));
  EXPECT_FALSE(iequals(preflight.header("Access-Control-Allow-Origin").value_or(""), "*"));
  expect_security_headers(preflight, "allowed preflight");

  for (const auto& other : {std::string("https://evil.example.com"), origin + ".evil.com",
                            std::string("http://app.example.com"), std::string("null"),
                            std::string("https://app.example.co")}) {
    SCOPED_TRACE(other);
    auto denied = http("OPTIONS", p.port(), "/api/v1/sessions", "",
                       {{"Origin", other}, {"Access-Control-Request-Method", "POST"}});
    EXPECT_TRUE(is_error(denied, 403, "cors_origin_denied"));
    EXPECT_FALSE(denied.header("Access-Control-Allow-Origin").has_value()) << denied.describe();
    auto normal = http("GET", p.port(), "/api/v1/sessions", "",
                       with_header(bearer(alice.token), "Origin", other));
    EXPECT_FALSE(normal.header("Access-Control-Allow-Origin").has_value()) << normal.describe();
  }

  // Actual responses to the allowed origin say so, errors included (so the page can read them).
  for (const auto& [what, r] : std::vector<std::pair<std::string, Response>>{
           {"200", http("GET", p.port(), "/api/v1/sessions", "",
                        with_header(bearer(alice.token), "Origin", origin))},
           {"401", http("GET", p.port(), "/api/v1/sessions", "", {{"Origin", origin}})}}) {
    SCOPED_TRACE(what);
    EXPECT_EQ(r.header("Access-Control-Allow-Origin").value_or(""), origin) << r.describe();
    bool varies = false;
    for (const auto& v : header_values(r, "Vary")) {
      for (const auto& item : split_list(v)) varies = varies || iequals(item, "Origin");
    }
    EXPECT_TRUE(varies) << r.describe();
  }
}

TEST(Api8SecurityMisconfiguration, SecurityHeadersOnEveryKindOfResponse) {
  ParleyProcess p(with_admin());
  const Key alice = user_key(p.port(), "alice");
  ASSERT_TRUE(alice.ok());
  expect_security_headers(http("GET", p.port(), "/health"), "public 200");
  expect_security_headers(http("GET", p.port(), "/metrics"), "metrics");
  expect_security_headers(http("GET", p.port(), "/api/v1/sessions"), "401");
  expect_security_headers(http("GET", p.port(), "/api/v1/admin/keys", "", bearer(alice.token)),
                          "403");
  expect_security_headers(http("GET", p.port(), "/api/v1/no-such-route"), "404 route");
  expect_security_headers(
      http("GET", p.port(), "/api/v1/sessions/sess_missing", "", bearer(alice.token)),
      "404 session");
  expect_security_headers(http("POST", p.port(), "/api/v1/sessions", "{}", bearer(alice.token)),
                          "201");
  auto streamed = http("POST", p.port(), "/api/v1/chat", R"({"message":"hi","stream":true})",
                       bearer(alice.token));
  ASSERT_EQ(streamed.status, 200) << streamed.describe();
  ASSERT_TRUE(icontains(streamed.header("Content-Type").value_or(""), "text/event-stream"));
  expect_security_headers(streamed, "event stream");
  auto compat =
      http("POST", p.port(), "/v1/chat/completions",
           R"({"model":"builtin","stream":true,"messages":[{"role":"user","content":"hi"}]})",
           bearer(alice.token));
  ASSERT_EQ(compat.status, 200) << compat.describe();
  expect_security_headers(compat, "OpenAI-compatible event stream");
}

}  // namespace
}  // namespace parley_it
