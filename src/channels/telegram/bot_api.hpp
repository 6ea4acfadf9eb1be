// The Telegram Bot API (https://core.telegram.org/bots/api) over Parley's outbound HTTP client
// (libcurl on the event loops): methods are POSTed as JSON to {base}/bot{token}/{method}, and
// answers read as {"ok": true, "result": ...} or {"ok": false, "error_code", "description",
// "parameters": {"retry_after"}}.
//
// A 429 is waited out here, as long as Telegram's retry_after says (at most `max_wait` in all),
// then the call is made again; other refusals come back as Errors with reason
// "telegram_<code>" and Telegram's description as the message (403: the user blocked the bot;
// 400: a bad request, "message is not modified" among them). Network failures are kUnavailable
// ("telegram_unreachable"). Calls run on the calling coroutine's event loop. Messages are
// paced as Telegram asks (Options::chat_interval, per_second), so a busy bot waits its turn
// instead of collecting 429s.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "core/task.hpp"

namespace parley::http {
class HttpClient;
}

namespace parley::channels::telegram {

class BotApi {
 public:
  struct Options {
    std::string base_url;  // https://api.telegram.org
    std::string token;
    std::chrono::milliseconds timeout{30'000};   // one call, 429 waits not included
    std::chrono::milliseconds max_wait{60'000};  // the most a call waits out 429s
    // Pacing of the methods that put text in a chat (sendMessage, editMessageText): at least
    // `chat_interval` between two in one chat, at most `per_second` in all (0: unpaced).
    std::chrono::milliseconds chat_interval{0};
    int64_t per_second = 0;
  };
  BotApi(http::HttpClient& client, Options options);

  // The method's result. `extra_timeout` lengthens this call's limit (getUpdates' long poll).
  Task<Result<nlohmann::json>> call(std::string method, nlohmann::json params,
                                    std::chrono::milliseconds extra_timeout = {});

  // Whether `error` is Telegram's "message is not modified" (an edit to the same text).
  static bool not_modified(const Error& error);
  // Whether the chat can no longer be written to (the user blocked the bot, or it was removed
  // from the group).
  static bool blocked(const Error& error);

 private:
  // Waits for this call's turn under the pacing (Telegram answers 429 to bots that do not).
  Task<void> pace(const std::string& method, const nlohmann::json& params);

  http::HttpClient& client_;
  Options options_;
  std::mutex pacing_mutex_;
  std::chrono::steady_clock::time_point next_slot_{};
  std::map<int64_t, std::chrono::steady_clock::time_point> next_in_chat_;
};

}  // namespace parley::channels::telegram
