// `telegram.*` (see settings.hpp).
#include "channels/telegram/settings.hpp"

#include <cctype>
#include <map>

#include "config/settings.hpp"

namespace parley::channels::telegram {

void declare_settings(config::Schema& schema) {
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  schema.group<TelegramSettings>("telegram")
      .secret("bot_token", &TelegramSettings::bot_token,
              "The bot's token from @BotFather; the Telegram channel is off without one "
              "(also TELEGRAM_BOT_TOKEN).")
      .text("mode", &TelegramSettings::mode,
            "`webhook` (Telegram posts updates to /api/v1/channels/telegram/webhook) or "
            "`polling` (this server asks getUpdates; no public URL needed).",
            [](const std::string& v) -> std::optional<std::string> {
              if (v == "webhook" || v == "polling") return std::nullopt;
              return "expected webhook or polling";
            })
      .secret("webhook_secret", &TelegramSettings::webhook_secret,
              "Checked against X-Telegram-Bot-Api-Secret-Token on every webhook update "
              "(1-256 of A-Z, a-z, 0-9, _ and -).",
              [](const std::string& v) -> std::optional<std::string> {
                if (v.size() > 256) return "at most 256 characters";
                for (char c : v) {
                  if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
                    return "only A-Z, a-z, 0-9, _ and - (Telegram's rule)";
                }
                return std::nullopt;
              })
      .url("public_url", &TelegramSettings::public_url,
           "This server's public https address; when set, the webhook is registered there at "
           "start.")
      .url("api_base_url", &TelegramSettings::api_base_url,
           "The Bot API's address (methods are {api_base_url}/bot{token}/{method}).")
      .text("assistant", &TelegramSettings::assistant,
            "The assistant that answers in Telegram; empty: the default assistant.")
      .text("tenant", &TelegramSettings::tenant, "The tenant whose users Telegram chats are.")
      .duration("edit_interval", &TelegramSettings::edit_interval,
                "How often a streamed reply's message is edited as it grows; also the least time "
                "between two messages in one chat.",
                milliseconds(300), minutes(1))
      .integer("max_messages_per_second", &TelegramSettings::max_messages_per_second,
               "Messages sent or edited per second across all chats (Telegram allows about 30); "
               "0: no limit.",
               0, 10'000)
      .duration("poll_timeout", &TelegramSettings::poll_timeout,
                "Polling mode: how long one getUpdates call waits for updates.", seconds(1),
                minutes(1))
      .duration("request_timeout", &TelegramSettings::request_timeout,
                "The longest one Bot API call may take (getUpdates: on top of poll_timeout).",
                milliseconds(1000), minutes(5));
  schema.environment<TelegramSettings>(
      {"TELEGRAM_BOT_TOKEN"},
      [](TelegramSettings& s, const std::map<std::string, std::string>& env, config::Problems&) {
        auto it = env.find("TELEGRAM_BOT_TOKEN");
        if (it != env.end() && s.bot_token.empty()) s.bot_token = it->second;
      });
  schema.check([](const config::Settings& settings, config::Problems& problems) {
    const auto& s = settings.get<TelegramSettings>();
    if (s.enabled() && s.mode == "webhook" && s.webhook_secret.empty()) {
      problems.push_back({"telegram.webhook_secret", "", "telegram",
                          "webhook mode needs a secret, so that only Telegram can post updates "
                          "(or use telegram.mode: polling)"});
    }
  });
}

}  // namespace parley::channels::telegram
