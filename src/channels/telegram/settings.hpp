// `telegram.*`: the Telegram channel (channels/telegram/channel.hpp). Off until a bot token is
// set (`telegram.bot_token`, `telegram.bot_token_file`, or TELEGRAM_BOT_TOKEN).
#pragma once

#include <chrono>
#include <string>

namespace parley::config {
class Schema;
}

namespace parley::channels::telegram {

struct TelegramSettings {
  std::string bot_token;
  // "webhook": Telegram posts updates to /api/v1/channels/telegram/webhook; "polling": this
  // process asks getUpdates (for machines without a public URL).
  std::string mode = "webhook";
  // Telegram sends it in X-Telegram-Bot-Api-Secret-Token; updates without it are refused.
  std::string webhook_secret;
  // Where Telegram reaches this server (https://bot.example.com); when set, the server
  // registers its webhook there at start (setWebhook with the secret).
  std::string public_url;
  // The Bot API; methods are called as {api_base_url}/bot{token}/{method}.
  std::string api_base_url = "https://api.telegram.org";
  std::string assistant;           // empty: the default assistant
  std::string tenant = "default";  // whose users the chats are
  // How often a streamed reply's message is edited as it grows (Telegram limits edits).
  // It is also the least time between two messages (sent or edited) in one chat, as
  // Telegram asks of bots.
  std::chrono::milliseconds edit_interval{1000};
  // Messages sent or edited per second across all chats (Telegram's bulk limit is about 30);
  // 0: no limit of Parley's own.
  int64_t max_messages_per_second = 30;
  std::chrono::milliseconds poll_timeout{25'000};  // getUpdates' long poll
  std::chrono::milliseconds request_timeout{30'000};

  bool enabled() const { return !bot_token.empty(); }
};

void declare_settings(config::Schema& schema);

}  // namespace parley::channels::telegram
