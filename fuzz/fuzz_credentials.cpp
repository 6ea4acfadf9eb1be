// Fuzz target: the credential parsers a request's Authorization header reaches before anything
// is trusted: API key tokens, and HS256 JWTs (header, claims, signature, dates).
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/api_key.hpp"
#include "auth/crypto.hpp"
#include "auth/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto token = parley::auth::parse_token(text)) {
    // What parses must print back as itself.
    if (parley::auth::format_token(*token) != text) __builtin_trap();
  }
  parley::auth::JwtOptions options;
  options.secret = "fuzz-secret-fuzz-secret-fuzz-secret!";
  (void)parley::auth::verify_jwt(text, options, 1'800'000'000);
  // A token signed by the server over the fuzz input as claims verifies unless the claims are
  // rejected; it never crashes.
  const std::string signed_token = parley::auth::sign_jwt(text, options.secret);
  (void)parley::auth::verify_jwt(signed_token, options, 1'800'000'000);
  if (auto decoded = parley::auth::base64url_decode(text)) {
    if (parley::auth::base64url_decode(parley::auth::base64url_encode(*decoded)) != decoded) {
      __builtin_trap();
    }
  }
  return 0;
}
