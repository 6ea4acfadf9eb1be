// The Telegram channel (see channel.hpp).
#include "channels/telegram/channel.hpp"

#include <algorithm>
#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "auth/crypto.hpp"
#include "channels/telegram/format.hpp"
#include "chat/assistants.hpp"
#include "chat/pipeline.hpp"
#include "core/sleep.hpp"
#include "http/errors.hpp"
#include "llm/types.hpp"
#include "obs/log.hpp"
#include "queue/worker.hpp"

namespace parley::channels::telegram {
namespace {

using nlohmann::json;

constexpr const char* kJobKind = "telegram.update";
constexpr const char* kWebhookPath = "/api/v1/channels/telegram/webhook";

constexpr const char* kHelp =
    "I am an AI assistant. Write to me and I answer.\n\n"
    "/new starts a new conversation (this one's messages no longer shape my answers; what I "
    "remember about you stays)\n"
    "/forget erases what I remember about you\n"
    "/help shows this";

std::string request_id_of(int64_t update_id) { return "telegram-" + std::to_string(update_id); }

// The updates a conversation took (the newest kRemembered of them), and the Telegram message
// that carries each recent one's reply, from its session's metadata.
constexpr size_t kRemembered = 64;

json telegram_meta(const store::Session& session) {
  json meta = json::parse(session.metadata_json, nullptr, false);
  if (!meta.is_object() || !meta.contains("telegram") || !meta["telegram"].is_object()) {
    return json::object();
  }
  return meta["telegram"];
}

bool took_update(const store::Session& session, int64_t update_id) {
  const json t = telegram_meta(session);
  if (!t.contains("updates") || !t["updates"].is_array()) return false;
  for (const auto& id : t["updates"]) {
    if (id.is_number_integer() && id.get<int64_t>() == update_id) return true;
  }
  return false;
}

int64_t reply_message_of(const store::Session& session, int64_t update_id) {
  const json t = telegram_meta(session);
  const std::string key = std::to_string(update_id);
  if (!t.contains("replies") || !t["replies"].is_object() || !t["replies"].contains(key)) return 0;
  return t["replies"][key].is_number_integer() ? t["replies"][key].get<int64_t>() : 0;
}

// A refusal or failure as the person reads it in the chat.
std::string said(const Error& e) {
  if (e.reason == "content_blocked") return "I cannot answer that: " + e.message;
  if (e.code == ErrorCode::kTooManyRequests) {
    return "Too many messages right now; try again in a little while.";
  }
  if (e.code == ErrorCode::kInvalidArgument || e.code == ErrorCode::kUnprocessable) {
    return "I cannot answer that: " + e.message;
  }
  // What went wrong inside is for the server's log, not for the chat.
  return "Sorry, I cannot answer right now. Please try again later.";
}

// The Bot API's parameters and the jobs' results, built outside coroutines: g++ 12 rejects
// string-literal arrays among a coroutine's temporaries ("array used as initializer").
json note(const std::string& key, json value) { return json{{key, std::move(value)}}; }

json html_message(int64_t chat_id, const std::string& html) {
  return {{"chat_id", chat_id},
          {"text", html},
          {"parse_mode", "HTML"},
          {"link_preview_options", {{"is_disabled", true}}}};
}

json html_edit(int64_t chat_id, int64_t message_id, const std::string& html) {
  json p = html_message(chat_id, html);
  p["message_id"] = message_id;
  return p;
}

json plain_edit(int64_t chat_id, int64_t message_id, const std::string& text) {
  return {{"chat_id", chat_id}, {"message_id", message_id}, {"text", text}};
}

json typing_action(int64_t chat_id) { return {{"chat_id", chat_id}, {"action", "typing"}}; }

json allowed_updates() { return json::array({"message", "callback_query"}); }

json webhook(const std::string& url, const std::string& secret) {
  return {{"url", url},
          {"secret_token", secret},
          {"allowed_updates", allowed_updates()},
          {"max_connections", 100}};
}

json poll(int64_t seconds, int64_t offset) {
  json p = {{"timeout", seconds}, {"allowed_updates", allowed_updates()}};
  if (offset != 0) p["offset"] = offset;
  return p;
}

// The buttons name who asked: in a group, only they may answer.
json forget_question(int64_t chat_id, int64_t asker) {
  const std::string who = std::to_string(asker);
  const json yes = {{"text", "Yes, erase it"}, {"callback_data", "forget:yes:" + who}};
  const json no = {{"text", "Cancel"}, {"callback_data", "forget:no:" + who}};
  return {{"chat_id", chat_id},
          {"text", "Erase everything I remember about you? This cannot be undone."},
          {"reply_markup", {{"inline_keyboard", json::array({json::array({yes, no})})}}}};
}

json callback_answer(const std::string& id, const std::string& text) {
  json p = {{"callback_query_id", id}};
  if (!text.empty()) p["text"] = text;
  return p;
}

json new_session_metadata(int64_t chat_id, int64_t update_id) {
  json t = {{"chat_id", chat_id}};
  if (update_id != 0) t["updates"] = json::array({update_id});
  return {{"telegram", t}};
}

json turn_result(const std::string& reply_id, int64_t message_id) {
  return {{"reply_id", reply_id}, {"message_id", message_id}};
}

json ok_answer() { return {{"ok", true}}; }

// Keeps "typing…" showing (Telegram clears it after 5 s) until `done` is set.
struct Typing {
  bool done = false;
};

// The chat an update belongs to (its message's, or its button's message's); 0 when none.
int64_t chat_of(const json& update) {
  auto u = parse_update(update, "", 0);
  return u ? u->chat_id : 0;
}

// The wait after `failures` failures in a row: half a second, doubling, at most 30 s.
std::chrono::milliseconds backoff(int failures) {
  return std::chrono::milliseconds(std::min(30'000, 500 << std::min(std::max(failures, 0), 6)));
}

}  // namespace

TelegramChannel::TelegramChannel(ChannelDeps deps)
    : deps_(std::move(deps)),
      api_(deps_.http,
           BotApi::Options{deps_.settings.api_base_url, deps_.settings.bot_token,
                           deps_.settings.request_timeout, std::chrono::minutes(1),
                           deps_.settings.edit_interval, deps_.settings.max_messages_per_second}) {}

TelegramChannel::~TelegramChannel() { stop(); }

std::string TelegramChannel::user_of(int64_t chat_id) const {
  return "telegram:" + std::to_string(chat_id);
}

// --- Arrival: the webhook and polling ------------------------------------------------------------

Task<Result<store::Job>> TelegramChannel::queue_update(const json& update) {
  store::NewJob job;
  job.kind = kJobKind;
  job.payload_json = update.dump(-1, ' ', false, json::error_handler_t::replace);
  // A delivery of the same update while its job is queued or running adds nothing.
  // Under the chat's user's prefix: erasing that user deletes the job and the words it holds.
  job.unique_key = store::user_job_key_prefix(deps_.settings.tenant, user_of(chat_of(update))) +
                   "telegram:update:" + std::to_string(update["update_id"].get<int64_t>());
  job.max_attempts = 5;
  const int64_t now = to_unix_ms(deps_.clock.now());
  auto queued = co_await deps_.blocking.run([&] { return deps_.storage.jobs().enqueue(job, now); });
  if (queued && deps_.wake_worker) deps_.wake_worker();
  co_return queued;
}

void TelegramChannel::add_routes(http::Router& router) {
  if (deps_.settings.mode != "webhook") return;  // polling: nothing may post updates
  // Public: Telegram has no Parley key. The secret it was given with setWebhook stands in
  // (required in webhook mode, so never empty here).
  router.add(http::Method::kPost, kWebhookPath, http::kPublic,
             [this](http::Request& req) -> Task<http::Response> {
               auto secret = req.header("x-telegram-bot-api-secret-token");
               if (!secret || !auth::constant_time_equal(*secret, deps_.settings.webhook_secret)) {
                 co_return http::error_response(
                     Error::unauthenticated("the Telegram secret token is missing or wrong",
                                            "telegram_secret_mismatch"),
                     req.request_id);
               }
               json update = json::parse(req.body, nullptr, false);
               if (!update.is_object() || !update.contains("update_id") ||
                   !update["update_id"].is_number_integer()) {
                 co_return http::error_response(
                     Error::invalid("not a Telegram update (no update_id)", "invalid_update"),
                     req.request_id);
               }
               auto queued = co_await queue_update(update);
               if (!queued) {
                 log::warn("a Telegram update could not be queued; Telegram will deliver it again",
                           {{"error", queued.error().message}});
                 co_return http::error_response(queued.error(), req.request_id);
               }
               co_return http::Response::json(200, ok_answer());
             });
}

Task<Result<void>> TelegramChannel::identify() {
  if (bot_id_ != 0) co_return success();
  auto me = co_await api_.call("getMe", json::object());
  if (!me) co_return std::move(me).error();
  if (me->is_object()) {
    bot_id_ = me->value("id", int64_t{0});
    bot_username_ = me->value("username", std::string());
  }
  co_return success();
}

void TelegramChannel::start() {
  boost::asio::co_spawn(
      deps_.io.main(),
      [this]() -> Task<void> {
        for (int attempt = 0; !stopping_; ++attempt) {
          auto known = co_await identify();
          if (known) break;
          log::warn("Telegram's getMe failed; trying again", {{"error", known.error().message}});
          co_await sleep_for(backoff(attempt + 1));
        }
        if (stopping_) co_return;
        log::info("Telegram bot", {{"username", bot_username_}, {"mode", deps_.settings.mode}});
        if (deps_.settings.mode == "polling") {
          co_await poll_loop();
          co_return;
        }
        if (deps_.settings.public_url.empty()) co_return;  // registered by the operator
        std::string url = deps_.settings.public_url;
        while (!url.empty() && url.back() == '/') url.pop_back();
        auto set = co_await api_.call("setWebhook",
                                      webhook(url + kWebhookPath, deps_.settings.webhook_secret));
        if (!set) {
          log::error("Telegram's setWebhook failed", {{"error", set.error().message}});
        } else {
          log::info("Telegram webhook registered", {{"url", url + kWebhookPath}});
        }
      },
      boost::asio::detached);
}

void TelegramChannel::stop() { stopping_ = true; }

Task<void> TelegramChannel::poll_loop() {
  // getUpdates is refused while a webhook is set.
  (void)co_await api_.call("deleteWebhook", json::object());
  int64_t offset = 0;
  int failures = 0;
  const auto wait = std::chrono::duration_cast<std::chrono::seconds>(deps_.settings.poll_timeout);
  while (!stopping_) {
    auto updates =
        co_await api_.call("getUpdates", poll(wait.count(), offset), deps_.settings.poll_timeout);
    if (!updates || !updates->is_array()) {
      ++failures;
      if (!updates) {
        log::warn("Telegram's getUpdates failed", {{"error", updates.error().message}});
      }
      co_await sleep_for(backoff(failures));
      continue;
    }
    const int before = failures;
    for (const auto& update : *updates) {
      if (!update.is_object() || !update.contains("update_id") ||
          !update["update_id"].is_number_integer()) {
        continue;
      }
      auto queued = co_await queue_update(update);
      if (!queued) {
        // Not confirmed: the next getUpdates returns it again, after a pause.
        log::warn("a Telegram update could not be queued", {{"error", queued.error().message}});
        ++failures;
        break;
      }
      offset = std::max(offset, update["update_id"].get<int64_t>() + 1);
    }
    if (failures > before) {
      co_await sleep_for(backoff(failures));
    } else {
      failures = 0;
    }
  }
}

// --- Jobs ---------------------------------------------------------------------------------------

void TelegramChannel::wait_turn(int64_t chat_id, int64_t update_id) {
  std::unique_lock lock(order_mutex_);
  ChatQueue& q = chats_[chat_id];
  q.waiting.insert(update_id);
  // One at a time, the smallest waiting update first: a smaller one that arrives while a
  // larger one runs waits for it rather than running beside it.
  order_changed_.wait(lock, [&] {
    ChatQueue& now = chats_[chat_id];
    return !now.running && *now.waiting.begin() == update_id;
  });
  q.running = true;
  q.waiting.erase(q.waiting.find(update_id));
}

void TelegramChannel::done_turn(int64_t chat_id) {
  {
    std::lock_guard lock(order_mutex_);
    auto it = chats_.find(chat_id);
    if (it != chats_.end()) {
      it->second.running = false;
      if (it->second.waiting.empty()) chats_.erase(it);
    }
  }
  order_changed_.notify_all();
}

void TelegramChannel::add_jobs(queue::Worker& worker) {
  worker.handle(kJobKind, [this](const store::Job& job) -> Result<json> {
    json update = json::parse(job.payload_json, nullptr, false);
    if (!update.is_object()) return note("ignored", "not an update");
    const auto parsed = parse_update(update, "", 0);
    const int64_t chat_id = parsed ? parsed->chat_id : 0;
    const int64_t update_id = parsed ? parsed->update_id : 0;
    wait_turn(chat_id, update_id);
    auto promise = std::make_shared<std::promise<Result<json>>>();
    auto future = promise->get_future();
    // The completion handler always answers the promise, an exception included, so this
    // thread never waits on a coroutine that died.
    boost::asio::co_spawn(
        deps_.io.main(),
        [this, update = std::move(update), retry = job.attempts > 1, promise]() -> Task<void> {
          auto done = co_await process(update, retry);
          promise->set_value(std::move(done));
        },
        [promise](const std::exception_ptr& failed) {
          if (!failed) return;
          std::string why = "unknown exception";
          try {
            std::rethrow_exception(failed);
          } catch (const std::exception& e) {
            why = e.what();
          } catch (...) {
          }
          try {
            promise->set_value(Error::internal("the update failed: " + why));
          } catch (const std::future_error&) {
            // already answered before it threw
          }
        });
    while (future.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
      if (deps_.io.main().stopped()) {
        done_turn(chat_id);
        return Error::unavailable("shutting down: the update is left for a retry", "shutting_down");
      }
    }
    done_turn(chat_id);
    return future.get();
  });
}

Task<Result<json>> TelegramChannel::process(json raw, bool retry) {
  auto known = co_await identify();
  if (!known) co_return std::move(known).error();  // retried: Telegram may be down
  auto parsed = parse_update(raw, bot_username_, bot_id_);
  if (!parsed || parsed->kind == Update::Kind::kOther) co_return note("ignored", "kind");
  const Update& u = *parsed;
  {
    std::lock_guard lock(blocked_mutex_);
    blocked_.erase(u.chat_id);  // they wrote again: not blocked any more
  }
  if (!u.addressed) co_return note("ignored", "not addressed to the bot");
  if (u.kind != Update::Kind::kButton && u.command.empty()) co_return co_await turn(u, retry);
  // Commands and buttons: taken once, like messages (a redelivered "yes, erase" erases once).
  auto current = co_await current_session(u.chat_id);
  if (!current) co_return std::move(current).error();
  if (took_update(*current, u.update_id)) co_return note("duplicate", true);
  Result<json> done = json();
  if (u.kind == Update::Kind::kButton) {
    done = co_await button(u);
  } else {
    done = co_await command(u);
  }
  if (!done && BotApi::blocked(done.error())) done = note("blocked", true);  // nothing to retry
  if (done) {
    const std::string session_id = current->id;
    auto noted =
        co_await deps_.blocking.run([&] { return record_update(session_id, u.update_id); });
    if (!noted) co_return std::move(noted).error();
  }
  co_return done;
}

// --- Sessions
// -------------------------------------------------------------------------------------

Task<Result<store::Session>> TelegramChannel::current_session(int64_t chat_id) {
  const std::string user = user_of(chat_id);
  co_return co_await deps_.blocking.run([&]() -> Result<store::Session> {
    store::SessionListQuery q;
    q.tenant_id = deps_.settings.tenant;
    q.user_id = user;
    q.limit = 1;
    auto page = deps_.storage.sessions().list(q);
    if (!page) return std::move(page).error();
    if (!page->items.empty()) return page->items.front();
    store::NewSession in;
    in.tenant_id = deps_.settings.tenant;
    in.user_id = user;
    in.assistant = deps_.settings.assistant.empty() ? deps_.assistants.default_assistant().name
                                                    : deps_.settings.assistant;
    in.title = "Telegram";
    in.metadata_json = new_session_metadata(chat_id, 0).dump();
    return deps_.storage.sessions().create(in);
  });
}

Result<void> TelegramChannel::record_update(const std::string& session_id, int64_t update_id,
                                            int64_t message_id) {
  // Read again, just before writing: the turn's own stages may have changed the metadata.
  auto session = deps_.storage.sessions().get(session_id);
  if (!session) return std::move(session).error();
  json meta = json::parse(session->metadata_json, nullptr, false);
  if (!meta.is_object()) meta = json::object();
  if (!meta.contains("telegram") || !meta["telegram"].is_object())
    meta["telegram"] = json::object();
  json& t = meta["telegram"];
  std::vector<int64_t> ids;
  if (t.contains("updates") && t["updates"].is_array()) {
    for (const auto& id : t["updates"]) {
      if (id.is_number_integer()) ids.push_back(id.get<int64_t>());
    }
  }
  if (std::find(ids.begin(), ids.end(), update_id) == ids.end()) ids.push_back(update_id);
  std::sort(ids.begin(), ids.end());
  if (ids.size() > kRemembered) ids.erase(ids.begin(), ids.end() - kRemembered);
  t["updates"] = ids;
  if (message_id != 0) {
    json replies =
        t.contains("replies") && t["replies"].is_object() ? t["replies"] : json::object();
    replies[std::to_string(update_id)] = message_id;
    // Only the recent ones matter (a retried job finds its own).
    while (replies.size() > 16) replies.erase(replies.begin());
    t["replies"] = std::move(replies);
  }
  store::SessionPatch patch;
  patch.metadata_json = meta.dump();
  auto updated = deps_.storage.sessions().update(session_id, patch);
  if (!updated) return std::move(updated).error();
  return success();
}

// --- Commands and buttons ------------------------------------------------------------------------

Task<Result<void>> TelegramChannel::send_text(int64_t chat_id, std::string markdown) {
  if (is_blocked(chat_id)) {
    co_return Error::permission_denied("the user blocked the bot", "telegram_403");
  }
  for (auto& piece : format_reply(markdown)) {
    auto sent = co_await api_.call("sendMessage", html_message(chat_id, piece));
    if (!sent) {
      if (BotApi::blocked(sent.error())) mark_blocked(chat_id);
      co_return std::move(sent).error();
    }
  }
  co_return success();
}

Task<Result<json>> TelegramChannel::command(const Update& u) {
  if (u.command == "start" || u.command == "help") {
    std::string hello = u.command == "start" && !u.from_name.empty()
                            ? "Hello, " + u.from_name + "! " + kHelp
                            : std::string(kHelp);
    auto sent = co_await send_text(u.chat_id, hello);
    if (!sent) co_return std::move(sent).error();
    co_return note("command", u.command);
  }
  if (u.command == "new") {
    auto current = co_await current_session(u.chat_id);
    if (!current) co_return std::move(current).error();
    const std::string user = user_of(u.chat_id);
    const std::string assistant = current->assistant;
    auto created = co_await deps_.blocking.run([&]() -> Result<store::Session> {
      store::NewSession in;
      in.tenant_id = deps_.settings.tenant;
      in.user_id = user;
      in.assistant = assistant;
      in.title = "Telegram";
      // The new session carries the mark, so a second delivery of /new opens no third one.
      in.metadata_json = new_session_metadata(u.chat_id, u.update_id).dump();
      return deps_.storage.sessions().create(in);
    });
    if (!created) co_return std::move(created).error();
    auto sent = co_await send_text(u.chat_id, "Started a new conversation.");
    if (!sent) co_return std::move(sent).error();
    co_return note("new_session", created->id);
  }
  if (u.command == "forget") {
    auto asked = co_await api_.call("sendMessage", forget_question(u.chat_id, u.from_id));
    if (!asked) co_return std::move(asked).error();
    co_return note("command", "forget");
  }
  auto sent = co_await send_text(u.chat_id, "I do not know that command.\n\n" + std::string(kHelp));
  if (!sent) co_return std::move(sent).error();
  co_return note("unknown_command", u.command);
}

Task<Result<json>> TelegramChannel::button(const Update& u) {
  const std::string asker = std::to_string(u.from_id);
  const bool theirs =
      u.callback_data == "forget:yes:" + asker || u.callback_data == "forget:no:" + asker;
  // Telegram shows a spinner on the button until the query is answered.
  (void)co_await api_.call(
      "answerCallbackQuery",
      callback_answer(u.callback_id, theirs ? "" : "Only the person who asked can answer this."));
  if (!theirs) co_return note("ignored", "another person's button");
  std::string outcome;
  if (u.callback_data.starts_with("forget:yes:")) {
    const std::string user = user_of(u.chat_id);
    const int64_t now = to_unix_ms(deps_.clock.now());
    auto erased = co_await deps_.blocking.run([&] {
      store::MemoryQuery q;
      q.tenant_id = deps_.settings.tenant;
      q.user_id = user;
      q.status = "all";
      store::MemoryEdit edit;
      edit.actor = "user";
      edit.reason = "telegram /forget";
      return deps_.storage.memories().remove_all(q, edit, now);
    });
    if (!erased) co_return std::move(erased).error();
    outcome = *erased == 0 ? "There was nothing to forget."
                           : "Done: I erased " + std::to_string(*erased) + " thing" +
                                 (*erased == 1 ? "" : "s") + " I remembered about you.";
  } else if (u.callback_data.starts_with("forget:no:")) {
    outcome = "Kept everything.";
  } else {
    co_return note("ignored", "unknown button");
  }
  auto edited = co_await api_.call("editMessageText", plain_edit(u.chat_id, u.message_id, outcome));
  if (!edited && !BotApi::not_modified(edited.error())) co_return std::move(edited).error();
  co_return note("button", u.callback_data);
}

// --- A chat turn
// ------------------------------------------------------------------------------------

Task<Result<json>> TelegramChannel::turn(const Update& u, bool retry) {
  auto session = co_await current_session(u.chat_id);
  if (!session) co_return std::move(session).error();
  std::string regenerate_of;
  int64_t message_id = 0;
  const bool taken = took_update(*session, u.update_id);
  if (taken && !retry) co_return note("duplicate", true);
  if (retry) {
    // An earlier attempt may have stored the question, and begun or even finished its reply,
    // before its server died.
    const std::string session_id = session->id;
    auto recent = co_await deps_.blocking.run([&]() -> Result<std::vector<store::Message>> {
      store::MessageListQuery q;
      q.session_id = session_id;
      q.newest_first = true;
      q.limit = 40;
      auto page = deps_.storage.messages().list(q);
      if (!page) return std::move(page).error();
      return std::move(page->items);
    });
    if (!recent) co_return std::move(recent).error();
    const auto& m = *recent;  // newest first
    size_t question = m.size();
    for (size_t k = 0; k < m.size(); ++k) {
      if (m[k].role == "user" && m[k].request_id == request_id_of(u.update_id)) {
        question = k;
        break;
      }
    }
    if (question == m.size()) {
      if (taken) co_return note("duplicate", true);  // taken, and nothing stored (refused)
    } else {
      message_id = reply_message_of(*session, u.update_id);  // the message it had begun
      // Its reply: the first one after it that was not replaced.
      const store::Message* reply = nullptr;
      bool newer_question = false;
      for (size_t k = question; k-- > 0;) {
        if (m[k].role == "user") newer_question = true;
        if (m[k].role == "assistant" && m[k].status != "replaced" && reply == nullptr) {
          reply = &m[k];
        }
      }
      if (reply != nullptr && reply->status == "complete") {
        // Finished before the crash; shown perhaps only in part: show it whole, once.
        auto shown = co_await show_reply(u.chat_id, message_id, reply->content);
        if (!shown) co_return std::move(shown).error();
        co_return note("resumed", "shown again");
      }
      if (newer_question) {
        // Later messages of the chat were answered meanwhile; answering this one now would
        // reorder the conversation. Say so rather than stay silent.
        auto told = co_await send_text(
            u.chat_id, "My answer to your message was interrupted. Please send it again.");
        if (!told && !BotApi::blocked(told.error())) co_return std::move(told).error();
        co_return note("interrupted", true);
      }
      regenerate_of = m[question].id;
    }
  }

  const int64_t chat_id = u.chat_id;
  chat::Turn turn;
  turn.stored = std::make_unique<chat::StoredTurn>();
  turn.actor.tenant_id = deps_.settings.tenant;
  turn.actor.user_id = user_of(chat_id);
  turn.actor.key_id = "telegram";
  turn.actor.user_limits = deps_.user_limits;
  turn.request_id = request_id_of(u.update_id);
  turn.stored->session = *session;
  turn.stored->content = without_mention(u.text, bot_username_);
  turn.stored->regenerate_of = regenerate_of;
  turn.stream = true;
  const std::string session_id = session->id;
  const int64_t update_id = u.update_id;
  bool recorded_now = false;
  turn.stored->on_started = [&](const store::StartedTurn&) -> Task<void> {
    auto noted = co_await deps_.blocking.run([&] { return record_update(session_id, update_id); });
    if (!noted) {
      log::warn("a Telegram update could not be marked processed",
                {{"error", noted.error().message}});
    }
    recorded_now = true;
  };

  // "typing…" until the turn ends, however it ends.
  auto typing = std::make_shared<Typing>();
  struct StopTyping {
    std::shared_ptr<Typing> typing;
    ~StopTyping() { typing->done = true; }
  } stop_typing{typing};
  const IoExecutor executor = co_await boost::asio::this_coro::executor;
  boost::asio::co_spawn(
      executor,
      [this, typing, chat_id]() -> Task<void> {
        while (!typing->done) {
          (void)co_await api_.call("sendChatAction", typing_action(chat_id));
          for (int i = 0; i < 40 && !typing->done; ++i)
            co_await sleep_for(std::chrono::milliseconds(100));
        }
      },
      boost::asio::detached);

  llm::Cancellation cancel;
  turn.cancel = &cancel;
  std::string text;
  std::string shown;  // what the message shows now
  // The first words wait a moment (typing… shows meanwhile), so a quick reply is one message
  // rather than a message and its edit.
  auto last_edit = std::chrono::steady_clock::now() - deps_.settings.edit_interval / 2;
  std::optional<Error> blocked;
  // Shows the reply so far in the chat's message: sent the first time, edited after. The
  // final text goes whole: its first piece in that message, the rest in messages after it.
  auto show = [&](bool final_text) -> Task<bool> {
    if (is_blocked(chat_id)) {
      blocked = Error::permission_denied("the user blocked the bot", "telegram_403");
      co_return false;
    }
    // A preview has room for its "…".
    auto pieces = format_reply(text, final_text ? kMessageLimit : kMessageLimit - 2);
    if (pieces.empty()) {
      if (!final_text) co_return true;
      pieces.push_back("(no answer)");
    }
    std::string first = pieces.front();
    if (!final_text && pieces.size() > 1) first += "\n…";
    Result<json> done = json();
    if (first != shown) {
      if (message_id != 0) {
        done = co_await api_.call("editMessageText", html_edit(chat_id, message_id, first));
        if (!done && BotApi::not_modified(done.error())) done = json();
        if (!done && final_text && !BotApi::blocked(done.error())) {
          // The message cannot be edited (deleted, too old): the reply goes in a new one.
          log::warn("a Telegram message could not be edited; sending the reply anew",
                    {{"error", done.error().message}});
          message_id = 0;
        }
      }
      if (message_id == 0) {
        done = co_await api_.call("sendMessage", html_message(chat_id, first));
        if (done && done->is_object()) {
          message_id = done->value("message_id", int64_t{0});
          // Where this reply shows, for a retry after a crash to finish it there.
          auto noted = co_await deps_.blocking.run(
              [&] { return record_update(session_id, update_id, message_id); });
          if (!noted) {
            log::warn("a Telegram reply's message could not be noted",
                      {{"error", noted.error().message}});
          }
        }
      }
    }
    if (!done) {
      if (BotApi::blocked(done.error())) {
        blocked = done.error();
        mark_blocked(chat_id);
        co_return false;
      }
      log::warn("a Telegram message could not be shown", {{"error", done.error().message}});
      if (!final_text) co_return true;  // the next edit tries again
    } else {
      shown = first;
      last_edit = std::chrono::steady_clock::now();
    }
    if (final_text) {
      for (size_t i = 1; i < pieces.size(); ++i) {
        auto more = co_await api_.call("sendMessage", html_message(chat_id, pieces[i]));
        if (!more) {
          if (BotApi::blocked(more.error())) {
            blocked = more.error();
            mark_blocked(chat_id);
          }
          break;
        }
      }
    }
    co_return true;
  };
  const llm::DeltaSink sink = [&](const llm::Delta& delta) -> Task<bool> {
    if (delta.content.empty()) co_return true;
    text += delta.content;
    if (std::chrono::steady_clock::now() - last_edit < deps_.settings.edit_interval) co_return true;
    const bool open = co_await show(false);
    co_return open;
  };
  turn.sink = &sink;
  auto result = co_await deps_.pipeline.run(turn);
  typing->done = true;
  // Taken, however it went (a turn answered before generation never called on_started).
  if (!recorded_now) {
    auto noted = co_await deps_.blocking.run([&] { return record_update(session_id, update_id); });
    if (!noted) {
      log::warn("a Telegram update could not be marked processed",
                {{"error", noted.error().message}});
    }
  }
  if (!result) {
    // Refused before a reply existed (limits, a blocked message): the person is told why.
    auto told = co_await send_text(chat_id, said(result.error()));
    if (!told && !BotApi::blocked(told.error())) co_return std::move(told).error();
    co_return note("refused", result.error().reason);
  }
  if (blocked) co_return note("blocked", true);
  text = turn.stored->reply.content;
  if (turn.generation_error) text += "\n\n(The reply was cut short.)";
  if (turn.output_blocked) text = said(*turn.output_blocked);
  (void)co_await show(true);
  if (blocked) co_return note("blocked", true);
  co_return turn_result(turn.stored->reply.id, message_id);
}

Task<Result<json>> TelegramChannel::show_reply(int64_t chat_id, int64_t message_id,
                                               std::string markdown) {
  auto pieces = format_reply(markdown);
  if (pieces.empty()) pieces.push_back("(no answer)");
  size_t from = 0;
  if (message_id != 0) {
    auto edited = co_await api_.call("editMessageText", html_edit(chat_id, message_id, pieces[0]));
    if (edited || BotApi::not_modified(edited.error())) from = 1;
  }
  for (size_t i = from; i < pieces.size(); ++i) {
    auto sent = co_await api_.call("sendMessage", html_message(chat_id, pieces[i]));
    if (!sent) co_return std::move(sent).error();
  }
  co_return json(true);
}

bool TelegramChannel::is_blocked(int64_t chat_id) {
  std::lock_guard lock(blocked_mutex_);
  return blocked_.count(chat_id) != 0;
}

void TelegramChannel::mark_blocked(int64_t chat_id) {
  std::lock_guard lock(blocked_mutex_);
  blocked_.insert(chat_id);
}

}  // namespace parley::channels::telegram
