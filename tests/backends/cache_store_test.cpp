// The response caches' stores, in memory and in Redis, held to one behaviour: entries by key
// with a lifetime, least recently used out first (in memory), partitions newest first that
// keep their newest N and drop what outlived its TTL, binary-safe values; and on Redis, what
// one replica cached is what another finds.
#include <gtest/gtest.h>

#include <thread>

#include "cache/store.hpp"
#include "run_on.hpp"
#include "support/manual_clock.hpp"
#include "support/redis_harness.hpp"

namespace {

using namespace std::chrono_literals;
using parley::ManualClock;
using parley::cache::CacheStore;
using parley::testing::RedisHarness;

// Runs the store's coroutines on an io_context of the test's own.
struct Local {
  ManualClock clock;
  std::unique_ptr<CacheStore> store = parley::cache::make_local_store(3, 4, clock);
  boost::asio::io_context context;
  std::optional<std::string> get(const std::string& key) {
    return parley::testing::run_on(context, store->get(key));
  }
  std::vector<std::string> partition(const std::string& key) {
    return parley::testing::run_on(context, store->partition(key));
  }
};

TEST(LocalCacheStore, EntriesExpireAndTheLeastRecentlyUsedGoFirst) {
  Local l;
  l.store->put("a", "1", 1h);
  l.store->put("b", "2", 1h);
  l.store->put("c", "3", 1min);
  EXPECT_EQ(l.get("a"), "1");  // "a" is now the most recent
  l.store->put("d", "4", 1h);  // over 3: "b" goes
  EXPECT_FALSE(l.get("b").has_value());
  EXPECT_EQ(l.get("c"), "3");
  l.store->put("a", "one", 1h);  // replaced in place
  EXPECT_EQ(l.get("a"), "one");
  l.clock.advance(2min);
  EXPECT_FALSE(l.get("c").has_value());
  EXPECT_EQ(l.get("d"), "4");
}

TEST(LocalCacheStore, PartitionsKeepTheirNewestWithinTheirLifetimeAndABound) {
  Local l;
  const std::string binary("v\0\xff", 3);
  l.store->add_to_partition("p", "old", 1min, 2);
  l.store->add_to_partition("p", binary, 1h, 2);
  l.store->add_to_partition("p", "new", 1h, 2);  // keeps 2: "old" goes
  EXPECT_EQ(l.partition("p"), (std::vector<std::string>{"new", binary}));
  l.store->add_to_partition("q", "q1", 1min, 10);
  l.store->add_to_partition("q", "q2", 1h, 10);
  l.clock.advance(2min);
  EXPECT_EQ(l.partition("q"), (std::vector<std::string>{"q2"}));
  // 4 entries in all (q's expired one still counts until it is pushed out): the least
  // recently used partition, "p", gives way, oldest first.
  l.store->add_to_partition("r", "r1", 1h, 10);
  EXPECT_EQ(l.partition("p"), (std::vector<std::string>{"new"}));
  l.store->add_to_partition("r", "r2", 1h, 10);  // now "q" is the least recently used
  EXPECT_EQ(l.partition("q"), (std::vector<std::string>{"q2"}));
  EXPECT_EQ(l.partition("r"), (std::vector<std::string>{"r2", "r1"}));
  EXPECT_TRUE(l.partition("missing").empty());
}

TEST(RedisCacheStore, WhatOneReplicaCachesAnotherFindsWithinItsLifetime) {
  const std::string url = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  RedisHarness a(url, 1000ms, 1, prefix);
  RedisHarness b(url, 1000ms, 1, prefix);
  a.run();
  b.run();
  ASSERT_TRUE(a.wait_connected());
  ASSERT_TRUE(b.wait_connected());
  ManualClock clock;
  auto store_a = parley::cache::make_redis_store(a.client(), clock);
  auto store_b = parley::cache::make_redis_store(b.client(), clock);
  const std::string binary("answer\0\xff\r\n", 10);
  store_a->put("k", binary, 1h);
  store_a->put("short", "x", 50ms);
  store_a->add_to_partition("p", "first", 1min, 2);
  store_a->add_to_partition("p", "second", 1h, 2);
  store_a->add_to_partition("p", "third", 1h, 2);
  // Detached writes: the same connection's next command comes after them.
  auto get = [&](CacheStore& s, const char* key, RedisHarness& h) {
    return h.on(
        0, [&]() -> parley::Task<std::optional<std::string>> { co_return co_await s.get(key); });
  };
  auto partition = [&](CacheStore& s, const char* key, RedisHarness& h) {
    return h.on(0, [&]() -> parley::Task<std::vector<std::string>> {
      co_return co_await s.partition(key);
    });
  };
  EXPECT_EQ(get(*store_a, "k", a), binary);
  EXPECT_EQ(get(*store_b, "k", b), binary);
  EXPECT_EQ(partition(*store_b, "p", b), (std::vector<std::string>{"third", "second"}));
  EXPECT_FALSE(get(*store_b, "missing", b).has_value());
  std::this_thread::sleep_for(120ms);
  EXPECT_FALSE(get(*store_b, "short", b).has_value());
  // An entry past the TTL it was added with is not returned, whatever the list's own TTL.
  store_a->add_to_partition("q", "stale", 1min, 5);
  store_a->add_to_partition("q", "fresh", 1h, 5);
  EXPECT_EQ(partition(*store_a, "q", a).size(), 2U);
  clock.advance(2min);
  EXPECT_EQ(partition(*store_b, "q", b), (std::vector<std::string>{"fresh"}));
}

TEST(RedisCacheStore, ARedisThatIsDownMeansNothingIsCached) {
  parley::testing::RedisProcess server;
  ASSERT_FALSE(server.url().empty());
  RedisHarness h(server.url(), 300ms, 1);
  h.run();
  ASSERT_TRUE(h.wait_connected());
  auto store = parley::cache::make_redis_store(h.client());
  store->put("k", "v", 1h);
  server.stop();
  auto got = h.on(
      0, [&]() -> parley::Task<std::optional<std::string>> { co_return co_await store->get("k"); });
  EXPECT_FALSE(got.has_value());
  auto entries = h.on(0, [&]() -> parley::Task<std::vector<std::string>> {
    co_return co_await store->partition("p");
  });
  EXPECT_TRUE(entries.empty());
}

}  // namespace
