// One contract for the in-process limiter and the one replicas share through Redis
// (limits/limiter.hpp, limits/redis_limiter.cpp), as typed tests over both: the same GCRA
// decisions to the millisecond (burst, exact Retry-After, refill), all-or-nothing over a
// request's buckets, zero-cost debt checks and forced charges, and stream slots taken all or
// none and given back. Then what only sharing adds: two replicas splitting one quota exactly,
// and the leases of a replica that died freeing themselves.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <thread>

#include "limits/limiter.hpp"
#include "limits/redis_limiter.hpp"
#include "obs/metrics.hpp"
#include "support/metrics_text.hpp"
#include "support/redis_harness.hpp"
#include "support/test_redis.hpp"

namespace {

using namespace std::chrono_literals;
using parley::Result;
using parley::Task;
using parley::limits::Decision;
using parley::limits::Quota;
using parley::limits::RateLimiter;
using parley::limits::Slot;
using parley::limits::Take;
using parley::testing::RedisHarness;

constexpr int64_t kMinute = 60'000;
constexpr int64_t kT0 = 1'800'000'000'000;
constexpr int64_t kInterval = kMinute / 10;

Quota ten_a_minute(int64_t burst = 0) { return Quota{"key-minute", 10, kMinute, burst}; }

struct LocalBackend {
  static constexpr const char* kName = "local";
  static std::unique_ptr<RateLimiter> make(parley::redis::Client&) {
    return parley::limits::make_local_limiter();
  }
};
struct RedisBackend {
  static constexpr const char* kName = "redis";
  static std::unique_ptr<RateLimiter> make(parley::redis::Client& client) {
    return parley::limits::make_redis_limiter(client, 30'000);
  }
};

template <typename Backend>
class LimiterConformance : public ::testing::Test {
 public:
  void SetUp() override {
    harness = std::make_unique<RedisHarness>(parley::testing::redis_server_url());
    harness->run();
    ASSERT_TRUE(harness->wait_connected());
    limiter = Backend::make(harness->client());
  }
  void TearDown() override {
    limiter.reset();
    harness.reset();
  }

  std::vector<Decision> acquire(std::vector<Take> takes, int64_t now) {
    auto r = harness->on(0, [&]() -> Task<Result<std::vector<Decision>>> {
      co_return co_await limiter->acquire(takes, now);
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::vector<Decision>(takes.size());
  }
  Decision one(const std::string& key, const Quota& q, int64_t now, int64_t cost = 1) {
    return acquire({Take{key, q, cost}}, now).front();
  }
  std::optional<size_t> enter(std::vector<Slot> slots, const std::string& holder) {
    auto r = harness->on(0, [&]() -> Task<Result<std::optional<size_t>>> {
      co_return co_await limiter->enter(slots, holder, kT0);
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::optional<size_t>(0);
  }
  // leave() and charge() do not wait; a round trip on the same connection after them has
  // seen them (Redis answers in order).
  void settle() { (void)harness->command({"PING"}); }

  std::unique_ptr<RedisHarness> harness;
  std::unique_ptr<RateLimiter> limiter;
};

struct Names {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
using Backends = ::testing::Types<LocalBackend, RedisBackend>;
TYPED_TEST_SUITE(LimiterConformance, Backends, Names);

TYPED_TEST(LimiterConformance, BurstOfTheWholeQuotaThenAnExactRetryAfter) {
  const Quota q = ten_a_minute();
  for (int64_t i = 1; i <= 10; ++i) {
    const Decision d = this->one("k", q, kT0);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 10 - i);
    EXPECT_EQ(d.reset_ms, i * kInterval);
  }
  const Decision refused = this->one("k", q, kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_ms, kInterval);
  EXPECT_FALSE(this->one("k", q, kT0 + kInterval - 1).allowed);
  EXPECT_TRUE(this->one("k", q, kT0 + kInterval).allowed);
  EXPECT_FALSE(this->one("k", q, kT0 + kInterval).allowed);
}

TYPED_TEST(LimiterConformance, InexactIntervalsStillGrantTheWholeBurst) {
  const Quota q{"user-minute", 9, kMinute, 0};  // 6666.67 ms: not exact in binary
  int passed = 0;
  while (passed < 100 && this->one("k9", q, kT0).allowed) ++passed;
  EXPECT_EQ(passed, 9);
}

TYPED_TEST(LimiterConformance, ARefusalOfOneBucketChargesNone) {
  const Quota roomy = ten_a_minute();
  const Quota tight{"key-hour", 1, 3'600'000, 0};
  auto first = this->acquire({Take{"a", roomy}, Take{"b", tight}}, kT0);
  EXPECT_TRUE(first[0].allowed && first[1].allowed);
  auto second = this->acquire({Take{"a", roomy}, Take{"b", tight}}, kT0);
  EXPECT_FALSE(second[1].allowed);
  // "a" was not charged by the refused request: 9 remain, not 8.
  EXPECT_EQ(this->one("a", roomy, kT0).remaining, 8);
}

TYPED_TEST(LimiterConformance, ForcedChargesMakeDebtThatZeroCostChecksSee) {
  const Quota q{"user-tokens", 1000, kMinute, 0};
  EXPECT_TRUE(this->one("t", q, kT0, 0).allowed);
  Take forced{"t", q, 2500, true};
  auto charged = this->acquire({forced}, kT0);
  EXPECT_FALSE(charged[0].allowed);  // past the limit, but taken
  const Decision check = this->one("t", q, kT0, 0);
  EXPECT_FALSE(check.allowed);
  // 1500 tokens over, at 1000 a minute; passing needs the bucket below its limit.
  EXPECT_EQ(check.retry_after_ms, 90'001);
  EXPECT_FALSE(this->one("t", q, kT0 + 90'000, 0).allowed);
  EXPECT_TRUE(this->one("t", q, kT0 + 90'001, 0).allowed);
}

TYPED_TEST(LimiterConformance, ChargeWithoutWaitingCountsLikeAForcedTake) {
  const Quota q{"key-tokens", 100, kMinute, 0};
  this->limiter->charge({Take{"c", q, 150, true}}, kT0);
  this->settle();
  EXPECT_FALSE(this->one("c", q, kT0, 0).allowed);
}

TYPED_TEST(LimiterConformance, SlotsAreTakenAllOrNoneAndGivenBack) {
  const std::vector<Slot> both{{"key:s\nstreams", 2}, {"user:s\nstreams", 1}};
  EXPECT_EQ(this->enter(both, "h1"), std::nullopt);
  // The user slot is full: nothing is taken from the key slot either.
  EXPECT_EQ(this->enter(both, "h2"), std::optional<size_t>(1));
  EXPECT_EQ(this->enter({{"key:s\nstreams", 2}}, "h3"), std::nullopt);
  EXPECT_EQ(this->enter({{"key:s\nstreams", 2}}, "h4"), std::optional<size_t>(0));
  this->limiter->leave({"key:s\nstreams", "user:s\nstreams"}, "h1");
  this->settle();
  EXPECT_EQ(this->enter(both, "h5"), std::nullopt);
  EXPECT_EQ(this->enter({{"unlimited", 0}}, "h6"), std::nullopt);
}

// --- What sharing adds ---------------------------------------------------------------------

TEST(RedisLimiter, TwoReplicasShareOneQuotaExactly) {
  const std::string url = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  RedisHarness a(url, 1000ms, 2, prefix);
  RedisHarness b(url, 1000ms, 2, prefix);
  a.run();
  b.run();
  ASSERT_TRUE(a.wait_connected() && b.wait_connected());
  auto la = parley::limits::make_redis_limiter(a.client());
  auto lb = parley::limits::make_redis_limiter(b.client());
  const Quota q{"user-minute", 25, kMinute, 0};
  std::atomic<int> allowed{0};
  auto hammer = [&](RedisHarness& h, RateLimiter& l, int thread) {
    for (int i = 0; i < 40; ++i) {
      const std::vector<Take> take{Take{"shared", q}};
      auto r = h.on(thread, [&]() -> Task<Result<std::vector<Decision>>> {
        co_return co_await l.acquire(take, kT0);
      });
      if (r.ok() && (*r)[0].allowed) ++allowed;
    }
  };
  std::thread t1([&] { hammer(a, *la, 0); });
  std::thread t2([&] { hammer(a, *la, 1); });
  std::thread t3([&] { hammer(b, *lb, 0); });
  std::thread t4([&] { hammer(b, *lb, 1); });
  t1.join();
  t2.join();
  t3.join();
  t4.join();
  EXPECT_EQ(allowed.load(), 25);
}

Decision this_one(RedisHarness& h, RateLimiter& limiter, const Take& take) {
  const std::vector<Take> takes{take};
  auto r = h.on(0, [&]() -> Task<Result<std::vector<Decision>>> {
    co_return co_await limiter.acquire(takes, kT0);
  });
  return r.ok() ? r.value()[0] : Decision{};
}

// Starts every request at once on I/O thread 0 (so they reach the limiter in one turn of its
// event loop) and returns their decisions, in order.
std::vector<std::vector<Decision>> together(
    RedisHarness& h, RateLimiter& limiter,
    const std::vector<std::pair<std::vector<Take>, int64_t>>& requests) {
  std::vector<std::vector<Decision>> decided(requests.size());
  auto finished = h.on(0, [&]() -> Task<Result<size_t>> {
    const auto executor = co_await boost::asio::this_coro::executor;
    size_t done = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      boost::asio::co_spawn(
          executor,
          [&, i]() -> Task<void> {
            auto r = co_await limiter.acquire(requests[i].first, requests[i].second);
            if (r.ok()) decided[i] = std::move(r).value();
            ++done;
          },
          boost::asio::detached);
    }
    boost::asio::steady_timer tick(executor);
    for (int waited = 0; done < requests.size() && waited < 5000; ++waited) {
      tick.expires_after(1ms);
      co_await tick.async_wait(parley::use_task);
    }
    co_return done;
  });
  EXPECT_EQ(finished.value(), requests.size());
  return decided;
}

// The value of redis_commands_total.
double redis_commands(parley::obs::Metrics& metrics) {
  return parley::testing::metric_sample(metrics.serialize(), "redis_commands_total").value_or(-1);
}

TEST(RedisLimiter, RequestsOnOneThreadShareOneScriptCallAndAreDecidedInTheirOrder) {
  parley::obs::Metrics metrics(parley::obs::BuildInfo{"v", "c", "g++", "Debug"});
  RedisHarness h(parley::testing::redis_server_url(), 1000ms, 2,
                 parley::testing::unique_redis_prefix(), &metrics);
  h.run();
  ASSERT_TRUE(h.wait_connected());
  auto limiter = parley::limits::make_redis_limiter(h.client());
  const Quota shared{"key-minute", 25, kMinute, 0};
  const Quota own{"user-minute", 1, kMinute, 0};
  auto takes = [&](int i) {
    return std::vector<Take>{Take{"shared", shared}, Take{"own-" + std::to_string(i), own}};
  };
  // Request 5's own bucket is empty beforehand (this also loads the script into Redis).
  const std::vector<Take> drain{Take{"own-5", own}};
  ASSERT_TRUE(h.on(0,
                   [&]() -> Task<Result<std::vector<Decision>>> {
                     co_return co_await limiter->acquire(drain, kT0);
                   })
                  .value()[0]
                  .allowed);

  constexpr int kRequests = 30;
  const double before = redis_commands(metrics);
  std::vector<std::pair<std::vector<Take>, int64_t>> requests;
  for (int i = 0; i < kRequests; ++i) requests.emplace_back(takes(i), kT0);
  const auto decided = together(h, *limiter, requests);
  ASSERT_EQ(decided.size(), static_cast<size_t>(kRequests));
  EXPECT_EQ(redis_commands(metrics) - before, 1) << "one script call for the whole burst";
  // In order: request 5 is refused by its own bucket and so takes nothing from the shared
  // one, which then lets exactly 25 of the others through: 0..25 but 5.
  int remaining = 25;
  for (int i = 0; i < kRequests; ++i) {
    const auto& d = decided[static_cast<size_t>(i)];
    ASSERT_EQ(d.size(), 2U) << i;
    const bool expected = i <= 25 && i != 5;
    EXPECT_EQ(d[0].allowed && d[1].allowed, expected) << "request " << i;
    if (expected) {
      EXPECT_EQ(d[0].remaining, --remaining) << "request " << i;
    }
  }
  EXPECT_EQ(remaining, 0);
  // What the call stored is what one request at a time would have left: the shared bucket
  // is empty, and request 26's own bucket was not charged.
  EXPECT_FALSE(this_one(h, *limiter, Take{"shared", shared}).allowed);
  EXPECT_TRUE(this_one(h, *limiter, Take{"own-26", own}).allowed);
}

TEST(RedisLimiter, RequestsSharingACallWithDifferentClocksAreDecidedAsIfAlone) {
  RedisHarness h(parley::testing::redis_server_url());
  h.run();
  ASSERT_TRUE(h.wait_connected());
  auto limiter = parley::limits::make_redis_limiter(h.client());
  const Quota q = ten_a_minute();
  const Quota one{"user-minute", 1, kMinute, 0};
  ASSERT_TRUE(this_one(h, *limiter, Take{"full", one}).allowed);  // now refuses until kT0+1min
  // The first request, whose clock reads later, touches the fresh bucket without charging it
  // (its other bucket refuses); the second, earlier, finds that bucket as it was: empty.
  const std::vector<std::pair<std::vector<Take>, int64_t>> requests{
      {{Take{"fresh", q}, Take{"full", one}}, kT0 + 5000},
      {{Take{"fresh", q}}, kT0},
  };
  const auto decided = together(h, *limiter, requests);
  ASSERT_EQ(decided[0].size(), 2U);
  ASSERT_EQ(decided[1].size(), 1U);
  EXPECT_FALSE(decided[0][1].allowed);
  EXPECT_TRUE(decided[1][0].allowed);
  EXPECT_EQ(decided[1][0].remaining, 9);
  EXPECT_EQ(decided[1][0].reset_ms, kInterval);  // from kT0, not from the first one's clock
  // And what it stored is one charge from kT0: nine more pass at kT0, the tenth does not.
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(this_one(h, *limiter, Take{"fresh", q}).allowed) << i;
  EXPECT_FALSE(this_one(h, *limiter, Take{"fresh", q}).allowed);
}

TEST(RedisLimiter, TheLeasesOfADeadReplicaFreeThemselves) {
  RedisHarness h(parley::testing::redis_server_url());
  h.run();
  ASSERT_TRUE(h.wait_connected());
  auto limiter = parley::limits::make_redis_limiter(h.client(), /*lease_ms=*/60'000);
  // Built outside the coroutines: g++ 12 rejects arrays among their temporaries.
  const std::vector<Slot> slot{Slot{"key:d\nstreams", 1}};
  const std::vector<std::string> keys{"key:d\nstreams"};
  auto enter = [&](const std::string& holder, int64_t now) {
    return h.on(0, [&]() -> Task<Result<std::optional<size_t>>> {
      co_return co_await limiter->enter(slot, holder, now);
    });
  };
  auto renew = [&](const std::string& holder, int64_t now) {
    return h.on(
        0, [&]() -> Task<Result<void>> { co_return co_await limiter->renew(keys, holder, now); });
  };
  ASSERT_EQ(enter("replica-a-stream", kT0).value(), std::nullopt);
  EXPECT_EQ(enter("replica-b-stream", kT0 + 1000).value(), std::optional<size_t>(0));
  // Renewed while its call runs, the place stays taken past the first lease.
  ASSERT_TRUE(renew("replica-a-stream", kT0 + 50'000).ok());
  EXPECT_EQ(enter("replica-b-stream", kT0 + 70'000).value(), std::optional<size_t>(0));
  // Its replica dies: no more renewals, and one lease later the place is free.
  EXPECT_EQ(enter("replica-b-stream", kT0 + 110'001).value(), std::nullopt);
}

}  // namespace
