// Anthropic Messages API provider: translation to and from Parley's types, and the call.
#include "llm/anthropic/anthropic_provider.hpp"

#include <nlohmann/json.hpp>

#include "llm/sse.hpp"

namespace parley::llm {
namespace {

using nlohmann::json;

constexpr size_t kMaxResponseBytes = size_t{32} << 20;
constexpr size_t kMaxErrorBytes = size_t{64} << 10;

class AnthropicProvider final : public Provider {
 public:
  AnthropicProvider(ProviderSettings settings, http::HttpClient& client)
      : settings_(std::move(settings)), client_(client) {}

  const std::string& name() const override { return settings_.name; }
  const char* type() const override { return "anthropic"; }
  const std::vector<std::string>& models() const override { return settings_.models; }
  const std::string& default_model() const override { return settings_.default_model; }

  Task<Result<void>> chat(const ChatRequest& request, const CallLimits& limits,
                          Cancellation& cancel, const DeltaSink* sink, Completion& out) override {
    return run_chat(*this, request, limits, cancel, sink, out);
  }

 private:
  static Task<Result<void>> run_chat(AnthropicProvider& self, const ChatRequest& request,
                                     const CallLimits& limits, Cancellation& cancel,
                                     const DeltaSink* sink, Completion& out) {
    if (cancel.requested()) co_return interrupted(Error::cancelled(""), cancel);
    const auto call_end = std::chrono::steady_clock::now() + limits.total_timeout;
    const bool stream = sink != nullptr;
    http::ClientRequest req;
    req.method = "POST";
    req.url = self.settings_.base_url + "/v1/messages";
    req.headers = {{"Content-Type", "application/json"}, {"anthropic-version", "2023-06-01"}};
    if (!self.settings_.api_key.empty())
      req.headers.emplace_back("x-api-key", self.settings_.api_key);
    for (const auto& h : self.settings_.headers) req.headers.push_back(h);
    req.body = anthropic_wire::request_body(request, stream, self.settings_.default_max_tokens)
                   .dump(-1, ' ', false, json::error_handler_t::replace);
    req.connect_timeout = limits.connect_timeout;
    req.total_timeout = limits.total_timeout;
    req.proxy = self.settings_.proxy;
    req.ca_file = self.settings_.ca_file;

    auto transfer_ptr = co_await self.client_.start(std::move(req));
    if (!transfer_ptr) co_return std::move(transfer_ptr).error();
    UpstreamCall call(std::move(*transfer_ptr), cancel);
    auto& transfer = call.transfer();
    const auto first_byte = next_deadline(limits.first_token_timeout, call_end);
    auto status = co_await transfer.head(first_byte);
    if (!status) co_return interrupted(status.error(), cancel);
    if (*status >= 300) {
      auto body = co_await transfer.read_all(first_byte, kMaxErrorBytes);
      co_return upstream_http_error(self.settings_.name, *status, body ? *body : std::string(),
                                    transfer);
    }
    if (!stream) {
      auto all = co_await transfer.read_all(first_byte, kMaxResponseBytes);
      if (!all) co_return interrupted(all.error(), cancel);
      co_return anthropic_wire::parse_message(*all, out);
    }

    SseParser parser;
    std::vector<SseEvent> events;
    anthropic_wire::StreamState state;
    std::string chunk;
    while (!state.stopped) {
      chunk.clear();
      const auto wait = out.deltas == 0 ? limits.first_token_timeout : limits.stall_timeout;
      auto more = co_await transfer.read(chunk, next_deadline(wait, call_end));
      if (!more) co_return interrupted(more.error(), cancel);
      events.clear();
      if (auto fed = parser.feed(chunk, events); !fed) co_return fed.error();
      for (const auto& event : events) {
        Delta delta;
        auto parsed = anthropic_wire::parse_event(event.event, event.data, state, out, delta);
        if (!parsed) co_return parsed.error();
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
      if (!*more && !state.stopped) {
        co_return Error::bad_gateway(
            "provider '" + self.settings_.name + "' ended the stream before message_stop",
            "upstream_stream_cut");
      }
    }
    if (out.finish_reason.empty()) out.finish_reason = finish::kStop;
    co_return success();
  }

  ProviderSettings settings_;
  http::HttpClient& client_;
};

}  // namespace

std::unique_ptr<Provider> make_anthropic_provider(ProviderSettings settings,
                                                  http::HttpClient& client) {
  return std::make_unique<AnthropicProvider>(std::move(settings), client);
}

}  // namespace parley::llm
