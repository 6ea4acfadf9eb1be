// JSON text written straight into a string: the escaper every JSON line and hot-path body
// shares, and a few appenders for objects whose shape is known in advance. Building an
// nlohmann tree and dumping it cost a session read more CPU than its SQLite query; nlohmann
// stays the parser and the builder everywhere else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// Appends `text` as the inside of a JSON string (no quotes). Control characters are escaped;
// bytes that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
void append_json_escaped(std::string& out, std::string_view text);

// Writes one JSON object member by member: `{"id":"x","n":1}`. Keys are written as given
// (they are literals in our code); values are escaped.
class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  JsonObjectWriter(const JsonObjectWriter&) = delete;
  JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;

  JsonObjectWriter& string(std::string_view key, std::string_view value);
  // null when absent.
  JsonObjectWriter& nullable_string(std::string_view key, const std::optional<std::string>& value);
  JsonObjectWriter& number(std::string_view key, int64_t value);
  // `json` must already be valid JSON text (e.g. a value this server stored after parsing it).
  JsonObjectWriter& raw(std::string_view key, std::string_view json);
  void close() { out_.push_back('}'); }

 private:
  void key(std::string_view name);
  std::string& out_;
  bool first_ = true;
};

}  // namespace parley
