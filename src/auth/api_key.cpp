// API key tokens (see api_key.hpp).
#include "auth/api_key.hpp"

#include "auth/crypto.hpp"
#include "core/ids.hpp"

namespace parley::auth {
namespace {

constexpr size_t kSecretHexDigits = 64;  // 256 bits

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool is_id_char(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); }

}  // namespace

KeyToken generate_key() {
  return KeyToken{new_resource_id("key"), to_hex(random_bytes(kSecretHexDigits / 2))};
}

std::string format_token(const KeyToken& token) {
  std::string out(kTokenPrefix);
  out += token.key_id;
  out.push_back('_');
  out += token.secret;
  return out;
}

std::optional<KeyToken> parse_token(std::string_view text) {
  if (text.substr(0, kTokenPrefix.size()) != kTokenPrefix) return std::nullopt;
  text.remove_prefix(kTokenPrefix.size());
  // "key_<id>_<secret>": the secret is the part after the last underscore.
  const auto last = text.rfind('_');
  if (last == std::string_view::npos) return std::nullopt;
  const std::string_view id = text.substr(0, last);
  const std::string_view secret = text.substr(last + 1);
  if (id.size() < 5 || id.size() > 64 || id.substr(0, 4) != "key_") return std::nullopt;
  for (char c : id.substr(4)) {
    if (!is_id_char(c)) return std::nullopt;
  }
  if (secret.size() != kSecretHexDigits || !is_lower_hex(secret)) return std::nullopt;
  return KeyToken{std::string(id), std::string(secret)};
}

std::string hash_secret(std::string_view secret) { return to_hex(sha256(secret)); }

bool secret_matches(std::string_view secret, std::string_view stored_hash) {
  return constant_time_equal(hash_secret(secret), stored_hash);
}

}  // namespace parley::auth
