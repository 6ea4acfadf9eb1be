// OpenAI-compatible provider: request building, response and stream parsing, the call.
#include "llm/openai/openai_provider.hpp"

#include <nlohmann/json.hpp>

#include "llm/sse.hpp"

namespace parley::llm {
namespace {

using nlohmann::json;

constexpr size_t kMaxResponseBytes = size_t{32} << 20;  // a whole reply or embedding batch
constexpr size_t kMaxErrorBytes = size_t{64} << 10;

std::string string_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void read_usage(const json& usage, Usage& out) {
  if (!usage.is_object()) return;
  auto in = usage.find("prompt_tokens");
  auto gen = usage.find("completion_tokens");
  if (in != usage.end() && in->is_number_integer()) out.input_tokens = in->get<int64_t>();
  if (gen != usage.end() && gen->is_number_integer()) out.output_tokens = gen->get<int64_t>();
  out.reported = true;
}

class OpenAiProvider final : public Provider {
 public:
  OpenAiProvider(ProviderSettings settings, http::HttpClient& client)
      : settings_(std::move(settings)), client_(client) {}

  const std::string& name() const override { return settings_.name; }
  const char* type() const override { return "openai"; }
  std::vector<std::string> models() const override { return settings_.models; }
  const std::string& default_model() const override { return settings_.default_model; }
  bool supports_embeddings() const override { return true; }

  Task<Result<void>> chat(const ChatRequest& request, const CallLimits& limits,
                          Cancellation& cancel, const DeltaSink* sink, Completion& out) override {
    return run_chat(*this, request, limits, cancel, sink, out);
  }

  Task<Result<Embeddings>> embed(const EmbeddingRequest& request, const CallLimits& limits,
                                 Cancellation& cancel) override {
    return run_embed(*this, request, limits, cancel);
  }

 private:
  http::ClientRequest post(std::string path, std::string body, const CallLimits& limits) const {
    http::ClientRequest req;
    req.method = "POST";
    req.url = settings_.base_url + path;
    req.headers.emplace_back("Content-Type", "application/json");
    if (!settings_.api_key.empty()) {
      req.headers.emplace_back("Authorization", "Bearer " + settings_.api_key);
    }
    for (const auto& h : settings_.headers) req.headers.push_back(h);
    req.body = std::move(body);
    req.connect_timeout = limits.connect_timeout;
    req.total_timeout = limits.total_timeout;
    req.proxy = settings_.proxy;
    req.ca_file = settings_.ca_file;
    return req;
  }

  // Opens the call and waits for the head; an HTTP error status becomes the mapped Error.
  static Task<Result<std::unique_ptr<UpstreamCall>>> open(OpenAiProvider& self,
                                                          http::ClientRequest req,
                                                          const CallLimits& limits,
                                                          Cancellation& cancel,
                                                          http::Deadline first_byte) {
    if (cancel.requested()) co_return interrupted(Error::cancelled(""), cancel);
    auto transfer = co_await self.client_.start(std::move(req));
    auto call = std::make_unique<UpstreamCall>(std::move(transfer), cancel);
    auto status = co_await call->transfer().head(first_byte);
    if (!status) co_return interrupted(status.error(), cancel);
    if (*status >= 300) {
      auto body = co_await call->transfer().read_all(first_byte, kMaxErrorBytes);
      co_return upstream_http_error(self.settings_.name, *status, body ? *body : std::string(),
                                    call->transfer());
    }
    (void)limits;
    co_return call;
  }

  static Task<Result<void>> run_chat(OpenAiProvider& self, const ChatRequest& request,
                                     const CallLimits& limits, Cancellation& cancel,
                                     const DeltaSink* sink, Completion& out) {
    const auto started = std::chrono::steady_clock::now();
    const auto call_end = started + limits.total_timeout;
    const bool stream = sink != nullptr;
    std::string body =
        openai_wire::request_body(request, stream, self.settings_.stream_usage).dump(
            -1, ' ', false, json::error_handler_t::replace);
    auto opened = co_await open(self, self.post("/chat/completions", std::move(body), limits),
                                limits, cancel, next_deadline(limits.first_token_timeout, call_end));
    if (!opened) co_return std::move(opened).error();
    auto& transfer = (*opened)->transfer();

    if (!stream) {
      auto all =
          co_await transfer.read_all(next_deadline(limits.first_token_timeout, call_end),
                                     kMaxResponseBytes);
      if (!all) co_return interrupted(all.error(), cancel);
      co_return openai_wire::parse_completion(*all, out);
    }

    SseParser parser;
    std::vector<SseEvent> events;
    std::string chunk;
    bool done = false;
    while (!done) {
      chunk.clear();
      const auto wait = out.deltas == 0 ? limits.first_token_timeout : limits.stall_timeout;
      auto more = co_await transfer.read(chunk, next_deadline(wait, call_end));
      if (!more) co_return interrupted(more.error(), cancel);
      events.clear();
      if (auto fed = parser.feed(chunk, events); !fed) co_return fed.error();
      for (const auto& event : events) {
        Delta delta;
        auto parsed = openai_wire::parse_chunk(event.data, out, delta);
        if (!parsed) co_return parsed.error();
        if (*parsed) {
          done = true;
          break;
        }
        if (delta.content.empty() && delta.tool_calls.empty()) continue;
        ++out.deltas;
        const bool keep_going = co_await (*sink)(delta);
        if (!keep_going) {
          transfer.cancel();
          co_return Error::cancelled("the client stopped reading");
        }
      }
      if (!*more && !done) {
        // The body ended without "[DONE]". Servers that finish the reply (a finish_reason
        // came) but skip the marker are tolerated; anything else was cut off.
        if (!out.finish_reason.empty()) break;
        co_return Error::bad_gateway(
            "provider '" + self.settings_.name + "' ended the stream before the reply was complete",
            "upstream_stream_cut");
      }
    }
    if (out.finish_reason.empty()) out.finish_reason = finish::kStop;
    co_return success();
  }

  static Task<Result<Embeddings>> run_embed(OpenAiProvider& self, const EmbeddingRequest& request,
                                            const CallLimits& limits, Cancellation& cancel) {
    const auto call_end = std::chrono::steady_clock::now() + limits.total_timeout;
    json body = request.extra.is_object() ? request.extra : json::object();
    body["model"] = request.model;
    body["input"] = request.inputs;
    body["encoding_format"] = "float";
    if (!request.user.empty()) body["user"] = request.user;
    auto opened = co_await open(
        self, self.post("/embeddings", body.dump(-1, ' ', false, json::error_handler_t::replace), limits),
        limits, cancel, next_deadline(limits.first_token_timeout, call_end));
    if (!opened) co_return std::move(opened).error();
    auto all = co_await (*opened)->transfer().read_all(
        next_deadline(limits.first_token_timeout, call_end), kMaxResponseBytes);
    if (!all) co_return interrupted(all.error(), cancel);
    auto parsed = json::parse(*all, nullptr, false);
    auto bad = [&] {
      return Error::bad_gateway("provider '" + self.settings_.name + "' sent an embeddings response that is not the expected JSON",
                                "upstream_malformed");
    };
    if (!parsed.is_object() || !parsed.contains("data") || !parsed["data"].is_array()) co_return bad();
    Embeddings result;
    result.model = string_or_empty(parsed, "model");
    if (result.model.empty()) result.model = request.model;
    result.vectors.resize(request.inputs.size());
    for (const auto& item : parsed["data"]) {
      if (!item.is_object() || !item.contains("embedding") || !item["embedding"].is_array()) co_return bad();
      size_t index = item.value("index", size_t{0});
      if (index >= result.vectors.size()) co_return bad();
      auto& vec = result.vectors[index];
      vec.reserve(item["embedding"].size());
      for (const auto& x : item["embedding"]) {
        if (!x.is_number()) co_return bad();
        vec.push_back(x.get<float>());
      }
    }
    if (parsed.contains("usage")) read_usage(parsed["usage"], result.usage);
    result.usage.output_tokens = 0;
    co_return result;
  }

  ProviderSettings settings_;
  http::HttpClient& client_;
};

}  // namespace

namespace openai_wire {

json request_body(const ChatRequest& request, bool stream, bool stream_usage) {
  json body = request.extra.is_object() ? request.extra : json::object();
  body["model"] = request.model;
  json messages = json::array();
  for (const auto& m : request.messages) {
    json msg = {{"role", m.role}};
    if (!m.parts.is_null()) {
      msg["content"] = m.parts;
    } else if (m.content.empty() && !m.tool_calls.empty()) {
      msg["content"] = nullptr;
    } else {
      msg["content"] = m.content;
    }
    if (!m.name.empty()) msg["name"] = m.name;
    if (!m.tool_call_id.empty()) msg["tool_call_id"] = m.tool_call_id;
    if (!m.tool_calls.empty()) {
      json calls = json::array();
      for (const auto& c : m.tool_calls) {
        calls.push_back({{"id", c.id},
                         {"type", "function"},
                         {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      }
      msg["tool_calls"] = std::move(calls);
    }
    messages.push_back(std::move(msg));
  }
  body["messages"] = std::move(messages);
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.top_p) body["top_p"] = *request.top_p;
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (!request.tools.is_null()) body["tools"] = request.tools;
  if (!request.tool_choice.is_null()) body["tool_choice"] = request.tool_choice;
  if (!request.user.empty()) body["user"] = request.user;
  body["stream"] = stream;
  if (stream && stream_usage) {
    body["stream_options"] = {{"include_usage", true}};
  } else {
    body.erase("stream_options");
  }
  return body;
}

Result<void> parse_completion(std::string_view text, Completion& out) {
  auto body = json::parse(text, nullptr, false);
  auto bad = [](const char* what) {
    return Error::bad_gateway(std::string("the provider's reply is not a chat completion: ") + what,
                              "upstream_malformed");
  };
  if (!body.is_object()) return bad("not a JSON object");
  if (body.contains("error") && !body["error"].is_null()) {
    return Error::bad_gateway("the provider answered with an error: " +
                                  body["error"].dump(-1, ' ', false, json::error_handler_t::replace),
                              "upstream_error");
  }
  out.id = string_or_empty(body, "id");
  out.model = string_or_empty(body, "model");
  auto choices = body.find("choices");
  if (choices == body.end() || !choices->is_array() || choices->empty()) return bad("no choices");
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return bad("a choice is not an object");
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) return bad("no message");
  out.content = string_or_empty(*message, "content");
  if (auto calls = message->find("tool_calls"); calls != message->end() && calls->is_array()) {
    for (const auto& c : *calls) {
      if (!c.is_object()) continue;
      ToolCall call;
      call.id = string_or_empty(c, "id");
      if (auto fn = c.find("function"); fn != c.end() && fn->is_object()) {
        call.name = string_or_empty(*fn, "name");
        call.arguments = string_or_empty(*fn, "arguments");
      }
      out.tool_calls.push_back(std::move(call));
    }
  }
  out.finish_reason = string_or_empty(choice, "finish_reason");
  if (out.finish_reason.empty()) out.finish_reason = finish::kStop;
  if (auto usage = body.find("usage"); usage != body.end()) read_usage(*usage, out.usage);
  return success();
}

Result<bool> parse_chunk(std::string_view data, Completion& out, Delta& delta) {
  if (data == "[DONE]") return true;
  auto chunk = json::parse(data, nullptr, false);
  if (!chunk.is_object()) {
    return Error::bad_gateway("the provider's stream carried an event that is not JSON",
                              "upstream_malformed");
  }
  if (auto err = chunk.find("error"); err != chunk.end() && !err->is_null()) {
    std::string message = err->is_object() ? string_or_empty(*err, "message") : std::string();
    return Error::bad_gateway(
        "the provider's stream ended with an error" + (message.empty() ? "" : ": " + message),
        "upstream_stream_error");
  }
  if (out.id.empty()) out.id = string_or_empty(chunk, "id");
  if (out.model.empty()) out.model = string_or_empty(chunk, "model");
  if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
    read_usage(*usage, out.usage);
  }
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return false;
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return false;
  if (auto fr = choice.find("finish_reason"); fr != choice.end() && fr->is_string()) {
    out.finish_reason = fr->get<std::string>();
  }
  auto d = choice.find("delta");
  if (d == choice.end() || !d->is_object()) return false;
  if (auto content = d->find("content"); content != d->end() && content->is_string()) {
    delta.content = content->get<std::string>();
    out.content += delta.content;
  }
  if (auto calls = d->find("tool_calls"); calls != d->end() && calls->is_array()) {
    for (const auto& c : *calls) {
      if (!c.is_object()) continue;
      ToolCallDelta td;
      td.index = c.value("index", 0);
      if (td.index < 0 || td.index > 127) {
        return Error::bad_gateway("the provider's stream has a tool call index out of range",
                                  "upstream_malformed");
      }
      td.id = string_or_empty(c, "id");
      if (auto fn = c.find("function"); fn != c.end() && fn->is_object()) {
        td.name = string_or_empty(*fn, "name");
        td.arguments = string_or_empty(*fn, "arguments");
      }
      if (out.tool_calls.size() <= static_cast<size_t>(td.index)) {
        out.tool_calls.resize(static_cast<size_t>(td.index) + 1);
      }
      auto& call = out.tool_calls[static_cast<size_t>(td.index)];
      if (!td.id.empty()) call.id = td.id;
      call.name += td.name;
      call.arguments += td.arguments;
      delta.tool_calls.push_back(std::move(td));
    }
  }
  return false;
}

}  // namespace openai_wire

std::unique_ptr<Provider> make_openai_provider(ProviderSettings settings, http::HttpClient& client) {
  return std::make_unique<OpenAiProvider>(std::move(settings), client);
}

}  // namespace parley::llm
