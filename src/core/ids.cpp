// Id generation. A 64-bit splitmix/xorshift-style generator per thread is enough: the ids need
// to be unique and unguessable in practice, not cryptographic keys (API keys use the OS CSPRNG).
#include "core/ids.hpp"

#include <array>
#include <cstdint>
#include <random>

namespace parley {
namespace {

std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return rng;
}

}  // namespace

std::string random_hex128() {
  static constexpr char kHex[] = "0123456789abcdef";
  auto& rng = thread_rng();
  std::string out(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t v = rng();
    for (int i = 0; i < 16; ++i) {
      out[static_cast<size_t>(half) * 16 + static_cast<size_t>(i)] = kHex[v & 0xF];
      v >>= 4;
    }
  }
  return out;
}

std::string new_resource_id(std::string_view prefix) {
  static constexpr char kBase32[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford, lowercase
  auto& rng = thread_rng();
  std::array<uint64_t, 2> bits{rng(), rng()};
  std::string out(prefix);
  out.push_back('_');
  for (int i = 0; i < 26; ++i) {
    // 26 * 5 = 130 bits; the top two characters draw from the second word's spare bits.
    uint64_t& word = bits[static_cast<size_t>(i < 13 ? 0 : 1)];
    out.push_back(kBase32[word & 0x1F]);
    word >>= 5;
  }
  return out;
}

bool is_valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace parley
