#include "memory/text.hpp"

#include "auth/crypto.hpp"

namespace parley::memory {

std::string normalized(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u == ' ' || u == '\t' || u == '\n' || u == '\r' || u == '\f' || u == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (u >= 'A' && u <= 'Z') ? static_cast<char>(u - 'A' + 'a') : c;
  }
  while (!out.empty() &&
         (out.back() == '.' || out.back() == '!' || out.back() == ';' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

std::string text_hash(std::string_view text) {
  return auth::to_hex(auth::sha256(normalized(text)));
}

}  // namespace parley::memory
