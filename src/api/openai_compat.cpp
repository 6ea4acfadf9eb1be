// OpenAI-compatible handlers: request translation, the gateway call, and responses in OpenAI's
// exact shapes (see openai_compat.hpp).
#include "api/openai_compat.hpp"

#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/fields.hpp"
#include "api/sessions.hpp"
#include "api/stateless_turn.hpp"
#include "cache/response_cache.hpp"
#include "chat/pipeline.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "llm/accounting.hpp"
#include "llm/cost_routing.hpp"
#include "llm/gateway.hpp"
#include "llm/upstream.hpp"
#include "moderation/moderator.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;

constexpr size_t kMaxMessages = 10'000;
constexpr size_t kMaxEmbeddingInputs = 2048;

// Built outside coroutines: g++ 12 rejects string-literal arrays among a coroutine's
// temporaries ("array used as initializer").
http::HeaderList sse_headers() {
  return {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}};
}
json role_delta() { return {{"role", "assistant"}, {"content", ""}}; }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

http::Response fail(const Error& e, const http::Request& req) {
  return http::error_response(e, req.request_id);
}

int64_t unix_seconds(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
}

// The fields Parley reads itself; everything else in the body travels to OpenAI-compatible
// providers as is (response_format, seed, logprobs, parallel_tool_calls, ...).
constexpr std::string_view kKnownFields[] = {
    "model",      "messages", "stream", "stream_options", "temperature", "top_p",
    "max_tokens", "stop",     "tools",  "tool_choice",    "user",        "n"};

std::string field_path(size_t index, const char* field) {
  return "messages[" + std::to_string(index) + "]." + field;
}

Result<llm::Message> parse_message(const json& m, size_t index) {
  if (!m.is_object())
    return Error::invalid_field("messages[" + std::to_string(index) + "]",
                                "a message must be an object");
  llm::Message out;
  auto role = m.find("role");
  if (role == m.end() || !role->is_string()) {
    return Error::invalid_field(field_path(index, "role"), "role is required and must be a string");
  }
  out.role = role->get<std::string>();
  if (out.role != "system" && out.role != "developer" && out.role != "user" &&
      out.role != "assistant" && out.role != "tool") {
    return Error::invalid_field(field_path(index, "role"),
                                "role must be system, developer, user, assistant or tool");
  }
  if (out.role == "developer") out.role = "system";
  auto content = m.find("content");
  if (content != m.end() && !content->is_null()) {
    if (content->is_string()) {
      out.content = content->get<std::string>();
    } else if (content->is_array()) {
      out.parts = *content;
      // The text of the parts, for providers and estimates that take text only.
      for (const auto& part : *content) {
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
            part["text"].is_string()) {
          if (!out.content.empty()) out.content += "\n";
          out.content += part["text"].get<std::string>();
        }
      }
    } else {
      return Error::invalid_field(field_path(index, "content"),
                                  "content must be a string, an array of parts, or null");
    }
  } else if (out.role != "assistant") {
    return Error::invalid_field(field_path(index, "content"), "content is required");
  }
  if (auto name = m.find("name"); name != m.end() && name->is_string())
    out.name = name->get<std::string>();
  if (out.role == "tool") {
    auto id = m.find("tool_call_id");
    if (id == m.end() || !id->is_string()) {
      return Error::invalid_field(field_path(index, "tool_call_id"),
                                  "a tool message needs tool_call_id");
    }
    out.tool_call_id = id->get<std::string>();
  }
  if (auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null()) {
    if (!calls->is_array())
      return Error::invalid_field(field_path(index, "tool_calls"), "tool_calls must be an array");
    for (const auto& c : *calls) {
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) {
        return Error::invalid_field(field_path(index, "tool_calls"),
                                    "each tool call needs a function object");
      }
      const auto& fn = c["function"];
      llm::ToolCall call;
      call.id = c.value("id", "");
      call.name = fn.value("name", "");
      call.arguments = fn.contains("arguments") && fn["arguments"].is_string()
                           ? fn["arguments"].get<std::string>()
                           : "{}";
      out.tool_calls.push_back(std::move(call));
    }
  }
  return out;
}

struct ParsedChat {
  std::string model;
  llm::ChatRequest request;
  bool stream = false;
  bool include_usage = false;
};

Result<ParsedChat> parse_chat(const json& body) {
  ParsedChat p;
  auto model = string_field(body, "model", 256);
  if (!model) return std::move(model).error();
  if (!*model) return Error::invalid_field("model", "model is required");
  p.model = **model;
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty()) {
    return Error::invalid_field("messages", "messages must be a non-empty array");
  }
  if (messages->size() > kMaxMessages) {
    return Error::invalid_field("messages",
                                "at most " + std::to_string(kMaxMessages) + " messages");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    auto m = parse_message((*messages)[i], i);
    if (!m) return std::move(m).error();
    p.request.messages.push_back(std::move(*m));
  }
  auto stream = bool_field(body, "stream");
  if (!stream) return std::move(stream).error();
  p.stream = stream->value_or(false);
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object())
      return Error::invalid_field("stream_options", "stream_options must be an object");
    auto usage = bool_field(*so, "include_usage");
    if (!usage)
      return Error::invalid_field("stream_options.include_usage",
                                  "include_usage must be true or false");
    p.include_usage = usage->value_or(false);
  }
  auto temperature = number_field(body, "temperature", 0, 2);
  if (!temperature) return std::move(temperature).error();
  p.request.temperature = *temperature;
  auto top_p = number_field(body, "top_p", 0, 1);
  if (!top_p) return std::move(top_p).error();
  p.request.top_p = *top_p;
  auto max_tokens = integer_field(body, "max_tokens", 1, 100'000'000);
  if (!max_tokens) return std::move(max_tokens).error();
  p.request.max_tokens = *max_tokens;
  if (!p.request.max_tokens) {
    auto completion_tokens = integer_field(body, "max_completion_tokens", 1, 100'000'000);
    if (!completion_tokens) return std::move(completion_tokens).error();
    p.request.max_tokens = *completion_tokens;
  }
  if (auto stop = body.find("stop"); stop != body.end() && !stop->is_null()) {
    if (stop->is_string()) {
      p.request.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 16) {
      for (const auto& s : *stop) {
        if (!s.is_string())
          return Error::invalid_field("stop", "stop must be a string or an array of strings");
        p.request.stop.push_back(s.get<std::string>());
      }
    } else {
      return Error::invalid_field("stop", "stop must be a string or an array of up to 16 strings");
    }
  }
  if (auto tools = body.find("tools"); tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) return Error::invalid_field("tools", "tools must be an array");
    p.request.tools = *tools;
  }
  if (auto choice = body.find("tool_choice"); choice != body.end()) p.request.tool_choice = *choice;
  auto user = string_field(body, "user", 256);
  if (!user) return std::move(user).error();
  p.request.user = user->value_or("");
  auto n = integer_field(body, "n", 1, 1);
  if (!n) return Error::invalid_field("n", "only n = 1 is supported");
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (auto k : kKnownFields) known = known || key == k;
    if (!known && key != "max_completion_tokens") p.request.extra[key] = value;
  }
  return p;
}

json tool_calls_json(const std::vector<llm::ToolCall>& calls) {
  json out = json::array();
  for (const auto& c : calls) {
    out.push_back({{"id", c.id},
                   {"type", "function"},
                   {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return out;
}

json usage_json(const llm::Usage& u) {
  return {{"prompt_tokens", u.input_tokens},
          {"completion_tokens", u.output_tokens},
          {"total_tokens", u.input_tokens + u.output_tokens}};
}

std::string base64(const unsigned char* data, size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t b0 = data[i];
    const uint32_t b1 = i + 1 < size ? data[i + 1] : 0;
    const uint32_t b2 = i + 2 < size ? data[i + 2] : 0;
    const uint32_t n = (b0 << 16) | (b1 << 8) | b2;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < size ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < size ? kAlphabet[n & 63] : '=');
  }
  return out;
}

// A stateless turn of the chat pipeline from an OpenAI-format body: the conversation comes
// whole, nothing is stored but usage, and the body travels upstream as received (kept in step
// with redactions). Not a coroutine: what parsing needs stays out of the handler's frame,
// which lives as long as a stream (thousands are held at once).
struct StatelessTurn {
  chat::Turn turn;
  bool include_usage = false;
};

Result<StatelessTurn> openai_turn(Context& ctx, http::Request& req, json& body) {
  auto parsed = parse_chat(body);
  if (!parsed) return std::move(parsed).error();
  auto made = stateless_turn(ctx, req, std::move(parsed->model), parsed->stream,
                             std::move(parsed->request));
  if (!made) return std::move(made).error();
  StatelessTurn out{std::move(*made), parsed->include_usage};
  chat::Turn& turn = out.turn;
  turn.prompt.openai_body = &body;
  turn.prompt.openai_text = req.body;
  turn.openai_body = &body;
  turn.reply_field = turn.stream ? "choices[0].delta.content" : "choices[0].message.content";
  return out;
}

Awaitable chat_completions(Context& ctx, http::Request& req) {
  auto body = http::parse_json_object_body(req);
  if (!body) co_return fail(body.error(), req);
  auto made = openai_turn(ctx, req, *body);
  if (!made) co_return fail(made.error(), req);
  auto counted = co_await ctx.access.count_user_request(req, made->turn.actor);
  if (!counted) co_return fail(counted.error(), req);
  chat::Turn& turn = made->turn;
  const bool include_usage = made->include_usage;
  const std::string id = "chatcmpl-" + random_hex128().substr(0, 24);
  const int64_t created = unix_seconds(ctx.clock);
  llm::Cancellation cancel;
  follow_client(req, turn, cancel);
  const llm::GatewayResult& out = turn.generation;

  if (!turn.stream) {
    auto result = co_await ctx.chat.run(turn);
    if (!result) co_return fail(result.error(), req);
    if (auto error = reply_error(turn)) co_return fail(*error, req);
    if (!out.completion.raw_openai.empty()) {
      // An OpenAI-compatible upstream answered in this very format: pass it on as received.
      http::Response res;
      res.body = std::move(turn.generation.completion.raw_openai);
      cache::add_response_headers(turn, res.headers);
      co_return res;
    }
    const auto& c = out.completion;
    json message = {
        {"role", "assistant"},
        {"content", c.content.empty() && !c.tool_calls.empty() ? json(nullptr) : json(c.content)}};
    if (!c.tool_calls.empty()) message["tool_calls"] = tool_calls_json(c.tool_calls);
    json response = {{"id", id},
                     {"object", "chat.completion"},
                     {"created", created},
                     {"model", c.model.empty() ? out.model : c.model},
                     {"choices",
                      {{{"index", 0},
                        {"message", std::move(message)},
                        {"logprobs", nullptr},
                        {"finish_reason", c.finish_reason}}}},
                     {"usage", usage_json(c.usage)},
                     {"system_fingerprint", nullptr}};
    http::Response res;
    res.body = dump(response);
    cache::add_response_headers(turn, res.headers);
    co_return res;
  }

  // Streamed: chat.completion.chunk events, then [DONE]. The head goes out with the first
  // delta, so a failure before any token (after retries and fallbacks) is a plain error.
  uint64_t bytes = 0;
  bool started = false;
  bool client_there = true;
  std::string model_name = out.model;
  auto chunk = [&](json delta, json finish) {
    return json{{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model_name},
                {"system_fingerprint", nullptr},
                {"choices",
                 {{{"index", 0},
                   {"delta", std::move(delta)},
                   {"logprobs", nullptr},
                   {"finish_reason", std::move(finish)}}}}};
  };
  auto send = [&](const json& data) -> Task<bool> {
    std::string frame = "data: ";
    frame += dump(data);
    frame += "\n\n";
    bytes += frame.size();
    const bool sent = co_await req.channel->write(frame);
    client_there = client_there && sent;
    co_return sent;
  };
  auto start = [&]() -> Task<bool> {
    if (started) co_return client_there;
    started = true;
    model_name = out.model;
    http::HeaderList headers = sse_headers();
    cache::add_response_headers(turn, headers);
    const bool ok =
        co_await req.channel->begin_stream(200, "text/event-stream; charset=utf-8", headers);
    if (!ok) co_return false;
    const json first = chunk(role_delta(), nullptr);
    const bool sent = co_await send(first);
    co_return sent;
  };
  // Deltas as the pipeline releases them (checked by moderation as the reply grows).
  const llm::DeltaSink sink = [&](const llm::Delta& delta) -> Task<bool> {
    const bool ok = co_await start();
    if (!ok) co_return false;
    if (delta.content.empty() && delta.tool_calls.empty()) co_return true;  // the start only
    json d = json::object();
    if (!delta.content.empty()) d["content"] = delta.content;
    if (!delta.tool_calls.empty()) {
      json calls = json::array();
      for (const auto& c : delta.tool_calls) {
        json call = {{"index", c.index}};
        if (!c.id.empty()) {
          call["id"] = c.id;
          call["type"] = "function";
        }
        json fn = json::object();
        if (!c.name.empty()) fn["name"] = c.name;
        fn["arguments"] = c.arguments;
        call["function"] = std::move(fn);
        calls.push_back(std::move(call));
      }
      d["tool_calls"] = std::move(calls);
    }
    const bool sent = co_await send(chunk(std::move(d), nullptr));
    co_return sent;
  };
  turn.sink = &sink;
  auto result = co_await ctx.chat.run(turn);
  if (!result) co_return fail(result.error(), req);  // refused before any provider was called
  const std::optional<Error> error = reply_error(turn);
  if (!started) {
    if (error) co_return fail(*error, req);
    // A reply with no deltas at all (an empty completion) still streams its end.
    const bool ok = co_await start();
    if (!ok) co_return http::Response::streamed(200, bytes);
  }
  if (error) {
    // OpenAI's in-stream error shape; the SDKs raise it as an APIError.
    json envelope = json::parse(fail(*error, req).body, nullptr, false);
    (void)co_await send(envelope);
  } else {
    (void)co_await send(chunk(json::object(), out.completion.finish_reason));
    if (include_usage) {
      json usage = chunk(json::object(), nullptr);
      usage["choices"] = json::array();
      // The upstream's counts, or (when it sent none) the pipeline's estimate.
      usage["usage"] = usage_json(out.completion.usage);
      (void)co_await send(usage);
    }
  }
  static constexpr std::string_view kDone = "data: [DONE]\n\n";
  bytes += kDone.size();
  (void)co_await req.channel->write(kDone);
  co_return http::Response::streamed(200, bytes);
}

// Every model name a client can use: routes, and each provider's models both bare and as
// "provider/model".
json model_list(const Context& ctx) {
  json data = json::array();
  std::vector<std::string> seen;
  auto add = [&](const std::string& model_id, const std::string& owner) {
    if (std::find(seen.begin(), seen.end(), model_id) != seen.end()) return;
    seen.push_back(model_id);
    data.push_back({{"id", model_id}, {"object", "model"}, {"created", 0}, {"owned_by", owner}});
  };
  for (const auto& [name, route] : ctx.gateway.routes()) add(name, "parley");
  for (const auto& p : ctx.gateway.providers()) {
    for (const auto& m : p->models()) {
      add(m, p->name());
      add(p->name() + "/" + m, p->name());
    }
  }
  return data;
}

Awaitable models(Context& ctx, http::Request&) {
  http::Response res;
  res.body = dump({{"object", "list"}, {"data", model_list(ctx)}});
  co_return res;
}

Awaitable model(Context& ctx, http::Request& req) {
  const std::string id(req.param("model"));
  for (auto& m : model_list(ctx)) {
    if (m["id"] == id) {
      http::Response res;
      res.body = dump(m);
      co_return res;
    }
  }
  co_return fail(
      Error::not_found("no model '" + id + "'; GET /v1/models lists them", "model_not_found"), req);
}

Awaitable embeddings(Context& ctx, http::Request& req) {
  auto body = http::parse_json_object_body(req);
  if (!body) co_return fail(body.error(), req);
  auto model = string_field(*body, "model", 256);
  if (!model) co_return fail(model.error(), req);
  if (!*model) co_return fail(Error::invalid_field("model", "model is required"), req);
  llm::EmbeddingRequest request;
  auto input = body->find("input");
  if (input == body->end()) co_return fail(Error::invalid_field("input", "input is required"), req);
  if (input->is_string()) {
    request.inputs.push_back(input->get<std::string>());
  } else if (input->is_array() && !input->empty() && input->size() <= kMaxEmbeddingInputs) {
    for (const auto& x : *input) {
      if (!x.is_string()) {
        co_return fail(
            Error::invalid_field("input", "input must be a string or an array of strings"), req);
      }
      request.inputs.push_back(x.get<std::string>());
    }
  } else {
    co_return fail(
        Error::invalid_field("input", "input must be a string or an array of 1 to " +
                                          std::to_string(kMaxEmbeddingInputs) + " strings"),
        req);
  }
  std::string encoding = "float";
  if (auto e = body->find("encoding_format"); e != body->end() && !e->is_null()) {
    if (!e->is_string() || (*e != "float" && *e != "base64")) {
      co_return fail(
          Error::invalid_field("encoding_format", "encoding_format must be float or base64"), req);
    }
    encoding = e->get<std::string>();
  }
  if (auto d = body->find("dimensions"); d != body->end()) request.extra["dimensions"] = *d;
  auto user = string_field(*body, "user", 256);
  if (!user) co_return fail(user.error(), req);
  auto actor = co_await acting_user(ctx, req, *user);
  if (!actor) co_return fail(actor.error(), req);
  request.user = *user || (req.principal && req.principal->scope == auth::Scope::kUser)
                     ? actor->user_id
                     : std::string();
  auto route = ctx.gateway.resolve(**model);
  if (!route) co_return fail(route.error(), req);
  auto admitted = co_await ctx.admission.admit(*actor, false);
  if (!admitted) co_return fail(admitted.error(), req);
  llm::Cancellation cancel;
  if (req.channel) req.channel->watch([&cancel] { cancel.request(llm::finish::kCancelled); });
  auto result = co_await ctx.gateway.embed(*route, request, cancel);
  if (!result) co_return fail(result.error(), req);
  json data = json::array();
  for (size_t i = 0; i < result->vectors.size(); ++i) {
    const auto& vec = result->vectors[i];
    json embedding;
    if (encoding == "base64") {
      // Little-endian float32, as OpenAI sends it (x86 and ARM hosts are little-endian).
      embedding =
          base64(reinterpret_cast<const unsigned char*>(vec.data()), vec.size() * sizeof(float));
    } else {
      embedding = vec;
    }
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
  }
  {
    store::UsageRecord r;
    r.at_ms = to_unix_ms(ctx.clock.now());
    r.tenant_id = actor->tenant_id;
    r.user_id = actor->user_id;
    r.key_id = actor->key_id;
    r.source = "api";
    r.provider = route->targets.empty() ? "" : route->targets.front().provider->name();
    r.model = result->model;
    r.input_tokens = result->usage.input_tokens;
    r.cost_usd = ctx.accountant.models().cost(result->model, r.input_tokens, 0);
    r.status = "ok";
    r.request_id = req.request_id;
    chat::book_api_usage(ctx.chat_deps, *actor, std::move(r));
  }
  http::Response res;
  res.body = dump({{"object", "list"},
                   {"data", std::move(data)},
                   {"model", result->model},
                   {"usage",
                    {{"prompt_tokens", result->usage.input_tokens},
                     {"total_tokens", result->usage.input_tokens}}}});
  co_return res;
}

// OpenAI's moderation endpoint, answered by Parley's own moderation: the configured rules,
// then the provider where one is configured for input. Each input is one decision, counted
// and logged like a message's. "categories" names every finding; "action" (Parley's
// addition) is what a message like it would get: allow, redact or block.
Awaitable moderations(Context& ctx, http::Request& req) {
  constexpr size_t kMaxModerationInputs = 32;
  auto body = http::parse_json_object_body(req);
  if (!body) co_return fail(body.error(), req);
  if (auto r = reject_unknown_fields(*body, {"input", "model"}); !r) co_return fail(r.error(), req);
  if (auto model = string_field(*body, "model", 256); !model) co_return fail(model.error(), req);
  std::vector<std::string> inputs;
  auto input = body->find("input");
  if (input == body->end()) co_return fail(Error::invalid_field("input", "input is required"), req);
  if (input->is_string()) {
    inputs.push_back(input->get<std::string>());
  } else if (input->is_array() && !input->empty() && input->size() <= kMaxModerationInputs) {
    for (size_t i = 0; i < input->size(); ++i) {
      const auto& x = (*input)[i];
      if (!x.is_string()) {
        co_return fail(Error::invalid_field("input[" + std::to_string(i) + "]",
                                            "input must be a string or an array of strings"),
                       req);
      }
      inputs.push_back(x.get<std::string>());
    }
  } else {
    co_return fail(
        Error::invalid_field("input", "input must be a string or an array of 1 to " +
                                          std::to_string(kMaxModerationInputs) + " strings"),
        req);
  }
  if (!ctx.moderator.enabled()) {
    co_return fail(Error{ErrorCode::kNotFound,
                         "content moderation is not configured on this server (see the "
                         "`moderation:` settings)",
                         "moderation_not_configured",
                         "",
                         {}},
                   req);
  }
  auto actor = co_await acting_user(ctx, req, std::nullopt);
  if (!actor) co_return fail(actor.error(), req);
  const moderation::Subject subject{actor->tenant_id, actor->user_id, "", req.request_id};
  json results = json::array();
  for (const auto& text : inputs) {
    auto verdict = co_await ctx.moderator.check(text, moderation::Stage::kInput, subject);
    json categories = json::object();
    json scores = json::object();
    for (const auto& f : verdict.findings) {
      categories[f.category] = true;
      scores[f.category] = 1.0;
    }
    json result = {{"flagged", !verdict.findings.empty()},
                   {"categories", std::move(categories)},
                   {"category_scores", std::move(scores)},
                   {"action", moderation::action_name(verdict.action)}};
    if (verdict.action == moderation::Action::kRedact && verdict.redacted) {
      result["redacted"] = *verdict.redacted;
    }
    results.push_back(std::move(result));
  }
  const std::string& provider_model = ctx.moderator.provider_model();
  http::Response res;
  res.body = dump({{"id", "modr-" + random_hex128().substr(0, 24)},
                   {"model", ctx.moderator.has_provider() ? provider_model : "parley-rules"},
                   {"results", std::move(results)}});
  co_return res;
}

}  // namespace

void add_openai_routes(http::Router& router, Context& ctx) {
  router.add(http::Method::kPost, "/v1/chat/completions", http::kAuthenticatedIdempotentForUser,
             [&ctx](http::Request& req) { return chat_completions(ctx, req); });
  router.add(http::Method::kGet, "/v1/models", http::kAuthenticated,
             [&ctx](http::Request& req) { return models(ctx, req); });
  router.add(http::Method::kGet, "/v1/models/{model}", http::kAuthenticated,
             [&ctx](http::Request& req) { return model(ctx, req); });
  router.add(http::Method::kPost, "/v1/embeddings", http::kAuthenticatedIdempotentForUser,
             [&ctx](http::Request& req) { return embeddings(ctx, req); });
  router.add(http::Method::kPost, "/v1/moderations", http::kAuthenticatedForUser,
             [&ctx](http::Request& req) { return moderations(ctx, req); });
}

}  // namespace parley::api
