// OpenAI-compatible provider: request building, response and stream parsing, the call.
#include "llm/openai/openai_provider.hpp"

#include <algorithm>

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

class OpenAiProvider final : public Provider {
 public:
  OpenAiProvider(ProviderSettings settings, http::HttpClient& client)
      : settings_(std::move(settings)), client_(client) {}

  const std::string& name() const override { return settings_.name; }
  const char* type() const override { return "openai"; }
  const std::vector<std::string>& models() const override { return settings_.models; }
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

  bool supports_moderation() const override { return true; }
  Task<Result<Moderations>> moderate(const ModerationRequest& request, const CallLimits& limits,
                                     Cancellation& cancel) override {
    return run_moderate(*this, request, limits, cancel);
  }

 private:
  http::ClientRequest post(const std::string& path, std::string body,
                           const CallLimits& limits) const {
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
    if (!transfer) co_return std::move(transfer).error();
    auto call = std::make_unique<UpstreamCall>(std::move(*transfer), cancel);
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
    auto upstream =
        self.post("/chat/completions",
                  openai_wire::request_text(request, stream, self.settings_.stream_usage), limits);
    // Unstreamed, the whole reply is the "first token": curl's own timeout bounds it, and the
    // waits below need no timer of their own (arming one per wait is a system call).
    http::Deadline first_byte = next_deadline(limits.first_token_timeout, call_end);
    if (!stream) {
      upstream.total_timeout = std::min(limits.total_timeout, limits.first_token_timeout);
      first_byte = http::Deadline::max();
    }
    auto opened = co_await open(self, std::move(upstream), limits, cancel, first_byte);
    if (!opened) co_return std::move(opened).error();
    auto& transfer = (*opened)->transfer();

    if (!stream) {
      auto all = co_await transfer.read_all(first_byte, kMaxResponseBytes);
      if (!all) co_return interrupted(all.error(), cancel);
      auto parsed = openai_wire::parse_completion(*all, out);
      if (parsed) out.raw_openai = std::move(*all);
      co_return parsed;
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
        // An empty delta is passed on once, as the stream's start: the client's response can
        // begin as soon as the upstream's has (its first token may be seconds away).
        if (delta.content.empty() && delta.tool_calls.empty() && out.deltas > 0) continue;
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
        self,
        self.post("/embeddings", body.dump(-1, ' ', false, json::error_handler_t::replace), limits),
        limits, cancel, next_deadline(limits.first_token_timeout, call_end));
    if (!opened) co_return std::move(opened).error();
    auto all = co_await (*opened)->transfer().read_all(
        next_deadline(limits.first_token_timeout, call_end), kMaxResponseBytes);
    if (!all) co_return interrupted(all.error(), cancel);
    auto parsed = json::parse(*all, nullptr, false);
    auto bad = [&] {
      return Error::bad_gateway("provider '" + self.settings_.name +
                                    "' sent an embeddings response that is not the expected JSON",
                                "upstream_malformed");
    };
    if (!parsed.is_object() || !parsed.contains("data") || !parsed["data"].is_array())
      co_return bad();
    Embeddings result;
    result.model = string_or_empty(parsed, "model");
    if (result.model.empty()) result.model = request.model;
    result.vectors.resize(request.inputs.size());
    for (const auto& item : parsed["data"]) {
      if (!item.is_object() || !item.contains("embedding") || !item["embedding"].is_array())
        co_return bad();
      auto index_field = item.find("index");
      if (index_field == item.end() || !index_field->is_number_unsigned()) co_return bad();
      const auto index = index_field->get<uint64_t>();
      if (index >= result.vectors.size()) co_return bad();
      auto& vec = result.vectors[index];
      vec.reserve(item["embedding"].size());
      for (const auto& x : item["embedding"]) {
        if (!x.is_number()) co_return bad();
        vec.push_back(x.get<float>());
      }
    }
    if (parsed.contains("usage")) openai_wire::read_usage(parsed["usage"], result.usage);
    result.usage.output_tokens = 0;
    co_return result;
  }

  static Task<Result<Moderations>> run_moderate(OpenAiProvider& self,
                                                const ModerationRequest& request,
                                                const CallLimits& limits, Cancellation& cancel) {
    const auto call_end = std::chrono::steady_clock::now() + limits.total_timeout;
    json body = json::object();
    if (!request.model.empty()) body["model"] = request.model;
    body["input"] = request.inputs;
    auto opened =
        co_await open(self,
                      self.post("/moderations",
                                body.dump(-1, ' ', false, json::error_handler_t::replace), limits),
                      limits, cancel, next_deadline(limits.first_token_timeout, call_end));
    if (!opened) co_return std::move(opened).error();
    auto all = co_await (*opened)->transfer().read_all(
        next_deadline(limits.first_token_timeout, call_end), kMaxResponseBytes);
    if (!all) co_return interrupted(all.error(), cancel);
    auto parsed = openai_wire::parse_moderations(*all, request.inputs.size());
    if (!parsed) {
      Error e = std::move(parsed).error();
      e.message = "provider '" + self.settings_.name + "': " + e.message;
      co_return e;
    }
    if (parsed->model.empty()) parsed->model = request.model;
    co_return std::move(*parsed);
  }

  ProviderSettings settings_;
  http::HttpClient& client_;
};

}  // namespace

std::unique_ptr<Provider> make_openai_provider(ProviderSettings settings,
                                               http::HttpClient& client) {
  return std::make_unique<OpenAiProvider>(std::move(settings), client);
}

}  // namespace parley::llm
