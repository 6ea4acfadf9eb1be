// Time is injected: code on the request path reads the Clock seam (core/clock.hpp), so a test
// moves time with a ManualClock (tests/support/manual_clock.hpp) instead of sleeping or waiting
// for midnight. Each test takes one time boundary in a single step:
//  - a daily USD budget spent at 23:59:30 UTC refuses the next model call (naming when it
//    resets), still refuses once the cached spend is re-read from the usage table, and admits
//    again just after 00:00 UTC (limits::Admission over a real SQLite usage table);
//  - a circuit breaker opened by two failures refuses calls without reaching the provider until
//    its 30 s cooldown has passed on the clock, then lets a probe through that closes it
//    (llm::Gateway over the fake upstream, which counts the calls it gets);
//  - an API key is accepted until the clock reaches its expiry and refused from then on
//    (auth::Authenticator, with now_ms taken from the clock).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "auth/authenticator.hpp"
#include "auth/key_admin.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "http/client.hpp"
#include "limits/admission.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "llm/gateway.hpp"
#include "llm/openai/openai_provider.hpp"
#include "run_on.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "support/fake_upstream.hpp"
#include "support/manual_clock.hpp"
#include "temp_dir.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using parley::ErrorCode;
using parley::ManualClock;
using parley::Result;
using parley::Task;
using parley::testing::FakeUpstream;
using parley::testing::TempDir;
using ::testing::HasSubstr;

using parley::testing::run_on;

std::unique_ptr<parley::store::Storage> open_storage(const TempDir& dir,
                                                     const parley::Clock& clock) {
  parley::store::sqlite::Options options;
  options.path = dir.path() + "/parley.db";
  options.read_connections = 2;
  options.clock = &clock;
  auto opened = parley::store::sqlite::open(options);
  if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
  return std::move(opened).value();
}

ManualClock::WallTime at_unix_ms(int64_t ms) {
  return ManualClock::WallTime(std::chrono::milliseconds(ms));
}

// --- Budgets at midnight -----------------------------------------------------------------

TEST(ClockSeams, DailyBudgetSpentBeforeMidnightIsAvailableAgainAfterIt) {
  TempDir dir{"parley-clock"};
  ManualClock clock(at_unix_ms(1'795'391'970'000));  // 2026-11-22T23:59:30Z
  auto storage = open_storage(dir, clock);
  parley::BlockingPool blocking(1);
  auto limiter = parley::limits::make_local_limiter();
  // Re-reads the table every 5 s.
  auto budgets = parley::limits::make_local_budgets(storage->usage(), blocking);
  parley::limits::Admission admission(*limiter, *budgets, clock, nullptr);
  asio::io_context context;

  parley::limits::Actor actor;
  actor.user_id = "alice";
  actor.key_id = "key_budget";
  actor.user_limits.usd_per_day = 1.0;

  // Nothing spent yet.
  auto first = run_on(context, admission.admit(actor, false));
  ASSERT_TRUE(first.ok()) << first.error().message;

  // The call cost 1.5 USD, recorded as a turn records it: a usage row, and the booking.
  parley::store::UsageRecord spent;
  spent.at_ms = clock.unix_ms();
  spent.user_id = actor.user_id;
  spent.key_id = actor.key_id;
  spent.source = "chat";
  spent.provider = "fake";
  spent.model = "gpt-fake";
  spent.cost_usd = 1.5;
  spent.status = "ok";
  ASSERT_TRUE(storage->usage().record({spent}).ok());
  admission.book(actor, 0, 1.5);

  auto refused = run_on(context, admission.admit(actor, false));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kTooManyRequests);
  EXPECT_EQ(refused.error().reason, "budget_exceeded");
  EXPECT_THAT(refused.error().message, HasSubstr("resets at 2026-11-23T00:00:00.000Z"));
  ASSERT_TRUE(refused.error().retry_after_ms.has_value());
  EXPECT_EQ(*refused.error().retry_after_ms, 30'000);

  // Past the cache's refresh, still before midnight: the spend is read back from the table.
  clock.advance(10s);
  auto still_refused = run_on(context, admission.admit(actor, false));
  ASSERT_FALSE(still_refused.ok());
  EXPECT_EQ(still_refused.error().reason, "budget_exceeded");

  // 2026-11-23T00:00:01Z: a new day, a new budget.
  clock.advance(21s);
  ASSERT_EQ(clock.unix_ms(), 1'795'392'001'000);
  auto admitted = run_on(context, admission.admit(actor, false));
  EXPECT_TRUE(admitted.ok()) << admitted.error().message;

  blocking.join();
  storage->close();
}

// --- Circuit breaker cooldown ------------------------------------------------------------

class BreakerClockTest : public ::testing::Test {
 protected:
  BreakerClockTest() : client_(context_) {
    parley::llm::ProviderSettings settings;
    settings.name = "fake";
    settings.type = "openai";
    settings.base_url = upstream_.base_url() + "/v1";
    settings.api_key = "sk-test";
    settings.models = {"gpt-fake"};
    settings.default_model = "gpt-fake";
    std::vector<std::unique_ptr<parley::llm::Provider>> providers;
    providers.push_back(parley::llm::make_openai_provider(settings, client_));
    parley::llm::Provider* provider = providers.front().get();
    std::map<std::string, parley::llm::Route> routes;
    routes["main"] = parley::llm::Route{"main", {{provider, "gpt-fake"}}};
    parley::llm::GatewayOptions options;
    options.max_retries = 0;
    options.breaker_failures = 2;
    options.breaker_cooldown = 30s;
    options.limits.first_token_timeout = 2s;
    options.limits.stall_timeout = 2s;
    options.limits.total_timeout = 10s;
    options.clock = &clock_;
    gateway_ = std::make_unique<parley::llm::Gateway>(std::move(providers), std::move(routes),
                                                      "main", options);
  }

  Result<void> call() {
    auto route = gateway_->resolve("main");
    if (!route) return std::move(route).error();
    parley::llm::ChatRequest request;
    parley::llm::Message hello;
    hello.role = "user";
    hello.content = "Hi!";
    request.messages.push_back(hello);
    parley::llm::Cancellation cancel;
    parley::llm::GatewayResult out;
    return run_on(context_, gateway_->chat(*route, request, cancel, nullptr, out));
  }

  parley::llm::CircuitBreaker::State state() const {
    auto breakers = gateway_->breakers();
    EXPECT_EQ(breakers.size(), 1u);
    return breakers.empty() ? parley::llm::CircuitBreaker::State::kClosed : breakers[0].state;
  }

  ManualClock clock_;
  FakeUpstream upstream_;
  asio::io_context context_;
  parley::http::HttpClient client_;
  std::unique_ptr<parley::llm::Gateway> gateway_;
};

TEST_F(BreakerClockTest, OpenCircuitProbesOnceTheCooldownHasPassedOnTheClock) {
  using State = parley::llm::CircuitBreaker::State;
  upstream_.enqueue(FakeUpstream::error_reply(500, "down"));
  upstream_.enqueue(FakeUpstream::error_reply(500, "down"));
  EXPECT_FALSE(call().ok());
  EXPECT_FALSE(call().ok());
  ASSERT_EQ(upstream_.calls(), 2);
  EXPECT_EQ(state(), State::kOpen);

  // Open: refused at once, without reaching the provider.
  auto open = call();
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.error().reason, "circuit_open");
  EXPECT_EQ(upstream_.calls(), 2);

  // Real time does not matter, only the clock: 29 s on it is still within the cooldown.
  clock_.advance(29s);
  auto still_open = call();
  ASSERT_FALSE(still_open.ok());
  EXPECT_EQ(still_open.error().reason, "circuit_open");
  EXPECT_EQ(upstream_.calls(), 2);

  // 31 s after it opened: half-open, and the next call is the probe that reaches the provider.
  clock_.advance(2s);
  EXPECT_EQ(state(), State::kHalfOpen);
  auto probe = call();
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  EXPECT_EQ(upstream_.calls(), 3);
  EXPECT_EQ(state(), State::kClosed);
}

// --- Key expiry --------------------------------------------------------------------------

std::string bearer(std::string_view token) {
  std::string header = "Bearer ";
  header += token;
  return header;
}

TEST(ClockSeams, ApiKeyIsRefusedOnceTheClockReachesItsExpiry) {
  TempDir dir{"parley-clock"};
  ManualClock clock;
  auto storage = open_storage(dir, clock);
  parley::auth::NewKey request;
  request.name = "short-lived";
  request.scope = "service";
  request.expires_at_ms = clock.unix_ms() + 3'600'000;  // an hour from now
  auto created = parley::auth::create_key(storage->api_keys(), request, clock.unix_ms());
  ASSERT_TRUE(created.ok()) << created.error().message;
  const std::string authorization = bearer(created->token);

  parley::auth::Authenticator auth(storage->api_keys(), parley::auth::AuthOptions{});
  ASSERT_TRUE(auth.load(clock.unix_ms()).ok());
  using Kind = parley::auth::Check::Kind;
  EXPECT_EQ(auth.check(authorization, std::nullopt, clock.unix_ms()).kind, Kind::kOk);

  clock.advance(59min + 59s);
  EXPECT_EQ(auth.check(authorization, std::nullopt, clock.unix_ms()).kind, Kind::kOk);

  clock.advance(1s);
  const auto refused = auth.check(authorization, std::nullopt, clock.unix_ms());
  EXPECT_EQ(refused.kind, Kind::kDenied);
  EXPECT_EQ(refused.error.code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(refused.error.reason, "expired_api_key");

  storage->close();
}

}  // namespace
