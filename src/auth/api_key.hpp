// API key tokens: how a key looks to its holder, and what the server keeps of it.
//
// A token is "parley_" + key id + "_" + secret, e.g.
//   parley_key_5gk2m9x0r7c4t1q8_3f9a...(64 hex digits)
// - The prefix makes leaked tokens easy to spot (secret scanners, logs) and to tell apart from
//   a provider's key.
// - The key id is public: it names the key in lists, logs and revocation.
// - The secret is 256 bits from the CSPRNG. Only its SHA-256 is stored. A slow password hash
//   (bcrypt, argon2) protects guessable human passwords; against a 256-bit random secret, a
//   stolen hash gives nothing to brute-force, and SHA-256 keeps verification at microseconds
//   on every request.
// - The stored hash is compared in constant time (crypto.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley::auth {

inline constexpr std::string_view kTokenPrefix = "parley_";

struct KeyToken {
  std::string key_id;  // "key_..."
  std::string secret;  // 64 lowercase hex digits
};

// A fresh key: a new id and secret.
KeyToken generate_key();

// The token text handed to the holder, once.
std::string format_token(const KeyToken& token);

// Splits a presented token; nullopt when it is not shaped like one of ours.
std::optional<KeyToken> parse_token(std::string_view text);

// What the store keeps: lowercase hex SHA-256 of the secret.
std::string hash_secret(std::string_view secret);

// True when `secret` hashes to `stored_hash`, compared in constant time.
bool secret_matches(std::string_view secret, std::string_view stored_hash);

}  // namespace parley::auth
