// The fake provider, served by Parley's own HTTP server (its streaming side is tested on its
// own in http_client_test.cpp).
#include "fake_upstream.hpp"

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/signal.hpp"
#include "core/sleep.hpp"
#include "http/router.hpp"
#include "loopback_server.hpp"

namespace parley::testing {

namespace asio = boost::asio;
using nlohmann::json;

std::string ReceivedRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (http::iequals(n, name)) return v;
  }
  return {};
}

struct FakeUpstream::Impl {
  mutable std::mutex mutex;
  std::deque<FakeReply> queue;
  // Used when nothing is queued, instead of the built-in healthy answers (benchmarks set a
  // slow stream here).
  std::optional<FakeReply> fallback;
  std::vector<ReceivedRequest> received;
  int disconnects = 0;
  int64_t calls = 0;

  std::optional<FakeReply> take(const std::string& path) {
    std::lock_guard lock(mutex);
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      if (it->path_suffix.empty() || (path.size() >= it->path_suffix.size() &&
                                      path.compare(path.size() - it->path_suffix.size(),
                                                   std::string::npos, it->path_suffix) == 0)) {
        FakeReply r = std::move(*it);
        queue.erase(it);
        return r;
      }
    }
    return fallback;
  }

  void record(const http::Request& req) {
    ReceivedRequest r;
    r.method = std::string(req.method_text);
    r.path = std::string(req.path);
    for (const auto& [n, v] : req.headers) r.headers.emplace_back(std::string(n), std::string(v));
    r.body = req.body;
    r.json = json::parse(req.body, nullptr, false);
    if (r.json.is_discarded()) r.json = nullptr;
    std::lock_guard lock(mutex);
    ++calls;
    // Bounded: a benchmark sends far more requests than any test reads back.
    if (received.size() < 10'000) received.push_back(std::move(r));
  }

  // Last: it stops first, while the handlers still find the state above.
  LoopbackServer host{"fake-upstream"};
};

namespace {

FakeReply default_reply(const std::string& path, const json& request) {
  const bool stream = request.is_object() && request.value("stream", false);
  const std::vector<std::string> pieces{"Hello", " from the", " fake upstream."};
  FakeReply r;
  if (path.find("/messages") != std::string::npos) {
    if (stream) {
      r.pieces = FakeUpstream::anthropic_stream(pieces);
      r.content_type = "text/event-stream";
    } else {
      r.body = FakeUpstream::anthropic_message("Hello from the fake upstream.");
    }
    return r;
  }
  if (path.find("/embeddings") != std::string::npos) {
    json data = json::array();
    std::vector<std::string> inputs;
    if (request.is_object() && request.contains("input")) {
      const auto& in = request["input"];
      if (in.is_string()) inputs.push_back(in.get<std::string>());
      if (in.is_array()) {
        for (const auto& x : in) inputs.push_back(x.is_string() ? x.get<std::string>() : x.dump());
      }
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      // Deterministic: derived from the input's length and position.
      json vec = json::array();
      for (int d = 0; d < 4; ++d)
        vec.push_back(static_cast<double>(inputs[i].size() % 7 + d) / 8.0);
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", vec}});
    }
    r.body =
        json{{"object", "list"},
             {"data", data},
             {"model", request.is_object() ? request.value("model", "fake-embed") : "fake-embed"},
             {"usage", {{"prompt_tokens", 3 * inputs.size()}, {"total_tokens", 3 * inputs.size()}}}}
            .dump();
    return r;
  }
  if (path.find("/moderations") != std::string::npos) {
    // OpenAI's moderation format: "fake-violence" in an input flags violence,
    // "fake-threat" harassment/threatening; anything else is clean.
    std::vector<std::string> inputs;
    if (request.is_object() && request.contains("input")) {
      const auto& in = request["input"];
      if (in.is_string()) inputs.push_back(in.get<std::string>());
      if (in.is_array()) {
        for (const auto& x : in) inputs.push_back(x.is_string() ? x.get<std::string>() : x.dump());
      }
    }
    json results = json::array();
    for (const auto& text : inputs) {
      const bool violence = text.find("fake-violence") != std::string::npos;
      const bool threat = text.find("fake-threat") != std::string::npos;
      results.push_back({{"flagged", violence || threat},
                         {"categories",
                          {{"violence", violence},
                           {"harassment", false},
                           {"harassment/threatening", threat},
                           {"sexual", false},
                           {"illicit/violent", nullptr}}},
                         {"category_scores",
                          {{"violence", violence ? 0.97 : 0.001},
                           {"harassment", 0.002},
                           {"harassment/threatening", threat ? 0.91 : 0.001},
                           {"sexual", 0.0001}}}});
    }
    r.body = json{{"id", "modr-fake"},
                  {"model", request.is_object() ? request.value("model", "omni-moderation-latest")
                                                : "omni-moderation-latest"},
                  {"results", results}}
                 .dump();
    return r;
  }
  if (stream) {
    r.pieces = FakeUpstream::openai_stream(pieces, true, true);
    r.content_type = "text/event-stream";
  } else {
    r.body = FakeUpstream::openai_completion("Hello from the fake upstream.");
  }
  return r;
}

Task<http::Response> serve(FakeUpstream::Impl& upstream, http::Request& req) {
  FakeUpstream::Impl* impl = &upstream;
  impl->record(req);
  const std::string path(req.path);
  auto scripted = impl->take(path);
  FakeReply reply =
      scripted ? std::move(*scripted) : default_reply(path, json::parse(req.body, nullptr, false));
  co_await sleep_for(reply.delay_before_head);
  if (reply.pieces.empty() && !reply.stall) {
    http::Response res;
    res.status = reply.status;
    res.content_type = reply.content_type;
    for (const auto& h : reply.headers) res.header(h.first, h.second);
    res.body = reply.body;
    co_return res;
  }
  Signal gone(co_await asio::this_coro::executor);
  bool left = false;
  req.channel->watch([&] {
    left = true;
    gone.notify();
  });
  http::HeaderList headers(reply.headers.begin(), reply.headers.end());
  headers.emplace_back("Cache-Control", "no-cache");
  const bool started =
      co_await req.channel->begin_stream(reply.status, reply.content_type, headers);
  uint64_t bytes = 0;
  if (started) {
    for (size_t i = 0; i < reply.pieces.size() && !left; ++i) {
      if (i > 0) co_await sleep_for(reply.delay_between_pieces);
      const bool sent = co_await req.channel->write(reply.pieces[i]);
      if (!sent) break;
      bytes += reply.pieces[i].size();
    }
    if (reply.stall && !left)
      co_await gone.wait_until(std::chrono::steady_clock::now() + std::chrono::minutes(5));
  }
  if (left || req.channel->gone()) {
    std::lock_guard lock(impl->mutex);
    ++impl->disconnects;
  }
  co_return http::Response::streamed(reply.status, bytes);
}

}  // namespace

FakeUpstream::FakeUpstream(uint16_t port, bool control) : impl_(std::make_shared<Impl>()) {
  // The handlers live in impl's router: they hold a plain pointer (a shared one would be a
  // cycle, and impl outlives its server anyway).
  Impl* impl = impl_.get();
  auto handler = [impl](http::Request& req) { return serve(*impl, req); };
  for (const char* path : {"/v1/chat/completions", "/chat/completions", "/v1/messages",
                           "/v1/embeddings", "/embeddings", "/v1/moderations", "/moderations"}) {
    impl->host.router().add(http::Method::kPost, path, parley::http::kPublic, handler);
  }
  if (control) {
    impl->host.router().add(
        http::Method::kPost, "/_fake/replies", parley::http::kPublic,
        [impl](http::Request& req) -> Task<http::Response> {
          auto spec = json::parse(req.body, nullptr, false);
          if (!spec.is_object())
            co_return http::Response::json(400, {{"error", "not a JSON object"}});
          auto reply = reply_from_json(spec);
          std::lock_guard lock(impl->mutex);
          impl->queue.push_back(std::move(reply));
          co_return http::Response::json(200, {{"queued", impl->queue.size()}});
        });
    impl->host.router().add(
        http::Method::kGet, "/_fake/requests", parley::http::kPublic,
        [impl](http::Request&) -> Task<http::Response> {
          json out = json::array();
          std::lock_guard lock(impl->mutex);
          for (const auto& r : impl->received) {
            json headers = json::object();
            for (const auto& [n, v] : r.headers) headers[n] = v;
            out.push_back(
                {{"method", r.method}, {"path", r.path}, {"headers", headers}, {"body", r.json}});
          }
          co_return http::Response::json(200, {{"requests", out},
                                               {"calls", impl->calls},
                                               {"client_disconnects", impl->disconnects}});
        });
    impl->host.router().add(
        http::Method::kPost, "/_fake/default", parley::http::kPublic,
        [impl](http::Request& req) -> Task<http::Response> {
          auto spec = json::parse(req.body, nullptr, false);
          if (!spec.is_object())
            co_return http::Response::json(400, {{"error", "not a JSON object"}});
          std::lock_guard lock(impl->mutex);
          impl->fallback = reply_from_json(spec);
          co_return http::Response::empty(204);
        });
    impl->host.router().add(http::Method::kPost, "/_fake/reset", parley::http::kPublic,
                            [impl](http::Request&) -> Task<http::Response> {
                              std::lock_guard lock(impl->mutex);
                              impl->queue.clear();
                              impl->received.clear();
                              impl->disconnects = 0;
                              impl->calls = 0;
                              impl->fallback.reset();
                              co_return http::Response::empty(204);
                            });
  }
  port_ = impl->host.start(port);
}

FakeUpstream::~FakeUpstream() { impl_->host.stop(); }

std::string FakeUpstream::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FakeUpstream::enqueue(FakeReply reply) {
  std::lock_guard lock(impl_->mutex);
  impl_->queue.push_back(std::move(reply));
}

int FakeUpstream::calls() const {
  std::lock_guard lock(impl_->mutex);
  return static_cast<int>(impl_->calls);
}

std::vector<ReceivedRequest> FakeUpstream::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

int FakeUpstream::client_disconnects() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->disconnects;
}

void FakeUpstream::reset() {
  std::lock_guard lock(impl_->mutex);
  impl_->queue.clear();
  impl_->received.clear();
  impl_->disconnects = 0;
  impl_->calls = 0;
}

std::string FakeUpstream::openai_completion(const std::string& content, int prompt_tokens,
                                            int completion_tokens, const std::string& finish) {
  return json{{"id", "chatcmpl-fake"},
              {"object", "chat.completion"},
              {"created", 1700000000},
              {"model", "fake-model"},
              {"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", content}}},
                 {"finish_reason", finish}}}},
              {"usage",
               {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}}}}
      .dump();
}

std::vector<std::string> FakeUpstream::openai_stream(const std::vector<std::string>& pieces,
                                                     bool with_usage, bool with_done) {
  std::vector<std::string> events;
  auto chunk = [](json delta, json finish) {
    return "data: " +
           json{{"id", "chatcmpl-fake"},
                {"object", "chat.completion.chunk"},
                {"created", 1700000000},
                {"model", "fake-model"},
                {"choices",
                 {{{"index", 0},
                   {"delta", std::move(delta)},
                   {"finish_reason", std::move(finish)}}}}}
               .dump() +
           "\n\n";
  };
  events.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  for (const auto& p : pieces) events.push_back(chunk({{"content", p}}, nullptr));
  events.push_back(chunk(json::object(), "stop"));
  if (with_usage) {
    events.push_back(
        "data: " +
        json{{"id", "chatcmpl-fake"},
             {"object", "chat.completion.chunk"},
             {"model", "fake-model"},
             {"choices", json::array()},
             {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 6}, {"total_tokens", 17}}}}
            .dump() +
        "\n\n");
  }
  if (with_done) events.push_back("data: [DONE]\n\n");
  return events;
}

std::string FakeUpstream::anthropic_message(const std::string& content, int input_tokens,
                                            int output_tokens) {
  return json{{"id", "msg_fake"},
              {"type", "message"},
              {"role", "assistant"},
              {"model", "claude-fake"},
              {"content", {{{"type", "text"}, {"text", content}}}},
              {"stop_reason", "end_turn"},
              {"usage", {{"input_tokens", input_tokens}, {"output_tokens", output_tokens}}}}
      .dump();
}

std::vector<std::string> FakeUpstream::anthropic_stream(const std::vector<std::string>& pieces,
                                                        int input_tokens, int output_tokens) {
  std::vector<std::string> events;
  auto event = [&](const std::string& name, const json& data) {
    events.push_back("event: " + name + "\ndata: " + data.dump() + "\n\n");
  };
  event("message_start", {{"type", "message_start"},
                          {"message",
                           {{"id", "msg_fake"},
                            {"type", "message"},
                            {"role", "assistant"},
                            {"model", "claude-fake"},
                            {"content", json::array()},
                            {"usage", {{"input_tokens", input_tokens}, {"output_tokens", 1}}}}}});
  event("content_block_start", {{"type", "content_block_start"},
                                {"index", 0},
                                {"content_block", {{"type", "text"}, {"text", ""}}}});
  event("ping", {{"type", "ping"}});
  for (const auto& p : pieces) {
    event("content_block_delta", {{"type", "content_block_delta"},
                                  {"index", 0},
                                  {"delta", {{"type", "text_delta"}, {"text", p}}}});
  }
  event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
  event("message_delta", {{"type", "message_delta"},
                          {"delta", {{"stop_reason", "end_turn"}, {"stop_sequence", nullptr}}},
                          {"usage", {{"output_tokens", output_tokens}}}});
  event("message_stop", {{"type", "message_stop"}});
  return events;
}

FakeReply FakeUpstream::error_reply(int status, const std::string& message,
                                    std::vector<std::pair<std::string, std::string>> headers) {
  FakeReply r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = json{{"error", {{"message", message}, {"type", "fake_error"}}}}.dump();
  return r;
}

FakeReply FakeUpstream::reply_from_json(const json& spec) {
  FakeReply r;
  r.status = spec.value("status", 200);
  if (spec.contains("headers") && spec["headers"].is_object()) {
    for (const auto& [k, v] : spec["headers"].items())
      r.headers.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  r.content_type = spec.value("content_type", std::string("application/json"));
  if (spec.contains("body"))
    r.body = spec["body"].is_string() ? spec["body"].get<std::string>() : spec["body"].dump();
  if (spec.contains("pieces") && spec["pieces"].is_array()) {
    for (const auto& p : spec["pieces"]) r.pieces.push_back(p.get<std::string>());
  }
  std::vector<std::string> events;
  if (spec.contains("openai_stream")) {
    events = openai_stream(spec["openai_stream"].get<std::vector<std::string>>(),
                           spec.value("with_usage", true), spec.value("with_done", true));
  } else if (spec.contains("anthropic_stream")) {
    events = anthropic_stream(spec["anthropic_stream"].get<std::vector<std::string>>());
  }
  if (!events.empty()) {
    r.content_type = "text/event-stream";
    // One piece per event unless "split" cuts them at arbitrary bytes.
    r.pieces = spec.contains("split") ? resplit(events, spec.value("split", size_t{1})) : events;
  }
  r.delay_before_head = std::chrono::milliseconds(spec.value("delay_before_head_ms", 0));
  r.delay_between_pieces = std::chrono::milliseconds(spec.value("delay_between_pieces_ms", 0));
  r.stall = spec.value("stall", false);
  r.path_suffix = spec.value("path_suffix", std::string());
  return r;
}

std::vector<std::string> FakeUpstream::resplit(const std::vector<std::string>& events,
                                               size_t size) {
  std::string all;
  for (const auto& e : events) all += e;
  std::vector<std::string> out;
  for (size_t i = 0; i < all.size(); i += size) out.push_back(all.substr(i, size));
  return out;
}

}  // namespace parley::testing
