// Reading Telegram Updates (see update.hpp).
#include "channels/telegram/update.hpp"

#include <cctype>

#include <nlohmann/json.hpp>

namespace parley::channels::telegram {
namespace {

using nlohmann::json;

int64_t integer(const json& object, const char* key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string text_of(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::string without_mention(std::string_view text, std::string_view bot_username) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '@' && !bot_username.empty() &&
        iequal(text.substr(i + 1, bot_username.size()), bot_username)) {
      const size_t after = i + 1 + bot_username.size();
      const bool ends =
          after >= text.size() ||
          !(std::isalnum(static_cast<unsigned char>(text[after])) || text[after] == '_');
      if (ends) {
        i = after;
        continue;
      }
    }
    out += text[i++];
  }
  return trim(out);
}

std::optional<Update> parse_update(const json& update, std::string_view bot_username,
                                   int64_t bot_id) {
  if (!update.is_object()) return std::nullopt;
  auto id = update.find("update_id");
  if (id == update.end() || !id->is_number_integer()) return std::nullopt;
  Update u;
  u.update_id = id->get<int64_t>();
  if (const json& query = member(update, "callback_query"); query.is_object()) {
    const json& message = member(query, "message");
    u.kind = Update::Kind::kButton;
    u.callback_id = text_of(query, "id");
    u.callback_data = text_of(query, "data");
    u.from_id = integer(member(query, "from"), "id");
    u.from_name = text_of(member(query, "from"), "first_name");
    u.chat_id = integer(member(message, "chat"), "id");
    u.chat_type = text_of(member(message, "chat"), "type");
    u.message_id = integer(message, "message_id");
    u.addressed = true;
    if (u.chat_id == 0 || u.callback_id.empty()) u.kind = Update::Kind::kOther;
    return u;
  }
  const json& message = member(update, "message");
  if (!message.is_object()) return u;  // edited messages, channel posts, joins: ignored
  u.chat_id = integer(member(message, "chat"), "id");
  u.chat_type = text_of(member(message, "chat"), "type");
  u.from_id = integer(member(message, "from"), "id");
  u.from_name = text_of(member(message, "from"), "first_name");
  u.message_id = integer(message, "message_id");
  u.text = text_of(message, "text");
  if (u.text.empty()) u.text = text_of(message, "caption");
  if (u.chat_id == 0 || u.text.empty()) return u;
  u.kind = Update::Kind::kMessage;
  if (u.text.front() == '/') {
    size_t end = u.text.find_first_of(" \n");
    std::string_view word =
        std::string_view(u.text).substr(1, end == std::string::npos ? std::string::npos : end - 1);
    if (auto at = word.find('@'); at != std::string_view::npos) {
      const bool ours = iequal(word.substr(at + 1), bot_username);
      if (ours) u.addressed = true;
      // A command for another bot is no command of ours.
      word = ours || u.chat_type == "private" ? word.substr(0, at) : std::string_view();
    }
    u.command = std::string(word);
    for (auto& c : u.command) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const json& reply = member(message, "reply_to_message");
  if (bot_id != 0 && integer(member(reply, "from"), "id") == bot_id) u.addressed = true;
  if (!bot_username.empty() &&
      without_mention(u.text, bot_username).size() != trim(u.text).size()) {
    u.addressed = true;
  }
  if (u.chat_type == "private") u.addressed = true;
  return u;
}

}  // namespace parley::channels::telegram
