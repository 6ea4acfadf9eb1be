// The fake Telegram Bot API (see fake_telegram.hpp and fake_telegram_main.cpp).
#include "fake_telegram.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/sleep.hpp"
#include "http/router.hpp"
#include "loopback_server.hpp"

namespace parley::testing {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr int64_t kBotId = 4242;
constexpr const char* kBotUsername = "parley_test_bot";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Response answer(int status, const json& body) { return http::Response::json(status, body); }

http::Response ok(json result) {
  return answer(200, {{"ok", true}, {"result", std::move(result)}});
}

http::Response refused(int status, const std::string& description, int retry_after) {
  json body = {{"ok", false}, {"error_code", status}, {"description", description}};
  if (retry_after > 0) body["parameters"] = {{"retry_after", retry_after}};
  return answer(status, body);
}

// Code points shown by the text once tags are dropped and entities counted as one.
size_t shown(const std::string& html) {
  size_t n = 0;
  bool tag = false;
  for (size_t i = 0; i < html.size(); ++i) {
    const auto c = static_cast<unsigned char>(html[i]);
    if (c == '<') tag = true;
    if (!tag && (c & 0xC0) != 0x80) {
      if (c == '&') {
        const size_t semi = html.find(';', i);
        if (semi != std::string::npos) i = semi;
      }
      n += c >= 0xF0 ? 2 : 1;
    }
    if (c == '>') tag = false;
  }
  return n;
}

}  // namespace

std::string FakeTelegram::html_problem(const std::string& html) {
  static const std::vector<std::string> kTags = {
      "b",   "strong", "i",   "em", "u",          "ins",        "s",   "strike",
      "del", "code",   "pre", "a",  "blockquote", "tg-spoiler", "span"};
  std::vector<std::string> open;
  size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '>') return "can't parse entities: unexpected '>'";
    if (c == '&') {
      const size_t semi = html.find(';', i);
      const std::string entity = semi == std::string::npos ? "" : html.substr(i, semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;") {
        return "can't parse entities: unsupported entity at byte " + std::to_string(i);
      }
      i = semi + 1;
      continue;
    }
    if (c != '<') {
      ++i;
      continue;
    }
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return "can't parse entities: unclosed tag";
    std::string tag = html.substr(i + 1, end - i - 1);
    const bool closing = !tag.empty() && tag[0] == '/';
    if (closing) tag.erase(0, 1);
    const std::string name = tag.substr(0, tag.find(' '));
    if (std::find(kTags.begin(), kTags.end(), name) == kTags.end()) {
      return "can't parse entities: unsupported start tag \"" + name + "\"";
    }
    if (closing) {
      if (open.empty() || open.back() != name) {
        return "can't parse entities: can't find end tag corresponding to start tag";
      }
      open.pop_back();
    } else {
      open.push_back(name);
    }
    i = end + 1;
  }
  if (!open.empty()) return "can't parse entities: can't find end tag for \"" + open.back() + "\"";
  return "";
}

struct FakeTelegram::Impl {
  std::string token;

  struct Failure {
    int status = 0;
    std::string description;
    int retry_after = 0;
    int times = 1;
  };
  std::mutex mutex;
  json calls = json::array();
  std::map<std::string, std::deque<Failure>> failures;
  std::deque<json> updates;
  int64_t next_message_id = 1;
  // The text each message shows now (chat:message -> text), as Telegram keeps it.
  std::map<std::string, std::string> texts;

  // The next scripted failure of `method`, if any.
  std::optional<Failure> failure(const std::string& method) {
    auto it = failures.find(method);
    if (it == failures.end() || it->second.empty()) return std::nullopt;
    Failure f = it->second.front();
    if (--it->second.front().times <= 0) it->second.pop_front();
    return f;
  }

  // Answers a call and records it with the status it got.
  http::Response method(const std::string& name, const json& params) {
    std::lock_guard lock(mutex);
    const int64_t at = now_ms();
    http::Response res = respond(name, params);
    json call = {{"method", name}, {"params", params}, {"at_ms", at}, {"status", res.status}};
    // The message a sendMessage made, so that its later edits can be matched to it.
    if (name == "sendMessage" && res.status == 200) call["message_id"] = next_message_id - 1;
    calls.push_back(std::move(call));
    return res;
  }

  http::Response respond(const std::string& name, const json& params) {
    if (auto f = failure(name)) return refused(f->status, f->description, f->retry_after);
    if (name == "getMe") {
      return ok(
          {{"id", kBotId}, {"is_bot", true}, {"first_name", "Parley"}, {"username", kBotUsername}});
    }
    if (name == "sendMessage" || name == "editMessageText") {
      if (!params.is_object() || !params.contains("chat_id") || !params.contains("text") ||
          !params["text"].is_string()) {
        return refused(400, "Bad Request: message text is empty", 0);
      }
      const std::string text = params["text"].get<std::string>();
      if (text.empty()) return refused(400, "Bad Request: message text is empty", 0);
      if (params.value("parse_mode", "") == "HTML") {
        if (auto problem = html_problem(text); !problem.empty()) {
          return refused(400, "Bad Request: " + problem, 0);
        }
      }
      if (shown(text) > 4096) return refused(400, "Bad Request: message is too long", 0);
      const std::string chat = params["chat_id"].dump();
      int64_t id = 0;
      if (name == "sendMessage") {
        id = next_message_id++;
      } else {
        id = params.value("message_id", int64_t{0});
        const auto it = texts.find(chat + ":" + std::to_string(id));
        if (it == texts.end()) return refused(400, "Bad Request: message to edit not found", 0);
        if (it->second == text) {
          return refused(400,
                         "Bad Request: message is not modified: specified new message content "
                         "and reply markup are exactly the same as a current content and reply "
                         "markup of the message",
                         0);
        }
      }
      texts[chat + ":" + std::to_string(id)] = text;
      return ok({{"message_id", id}, {"chat", {{"id", params["chat_id"]}}}, {"text", text}});
    }
    if (name == "sendChatAction" || name == "setWebhook" || name == "deleteWebhook" ||
        name == "answerCallbackQuery") {
      return ok(true);
    }
    return refused(404, "Not Found: method not found", 0);
  }

  // Last: it stops first, while the handlers still find the state above.
  LoopbackServer host{"fake-telegram"};
};

FakeTelegram::FakeTelegram(uint16_t port, std::string token) : impl_(std::make_shared<Impl>()) {
  Impl* impl = impl_.get();
  impl->token = std::move(token);
  impl->host.router().add(http::Method::kGet, "/_fake/calls", http::kPublic,
                          [impl](http::Request&) -> Task<http::Response> {
                            std::lock_guard lock(impl->mutex);
                            co_return answer(200, {{"calls", impl->calls}});
                          });
  impl->host.router().add(http::Method::kPost, "/_fake/fail", http::kPublic,
                          [impl](http::Request& req) -> Task<http::Response> {
                            json spec = json::parse(req.body, nullptr, false);
                            if (!spec.is_object() || !spec.contains("method")) {
                              co_return answer(400, {{"error", "need method"}});
                            }
                            Impl::Failure f;
                            f.status = spec.value("status", 400);
                            f.description = spec.value("description", std::string("Bad Request"));
                            f.retry_after = spec.value("retry_after", 0);
                            f.times = spec.value("times", 1);
                            std::lock_guard lock(impl->mutex);
                            impl->failures[spec["method"].get<std::string>()].push_back(f);
                            co_return http::Response::empty(204);
                          });
  impl->host.router().add(
      http::Method::kPost, "/_fake/updates", http::kPublic,
      [impl](http::Request& req) -> Task<http::Response> {
        json spec = json::parse(req.body, nullptr, false);
        if (!spec.is_object() || !spec.contains("updates") || !spec["updates"].is_array()) {
          co_return answer(400, {{"error", "need updates"}});
        }
        std::lock_guard lock(impl->mutex);
        for (const auto& u : spec["updates"]) impl->updates.push_back(u);
        co_return http::Response::empty(204);
      });
  impl->host.router().add(http::Method::kPost, "/_fake/reset", http::kPublic,
                          [impl](http::Request&) -> Task<http::Response> {
                            std::lock_guard lock(impl->mutex);
                            impl->calls = json::array();
                            impl->failures.clear();
                            impl->updates.clear();
                            impl->texts.clear();
                            co_return http::Response::empty(204);
                          });
  // After the control routes, which it would otherwise match.
  impl->host.router().add(
      http::Method::kPost, "/{bot}/{method}", http::kPublic,
      [impl](http::Request& req) -> Task<http::Response> {
        if (req.param("bot") != "bot" + impl->token) {
          co_return refused(401, "Unauthorized", 0);
        }
        const std::string name(req.param("method"));
        json params = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
        if (params.is_discarded()) co_return refused(400, "Bad Request: can't parse JSON", 0);
        if (name == "getUpdates") {
          // Long polling: hands out the queued updates from `offset` on, waiting up to
          // `timeout` seconds (at most 2 here) for one to arrive.
          const int64_t offset = params.value("offset", int64_t{0});
          const auto deadline =
              std::chrono::steady_clock::now() +
              std::chrono::seconds(std::min<int64_t>(params.value("timeout", 0), 2));
          for (;;) {
            json out = json::array();
            {
              std::lock_guard lock(impl->mutex);
              if (auto f = impl->failure(name)) {
                impl->calls.push_back({{"method", name},
                                       {"params", params},
                                       {"at_ms", now_ms()},
                                       {"status", f->status}});
                co_return refused(f->status, f->description, f->retry_after);
              }
              while (!impl->updates.empty() &&
                     impl->updates.front().value("update_id", int64_t{0}) < offset) {
                impl->updates.pop_front();  // confirmed by the offset
              }
              for (const auto& u : impl->updates) out.push_back(u);
            }
            if (!out.empty() || std::chrono::steady_clock::now() >= deadline) {
              std::lock_guard lock(impl->mutex);
              impl->calls.push_back(
                  {{"method", name}, {"params", params}, {"at_ms", now_ms()}, {"status", 200}});
              co_return ok(out);
            }
            co_await sleep_for(std::chrono::milliseconds(50));
          }
        }
        co_return impl->method(name, params);
      });
  port_ = impl->host.start(port);
}

FakeTelegram::~FakeTelegram() { impl_->host.stop(); }

}  // namespace parley::testing
