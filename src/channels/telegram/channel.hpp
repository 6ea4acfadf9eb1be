// The Telegram channel: a bot whose every chat is a Parley user ("telegram:<chat id>", in
// `telegram.tenant`) with a current session, answered by the one chat pipeline.
//
//   POST /api/v1/channels/telegram/webhook   Telegram's updates (webhook mode): refused 401
//       without the X-Telegram-Bot-Api-Secret-Token it was registered with; otherwise queued
//       as a `telegram.update` job and acknowledged at once (503 when it cannot be queued, so
//       Telegram delivers it again).
//   polling mode: a loop on the event loop asks getUpdates and queues the same jobs,
//       confirming an update to Telegram (the next offset) only once its job is stored.
//
// A job runs one update: a command (/start, /help, /new, /forget with a confirmation button),
// a button press, or a chat turn, streamed into one message edited as the reply grows (at most
// every `telegram.edit_interval`), "typing…" kept up meanwhile, the final text in HTML pieces
// within Telegram's limit. In groups only messages addressed to the bot are answered.
//
// Once taken, an update is recorded in the session's metadata (`telegram.updates`, the newest
// 64, written as soon as the turn's input is stored), so a second delivery of it is answered
// nothing. A job retried after its server died mid-turn regenerates the stored question's
// reply instead of storing the question again, in the Telegram message the reply had begun
// (`telegram.replies`), unless that reply was complete. The updates of one chat run one at a time,
// in update_id order, within a process. A 403 from Telegram (the user blocked the bot) stops the
// turn and any further sending to the chat until the user writes again; 429s are waited out.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "channels/telegram/bot_api.hpp"
#include "channels/telegram/settings.hpp"
#include "channels/telegram/update.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/io_pool.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "http/router.hpp"
#include "limits/policy.hpp"
#include "store/store.hpp"

namespace parley::chat {
class Pipeline;
class Assistants;
}  // namespace parley::chat

namespace parley::http {
class HttpClient;
}

namespace parley::queue {
class Worker;
}

namespace parley::channels::telegram {

struct ChannelDeps {
  const TelegramSettings& settings;
  store::Storage& storage;
  BlockingPool& blocking;
  chat::Pipeline& pipeline;
  const chat::Assistants& assistants;
  IoPool& io;
  http::HttpClient& http;
  const Clock& clock;
  limits::Limits user_limits;  // what each chat's user may consume (limits.user.*)
  // Called after a job is queued in this process, so an idle worker takes it at once.
  std::function<void()> wake_worker;
};

class TelegramChannel {
 public:
  explicit TelegramChannel(ChannelDeps deps);
  ~TelegramChannel();
  TelegramChannel(const TelegramChannel&) = delete;
  TelegramChannel& operator=(const TelegramChannel&) = delete;

  void add_routes(http::Router& router);
  // Registers the `telegram.update` job with the worker that runs this process's jobs.
  void add_jobs(queue::Worker& worker);
  // After the server listens: learns the bot's name (getMe), then registers the webhook
  // (when telegram.public_url is set) or starts polling.
  void start();
  // Stops polling; jobs in progress finish.
  void stop();

  // One update's work (the job's body), on the event loop. `retry`: an earlier attempt of the
  // same job may have stored part of it.
  Task<Result<nlohmann::json>> process(nlohmann::json update, bool retry);

 private:
  struct ChatState;
  Task<Result<void>> identify();
  Task<Result<store::Job>> queue_update(const nlohmann::json& update);
  Task<void> poll_loop();
  Task<Result<nlohmann::json>> command(const Update& u);
  Task<Result<nlohmann::json>> button(const Update& u);
  Task<Result<nlohmann::json>> turn(const Update& u, bool retry);
  Task<Result<void>> send_text(int64_t chat_id, std::string markdown);
  // A finished reply shown whole: in `message_id` (edited, when not 0), then new messages.
  Task<Result<nlohmann::json>> show_reply(int64_t chat_id, int64_t message_id,
                                          std::string markdown);
  bool is_blocked(int64_t chat_id);
  void mark_blocked(int64_t chat_id);
  Task<Result<store::Session>> current_session(int64_t chat_id);
  // Notes the update as taken (and, when given, the message its reply shows in).
  Result<void> record_update(const std::string& session_id, int64_t update_id,
                             int64_t message_id = 0);
  std::string user_of(int64_t chat_id) const;
  // In update_id order per chat (worker threads).
  void wait_turn(int64_t chat_id, int64_t update_id);
  void done_turn(int64_t chat_id);

  ChannelDeps deps_;
  BotApi api_;
  std::string bot_username_;
  int64_t bot_id_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex order_mutex_;
  std::condition_variable order_changed_;
  struct ChatQueue {
    std::multiset<int64_t> waiting;  // update ids of jobs taken, waiting their turn
    bool running = false;
  };
  std::map<int64_t, ChatQueue> chats_;
  std::mutex blocked_mutex_;
  std::set<int64_t> blocked_;  // chats whose user blocked the bot
};

}  // namespace parley::channels::telegram
