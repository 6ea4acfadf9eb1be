// HS256 JSON Web Tokens (RFC 7519) for end-user front ends: a web or mobile app's back end
// signs a short-lived token for its signed-in user, and the browser calls Parley with it.
//
// Accepted only when all of these hold:
// - the header says {"alg":"HS256"} (any other algorithm, "none" included, is refused: the
//   algorithm is fixed by the server, never chosen by the token);
// - the signature verifies with the configured secret (compared in constant time);
// - `sub` is a non-empty string: the user;
// - `exp` is present and in the future, `nbf` (if present) in the past, both with a small
//   leeway for clock skew;
// - `iss` / `aud` match when the server is configured to expect them.
// The optional `tenant` claim (a string) names the tenant; otherwise the default one.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace parley::auth {

struct JwtOptions {
  std::string secret;    // the HMAC key; at least 32 bytes (config checks)
  std::string issuer;    // expected `iss`; empty = not checked
  std::string audience;  // expected `aud` (string or one of an array); empty = not checked
  int64_t leeway_seconds = 60;
  size_t max_token_bytes = 8192;
};

struct JwtClaims {
  std::string subject;
  std::string tenant_id;   // empty when the token names none
  int64_t expires_at = 0;  // unix seconds
};

// kUnauthenticated with a message saying what was wrong (safe to show: it names no secret).
Result<JwtClaims> verify_jwt(std::string_view token, const JwtOptions& options,
                             int64_t now_unix_seconds);

// Signs claims (a JSON object's text) with HS256: for tests and `parley token` style tools.
std::string sign_jwt(std::string_view claims_json, std::string_view secret);

// True when the text has the shape of a JWT (three base64url parts); cheap, for routing a
// bearer token to the right verifier.
bool looks_like_jwt(std::string_view token);

}  // namespace parley::auth
