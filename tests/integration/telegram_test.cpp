// The Telegram channel against the real binary, a fake Bot API (parley_fake_telegram: records
// every call, validates HTML as Telegram does, plays Telegram's documented failures) and the
// fake provider: the webhook's secret, updates answered as streamed edits, duplicates, long
// replies, 429 / "message is not modified" / 403, commands, groups, polling, per-chat order.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

const std::string kToken = "123456:TEST-token";
const std::string kSecret = "s3cr3t-Webhook_token";
constexpr int64_t kBotId = 4242;

// parley_fake_telegram as a child process.
class FakeTelegram {
 public:
  FakeTelegram() {
    child_ =
        std::make_unique<Child>(std::vector<std::string>{PARLEY_FAKE_TELEGRAM, "--token", kToken},
                                EnvVars{}, dir_.path(), "");
    auto line = child_->wait_stdout_line(
        [](const std::string& l) { return l.find("\"port\"") != std::string::npos; }, 0,
        Millis{10000});
    if (!line) throw std::runtime_error("fake telegram did not start: " + child_->stderr_text());
    port_ = json::parse(child_->stdout_lines().at(*line))["port"].get<int>();
  }
  int port() const { return port_; }
  json calls(const std::string& method = "") const {
    json all = http("GET", port_, "/_fake/calls").json()["calls"];
    if (method.empty()) return all;
    json out = json::array();
    for (const auto& c : all) {
      if (c["method"] == method) out.push_back(c);
    }
    return out;
  }
  void fail(const json& spec) const {
    auto r = http("POST", port_, "/_fake/fail", spec.dump());
    ASSERT_EQ(r.status, 204) << r.describe();
  }
  void updates(const json& list) const {
    auto r = http("POST", port_, "/_fake/updates", json{{"updates", list}}.dump());
    ASSERT_EQ(r.status, 204) << r.describe();
  }

 private:
  TempDir dir_{"parley-fake-telegram"};
  std::unique_ptr<Child> child_;
  int port_ = 0;
};

// The `telegram:` section for a bot on the fake Bot API, then `more` of it.
std::string telegram_config(int fake_port, const std::string& mode, const std::string& more) {
  return "telegram:\n"
         "  bot_token: \"" +
         kToken + "\"\n  mode: " + mode + "\n  webhook_secret: " + kSecret +
         "\n  api_base_url: http://127.0.0.1:" + std::to_string(fake_port) +
         "\n  edit_interval: 300ms\n" + more;
}

struct Bot {
  FakeProvider provider;
  FakeTelegram telegram;
  TempDir config_dir{"parley-config"};
  std::unique_ptr<ParleyProcess> parley;
  explicit Bot(const std::string& mode = "webhook", const std::string& extra = "") {
    const std::string yaml = provider.base_config() +
                             telegram_config(telegram.port(), mode, "  poll_timeout: 1s\n") + extra;
    ServeOptions opts;
    opts.args = {"--config", config_dir.write_file("parley.yaml", yaml)};
    parley = std::make_unique<ParleyProcess>(opts);
  }
  int port() const { return parley->port(); }
  Response post(const json& update, const std::string& secret = kSecret) const {
    HeaderList headers;
    if (!secret.empty()) headers.push_back({"X-Telegram-Bot-Api-Secret-Token", secret});
    return http("POST", port(), "/api/v1/channels/telegram/webhook", update.dump(), headers);
  }
  // The texts the chat shows now: each message's last text, by message id.
  std::map<int64_t, std::string> shown(int64_t chat) const {
    std::map<int64_t, std::string> out;
    for (const auto& c : telegram.calls()) {
      if (c["params"].value("chat_id", int64_t{0}) != chat || c["status"] != 200) continue;
      if (c["method"] == "sendMessage") out[c["message_id"].get<int64_t>()] = c["params"]["text"];
      if (c["method"] == "editMessageText") {
        out[c["params"]["message_id"].get<int64_t>()] = c["params"]["text"];
      }
    }
    return out;
  }
};

json text_update(int64_t update_id, int64_t chat, const std::string& text,
                 const std::string& type = "private") {
  return {{"update_id", update_id},
          {"message",
           {{"message_id", update_id * 10},
            {"date", 1700000000},
            {"from", {{"id", chat > 0 ? chat : 99}, {"is_bot", false}, {"first_name", "Ana"}}},
            {"chat", {{"id", chat}, {"type", type}}},
            {"text", text}}}};
}

// The messages sent to `chat` (sendMessage calls that succeeded are not told apart here: the
// fake answers every valid one).
json sent_to(const FakeTelegram& t, int64_t chat, const std::string& method = "sendMessage") {
  json out = json::array();
  for (const auto& c : t.calls(method)) {
    if (c["params"].value("chat_id", int64_t{0}) == chat) out.push_back(c["params"]);
  }
  return out;
}

TEST(Telegram, TheWebhookRefusesUpdatesWithoutItsSecret) {
  Bot bot;
  EXPECT_TRUE(is_error(bot.post(text_update(1, 77, "hi"), ""), 401, "telegram_secret_mismatch"));
  EXPECT_TRUE(
      is_error(bot.post(text_update(1, 77, "hi"), "wrong"), 401, "telegram_secret_mismatch"));
  EXPECT_TRUE(is_error(bot.post(json{{"hello", 1}}), 400, "invalid_update"));
  std::this_thread::sleep_for(Millis{300});
  EXPECT_EQ(bot.provider.calls(), 0);
  EXPECT_TRUE(sent_to(bot.telegram, 77).empty());
}

TEST(Telegram, AMessageIsAcknowledgedAtOnceThenAnsweredWithTypingAndTheReply) {
  Bot bot;
  auto r = bot.post(text_update(10, 77, "Hello bot"));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["ok"], true);
  ASSERT_TRUE(eventually([&] { return !sent_to(bot.telegram, 77).empty(); }, Millis{10000}));
  ASSERT_TRUE(eventually(
      [&] {
        auto s = bot.shown(77);
        return !s.empty() && s.begin()->second == "Hello from the fake upstream.";
      },
      Millis{10000}))
      << bot.telegram.calls().dump();
  EXPECT_FALSE(sent_to(bot.telegram, 77, "sendChatAction").empty());
  EXPECT_EQ(sent_to(bot.telegram, 77, "sendChatAction")[0]["action"], "typing");
  // The chat is a user with a session holding the exchange.
  auto sessions = http("GET", bot.port(), "/api/v1/sessions?user_id=telegram:77").json();
  ASSERT_EQ(sessions["data"].size(), 1u);
  auto messages =
      http("GET", bot.port(),
           "/api/v1/sessions/" + sessions["data"][0]["id"].get<std::string>() + "/messages")
          .json()["data"];
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["content"], "Hello bot");
  EXPECT_EQ(messages[1]["content"], "Hello from the fake upstream.");
  EXPECT_EQ(bot.provider.calls(), 1);
}

TEST(Telegram, ASecondDeliveryOfAnUpdateIsAnsweredNothing) {
  Bot bot;
  ASSERT_EQ(bot.post(text_update(20, 77, "Once")).status, 200);
  ASSERT_TRUE(eventually([&] { return bot.shown(77).size() == 1 && bot.provider.calls() == 1; },
                         Millis{10000}));
  std::this_thread::sleep_for(Millis{300});
  // Telegram delivers it again (our answer was lost): nothing new happens.
  ASSERT_EQ(bot.post(text_update(20, 77, "Once")).status, 200);
  ASSERT_EQ(bot.post(text_update(20, 77, "Once")).status, 200);
  std::this_thread::sleep_for(Millis{1500});
  EXPECT_EQ(bot.provider.calls(), 1);
  EXPECT_EQ(sent_to(bot.telegram, 77).size(), 1u);
}

TEST(Telegram, AStreamedReplyIsEditedAsItGrowsAtMostEveryEditInterval) {
  Bot bot;
  bot.provider.enqueue(
      {{"openai_stream", {"One. ", "Two. ", "Three. ", "Four. ", "Five. ", "Six."}},
       {"delay_between_pieces_ms", 250}});
  ASSERT_EQ(bot.post(text_update(30, 77, "Count")).status, 200);
  ASSERT_TRUE(eventually(
      [&] {
        auto s = bot.shown(77);
        return !s.empty() && s.begin()->second == "One. Two. Three. Four. Five. Six.";
      },
      Millis{15000}))
      << bot.telegram.calls().dump();
  auto sends = sent_to(bot.telegram, 77);
  auto edits = bot.telegram.calls("editMessageText");
  ASSERT_EQ(sends.size(), 1u);  // one message, edited
  ASSERT_GE(edits.size(), 2u) << edits.dump();
  // Shown before the reply was complete, and never edited faster than the interval.
  EXPECT_NE(sends[0]["text"], "One. Two. Three. Four. Five. Six.");
  int64_t last = 0;
  for (const auto& c : bot.telegram.calls()) {
    if (c["method"] != "sendMessage" && c["method"] != "editMessageText") continue;
    const int64_t at = c["at_ms"];
    if (last != 0 && c["method"] == "editMessageText" &&
        c["params"]["text"] != "One. Two. Three. Four. Five. Six.") {
      // 300 ms apart when sent; a busy machine can deliver one late (unpaced: a few ms).
      EXPECT_GE(at - last, 200) << bot.telegram.calls().dump();
    }
    last = at;
  }
}

TEST(Telegram, ALongReplyIsSplitIntoValidMessagesWithinTheLimit) {
  Bot bot;
  std::string reply = "```cpp\n";
  for (int i = 0; i < 200; ++i) reply += "int value_" + std::to_string(i) + " = a < b && c > d;\n";
  reply += "```\n\n";
  for (int i = 0; i < 40; ++i)
    reply += "Paragraph " + std::to_string(i) + " with **bold** & <angle> text. " +
             std::string(60, 'x') + "\n\n";
  bot.provider.enqueue({{"openai_stream", {reply}}});
  ASSERT_EQ(bot.post(text_update(40, 77, "Write a lot")).status, 200);
  ASSERT_TRUE(eventually([&] { return sent_to(bot.telegram, 77).size() >= 3; }, Millis{15000}))
      << bot.telegram.calls().dump();
  std::this_thread::sleep_for(Millis{500});
  // Every call was accepted: the fake refuses bad HTML and texts over 4096 characters.
  for (const auto& c : bot.telegram.calls()) {
    EXPECT_EQ(c["status"], 200) << c.dump();
  }
  auto shown = bot.shown(77);
  std::string all;
  for (const auto& [id, text] : shown) all += text;
  EXPECT_NE(all.find("int value_199"), std::string::npos);
  EXPECT_NE(all.find("Paragraph 39"), std::string::npos);
  EXPECT_NE(all.find("&amp; &lt;angle&gt;"), std::string::npos);
}

TEST(Telegram, TelegramsRateLimitIsWaitedOutAndNotModifiedIsFine) {
  Bot bot;
  bot.telegram.fail({{"method", "sendMessage"},
                     {"status", 429},
                     {"description", "Too Many Requests: retry after 1"},
                     {"retry_after", 1}});
  bot.telegram.fail({{"method", "editMessageText"},
                     {"status", 400},
                     {"description",
                      "Bad Request: message is not modified: specified new message content and "
                      "reply markup are exactly the same as a current content and reply markup "
                      "of the message"}});
  bot.provider.enqueue(
      {{"openai_stream", {"One. ", "Two. ", "Three."}}, {"delay_between_pieces_ms", 400}});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(bot.post(text_update(50, 77, "Hi")).status, 200);
  ASSERT_TRUE(eventually([&] { return sent_to(bot.telegram, 77).size() == 2; }, Millis{10000}))
      << bot.telegram.calls().dump();
  auto calls = bot.telegram.calls("sendMessage");
  EXPECT_EQ(calls[0]["status"], 429);
  EXPECT_EQ(calls[1]["status"], 200);
  EXPECT_GE(calls[1]["at_ms"].get<int64_t>() - calls[0]["at_ms"].get<int64_t>(), 950);
  EXPECT_GE(std::chrono::steady_clock::now() - start, Millis{1000});
  // An edit was refused as "not modified"; the turn still ended well.
  ASSERT_TRUE(eventually([&] { return !sent_to(bot.telegram, 77, "editMessageText").empty(); },
                         Millis{5000}));
  auto sessions = http("GET", bot.port(), "/api/v1/sessions?user_id=telegram:77").json()["data"];
  ASSERT_EQ(sessions.size(), 1u);
  auto messages = http("GET", bot.port(),
                       "/api/v1/sessions/" + sessions[0]["id"].get<std::string>() + "/messages")
                      .json()["data"];
  ASSERT_EQ(messages.size(), 2u);
  ASSERT_TRUE(eventually(
      [&] {
        auto m = http("GET", bot.port(),
                      "/api/v1/sessions/" + sessions[0]["id"].get<std::string>() + "/messages")
                     .json()["data"];
        return m.size() == 2 && m[1]["status"] == "complete";
      },
      Millis{5000}));
  // The bot went on as if the text were there (Telegram says "not modified" only when it is):
  // no message was sent to make up for it, and the whole reply went out as the last edit.
  auto edits = sent_to(bot.telegram, 77, "editMessageText");
  ASSERT_FALSE(edits.empty());
  EXPECT_EQ(edits.back()["text"], "One. Two. Three.");
  EXPECT_EQ(sent_to(bot.telegram, 77).size(), 2u);
}

TEST(Telegram, ABlockedBotStopsSendingToThatChat) {
  Bot bot;
  bot.telegram.fail({{"method", "sendMessage"},
                     {"status", 403},
                     {"description", "Forbidden: bot was blocked by the user"},
                     {"times", 5}});
  bot.provider.enqueue({{"openai_stream", {"A ", "long ", "answer ", "nobody ", "reads."}},
                        {"delay_between_pieces_ms", 400}});
  ASSERT_EQ(bot.post(text_update(60, 77, "Hi")).status, 200);
  ASSERT_TRUE(eventually([&] { return sent_to(bot.telegram, 77).size() == 1; }, Millis{10000}));
  std::this_thread::sleep_for(Millis{2500});
  // One refused attempt, then nothing more for that chat: no edits, no other sends.
  EXPECT_EQ(sent_to(bot.telegram, 77).size(), 1u) << bot.telegram.calls().dump();
  EXPECT_TRUE(sent_to(bot.telegram, 77, "editMessageText").empty());
}

TEST(Telegram, CommandsStartHelpNewAndForgetWithConfirmation) {
  Bot bot;
  ASSERT_EQ(bot.post(text_update(70, 77, "/start")).status, 200);
  ASSERT_TRUE(eventually([&] { return sent_to(bot.telegram, 77).size() == 1; }, Millis{10000}));
  EXPECT_NE(sent_to(bot.telegram, 77)[0]["text"].get<std::string>().find("Hello, Ana!"),
            std::string::npos);
  EXPECT_EQ(bot.provider.calls(), 0);

  ASSERT_EQ(bot.post(text_update(71, 77, "Remember me")).status, 200);
  ASSERT_TRUE(eventually([&] { return bot.provider.calls() == 1; }, Millis{10000}));
  ASSERT_EQ(bot.post(text_update(72, 77, "/new")).status, 200);
  ASSERT_TRUE(eventually(
      [&] {
        return http("GET", bot.port(), "/api/v1/sessions?user_id=telegram:77")
                   .json()["data"]
                   .size() == 2;
      },
      Millis{10000}));

  // A memory to forget.
  auto added = http("POST", bot.port(), "/api/v1/users/telegram:77/memories",
                    R"({"text":"Ana likes tea","kind":"preference"})");
  ASSERT_TRUE(added.status == 201 || added.status == 200) << added.describe();
  ASSERT_EQ(bot.post(text_update(73, 77, "/forget")).status, 200);
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& m : sent_to(bot.telegram, 77)) {
          if (m.contains("reply_markup")) return true;
        }
        return false;
      },
      Millis{10000}));
  json question;
  for (const auto& m : sent_to(bot.telegram, 77)) {
    if (m.contains("reply_markup")) question = m;
  }
  EXPECT_EQ(question["reply_markup"]["inline_keyboard"][0][0]["callback_data"], "forget:yes:77");
  // Still remembered until the button is pressed.
  EXPECT_EQ(http("GET", bot.port(), "/api/v1/users/telegram:77/memories").json()["data"].size(),
            1u);
  // Another person's press (in a group, anyone sees the buttons) does nothing.
  json stranger = {
      {"update_id", 74},
      {"callback_query",
       {{"id", "cb-0"},
        {"data", "forget:yes:77"},
        {"from", {{"id", 55}, {"first_name", "Bo"}}},
        {"message", {{"message_id", 3}, {"chat", {{"id", 77}, {"type", "private"}}}}}}}};
  ASSERT_EQ(bot.post(stranger).status, 200);
  ASSERT_TRUE(
      eventually([&] { return !bot.telegram.calls("answerCallbackQuery").empty(); }, Millis{5000}));
  std::this_thread::sleep_for(Millis{300});
  EXPECT_EQ(http("GET", bot.port(), "/api/v1/users/telegram:77/memories").json()["data"].size(),
            1u);
  json press = {{"update_id", 75},
                {"callback_query",
                 {{"id", "cb-1"},
                  {"data", "forget:yes:77"},
                  {"from", {{"id", 77}, {"first_name", "Ana"}}},
                  {"message", {{"message_id", 3}, {"chat", {{"id", 77}, {"type", "private"}}}}}}}};
  ASSERT_EQ(bot.post(press).status, 200);
  ASSERT_TRUE(eventually(
      [&] {
        return http("GET", bot.port(), "/api/v1/users/telegram:77/memories").json()["data"].empty();
      },
      Millis{10000}));
  ASSERT_TRUE(
      eventually([&] { return !bot.telegram.calls("answerCallbackQuery").empty(); }, Millis{5000}));
}

TEST(Telegram, InAGroupOnlyMessagesAddressedToTheBotAreAnswered) {
  Bot bot;
  ASSERT_EQ(bot.post(text_update(80, -100, "just chatting", "group")).status, 200);
  ASSERT_EQ(bot.post(text_update(81, -100, "@parley_test_bot what is 2+2?", "group")).status, 200);
  ASSERT_TRUE(eventually([&] { return sent_to(bot.telegram, -100).size() == 1; }, Millis{10000}));
  std::this_thread::sleep_for(Millis{500});
  EXPECT_EQ(bot.provider.calls(), 1);
  auto requests = bot.provider.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["body"]["messages"].back()["content"], "what is 2+2?");
}

TEST(Telegram, PollingModeAnswersUpdatesFromGetUpdates) {
  Bot bot("polling");
  // No webhook in polling mode.
  EXPECT_EQ(bot.post(text_update(1, 77, "hi")).status, 404);
  bot.telegram.updates(
      json::array({text_update(90, 77, "Polled hello"), text_update(91, 78, "Me too")}));
  ASSERT_TRUE(eventually(
      [&] {
        return sent_to(bot.telegram, 77).size() == 1 && sent_to(bot.telegram, 78).size() == 1;
      },
      Millis{15000}))
      << bot.telegram.calls().dump();
  EXPECT_FALSE(bot.telegram.calls("deleteWebhook").empty());
  // The updates were confirmed: a later getUpdates asked from past them.
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& c : bot.telegram.calls("getUpdates")) {
          if (c["params"].value("offset", 0) == 92) return true;
        }
        return false;
      },
      Millis{10000}));
  std::this_thread::sleep_for(Millis{1500});
  EXPECT_EQ(bot.provider.calls(), 2);
}

TEST(Telegram, OneChatsMessagesAreAnsweredInOrder) {
  Bot bot("webhook", "worker:\n  concurrency: 4\n");
  for (int i = 0; i < 4; ++i) {
    bot.provider.enqueue(
        {{"openai_stream", {"Reply " + std::to_string(i)}}, {"delay_between_pieces_ms", 100}});
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(bot.post(text_update(100 + i, 77, "Question " + std::to_string(i))).status, 200);
  }
  ASSERT_TRUE(eventually([&] { return bot.provider.calls() == 4; }, Millis{15000}));
  auto requests = bot.provider.requests();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(requests[i]["body"]["messages"].back()["content"], "Question " + std::to_string(i));
  }
  // Each question saw the answers before it in its history.
  EXPECT_EQ(requests[3]["body"]["messages"].size(), requests[0]["body"]["messages"].size() + 6);
}

}  // namespace
}  // namespace parley_it

namespace parley_it {
namespace {

// A thousand chats, each sending two messages through the webhook at once, while the server is
// killed with SIGKILL part-way and started again on the same data. Every update Telegram got a
// 200 for is answered: each question stored once with one complete reply, in each chat's order,
// each reply shown complete in exactly one Telegram message; and the bot kept to Telegram's
// pace (messages in one chat apart by the edit interval, and no more per second than set).
// What it measured goes to the test's output (docs/benchmarks.md quotes it); nothing here is
// timed against a target.
TEST(TelegramLoad, AThousandChatsAreEachAnsweredOnceInOrderAcrossAKill9) {
  constexpr int kChats = 1000;
  constexpr int kPerChat = 2;
  constexpr int kPerSecond = 400;
  FakeProvider provider;
  FakeTelegram telegram;
  TempDir config_dir{"parley-config"};
  const std::string yaml =
      provider.base_config() +
      "worker:\n"
      "  concurrency: 32\n"
      "  visibility_timeout: 3s\n"
      "  poll_interval: 200ms\n"
      "  retry_delay: 200ms\n" +
      telegram_config(telegram.port(), "webhook",
                      "  max_messages_per_second: " + std::to_string(kPerSecond) + "\n");
  ServeOptions opts;
  opts.args = {"--config", config_dir.write_file("parley.yaml", yaml)};
  auto parley = std::make_unique<ParleyProcess>(opts);
  std::atomic<int> port{parley->port()};

  // Updates in Telegram's order: every chat's first message, then every chat's second.
  auto update_of = [](int chat, int k) {
    return text_update(int64_t{k} * kChats + chat + 1, 1'000'000 + chat,
                       "chat " + std::to_string(chat) + " message " + std::to_string(k));
  };
  std::atomic<int> next{0};
  std::atomic<int> acknowledged{0};
  std::vector<int64_t> posted_at(kChats * kPerChat, 0);
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> senders;
  for (int t = 0; t < 16; ++t) {
    senders.emplace_back([&] {
      for (int i = next++; i < kChats * kPerChat; i = next++) {
        const json update = update_of(i % kChats, i / kChats);
        // Like Telegram: delivered again until it is acknowledged; its delay counts from the
        // first delivery.
        posted_at[static_cast<size_t>(i)] = now_ms();
        for (;;) {
          HeaderList headers = {{"X-Telegram-Bot-Api-Secret-Token", kSecret}};
          auto r = http("POST", port.load(), "/api/v1/channels/telegram/webhook", update.dump(),
                        headers, Millis{5000});
          if (r.status == 200) break;
          std::this_thread::sleep_for(Millis{50});
        }
        ++acknowledged;
      }
    });
  }
  // Part-way, the server dies without a chance to finish anything.
  ASSERT_TRUE(eventually([&] { return telegram.calls("sendMessage").size() >= 300; }, Millis{60000},
                         Millis{200}));
  parley->kill9();
  port = 1;  // nothing listens there: posts fail until the new server is up
  auto restarted = parley->restart(opts);
  port = restarted->port();
  for (auto& s : senders) s.join();
  ASSERT_EQ(acknowledged.load(), kChats * kPerChat);

  // Every chat ends with both questions answered.
  const int port_now = restarted->port();
  auto complete_replies = [&](int chat) {
    auto sessions = http("GET", port_now,
                         "/api/v1/sessions?user_id=telegram:" + std::to_string(1'000'000 + chat))
                        .json()["data"];
    if (sessions.size() != 1) return json();
    return http("GET", port_now,
                "/api/v1/sessions/" + sessions[0]["id"].get<std::string>() + "/messages?limit=50")
        .json()["data"];
  };
  ASSERT_TRUE(eventually(
      [&] {
        for (int chat : {0, kChats / 2, kChats - 1}) {
          auto m = complete_replies(chat);
          int done = 0;
          for (const auto& x : m) done += x["role"] == "assistant" && x["status"] == "complete";
          if (done < kPerChat) return false;
        }
        return true;
      },
      Millis{180000}));
  const auto took = std::chrono::steady_clock::now() - start;
  // Let what is still running finish.
  int64_t last_calls = -1;
  ASSERT_TRUE(eventually(
      [&] {
        const auto n = static_cast<int64_t>(telegram.calls().size());
        const bool still = n == last_calls;
        last_calls = n;
        return still;
      },
      Millis{120000}, Millis{2000}));

  int stale = 0;
  for (int chat = 0; chat < kChats; ++chat) {
    auto messages = complete_replies(chat);
    ASSERT_TRUE(messages.is_array()) << chat;
    std::vector<std::string> said;
    int complete = 0;
    for (const auto& m : messages) {
      if (m["status"] == "replaced") continue;
      if (m["role"] == "user") said.push_back(m["content"]);
      if (m["role"] == "assistant" && m["status"] == "complete") ++complete;
    }
    // Each question once, in the order sent, each with one complete reply.
    ASSERT_EQ(said.size(), static_cast<size_t>(kPerChat)) << chat << " " << messages.dump();
    for (int k = 0; k < kPerChat; ++k) {
      EXPECT_EQ(said[k], "chat " + std::to_string(chat) + " message " + std::to_string(k));
    }
    EXPECT_EQ(complete, kPerChat) << chat << " " << messages.dump();
  }
  // In Telegram: each chat got its replies in kPerChat messages (sent once, then edited).
  std::map<int64_t, int64_t> sends;  // per chat, accepted sendMessage
  std::vector<int64_t> at_ms;        // accepted text calls, in order
  std::map<int64_t, int64_t> last_in_chat;
  int64_t too_close = 0;
  std::map<std::pair<int64_t, int64_t>, int64_t> first_shown;  // (chat, message) -> at
  for (const auto& c : telegram.calls()) {
    const std::string method = c["method"];
    if ((method != "sendMessage" && method != "editMessageText") || c["status"] != 200) continue;
    const int64_t chat = c["params"]["chat_id"];
    const int64_t at = c["at_ms"];
    at_ms.push_back(at);
    // Half the interval: the bot spaces its calls by 300 ms, and on a busy machine a call can
    // reach the fake later than the next; unpaced calls would come a few ms apart.
    if (last_in_chat.count(chat) && at - last_in_chat[chat] < 150) ++too_close;
    last_in_chat[chat] = at;
    if (method == "sendMessage") first_shown.emplace(std::make_pair(chat, ++sends[chat]), at);
  }
  for (const auto& [chat, n] : sends) {
    if (n > kPerChat) stale += static_cast<int>(n - kPerChat);
  }
  EXPECT_EQ(static_cast<int64_t>(sends.size()), kChats);
  EXPECT_EQ(too_close, 0) << "messages in one chat far closer than the edit interval";
  // No second of the run saw more than the allowed messages (a small slack for clock reads).
  std::sort(at_ms.begin(), at_ms.end());
  size_t worst = 0;
  for (size_t i = 0, j = 0; i < at_ms.size(); ++i) {
    while (at_ms[i] - at_ms[j] >= 1000) ++j;
    worst = std::max(worst, i - j + 1);
  }
  EXPECT_LE(worst, static_cast<size_t>(kPerSecond + kPerSecond / 10));
  // The server died mid-reply for some chats; a retried reply continues in its message, so
  // any extra message is one sent in the moment before the crash was noted.
  EXPECT_LE(stale, 16) << "replies begun in a message the retry could not find";

  const double seconds = std::chrono::duration<double>(took).count();
  std::vector<int64_t> delays;
  for (int chat = 0; chat < kChats; ++chat) {
    auto it = first_shown.find({1'000'000 + chat, 1});
    if (it != first_shown.end())
      delays.push_back(it->second - posted_at[static_cast<size_t>(chat)]);
  }
  std::sort(delays.begin(), delays.end());
  auto pct = [&](double p) {
    return delays.empty()
               ? 0
               : delays[std::min(delays.size() - 1, static_cast<size_t>(p * delays.size()))];
  };
  std::printf(
      "telegram load: %d updates from %d chats answered in %.1f s (%.0f updates/s) across a "
      "kill -9; update to first message p50 %lld ms, p95 %lld ms, p99 %lld ms; busiest second "
      "%zu messages; %d extra messages\n",
      kChats * kPerChat, kChats, seconds, kChats * kPerChat / seconds,
      static_cast<long long>(pct(0.5)), static_cast<long long>(pct(0.95)),
      static_cast<long long>(pct(0.99)), worst, stale);
  RecordProperty("updates_per_second", static_cast<int>(kChats * kPerChat / seconds));
}

}  // namespace
}  // namespace parley_it

namespace parley_it {
namespace {

// The token from TELEGRAM_BOT_TOKEN (no token in the file), and the webhook registered at start
// at telegram.public_url with the secret Telegram is to send back.
TEST(Telegram, TheTokenComesFromTheEnvironmentAndTheWebhookIsRegisteredWithItsSecret) {
  FakeProvider provider;
  FakeTelegram telegram;
  TempDir config_dir{"parley-config"};
  const std::string yaml = provider.base_config() +
                           "telegram:\n"
                           "  webhook_secret: " +
                           kSecret + "\n  public_url: https://bot.example.com/\n" +
                           "  api_base_url: http://127.0.0.1:" + std::to_string(telegram.port()) +
                           "\n";
  ServeOptions opts;
  opts.args = {"--config", config_dir.write_file("parley.yaml", yaml)};
  opts.env = {{"TELEGRAM_BOT_TOKEN", kToken}};
  ParleyProcess parley(opts);
  ASSERT_TRUE(eventually([&] { return !telegram.calls("setWebhook").empty(); }, Millis{10000}));
  const json hook = telegram.calls("setWebhook")[0]["params"];
  EXPECT_EQ(hook["url"], "https://bot.example.com/api/v1/channels/telegram/webhook");
  EXPECT_EQ(hook["secret_token"], kSecret);
  EXPECT_EQ(hook["allowed_updates"], json::array({"message", "callback_query"}));
  // The token is never printed.
  for (const auto& line : parley.logs())
    EXPECT_EQ(line.find("TEST-token"), std::string::npos) << line;
  // Webhook mode without a secret is refused at start: anyone could post updates.
  auto check = run_parley({"check-config", "--set", "telegram.bot_token=1:x"});
  EXPECT_EQ(check.exit_code(), 2) << check.describe();
  EXPECT_NE((check.out + check.err).find("telegram.webhook_secret"), std::string::npos)
      << check.describe();
}

}  // namespace
}  // namespace parley_it
