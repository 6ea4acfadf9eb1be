// HS256 verification (see jwt.hpp). The parser is ours, so it is fuzzed (fuzz/jwt_fuzz.cpp).
#include "auth/jwt.hpp"

#include <nlohmann/json.hpp>

#include "auth/crypto.hpp"

namespace parley::auth {
namespace {

using nlohmann::json;

Error unauthenticated(std::string message) {
  return Error{ErrorCode::kUnauthenticated, std::move(message), "invalid_token", {}, {}};
}

bool is_base64url(std::string_view part) {
  if (part.empty()) return false;
  for (char c : part) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<json> decode_part(std::string_view part, const char* what) {
  auto text = base64url_decode(part);
  if (!text) return unauthenticated(std::string("the token's ") + what + " is not base64url");
  auto value = json::parse(*text, nullptr, false);
  if (!value.is_object()) {
    return unauthenticated(std::string("the token's ") + what + " is not a JSON object");
  }
  return value;
}

// A NumericDate: a JSON number of seconds (fractions allowed, truncated).
std::optional<int64_t> numeric_date(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!(v > -1e12 && v < 1e12)) return std::nullopt;
  return static_cast<int64_t>(v);
}

}  // namespace

bool looks_like_jwt(std::string_view token) {
  const auto first = token.find('.');
  if (first == std::string_view::npos) return false;
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return false;
  }
  return is_base64url(token.substr(0, first)) &&
         is_base64url(token.substr(first + 1, second - first - 1)) &&
         is_base64url(token.substr(second + 1));
}

Result<JwtClaims> verify_jwt(std::string_view token, const JwtOptions& options,
                             int64_t now_unix_seconds) {
  if (token.size() > options.max_token_bytes) return unauthenticated("the token is too long");
  if (!looks_like_jwt(token)) return unauthenticated("the token is not a JWT");
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  const std::string_view header_part = token.substr(0, first);
  const std::string_view claims_part = token.substr(first + 1, second - first - 1);
  const std::string_view signature_part = token.substr(second + 1);

  auto header = decode_part(header_part, "header");
  if (!header) return std::move(header).error();
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || *alg != "HS256") {
    return unauthenticated("the token must be signed with HS256");
  }
  if (auto crit = header->find("crit"); crit != header->end()) {
    return unauthenticated("the token has critical header parameters this server does not know");
  }

  // The signature before the claims are believed.
  auto signature = base64url_decode(signature_part);
  const Digest expected = hmac_sha256(options.secret, token.substr(0, second));
  const std::string_view expected_bytes(reinterpret_cast<const char*>(expected.data()),
                                        expected.size());
  if (!signature || !constant_time_equal(*signature, expected_bytes)) {
    return unauthenticated("the token's signature does not verify");
  }

  auto claims = decode_part(claims_part, "claims");
  if (!claims) return std::move(claims).error();
  JwtClaims out;
  auto sub = claims->find("sub");
  if (sub == claims->end() || !sub->is_string() || sub->get_ref<const std::string&>().empty() ||
      sub->get_ref<const std::string&>().size() > 256) {
    return unauthenticated(
        "the token needs a sub claim (the user), a string of 1 to 256 characters");
  }
  out.subject = sub->get<std::string>();
  auto exp = numeric_date(*claims, "exp");
  if (!exp) return unauthenticated("the token needs an exp claim");
  // RFC 7519 4.1.4: valid only before exp (as API keys are, before expires_at).
  if (now_unix_seconds >= *exp + options.leeway_seconds)
    return unauthenticated("the token has expired");
  out.expires_at = *exp;
  if (claims->contains("nbf")) {
    auto nbf = numeric_date(*claims, "nbf");
    if (!nbf) return unauthenticated("the token's nbf claim is not a time");
    if (now_unix_seconds + options.leeway_seconds < *nbf) {
      return unauthenticated("the token is not valid yet");
    }
  }
  if (!options.issuer.empty()) {
    auto iss = claims->find("iss");
    if (iss == claims->end() || !iss->is_string() || *iss != options.issuer) {
      return unauthenticated("the token's issuer is not the one this server trusts");
    }
  }
  if (!options.audience.empty()) {
    auto aud = claims->find("aud");
    bool match = false;
    if (aud != claims->end() && aud->is_string()) match = *aud == options.audience;
    if (aud != claims->end() && aud->is_array()) {
      for (const auto& a : *aud) match = match || (a.is_string() && a == options.audience);
    }
    if (!match) return unauthenticated("the token is not meant for this server (aud)");
  }
  if (auto tenant = claims->find("tenant"); tenant != claims->end()) {
    if (!tenant->is_string() || tenant->get_ref<const std::string&>().empty() ||
        tenant->get_ref<const std::string&>().size() > 128) {
      return unauthenticated("the token's tenant claim must be a string of 1 to 128 characters");
    }
    out.tenant_id = tenant->get<std::string>();
  }
  return out;
}

std::string sign_jwt(std::string_view claims_json, std::string_view secret) {
  std::string token = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  token.push_back('.');
  token += base64url_encode(claims_json);
  const Digest mac = hmac_sha256(secret, token);
  token.push_back('.');
  token +=
      base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return token;
}

}  // namespace parley::auth
