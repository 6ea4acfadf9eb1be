// HS256 JWT verification (auth/jwt.hpp): a token computed by another implementation verifies;
// the algorithm is the server's (none, RS256, a missing or lowercase alg are refused even with a
// signature made with the secret), so is the secret (a wrong or tampered signature, one in a
// non-canonical encoding); exp is required and enforced with the leeway, nbf likewise; iss and
// aud (a string or one of an array) when configured; sub and tenant shapes; malformed segments,
// bad base64url, JSON that is not an object, critical headers and oversized tokens. Every
// refusal is kUnauthenticated "invalid_token", and the message says which rule refused it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "auth/crypto.hpp"
#include "auth/jwt.hpp"

namespace {

using nlohmann::json;
using parley::ErrorCode;
using parley::auth::base64url_encode;
using parley::auth::Digest;
using parley::auth::hmac_sha256;
using parley::auth::JwtOptions;
using parley::auth::looks_like_jwt;
using parley::auth::sign_jwt;
using parley::auth::verify_jwt;
using ::testing::HasSubstr;

constexpr std::string_view kSecret = "an-example-secret-of-32-bytes-ok";
constexpr int64_t kNow = 1'700'000'000;  // unix seconds
constexpr std::string_view kHs256Header = R"({"alg":"HS256","typ":"JWT"})";

// Appends the HS256 signature of "header.claims" (already encoded, so that malformed segments
// can carry a valid signature too).
std::string sign_encoded(std::string signing_input, std::string_view secret = kSecret) {
  const Digest mac = hmac_sha256(secret, signing_input);
  signing_input.push_back('.');
  signing_input +=
      base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return signing_input;
}

// Signs with the crypto primitives directly, so that headers the server must refuse can be
// signed with the right secret too.
std::string sign(std::string_view header_json, std::string_view claims_json,
                 std::string_view secret = kSecret) {
  std::string signing_input = base64url_encode(header_json);
  signing_input.push_back('.');
  signing_input += base64url_encode(claims_json);
  return sign_encoded(std::move(signing_input), secret);
}

std::string hs256(const json& claims) { return sign(kHs256Header, claims.dump()); }

json valid_claims() { return {{"sub", "alice"}, {"exp", kNow + 3600}}; }

JwtOptions options() {
  JwtOptions o;
  o.secret = std::string(kSecret);
  return o;
}

// "accepted", or the message of the refusal after checking that it is one.
std::string outcome(const std::string& token, const JwtOptions& o = options(), int64_t now = kNow) {
  auto verified = verify_jwt(token, o, now);
  if (verified.ok()) return "accepted";
  EXPECT_EQ(verified.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(verified.error().reason, "invalid_token");
  return verified.error().message;
}

std::string with_signature_of(const std::string& token, const std::string& other) {
  std::string out = token.substr(0, token.rfind('.'));
  out += other.substr(other.rfind('.'));
  return out;
}

TEST(JwtTest, TokenMadeByAnotherImplementationVerifies) {
  // Computed with Python's hmac, hashlib and base64 modules, independently of this code:
  // {"sub":"alice","tenant":"acme","exp":2000000000} signed with kSecret.
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiJhbGljZSIsInRlbmFudCI6ImFjbWUiLCJleHAiOjIwMDAwMDAwMDB9."
      "Qb4ORDlig87DfZiDlrJrJZ9RdObuBcb7nyv-bdg8h2k";
  auto claims = verify_jwt(token, options(), kNow);
  ASSERT_TRUE(claims.ok()) << claims.error().message;
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->tenant_id, "acme");
  EXPECT_EQ(claims->expires_at, 2'000'000'000);
}

TEST(JwtTest, SignJwtProducesWhatVerifyAccepts) {
  const std::string claims = valid_claims().dump();
  EXPECT_EQ(sign_jwt(claims, kSecret), sign(kHs256Header, claims));
  EXPECT_EQ(outcome(sign_jwt(claims, kSecret)), "accepted");
}

TEST(JwtTest, ValidTokenGivesItsClaims) {
  json claims = valid_claims();
  claims["extra"] = {{"ignored", true}};
  auto verified = verify_jwt(hs256(claims), options(), kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->subject, "alice");
  EXPECT_EQ(verified->tenant_id, "");
  EXPECT_EQ(verified->expires_at, kNow + 3600);
}

TEST(JwtTest, SignatureMadeWithAnotherSecretIsRefused) {
  const std::string token =
      sign(kHs256Header, valid_claims().dump(), "another-secret-of-32-bytes-000000");
  EXPECT_THAT(outcome(token), HasSubstr("signature does not verify"));
}

TEST(JwtTest, ChangedClaimsBreakTheSignature) {
  const std::string original = hs256(valid_claims());
  json forged = valid_claims();
  forged["sub"] = "mallory";
  EXPECT_THAT(outcome(with_signature_of(hs256(forged), original)),
              HasSubstr("signature does not verify"));
}

TEST(JwtTest, TruncatedOrGarbledSignatureIsRefused) {
  const std::string token = hs256(valid_claims());
  EXPECT_THAT(outcome(token.substr(0, token.size() - 4)), HasSubstr("signature does not verify"));
  std::string garbled = token;
  garbled[garbled.rfind('.') + 1] = garbled[garbled.rfind('.') + 1] == 'A' ? 'B' : 'A';
  EXPECT_THAT(outcome(garbled), HasSubstr("signature does not verify"));
}

TEST(JwtTest, SignatureInANonCanonicalEncodingIsRefused) {
  // 32 bytes take 43 characters, the last one with two unused low bits that a canonical
  // encoding leaves zero. Setting one decodes to the same bytes in a lax decoder; a token must
  // have one spelling.
  const std::string token = hs256(valid_claims());
  ASSERT_EQ(token.size() - token.rfind('.') - 1, 43u);
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t last = kAlphabet.find(token.back());
  ASSERT_EQ(last % 4, 0u);
  std::string variant = token;
  variant.back() = kAlphabet[last + 1];
  EXPECT_THAT(outcome(variant), HasSubstr("signature does not verify"));
}

TEST(JwtTest, OnlyHs256IsAcceptedWhateverTheTokenSays) {
  const std::string claims = valid_claims().dump();
  // Each signed with the server's secret: the classic confusions where a verifier lets the token
  // pick the algorithm.
  for (std::string_view header :
       {R"({"alg":"none","typ":"JWT"})", R"({"alg":"RS256","typ":"JWT"})",
        R"({"alg":"HS512","typ":"JWT"})", R"({"alg":"hs256","typ":"JWT"})", R"({"typ":"JWT"})",
        R"({"alg":null})", R"({"alg":["HS256"]})"}) {
    EXPECT_THAT(outcome(sign(header, claims)), HasSubstr("must be signed with HS256")) << header;
  }
}

TEST(JwtTest, UnsignedAlgNoneTokenIsRefused) {
  std::string token = base64url_encode(R"({"alg":"none"})");
  token.push_back('.');
  token += base64url_encode(valid_claims().dump());
  token.push_back('.');
  EXPECT_THAT(outcome(token), HasSubstr("not a JWT"));
}

TEST(JwtTest, CriticalHeaderParametersAreRefused) {
  EXPECT_THAT(outcome(sign(R"({"alg":"HS256","crit":["exp"]})", valid_claims().dump())),
              HasSubstr("critical header parameters"));
}

TEST(JwtTest, ExpIsRequiredAndMustBeANumberOfSeconds) {
  json claims = valid_claims();
  claims.erase("exp");
  EXPECT_THAT(outcome(hs256(claims)), HasSubstr("needs an exp claim"));
  for (const json& exp :
       {json(std::to_string(kNow + 3600)), json(true), json(nullptr), json(1e12), json(-1e12)}) {
    claims["exp"] = exp;
    EXPECT_THAT(outcome(hs256(claims)), HasSubstr("needs an exp claim")) << exp.dump();
  }
}

TEST(JwtTest, ExpFractionsAreTruncated) {
  json claims = valid_claims();
  claims["exp"] = static_cast<double>(kNow + 3600) + 0.75;
  auto verified = verify_jwt(hs256(claims), options(), kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->expires_at, kNow + 3600);
}

TEST(JwtTest, ExpiredTokenIsRefusedOnceTheLeewayHasPassed) {
  const int64_t leeway = JwtOptions{}.leeway_seconds;
  ASSERT_GT(leeway, 1);
  json claims = valid_claims();
  claims["exp"] = kNow;
  const std::string token = hs256(claims);
  EXPECT_EQ(outcome(token, options(), kNow + leeway - 1), "accepted");
  EXPECT_THAT(outcome(token, options(), kNow + leeway + 1), HasSubstr("has expired"));
  EXPECT_THAT(outcome(token, options(), kNow + 86'400), HasSubstr("has expired"));
}

TEST(JwtTest, LeewayIsConfigurable) {
  JwtOptions strict = options();
  strict.leeway_seconds = 0;
  json claims = valid_claims();
  claims["exp"] = kNow - 1;
  EXPECT_THAT(outcome(hs256(claims), strict), HasSubstr("has expired"));
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
}

TEST(JwtTest, NotBeforeIsEnforcedWithTheLeeway) {
  const int64_t leeway = JwtOptions{}.leeway_seconds;
  json claims = valid_claims();
  claims["nbf"] = kNow + leeway;
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
  claims["nbf"] = kNow + leeway + 1;
  EXPECT_THAT(outcome(hs256(claims)), HasSubstr("not valid yet"));
  claims["nbf"] = kNow - 10;
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
}

TEST(JwtTest, NotBeforeThatIsNotATimeIsRefused) {
  json claims = valid_claims();
  claims["nbf"] = "yesterday";
  EXPECT_THAT(outcome(hs256(claims)), HasSubstr("nbf claim is not a time"));
}

TEST(JwtTest, IssuerIsCheckedOnlyWhenConfigured) {
  JwtOptions o = options();
  o.issuer = "https://app.example";
  json claims = valid_claims();
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("issuer"));
  claims["iss"] = "https://app.example";
  EXPECT_EQ(outcome(hs256(claims), o), "accepted");
  claims["iss"] = "https://evil.example";
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("issuer"));
  claims["iss"] = json::array({"https://app.example"});
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("issuer"));
}

TEST(JwtTest, AudienceMayBeAStringOrOneOfAnArray) {
  JwtOptions o = options();
  o.audience = "parley";
  json claims = valid_claims();
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("(aud)"));
  claims["aud"] = "parley";
  EXPECT_EQ(outcome(hs256(claims), o), "accepted");
  claims["aud"] = json::array({"billing", "parley"});
  EXPECT_EQ(outcome(hs256(claims), o), "accepted");
  claims["aud"] = json::array({"billing", "reports"});
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("(aud)"));
  claims["aud"] = "parley-staging";
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("(aud)"));
  claims["aud"] = json::array({json::array({"parley"}), 7});
  EXPECT_THAT(outcome(hs256(claims), o), HasSubstr("(aud)"));
  // Not configured: any audience passes.
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
}

TEST(JwtTest, SubIsRequiredAsAShortNonEmptyString) {
  json claims = valid_claims();
  for (const json& sub :
       {json(""), json(42), json(nullptr), json::array({"alice"}), json(std::string(257, 'u'))}) {
    claims["sub"] = sub;
    EXPECT_THAT(outcome(hs256(claims)), HasSubstr("needs a sub claim")) << sub.dump();
  }
  claims.erase("sub");
  EXPECT_THAT(outcome(hs256(claims)), HasSubstr("needs a sub claim"));
  claims["sub"] = std::string(256, 'u');
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
}

TEST(JwtTest, TenantClaimNamesTheTenant) {
  json claims = valid_claims();
  claims["tenant"] = "acme";
  auto verified = verify_jwt(hs256(claims), options(), kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->tenant_id, "acme");

  claims["tenant"] = std::string(128, 't');
  EXPECT_EQ(outcome(hs256(claims)), "accepted");
  for (const json& tenant : {json(""), json(7), json(nullptr), json(std::string(129, 't'))}) {
    claims["tenant"] = tenant;
    EXPECT_THAT(outcome(hs256(claims)), HasSubstr("tenant claim")) << tenant.dump();
  }
}

TEST(JwtTest, MalformedSegmentsAreNotJwts) {
  const std::string token = hs256(valid_claims());
  const std::string header = token.substr(0, token.find('.'));
  for (const std::string& bad :
       {std::string(), std::string("abc"), header + "." + header, token + "." + header,
        token.substr(token.find('.')), token.substr(0, token.rfind('.') + 1),
        header + ".." + header, token + "=", std::string(" ") + token}) {
    EXPECT_FALSE(looks_like_jwt(bad)) << bad;
    EXPECT_THAT(outcome(bad), HasSubstr("not a JWT")) << bad;
  }
  EXPECT_TRUE(looks_like_jwt(token));
}

TEST(JwtTest, BadBase64UrlIsRefused) {
  const std::string token = hs256(valid_claims());
  const std::string rest = token.substr(token.find('.'));
  // Standard base64's alphabet and padding are not base64url.
  for (const std::string& header :
       {std::string("eyJ+bGci"), std::string("eyJ/bGci"), base64url_encode(kHs256Header) + "=="}) {
    EXPECT_THAT(outcome(header + rest), HasSubstr("not a JWT")) << header;
  }
  // A length no whole number of bytes ends at.
  EXPECT_THAT(outcome(std::string("eyJhb") + rest), HasSubstr("header is not base64url"));
  // Validly signed, so that the claims are read at all.
  EXPECT_THAT(outcome(sign_encoded(base64url_encode(kHs256Header) + ".e")),
              HasSubstr("claims is not base64url"));
}

TEST(JwtTest, HeaderAndClaimsMustBeJsonObjects) {
  const std::string claims = valid_claims().dump();
  for (std::string_view header : {"[\"HS256\"]", "\"HS256\"", "not json", "{\"alg\":"}) {
    EXPECT_THAT(outcome(sign(header, claims)), HasSubstr("header is not a JSON object")) << header;
  }
  for (std::string_view body : {"[]", "42", "\"alice\"", "{\"sub\":", "null"}) {
    EXPECT_THAT(outcome(sign(kHs256Header, body)), HasSubstr("claims is not a JSON object"))
        << body;
  }
}

TEST(JwtTest, OversizedTokenIsRefusedBeforeParsing) {
  json claims = valid_claims();
  claims["padding"] = std::string(options().max_token_bytes, 'p');
  EXPECT_THAT(outcome(hs256(claims)), HasSubstr("too long"));
  JwtOptions roomy = options();
  roomy.max_token_bytes = 4 * options().max_token_bytes;
  EXPECT_EQ(outcome(hs256(claims), roomy), "accepted");
}

}  // namespace
