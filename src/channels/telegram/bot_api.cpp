// Calls to the Telegram Bot API (see bot_api.hpp).
#include "channels/telegram/bot_api.hpp"

#include <algorithm>

#include "core/sleep.hpp"
#include "http/client.hpp"

namespace parley::channels::telegram {
namespace {

using nlohmann::json;

constexpr size_t kMaxAnswer = size_t{8} << 20;

}  // namespace

BotApi::BotApi(http::HttpClient& client, Options options)
    : client_(client), options_(std::move(options)) {}

bool BotApi::not_modified(const Error& error) {
  return error.reason == "telegram_400" &&
         error.message.find("message is not modified") != std::string::npos;
}

bool BotApi::blocked(const Error& error) { return error.reason == "telegram_403"; }

Task<void> BotApi::pace(const std::string& method, const json& params) {
  if (method != "sendMessage" && method != "editMessageText") co_return;
  using Clock = std::chrono::steady_clock;
  const bool in_chat = options_.chat_interval.count() > 0 && params.contains("chat_id") &&
                       params["chat_id"].is_number_integer();
  const int64_t chat = in_chat ? params["chat_id"].get<int64_t>() : 0;
  auto wait_until = [](Clock::time_point at) -> Task<void> {
    const auto now = Clock::now();
    if (at > now) {
      co_await sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(at - now) +
                         std::chrono::milliseconds(1));
    }
  };
  // First the chat's own turn, then a slot of the bot's rate: a chat waiting for its turn
  // holds no slot that other chats could use meanwhile.
  if (in_chat) {
    Clock::time_point at;
    {
      std::lock_guard lock(pacing_mutex_);
      auto& next = next_in_chat_[chat];
      at = std::max(Clock::now(), next);
      next = at + options_.chat_interval;
    }
    co_await wait_until(at);
  }
  Clock::time_point sent = Clock::now();
  if (options_.per_second > 0) {
    const auto slot = std::chrono::microseconds(1'000'000 / options_.per_second);
    {
      std::lock_guard lock(pacing_mutex_);
      sent = std::max(Clock::now(), next_slot_);
      next_slot_ = sent + slot;
    }
    co_await wait_until(sent);
  }
  if (in_chat) {
    std::lock_guard lock(pacing_mutex_);
    // Measured from when it really goes out.
    auto& next = next_in_chat_[chat];
    next = std::max(next, sent + options_.chat_interval);
    if (next_in_chat_.size() > 100'000) {
      // Chats idle for longer than the interval need no entry.
      const auto now = Clock::now();
      std::erase_if(next_in_chat_, [&](const auto& e) { return e.second < now; });
    }
  }
}

Task<Result<json>> BotApi::call(std::string method, json params,
                                std::chrono::milliseconds extra_timeout) {
  co_await pace(method, params);
  const std::string body = params.dump(-1, ' ', false, json::error_handler_t::replace);
  auto waited = std::chrono::milliseconds(0);
  for (;;) {
    http::ClientRequest request;
    request.method = "POST";
    request.url = options_.base_url + "/bot" + options_.token + "/" + method;
    request.headers = {{"Content-Type", "application/json"}};
    request.body = body;
    request.total_timeout = options_.timeout + extra_timeout;
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout + extra_timeout;
    auto transfer = co_await client_.start(std::move(request));
    if (!transfer) {
      co_return Error::unavailable("Telegram cannot be reached: " + transfer.error().message,
                                   "telegram_unreachable");
    }
    auto status = co_await (*transfer)->head(deadline);
    if (!status) {
      co_return Error::unavailable("Telegram cannot be reached: " + status.error().message,
                                   "telegram_unreachable");
    }
    auto text = co_await (*transfer)->read_all(deadline, kMaxAnswer);
    if (!text) {
      co_return Error::unavailable("Telegram's answer was cut: " + text.error().message,
                                   "telegram_unreachable");
    }
    json answer = json::parse(*text, nullptr, false);
    if (answer.is_object() && answer.value("ok", false)) {
      co_return answer.contains("result") ? answer["result"] : json(true);
    }
    const int code = answer.is_object() && answer.contains("error_code") &&
                             answer["error_code"].is_number_integer()
                         ? answer["error_code"].get<int>()
                         : *status;
    std::string description =
        answer.is_object() && answer.contains("description") && answer["description"].is_string()
            ? answer["description"].get<std::string>()
            : "HTTP " + std::to_string(*status);
    if (code == 429) {
      int64_t seconds = 1;
      if (answer.is_object() && answer.contains("parameters") && answer["parameters"].is_object()) {
        const json& p = answer["parameters"];
        if (p.contains("retry_after") && p["retry_after"].is_number_integer()) {
          seconds = std::clamp<int64_t>(p["retry_after"].get<int64_t>(), 1, 3600);
        }
      }
      const auto wait = std::chrono::milliseconds(seconds * 1000);
      if (waited + wait > options_.max_wait) {
        Error e = Error::unavailable(
            "Telegram asks to wait " + std::to_string(seconds) + " s: " + description,
            "telegram_429");
        e.retry_after_ms = wait.count();
        co_return e;
      }
      waited += wait;
      co_await sleep_for(wait);
      continue;
    }
    Error e = code >= 500 ? Error::unavailable(description, "telegram_" + std::to_string(code))
                          : Error::invalid(description, "telegram_" + std::to_string(code));
    co_return e;
  }
}

}  // namespace parley::channels::telegram
