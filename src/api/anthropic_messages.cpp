// Anthropic's Messages API handlers (see anthropic_messages.hpp).
#include "api/anthropic_messages.hpp"

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/anthropic_format.hpp"
#include "api/stateless_turn.hpp"
#include "auth/principal.hpp"
#include "cache/response_cache.hpp"
#include "chat/pipeline.hpp"
#include "core/ids.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "llm/upstream.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;
namespace format = anthropic_format;

http::Response fail(const Error& e, const http::Request& req) {
  return http::error_response(e, req.request_id);
}

http::HeaderList sse_headers() {
  return {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}};
}

http::Response json_response(const json& body) {
  http::Response res;
  res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return res;
}

// A stateless turn of the chat pipeline from a Messages API body. Not a coroutine: what
// parsing needs stays out of the handler's frame, which lives as long as a stream.
Result<chat::Turn> messages_turn(Context& ctx, http::Request& req, const json& body) {
  auto parsed = format::parse_request(body);
  if (!parsed) return std::move(parsed).error();
  // metadata.user_id names the end user for a service key. Anthropic's clients send their own
  // opaque ids there (Claude Code sends one with every request), so a user's own key, which
  // acts for its user whatever the body says, is not refused for it.
  if (req.principal && req.principal->scope == auth::Scope::kUser) parsed->request.user.clear();
  auto turn = stateless_turn(ctx, req, std::move(parsed->model), parsed->stream,
                             std::move(parsed->request));
  if (turn) turn->reply_field = "content";
  return turn;
}

json count_json(int64_t tokens) { return {{"input_tokens", tokens}}; }

std::string message_id() { return "msg_" + random_hex128().substr(0, 24); }

std::string model_of(const llm::GatewayResult& out) {
  return out.completion.model.empty() ? out.model : out.completion.model;
}

Awaitable messages(Context& ctx, http::Request& req) {
  auto body = http::parse_json_object_body(req);
  if (!body) co_return fail(body.error(), req);
  auto made = messages_turn(ctx, req, *body);
  if (!made) co_return fail(made.error(), req);
  chat::Turn& turn = *made;
  auto counted = co_await ctx.access.count_user_request(req, turn.actor);
  if (!counted) co_return fail(counted.error(), req);
  const std::string id = message_id();
  llm::Cancellation cancel;
  follow_client(req, turn, cancel);
  const llm::GatewayResult& out = turn.generation;

  if (!turn.stream) {
    auto result = co_await ctx.chat.run(turn);
    if (!result) co_return fail(result.error(), req);
    if (auto error = reply_error(turn)) co_return fail(*error, req);
    http::Response res = json_response(format::message_json(id, model_of(out), out.completion));
    cache::add_response_headers(turn, res.headers);
    co_return res;
  }

  // Streamed: Anthropic's events. The head goes out with the first delta, so a failure before
  // any token (after retries and fallbacks) is a plain error response.
  uint64_t bytes = 0;
  bool started = false;
  bool client_there = true;
  format::StreamWriter writer;
  auto send = [&](const std::string& frames) -> Task<bool> {
    if (frames.empty()) co_return client_there;
    bytes += frames.size();
    const bool sent = co_await req.channel->write(frames);
    client_there = client_there && sent;
    co_return sent;
  };
  auto start = [&]() -> Task<bool> {
    if (started) co_return client_there;
    started = true;
    http::HeaderList headers = sse_headers();
    cache::add_response_headers(turn, headers);
    const bool ok =
        co_await req.channel->begin_stream(200, "text/event-stream; charset=utf-8", headers);
    if (!ok) co_return false;
    const std::string opening =
        format::stream_start(id, model_of(out), llm::estimate_tokens(turn.prompt.messages));
    const bool sent = co_await send(opening);
    co_return sent;
  };
  const llm::DeltaSink sink = [&](const llm::Delta& delta) -> Task<bool> {
    const bool ok = co_await start();
    if (!ok) co_return false;
    std::string frames;
    writer.delta(delta, frames);
    const bool sent = co_await send(frames);
    co_return sent;
  };
  turn.sink = &sink;
  auto result = co_await ctx.chat.run(turn);
  if (!result) co_return fail(result.error(), req);  // refused before any provider was called
  const std::optional<Error> error = reply_error(turn);
  if (!started) {
    if (error) co_return fail(*error, req);
    const bool ok = co_await start();  // an empty reply still streams its end
    if (!ok) co_return http::Response::streamed(200, bytes);
  }
  std::string ending;
  writer.close(ending);
  ending += error ? format::stream_error(*error) : format::stream_end(out.completion);
  (void)co_await send(ending);
  co_return http::Response::streamed(200, bytes);
}

Awaitable count_tokens(Context&, http::Request& req) {
  auto body = http::parse_json_object_body(req);
  if (!body) co_return fail(body.error(), req);
  auto parsed = format::parse_request(*body, true);
  if (!parsed) co_return fail(parsed.error(), req);
  int64_t tokens = llm::estimate_tokens(parsed->request.messages);
  if (!parsed->request.tools.is_null()) {
    tokens += llm::estimate_tokens(parsed->request.tools.dump());
  }
  co_return json_response(count_json(tokens));
}

}  // namespace

void add_anthropic_routes(http::Router& router, Context& ctx) {
  http::RoutePolicy chat = http::kAuthenticatedIdempotentForUser;
  chat.errors = http::ErrorFormat::kAnthropic;
  http::RoutePolicy count = http::kAuthenticated;
  count.errors = http::ErrorFormat::kAnthropic;
  router.add(http::Method::kPost, "/v1/messages", chat,
             [&ctx](http::Request& req) { return messages(ctx, req); });
  router.add(http::Method::kPost, "/v1/messages/count_tokens", count,
             [&ctx](http::Request& req) { return count_tokens(ctx, req); });
}

}  // namespace parley::api
