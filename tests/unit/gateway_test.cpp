// The providers and the gateway against the fake upstream, over real HTTP on loopback: both wire
// formats, streams cut at arbitrary byte boundaries, retries with back-off and Retry-After,
// fallbacks, the circuit breaker, no retry once a token reached the client, stalls, and
// cancellation that reaches the upstream. Upstream calls are counted, not assumed.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http/client.hpp"
#include "llm/anthropic/anthropic_provider.hpp"
#include "llm/builtin/builtin_provider.hpp"
#include "llm/gateway.hpp"
#include "llm/openai/openai_provider.hpp"
#include "support/fake_upstream.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using parley::ErrorCode;
using parley::Result;
using parley::Task;
using parley::llm::ChatRequest;
using parley::llm::Delta;
using parley::llm::DeltaSink;
using parley::llm::Gateway;
using parley::llm::GatewayOptions;
using parley::llm::GatewayResult;
using parley::llm::ProviderSettings;
using parley::llm::Route;
using parley::testing::FakeReply;
using parley::testing::FakeUpstream;

struct Outcome {
  Result<void> result;
  GatewayResult out;
  std::string streamed;  // what the sink received
};

class GatewayTest : public ::testing::Test {
 protected:
  GatewayTest() : client_(context_) {}

  // A gateway with an OpenAI-type provider "primary" and an Anthropic-type "backup", both on
  // the fake; routes "main" (primary) and "resilient" (primary, then backup).
  std::unique_ptr<Gateway> make_gateway(GatewayOptions options = fast_options()) {
    ProviderSettings primary;
    primary.name = "primary";
    primary.type = "openai";
    primary.base_url = upstream_.base_url() + "/v1";
    primary.api_key = "sk-test-primary";
    primary.models = {"gpt-fake"};
    primary.default_model = "gpt-fake";
    ProviderSettings backup;
    backup.name = "backup";
    backup.type = "anthropic";
    backup.base_url = upstream_.base_url();
    backup.api_key = "sk-ant-test";
    backup.models = {"claude-fake"};
    backup.default_model = "claude-fake";
    std::vector<std::unique_ptr<parley::llm::Provider>> providers;
    providers.push_back(parley::llm::make_openai_provider(primary, client_));
    providers.push_back(parley::llm::make_anthropic_provider(backup, client_));
    providers.push_back(parley::llm::make_builtin_provider("builtin"));
    auto* p = providers[0].get();
    auto* b = providers[1].get();
    std::map<std::string, Route> routes;
    routes["main"] = Route{"main", {{p, "gpt-fake"}}};
    routes["resilient"] = Route{"resilient", {{p, "gpt-fake"}, {b, "claude-fake"}}};
    return std::make_unique<Gateway>(std::move(providers), std::move(routes), "main", options);
  }

  static GatewayOptions fast_options() {
    GatewayOptions o;
    o.backoff_base = 1ms;
    o.backoff_max = 5ms;
    o.limits.first_token_timeout = 2s;
    o.limits.stall_timeout = 2s;
    o.limits.total_timeout = 10s;
    return o;
  }

  static ChatRequest hello() {
    ChatRequest r;
    r.messages = {{"system", "Be brief.", nullptr, {}, {}, {}},
                  {"user", "Hi!", nullptr, {}, {}, {}}};
    return r;
  }

  Outcome chat(Gateway& gateway, const std::string& model, bool stream,
               std::chrono::milliseconds cancel_after = 0ms) {
    Outcome o{parley::success(), {}, {}};
    auto route = gateway.resolve(model);
    EXPECT_TRUE(route.ok());
    if (!route) return o;
    parley::llm::Cancellation cancel;
    asio::steady_timer timer(context_);
    if (cancel_after.count() > 0) {
      timer.expires_after(cancel_after);
      timer.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) cancel.request(parley::llm::finish::kCancelled);
      });
    }
    DeltaSink sink = [&o](const Delta& d) -> Task<bool> {
      o.streamed += d.content;
      co_return true;
    };
    bool done = false;
    asio::co_spawn(
        context_,
        [&]() -> Task<void> {
          const auto* to = stream ? &sink : nullptr;
          o.result = co_await gateway.chat(*route, hello(), cancel, to, o.out);
          done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    while (!done) {
      if (context_.stopped()) context_.restart();
      context_.run_one();
    }
    timer.cancel();
    return o;
  }

  FakeUpstream upstream_;
  asio::io_context context_;
  parley::http::HttpClient client_;
};

TEST_F(GatewayTest, OpenAiCompletionWithUsage) {
  auto gateway = make_gateway();
  auto o = chat(*gateway, "main", false);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(o.out.completion.content, "Hello from the fake upstream.");
  EXPECT_EQ(o.out.completion.finish_reason, "stop");
  EXPECT_TRUE(o.out.completion.usage.reported);
  EXPECT_EQ(o.out.completion.usage.input_tokens, 11);
  EXPECT_EQ(o.out.completion.usage.output_tokens, 6);
  ASSERT_EQ(upstream_.calls(), 1);
  auto sent = upstream_.requests()[0];
  EXPECT_EQ(sent.path, "/v1/chat/completions");
  EXPECT_EQ(sent.header("authorization"), "Bearer sk-test-primary");
  EXPECT_EQ(sent.json["model"], "gpt-fake");
  EXPECT_EQ(sent.json["stream"], false);
  EXPECT_EQ(sent.json["messages"][1]["content"], "Hi!");
}

TEST_F(GatewayTest, OpenAiStreamCutAtArbitraryBytesWithKeepAlives) {
  auto gateway = make_gateway();
  auto events = FakeUpstream::openai_stream({"Hel", "lo, ", "wor", "ld"});
  events.insert(events.begin() + 1, ": keep-alive\n\n");
  for (size_t size : {1u, 3u, 7u, 64u}) {
    SCOPED_TRACE(size);
    FakeReply r;
    r.content_type = "text/event-stream";
    r.pieces = FakeUpstream::resplit(events, size);
    upstream_.enqueue(r);
    auto o = chat(*gateway, "main", true);
    ASSERT_TRUE(o.result.ok()) << o.result.error().message;
    EXPECT_EQ(o.streamed, "Hello, world");
    EXPECT_EQ(o.out.completion.content, "Hello, world");
    EXPECT_EQ(o.out.completion.usage.output_tokens, 6);
    EXPECT_GT(o.out.time_to_first_token, 0);
  }
  auto sent = upstream_.requests().back();
  EXPECT_EQ(sent.json["stream"], true);
  EXPECT_EQ(sent.json["stream_options"]["include_usage"], true);
}

TEST_F(GatewayTest, AnthropicStreamAndSystemPrompt) {
  auto gateway = make_gateway();
  auto o = chat(*gateway, "backup/claude-fake", true);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(o.streamed, "Hello from the fake upstream.");
  EXPECT_EQ(o.out.completion.usage.input_tokens, 11);
  EXPECT_EQ(o.out.completion.usage.output_tokens, 6);
  auto sent = upstream_.requests().back();
  EXPECT_EQ(sent.path, "/v1/messages");
  EXPECT_EQ(sent.header("x-api-key"), "sk-ant-test");
  EXPECT_EQ(sent.header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(sent.json["system"], "Be brief.");
  EXPECT_EQ(sent.json["messages"].size(), 1u);
}

TEST_F(GatewayTest, ServerErrorIsRetriedThenSucceeds) {
  auto gateway = make_gateway();
  upstream_.enqueue(FakeUpstream::error_reply(500, "boom"));
  upstream_.enqueue(FakeUpstream::error_reply(502, "bad gateway"));
  auto o = chat(*gateway, "main", false);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(upstream_.calls(), 3);
  ASSERT_EQ(o.out.attempts.size(), 3u);
  EXPECT_EQ(o.out.attempts[0].outcome, "upstream_error");
  EXPECT_EQ(o.out.attempts[2].outcome, "ok");
}

TEST_F(GatewayTest, RetryAfterIsHonoured) {
  auto gateway = make_gateway();
  upstream_.enqueue(FakeUpstream::error_reply(429, "slow down", {{"Retry-After", "1"}}));
  auto o = chat(*gateway, "main", false);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(upstream_.calls(), 2);
  EXPECT_EQ(o.out.attempts[0].outcome, "upstream_rate_limited");
  // The back-off alone would be a few milliseconds; the upstream asked for a second.
  EXPECT_GE(o.out.duration, 0.95);
}

TEST_F(GatewayTest, RetriesExhaustedFallBackToTheNextTarget) {
  auto gateway = make_gateway();
  for (int i = 0; i < 3; ++i) upstream_.enqueue(FakeUpstream::error_reply(503, "overloaded"));
  auto o = chat(*gateway, "resilient", false);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(upstream_.calls(), 4);  // 1 try + 2 retries at primary, then backup
  EXPECT_EQ(o.out.provider, "backup");
  EXPECT_EQ(o.out.completion.content, "Hello from the fake upstream.");
  EXPECT_EQ(upstream_.requests().back().path, "/v1/messages");
}

TEST_F(GatewayTest, RejectedRequestIsNotRetriedAnywhere) {
  auto gateway = make_gateway();
  upstream_.enqueue(FakeUpstream::error_reply(400, "context too long"));
  auto o = chat(*gateway, "resilient", false);
  ASSERT_FALSE(o.result.ok());
  EXPECT_EQ(o.result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(o.result.error().message.find("context too long"), std::string::npos);
  EXPECT_EQ(upstream_.calls(), 1);
}

TEST_F(GatewayTest, RefusedCredentialsFallBackAndEndAsBadGateway) {
  auto gateway = make_gateway();
  upstream_.enqueue(FakeUpstream::error_reply(401, "bad key"));
  auto o = chat(*gateway, "main", false);
  ASSERT_FALSE(o.result.ok());
  EXPECT_EQ(o.result.error().code, ErrorCode::kBadGateway);  // not the client's 403
  EXPECT_EQ(upstream_.calls(), 1);                           // not retried
}

TEST_F(GatewayTest, NoRetryOnceATokenReachedTheClient) {
  auto gateway = make_gateway();
  FakeReply r;
  r.content_type = "text/event-stream";
  auto events = FakeUpstream::openai_stream({"Partial"}, false, false);
  r.pieces = {events[0], events[1], "data: {\"error\":{\"message\":\"model crashed\"}}\n\n"};
  upstream_.enqueue(r);
  auto o = chat(*gateway, "resilient", true);
  ASSERT_FALSE(o.result.ok());
  EXPECT_EQ(o.result.error().reason, "upstream_stream_error");
  EXPECT_EQ(upstream_.calls(), 1);
  EXPECT_EQ(o.streamed, "Partial");
  EXPECT_EQ(o.out.completion.content, "Partial");  // kept for storing as partial
}

TEST_F(GatewayTest, StallMidStreamEndsWithTimeoutAndKeepsThePartialReply) {
  auto options = fast_options();
  options.limits.stall_timeout = 200ms;
  auto gateway = make_gateway(options);
  FakeReply r;
  r.content_type = "text/event-stream";
  auto events = FakeUpstream::openai_stream({"Half"}, false, false);
  r.pieces = {events[0], events[1]};
  r.stall = true;
  upstream_.enqueue(r);
  auto o = chat(*gateway, "main", true);
  ASSERT_FALSE(o.result.ok());
  EXPECT_EQ(o.result.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(o.out.completion.content, "Half");
  EXPECT_EQ(upstream_.calls(), 1);
}

TEST_F(GatewayTest, TotalTimeoutEndsAStreamThatNeverStalls) {
  auto options = fast_options();
  options.limits.total_timeout = 400ms;  // events every 100 ms: never a stall, but endless
  options.max_retries = 0;
  auto gateway = make_gateway(options);
  FakeReply r;
  r.content_type = "text/event-stream";
  std::vector<std::string> words(40, "word ");
  r.pieces = FakeUpstream::openai_stream(words, false, true);
  r.delay_between_pieces = 100ms;
  upstream_.enqueue(r);
  const auto started = std::chrono::steady_clock::now();
  auto o = chat(*gateway, "main", true);
  ASSERT_FALSE(o.result.ok());
  EXPECT_EQ(o.result.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_FALSE(o.streamed.empty()) << "what came before the deadline reached the client";
}

TEST_F(GatewayTest, SlowFirstTokenIsRetried) {
  auto options = fast_options();
  options.limits.first_token_timeout = 150ms;
  auto gateway = make_gateway(options);
  FakeReply slow;
  slow.delay_before_head = 1s;
  slow.body = FakeUpstream::openai_completion("too late");
  upstream_.enqueue(slow);
  auto o = chat(*gateway, "main", false);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(o.out.attempts[0].outcome, "upstream_timeout");
  EXPECT_EQ(o.out.completion.content, "Hello from the fake upstream.");
}

TEST_F(GatewayTest, CircuitOpensAfterConsecutiveFailuresThenProbes) {
  auto options = fast_options();
  options.max_retries = 0;
  options.breaker_failures = 2;
  options.breaker_cooldown = 300ms;
  auto gateway = make_gateway(options);
  upstream_.enqueue(FakeUpstream::error_reply(500, "down"));
  upstream_.enqueue(FakeUpstream::error_reply(500, "down"));
  EXPECT_FALSE(chat(*gateway, "main", false).result.ok());
  EXPECT_FALSE(chat(*gateway, "main", false).result.ok());
  ASSERT_EQ(upstream_.calls(), 2);
  auto open = chat(*gateway, "main", false);
  ASSERT_FALSE(open.result.ok());
  EXPECT_EQ(open.result.error().reason, "circuit_open");
  EXPECT_EQ(upstream_.calls(), 2) << "an open circuit must not call the upstream";
  ASSERT_EQ(gateway->breakers().size(), 1u);
  EXPECT_EQ(gateway->breakers()[0].state, parley::llm::CircuitBreaker::State::kOpen);
  std::this_thread::sleep_for(350ms);
  auto probe = chat(*gateway, "main", false);
  ASSERT_TRUE(probe.result.ok()) << probe.result.error().message;
  EXPECT_EQ(upstream_.calls(), 3);
  EXPECT_EQ(gateway->breakers()[0].state, parley::llm::CircuitBreaker::State::kClosed);
}

TEST_F(GatewayTest, CancellationAbortsTheUpstreamRequestPromptly) {
  auto gateway = make_gateway();
  FakeReply r;
  r.content_type = "text/event-stream";
  auto events = FakeUpstream::openai_stream({"Waiting"}, false, false);
  r.pieces = {events[0], events[1]};
  r.stall = true;
  upstream_.enqueue(r);
  const auto started = std::chrono::steady_clock::now();
  auto o = chat(*gateway, "main", true, 100ms);
  ASSERT_FALSE(o.result.ok());
  EXPECT_EQ(o.result.error().code, ErrorCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms);
  for (int i = 0; i < 200 && upstream_.client_disconnects() == 0; ++i)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(upstream_.client_disconnects(), 1);
  EXPECT_EQ(upstream_.calls(), 1);
}

TEST_F(GatewayTest, ModelNamesResolve) {
  auto gateway = make_gateway();
  auto route = gateway->resolve("resilient");
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->targets.size(), 2u);
  auto explicit_target = gateway->resolve("backup/claude-other");
  ASSERT_TRUE(explicit_target.ok());
  EXPECT_EQ(explicit_target->targets[0].provider->name(), "backup");
  EXPECT_EQ(explicit_target->targets[0].model, "claude-other");
  auto listed = gateway->resolve("claude-fake");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->targets[0].provider->name(), "backup");
  auto bare = gateway->resolve("meta-llama/Llama-3.3-70B");  // a slash, but no such provider
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->targets[0].provider->name(), "primary");
  EXPECT_EQ(bare->targets[0].model, "meta-llama/Llama-3.3-70B");
  auto def = gateway->resolve("");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->name, "main");
}

TEST_F(GatewayTest, BuiltinProviderStreamsItsExplanation) {
  auto gateway = make_gateway();
  auto o = chat(*gateway, "builtin/", true);
  ASSERT_TRUE(o.result.ok()) << o.result.error().message;
  EXPECT_EQ(o.streamed, parley::llm::builtin_reply());
  EXPECT_GT(o.out.completion.deltas, 10);
  EXPECT_NE(o.streamed.find("OPENAI_API_KEY"), std::string::npos);
  EXPECT_EQ(upstream_.calls(), 0);
}

TEST(ConnectTimeout, AnUpstreamThatNeverAcceptsIsUnreachableInTime) {
  // A listener whose accept queue is full: Linux drops further SYNs, so a connect hangs until
  // the client's own timeout.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  asio::io_context context;
  parley::http::HttpClient client(context);
  parley::http::ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  req.connect_timeout = 300ms;
  std::optional<parley::Error> error;
  bool done = false;
  const auto started = std::chrono::steady_clock::now();
  asio::co_spawn(
      context,
      [&]() -> Task<void> {
        auto transfer = co_await client.start(req);
        if (!transfer) {
          error = transfer.error();
          done = true;
          co_return;
        }
        auto status = co_await (*transfer)->head(std::chrono::steady_clock::now() + 10s);
        if (!status) error = status.error();
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  while (!done) {
    if (context.stopped()) context.restart();
    context.run_one();
  }
  const auto took = std::chrono::steady_clock::now() - started;
  for (int fd : fillers) ::close(fd);
  ::close(listener);
  ASSERT_TRUE(error.has_value());
  // curl reports a connect timeout as a timeout: retryable, like an unreachable host.
  EXPECT_TRUE(error->code == ErrorCode::kDeadlineExceeded || error->code == ErrorCode::kUnavailable)
      << error->message;
  EXPECT_LT(took, 3s);
  EXPECT_GE(took, 250ms);
}

TEST(RetryAfter, SecondsMillisecondsAndDates) {
  using parley::llm::parse_retry_after;
  EXPECT_EQ(parse_retry_after(std::string("2"), std::nullopt), 2000);
  EXPECT_EQ(parse_retry_after(std::string("0.5"), std::nullopt), 500);
  EXPECT_EQ(parse_retry_after(std::nullopt, std::string("250")), 250);
  EXPECT_EQ(parse_retry_after(std::string("soon"), std::nullopt), std::nullopt);
  EXPECT_EQ(parse_retry_after(std::string("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt), 0);
}

}  // namespace
