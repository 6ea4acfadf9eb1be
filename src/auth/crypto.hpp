// The few cryptographic primitives access control needs, from OpenSSL's libcrypto (already
// linked through libcurl): a CSPRNG, SHA-256, HMAC-SHA-256, constant-time comparison, and the
// hex/base64url text forms of their bytes. Thread-safe; nothing here allocates a context that
// outlives a call.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::auth {

using Digest = std::array<unsigned char, 32>;

// `count` bytes from the OS-seeded CSPRNG. Aborts the process if the generator fails: a key
// made from bad randomness must never be handed out.
std::string random_bytes(size_t count);

Digest sha256(std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view data);

// True when the two are equal, in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

std::string to_hex(std::string_view bytes);
std::string to_hex(const Digest& digest);
// Lowercase or uppercase hex; nullopt on an odd length or a non-hex character.
std::optional<std::string> from_hex(std::string_view hex);

// RFC 4648 §5 without padding (JWT's encoding). Decoding accepts no padding and no other
// alphabet; nullopt on anything else.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace parley::auth
