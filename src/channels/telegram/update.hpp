// A Telegram Update (https://core.telegram.org/bots/api#update) as the channel uses it: a text
// message, or a press of one of the bot's buttons. Everything else is kOther and ignored.
// Pure; fuzzed (fuzz/fuzz_telegram.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace parley::channels::telegram {

struct Update {
  enum class Kind { kMessage, kButton, kOther };
  Kind kind = Kind::kOther;
  int64_t update_id = 0;
  int64_t chat_id = 0;
  std::string chat_type;  // "private", "group", "supergroup", "channel"
  int64_t from_id = 0;
  std::string from_name;  // first name, for greetings
  int64_t message_id = 0;
  std::string text;  // kMessage: the text (or a photo's caption)
  // Whether the message is for the bot in a group: it mentions @username, replies to one of
  // the bot's messages, or sends a command addressed to it (/help@username).
  bool addressed = false;
  // kMessage: the command it starts with, without "/" and "@username" ("start"), if any.
  std::string command;
  // kButton: the callback query's id and data.
  std::string callback_id;
  std::string callback_data;
};

// nullopt when `update` is not an Update (no update_id); kOther for kinds the channel ignores.
// `bot_username` (without "@") decides `addressed` and strips "@username" from commands and
// mentions.
std::optional<Update> parse_update(const nlohmann::json& update, std::string_view bot_username,
                                   int64_t bot_id);

// The text with the bot's @username mention removed and trimmed.
std::string without_mention(std::string_view text, std::string_view bot_username);

}  // namespace parley::channels::telegram
