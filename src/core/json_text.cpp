// JSON text writing.
#include "core/json_text.hpp"

#include <charconv>

namespace parley {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t len = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
  }
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  // Overlong three-byte forms, UTF-16 surrogates and code points above U+10FFFF.
  if (len == 3 && c == 0xE0 && byte(i + 1) < 0xA0) return 0;
  if (len == 3 && c == 0xED && byte(i + 1) >= 0xA0) return 0;
  if (len == 4 && c == 0xF0 && byte(i + 1) < 0x90) return 0;
  if (len == 4 && c == 0xF4 && byte(i + 1) >= 0x90) return 0;
  return len;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < text.size()) {
    // Copy the longest run of plain printable ASCII at once: most text is nothing else.
    size_t run = i;
    while (run < text.size()) {
      auto ch = static_cast<unsigned char>(text[run]);
      if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') break;
      ++run;
    }
    out.append(text.data() + i, run - i);
    i = run;
    if (i == text.size()) break;
    auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else if (size_t len = utf8_sequence_length(text, i); len > 0) {
          out.append(text.substr(i, len));
          i += len - 1;
        } else {
          // Client-supplied bytes that are not UTF-8 must not break the JSON line.
          out += "\\ufffd";
        }
    }
    ++i;
  }
}

void JsonObjectWriter::key(std::string_view name) {
  if (!first_) out_.push_back(',');
  first_ = false;
  out_.push_back('"');
  out_ += name;
  out_ += "\":";
}

JsonObjectWriter& JsonObjectWriter::string(std::string_view name, std::string_view value) {
  key(name);
  out_.push_back('"');
  append_json_escaped(out_, value);
  out_.push_back('"');
  return *this;
}

JsonObjectWriter& JsonObjectWriter::nullable_string(std::string_view name,
                                                    const std::optional<std::string>& value) {
  if (!value) return raw(name, "null");
  return string(name, std::string_view(*value));
}

JsonObjectWriter& JsonObjectWriter::number(std::string_view name, int64_t value) {
  key(name);
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out_.append(digits, end);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::raw(std::string_view name, std::string_view json) {
  key(name);
  out_ += json;
  return *this;
}

}  // namespace parley
