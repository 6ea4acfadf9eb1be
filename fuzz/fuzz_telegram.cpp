// Fuzz target: the Telegram channel's parsers (channels/telegram/format.hpp, update.hpp) over
// untrusted text. The first byte picks the message limit (16 + byte * 4); the rest is a model's
// reply, formatted into pieces that must each show at most the limit and have balanced tags
// of Telegram's set, and also read as an Update (JSON) for the bot "parley_test_bot".
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "channels/telegram/format.hpp"
#include "channels/telegram/update.hpp"

namespace {

// Tags open and close in order, and '&', '<', '>' appear only as markup or entities.
bool balanced(const std::string& html) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < html.size()) {
    if (html[i] == '>') return false;
    if (html[i] == '&') {
      const size_t semi = html.find(';', i);
      if (semi == std::string::npos) return false;
      const std::string entity = html.substr(i, semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;") return false;
      i = semi + 1;
      continue;
    }
    if (html[i] != '<') {
      ++i;
      continue;
    }
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return false;
    std::string tag = html.substr(i + 1, end - i - 1);
    const bool closing = !tag.empty() && tag[0] == '/';
    if (closing) tag.erase(0, 1);
    tag = tag.substr(0, tag.find(' '));
    if (closing) {
      if (open.empty() || open.back() != tag) return false;
      open.pop_back();
    } else {
      open.push_back(tag);
    }
    i = end + 1;
  }
  return open.empty();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t limit = 16 + size_t{data[0]} * 4;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (const auto& piece : parley::channels::telegram::format_reply(text, limit)) {
    if (piece.empty() || !balanced(piece)) __builtin_trap();
    if (parley::channels::telegram::shown_length(piece) > limit) __builtin_trap();
  }
  const auto update = nlohmann::json::parse(text, nullptr, false);
  (void)parley::channels::telegram::parse_update(update, "parley_test_bot", 4242);
  (void)parley::channels::telegram::without_mention(text, "parley_test_bot");
  return 0;
}
