// Chat turn, message history, assistants and usage handlers (see chat.hpp).
#include "api/chat.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/fields.hpp"
#include "api/sessions.hpp"
#include "cache/response_cache.hpp"
#include "chat/assistants.hpp"
#include "chat/pipeline.hpp"
#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "llm/accounting.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;

constexpr size_t kMaxContent = size_t{256} * 1024;
constexpr size_t kMaxModel = 256;
constexpr int kMaxPageSize = 200;

http::Response fail(const Error& e, const http::Request& req) {
  return http::error_response(e, req.request_id);
}

// Built outside coroutines: g++ 12 rejects string-literal arrays among a coroutine's
// temporaries ("array used as initializer").
http::HeaderList sse_headers() {
  return {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool wants_stream(const http::Request& req, const json& body) {
  if (auto it = body.find("stream"); it != body.end() && it->is_boolean()) return it->get<bool>();
  auto accept = req.header("accept");
  return accept && accept->find("text/event-stream") != std::string_view::npos;
}

// The turn's overrides from a request body (model, temperature, max_tokens).
Result<void> turn_overrides(const json& body, chat::Turn& t) {
  auto model = string_field(body, "model", kMaxModel);
  if (!model) return std::move(model).error();
  t.model = *model;
  auto temperature = number_field(body, "temperature", 0, 2);
  if (!temperature) return std::move(temperature).error();
  t.temperature = *temperature;
  auto max_tokens = integer_field(body, "max_tokens", 1, 1'000'000);
  if (!max_tokens) return std::move(max_tokens).error();
  t.max_tokens = *max_tokens;
  if (auto s = bool_field(body, "stream"); !s) return std::move(s).error();
  if (auto ids = body.find("knowledge_base_ids"); ids != body.end() && !ids->is_null()) {
    if (!ids->is_array() || ids->size() > 16) {
      return Error::invalid_field("knowledge_base_ids",
                                  "knowledge_base_ids must be an array of at most 16 ids");
    }
    for (const auto& id : *ids) {
      if (!id.is_string() || id.get<std::string>().empty() || id.get<std::string>().size() > 128) {
        return Error::invalid_field("knowledge_base_ids", "each knowledge base id is a string");
      }
      t.knowledge_base_ids.push_back(id.get<std::string>());
    }
  }
  return success();
}

// Runs a stored turn through the chat pipeline and answers it: JSON, or an event stream.
// `extra` is merged into the JSON answer (POST /api/v1/chat adds the session and the seeds'
// "response" field).
Task<http::Response> answer_turn(Context& ctx, http::Request& req, chat::Turn& turn, json extra) {
  llm::Cancellation cancel;
  if (req.channel) {
    req.channel->watch([&cancel] { cancel.request(llm::finish::kCancelled); });
  }
  turn.cancel = &cancel;
  turn.request_id = req.request_id;
  cache::apply_request_directives(req.header("cache-control"), turn);
  // A regenerated reply is asked for because the last one would not do: never the cached one.
  if (turn.stored && !turn.stored->regenerate_of.empty()) turn.cache.no_cache = true;
  if (!turn.stream) {
    auto result = co_await ctx.chat.run(turn);
    if (!result) co_return fail(result.error(), req);
    std::optional<Error> error = turn.generation_error;
    if (!error) error = turn.output_blocked;
    if (error) {
      http::Response res = fail(*error, req);
      // The envelope, plus what was stored: the client may show or retry it.
      auto body = json::parse(res.body, nullptr, false);
      body["reply"] = message_json(turn.stored->reply);
      body["user_message"] = message_json(turn.stored->started.user);
      res.body = dump(body);
      co_return res;
    }
    json body = {{"object", "chat.turn"},
                 {"session_id", turn.stored->reply.session_id},
                 {"user_message", message_json(turn.stored->started.user)},
                 {"reply", message_json(turn.stored->reply)},
                 {"citations", chat::citations_json(turn.citations)},
                 {"memories", chat::memories_json(turn.stored->memories)},
                 {"cache", cache::cache_json(turn)}};
    if (!turn.stored->intent.empty()) {
      body["user_message"]["intent"] = {{"name", turn.stored->intent},
                                        {"confidence", turn.stored->intent_confidence.value_or(0)}};
    }
    for (auto& [k, v] : extra.items()) body[k] = v;
    if (extra.contains("response")) body["response"] = turn.stored->reply.content;
    http::Response res;
    res.body = dump(body);
    cache::add_response_headers(turn, res.headers);
    co_return res;
  }

  uint64_t bytes = 0;
  bool started = false;
  auto send_event = [&](std::string_view name, const json& data) -> Task<bool> {
    std::string frame;
    frame.reserve(64);
    frame += "event: ";
    frame += name;
    frame += "\ndata: ";
    frame += dump(data);
    frame += "\n\n";
    bytes += frame.size();
    const bool sent = co_await req.channel->write(frame);
    co_return sent;
  };
  // The stream begins when generation is about to start (the pipeline's on_started), or at
  // the first text of a turn answered without it (a cache hit, a strict assistant with nothing
  // to quote): either way after the cache was asked, so the headers say what it answered.
  bool began = false;
  auto begin = [&]() -> Task<bool> {
    if (began) co_return started;
    began = true;
    http::HeaderList headers = sse_headers();
    cache::add_response_headers(turn, headers);
    started = co_await req.channel->begin_stream(200, "text/event-stream; charset=utf-8", headers);
    if (!started) co_return false;
    const store::StartedTurn& t = turn.stored->started;
    json data = {{"session_id", t.session.id},
                 {"user_message", message_json(t.user)},
                 {"reply_id", t.assistant.id},
                 {"model", t.assistant.model}};
    for (auto& [k, v] : extra.items()) {
      if (k != "response") data[k] = v;
    }
    const bool sent = co_await send_event("turn.started", data);
    co_return sent;
  };
  turn.stored->on_started = [&](const store::StartedTurn&) -> Task<void> {
    (void)co_await begin();
  };
  bool citations_sent = false;
  const llm::DeltaSink sink = [&](const llm::Delta& delta) -> Task<bool> {
    const bool open = co_await begin();
    if (!open) co_return false;
    if (delta.content.empty() && delta.tool_calls.empty()) co_return true;  // the start only
    if (!citations_sent && !turn.citations.empty()) {
      // Where the reply's [n] come from, before its text.
      citations_sent = true;
      const json cited = {{"citations", chat::citations_json(turn.citations)}};
      const bool sent_citations = co_await send_event("citations", cited);
      if (!sent_citations) co_return false;
    }
    json data = json::object();
    if (!delta.content.empty()) data["content"] = delta.content;
    if (!delta.tool_calls.empty()) {
      json calls = json::array();
      for (const auto& c : delta.tool_calls) {
        json call = {{"index", c.index}};
        if (!c.id.empty()) call["id"] = c.id;
        if (!c.name.empty()) call["name"] = c.name;
        if (!c.arguments.empty()) call["arguments"] = c.arguments;
        calls.push_back(std::move(call));
      }
      data["tool_calls"] = std::move(calls);
    }
    const bool sent = co_await send_event("delta", data);
    co_return sent;
  };
  turn.sink = &sink;
  auto result = co_await ctx.chat.run(turn);
  std::optional<Error> error;
  if (result) {
    error = turn.generation_error;
    if (!error) error = turn.output_blocked;
  }
  if (result && !error && !began) {
    // Answered without a word (nothing reached the sink): the stream still says so.
    const bool opened = co_await begin();
    (void)opened;
  }
  if (!started) {
    // Failed before the stream began: a plain error answer.
    if (!result) co_return fail(result.error(), req);
    co_return fail(error.value_or(Error::internal("the stream could not start")), req);
  }
  if (!result) {
    (void)co_await send_event("error", json::parse(fail(result.error(), req).body, nullptr, false));
  } else if (error) {
    json data = json::parse(fail(*error, req).body, nullptr, false);
    data["reply"] = message_json(turn.stored->reply);
    (void)co_await send_event("error", data);
  } else {
    json data = {{"reply", message_json(turn.stored->reply)}, {"cache", cache::cache_json(turn)}};
    if (!turn.stored->intent.empty()) {
      data["intent"] = {{"name", turn.stored->intent},
                        {"confidence", turn.stored->intent_confidence.value_or(0)}};
    }
    (void)co_await send_event("turn.completed", data);
  }
  co_return http::Response::streamed(200, bytes);
}

// The session's newest user message: what a regenerated reply answers again.
Task<Result<store::Message>> last_user_message(Context& ctx, const std::string& session_id) {
  co_return co_await ctx.blocking.run([&]() -> Result<store::Message> {
    store::MessageListQuery q;
    q.session_id = session_id;
    q.newest_first = true;
    for (;;) {
      auto page = ctx.storage.messages().list(q);
      if (!page) return std::move(page).error();
      for (auto& m : page->items) {
        if (m.role == "user") return std::move(m);
      }
      if (!page->next_cursor) break;
      q.cursor = page->next_cursor;
    }
    return Error::invalid_field("regenerate", "the session has no message to answer again");
  });
}

// "2026-11-22", "2026-11-22T10:00:00Z" or unix milliseconds.
std::optional<int64_t> parse_time(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && ptr == text.data() + text.size()) return v;
    return std::nullopt;
  }
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    tm = {};
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  }
  if (!end) return std::nullopt;
  std::string_view rest(end);
  if (!rest.empty() && rest != "Z" && rest != "+00:00") return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

json message_json(const store::Message& m) {
  json out = {{"id", m.id},
              {"object", "chat.message"},
              {"session_id", m.session_id},
              {"role", m.role},
              {"content", m.content},
              {"status", m.status},
              {"created_at", format_utc_ms(m.created_at_ms)},
              {"request_id", m.request_id}};
  if (!m.tool_calls_json.empty()) {
    auto calls = json::parse(m.tool_calls_json, nullptr, false);
    if (calls.is_array()) out["tool_calls"] = std::move(calls);
  }
  if (m.role == "user" && !m.intent.empty()) {
    out["intent"] = {
        {"name", m.intent},
        {"confidence", m.intent_confidence ? json(*m.intent_confidence) : json(nullptr)}};
  }
  if (m.role == "assistant") {
    out["model"] = m.model;
    out["provider"] = m.provider;
    out["finish_reason"] = m.finish_reason.empty() ? json(nullptr) : json(m.finish_reason);
    out["usage"] = {{"input_tokens", m.input_tokens}, {"output_tokens", m.output_tokens}};
    out["cost_usd"] = m.cost_usd;
    out["latency_ms"] = m.latency_ms ? json(*m.latency_ms) : json(nullptr);
    out["time_to_first_token_ms"] = m.ttft_ms ? json(*m.ttft_ms) : json(nullptr);
    json citations =
        m.citations_json.empty() ? json::array() : json::parse(m.citations_json, nullptr, false);
    out["citations"] = citations.is_array() ? std::move(citations) : json::array();
    json memories =
        m.memories_json.empty() ? json::array() : json::parse(m.memories_json, nullptr, false);
    out["memories"] = memories.is_array() ? std::move(memories) : json::array();
  }
  out["completed_at"] = m.completed_at_ms ? json(format_utc_ms(*m.completed_at_ms)) : json(nullptr);
  return out;
}

void add_chat_routes(http::Router& router, Context& ctx) {
  router.add(http::Method::kGet, "/api/v1/assistants", http::kAuthenticated,
             [&ctx](http::Request&) -> Awaitable {
               json data = json::array();
               for (const auto& a : ctx.assistants.all()) {
                 json entry = {{"name", a.name},
                               {"object", "assistant"},
                               {"description", a.description},
                               {"model", a.model.empty() ? ctx.gateway.default_route() : a.model},
                               {"default", a.name == ctx.assistants.default_assistant().name}};
                 if (a.temperature) entry["temperature"] = *a.temperature;
                 if (a.max_tokens) entry["max_tokens"] = *a.max_tokens;
                 data.push_back(std::move(entry));
               }
               http::Response res;
               res.body = dump({{"object", "list"}, {"data", data}});
               co_return res;
             });

  router.add(
      http::Method::kGet, "/api/v1/sessions/{id}/messages", http::kAuthenticated,
      [&ctx](http::Request& req) -> Awaitable {
        store::MessageListQuery q;
        q.session_id = std::string(req.param("id"));
        auto session = co_await owned_session(ctx, req, q.session_id);
        if (!session) co_return fail(session.error(), req);
        auto limit = page_limit(req.query_param("limit"), q.limit, kMaxPageSize);
        if (!limit) co_return fail(limit.error(), req);
        q.limit = *limit;
        if (auto order = req.query_param("order")) {
          if (*order != "asc" && *order != "desc") {
            co_return fail(Error::invalid_field("order", "order must be asc or desc"), req);
          }
          q.newest_first = *order == "desc";
        }
        q.cursor = req.query_param("cursor");
        auto page = co_await ctx.blocking.run([&] { return ctx.storage.messages().list(q); });
        if (!page) co_return fail(page.error(), req);
        json data = json::array();
        for (const auto& m : page->items) data.push_back(message_json(m));
        http::Response res;
        res.body =
            dump({{"object", "list"},
                  {"data", std::move(data)},
                  {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)}});
        co_return res;
      });

  router.add(
      http::Method::kPost, "/api/v1/sessions/{id}/messages", http::kAuthenticatedIdempotentForUser,
      [&ctx](http::Request& req) -> Awaitable {
        auto body = http::parse_json_object_body(req);
        if (!body) co_return fail(body.error(), req);
        if (auto r =
                reject_unknown_fields(*body, {"content", "regenerate", "stream", "model",
                                              "temperature", "max_tokens", "knowledge_base_ids"});
            !r) {
          co_return fail(r.error(), req);
        }
        auto content = string_field(*body, "content", kMaxContent);
        if (!content) co_return fail(content.error(), req);
        auto regenerate = bool_field(*body, "regenerate");
        if (!regenerate) co_return fail(regenerate.error(), req);
        const bool again = regenerate->value_or(false);
        if (again && *content) {
          co_return fail(Error::invalid_field("content",
                                              "a regenerated reply answers the session's last "
                                              "message; leave content out"),
                         req);
        }
        if (!again && !*content) {
          co_return fail(Error::invalid_field("content", "content is required"), req);
        }
        chat::Turn turn;
        turn.stored = std::make_unique<chat::StoredTurn>();
        if (auto r = turn_overrides(*body, turn); !r) co_return fail(r.error(), req);
        auto session = co_await owned_session(ctx, req, std::string(req.param("id")));
        if (!session) co_return fail(session.error(), req);
        auto actor = co_await acting_user(ctx, req, session->user_id);
        if (!actor) co_return fail(actor.error(), req);
        turn.actor = std::move(*actor);
        if (again) {
          auto last = co_await last_user_message(ctx, session->id);
          if (!last) co_return fail(last.error(), req);
          turn.stored->regenerate_of = last->id;
          turn.stored->content = std::move(last->content);
        } else {
          turn.stored->content = std::move(**content);
        }
        turn.stored->session = std::move(*session);
        turn.stream = wants_stream(req, *body);
        co_return co_await answer_turn(ctx, req, turn, json::object());
      });

  router.add(http::Method::kPost, "/api/v1/chat", http::kAuthenticatedIdempotentForUser,
             [&ctx](http::Request& req) -> Awaitable {
               auto body = http::parse_json_object_body(req);
               if (!body) co_return fail(body.error(), req);
               if (auto r = reject_unknown_fields(
                       *body, {"message", "session_id", "user_id", "assistant", "title", "stream",
                               "model", "temperature", "max_tokens", "knowledge_base_ids"});
                   !r) {
                 co_return fail(r.error(), req);
               }
               auto message = string_field(*body, "message", kMaxContent);
               if (!message) co_return fail(message.error(), req);
               if (!*message)
                 co_return fail(Error::invalid_field("message", "message is required"), req);
               auto session_id = string_field(*body, "session_id", 128);
               if (!session_id) co_return fail(session_id.error(), req);
               auto user_id = string_field(*body, "user_id", 256);
               if (!user_id) co_return fail(user_id.error(), req);
               auto assistant = string_field(*body, "assistant", 128);
               if (!assistant) co_return fail(assistant.error(), req);
               auto title = string_field(*body, "title", 512);
               if (!title) co_return fail(title.error(), req);
               chat::Turn turn;
               turn.stored = std::make_unique<chat::StoredTurn>();
               if (auto r = turn_overrides(*body, turn); !r) co_return fail(r.error(), req);
               if (*assistant && !ctx.assistants.find(**assistant)) {
                 co_return fail(
                     Error::invalid_field("assistant", "no assistant named '" + **assistant + "'"),
                     req);
               }
               if (*session_id) {
                 auto session = co_await owned_session(ctx, req, **session_id);
                 if (!session) co_return fail(session.error(), req);
                 if (*user_id && **user_id != session->user_id) {
                   co_return fail(
                       Error::invalid_field("user_id", "the session belongs to another user"), req);
                 }
                 auto acting = co_await acting_user(ctx, req, session->user_id);
                 if (!acting) co_return fail(acting.error(), req);
                 turn.actor = std::move(*acting);
                 turn.stored->session = std::move(*session);
               } else {
                 auto acting = co_await acting_user(ctx, req, *user_id);
                 if (!acting) co_return fail(acting.error(), req);
                 turn.actor = std::move(*acting);
                 // Opened by the pipeline once the caller is admitted and the message allowed, so a
                 // refused turn leaves no empty session behind.
                 store::NewSession in;
                 in.tenant_id = turn.actor.tenant_id;
                 in.user_id = turn.actor.user_id;
                 in.assistant = assistant->value_or(ctx.assistants.default_assistant().name);
                 // None given: the open_session stage titles it from the message as moderation
                 // left it.
                 in.title = *title;
                 turn.stored->new_session = std::move(in);
               }
               const bool created = turn.stored->new_session.has_value();
               turn.stored->content = std::move(**message);
               turn.stream = wants_stream(req, *body);
               json extra = {{"session_created", created}, {"response", ""}};
               auto res = co_await answer_turn(ctx, req, turn, std::move(extra));
               if (created && !res.already_sent && res.status < 300) res.status = 201;
               co_return res;
             });

  router.add(http::Method::kGet, "/api/v1/usage", http::kAuthenticated,
             [&ctx](http::Request& req) -> Awaitable {
               store::UsageQuery q;
               const int64_t now = to_unix_ms(ctx.clock.now());
               q.to_ms = now + 1;
               q.from_ms = now - int64_t{30} * 86'400'000;
               for (const char* name : {"from", "to"}) {
                 if (auto text = req.query_param(name)) {
                   auto t = parse_time(*text);
                   if (!t) {
                     co_return fail(Error::invalid_field(
                                        name, std::string(name) +
                                                  " must be a date (2026-11-22), a UTC time "
                                                  "(2026-11-22T10:00:00Z) or unix milliseconds"),
                                    req);
                   }
                   (std::string_view(name) == "from" ? q.from_ms : q.to_ms) = *t;
                 }
               }
               auto user = user_filter(req, req.query_param("user_id"));
               if (!user) co_return fail(user.error(), req);
               q.user_id = *user;
               q.tenant_id = Access::tenant_scope(req);
               if (!q.tenant_id) q.tenant_id = req.query_param("tenant_id");
               if (auto group = req.query_param("group_by")) {
                 size_t start = 0;
                 while (start <= group->size()) {
                   auto comma = group->find(',', start);
                   std::string field = group->substr(
                       start, comma == std::string::npos ? std::string::npos : comma - start);
                   if (!field.empty()) q.group_by.push_back(field);
                   if (comma == std::string::npos) break;
                   start = comma + 1;
                 }
               }
               auto rows = co_await ctx.blocking.run([&] {
                 ctx.accountant.flush();  // what the API path queued counts too
                 return ctx.storage.usage().aggregate(q);
               });
               if (!rows) co_return fail(rows.error(), req);
               json data = json::array();
               int64_t requests = 0, input = 0, output = 0;
               double cost = 0;
               for (const auto& r : *rows) {
                 json row = json::object();
                 for (const auto& [k, v] : r.keys) row[k] = v;
                 row["requests"] = r.requests;
                 row["input_tokens"] = r.input_tokens;
                 row["output_tokens"] = r.output_tokens;
                 row["cost_usd"] = r.cost_usd;
                 requests += r.requests;
                 input += r.input_tokens;
                 output += r.output_tokens;
                 cost += r.cost_usd;
                 data.push_back(std::move(row));
               }
               http::Response res;
               res.body = dump({{"object", "usage"},
                                {"from", format_utc_ms(q.from_ms)},
                                {"to", format_utc_ms(q.to_ms)},
                                {"group_by", q.group_by},
                                {"data", std::move(data)},
                                {"total",
                                 {{"requests", requests},
                                  {"input_tokens", input},
                                  {"output_tokens", output},
                                  {"cost_usd", cost}}}});
               co_return res;
             });
}

}  // namespace parley::api
