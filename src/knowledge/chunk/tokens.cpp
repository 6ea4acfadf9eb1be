// The token estimate (see tokens.hpp).
#include "knowledge/chunk/tokens.hpp"

#include <cstdint>

namespace parley::knowledge {

int64_t count_tokens(std::string_view text) {
  int64_t tokens = 0;
  int64_t word = 0;  // bytes of the current word
  const auto end_word = [&] {
    if (word > 0) tokens += 1 + (word - 1) / 8;
    word = 0;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const bool word_byte = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                           (b >= '0' && b <= '9') || b == '_' ||
                           // accented Latin, Cyrillic, Greek...: part of the word
                           (b >= 0x80 && (b < 0xE3 || b > 0xEF));
    if (word_byte) {
      ++word;
    } else if (b >= 0xE3 && b <= 0xEF) {
      // A three-byte character from U+3000 up (CJK and the like): a token of its own.
      end_word();
      ++tokens;
      i += 2;
    } else if (b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v') {
      end_word();
    } else {
      end_word();
      ++tokens;
    }
  }
  end_word();
  return tokens;
}

}  // namespace parley::knowledge
