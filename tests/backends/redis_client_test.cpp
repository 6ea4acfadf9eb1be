// The Redis client (redis/client.hpp) against real servers: commands and binary-safe values
// on the I/O threads' own connections, scripts sent by SHA with the text only when the server
// lacks it, publish/subscribe with a resync after every (re)subscription, ACL users and
// passwords (never repeated in an error), a server that is down answering at once with
// "redis_down" and service resuming when it returns, and a server that stops answering
// failing its commands with "redis_timeout" after redis.timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "core/io_pool.hpp"
#include "redis/client.hpp"
#include "support/redis_harness.hpp"
#include "support/test_redis.hpp"

namespace {

using namespace std::chrono_literals;
namespace redis = parley::redis;
using parley::IoPool;
using parley::Result;
using parley::Task;
using parley::testing::RedisHarness;
using parley::testing::RedisProcess;

TEST(RedisUrl, ParsesEveryPartAndRefusesTls) {
  auto full = redis::parse_url("redis://app:p%40ss@cache.internal:6380/3");
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->host, "cache.internal");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->username, "app");
  EXPECT_EQ(full->password, "p@ss");
  EXPECT_EQ(full->db, 3);
  EXPECT_EQ(full->describe(), "redis://cache.internal:6380/3");
  auto password_only = redis::parse_url("redis://:secret@10.0.0.5");
  ASSERT_TRUE(password_only.ok());
  EXPECT_EQ(password_only->password, "secret");
  EXPECT_EQ(password_only->port, 6379);
  auto v6 = redis::parse_url("redis://[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  auto tls = redis::parse_url("rediss://cache:6380");
  ASSERT_FALSE(tls.ok());
  EXPECT_NE(tls.error().message.find("TLS"), std::string::npos);
  for (const char* bad : {"http://x", "redis://", "redis://host:port", "redis://h:0",
                          "redis://h:6379/x", "redis://[::1"}) {
    EXPECT_FALSE(redis::parse_url(bad).ok()) << bad;
  }
}

TEST(RedisClient, CommandsRunOnEveryIoThreadAndValuesAreBinarySafe) {
  RedisHarness h(parley::testing::redis_server_url());
  ASSERT_TRUE(h.client().check().ok());
  h.run();
  ASSERT_TRUE(h.wait_connected());
  const std::string value("a\0b\xff\r\n", 6);
  auto set = h.command({"SET", h.key("bin"), value}, 0);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->text, "OK");
  auto get = h.command({"GET", h.key("bin")}, 1);  // the other thread's connection
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ(get->type, redis::Reply::Type::kString);
  EXPECT_EQ(get->text, value);
  auto missing = h.command({"GET", h.key("missing")});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->type, redis::Reply::Type::kNil);
  auto error = h.command({"INCR", h.key("bin")});
  ASSERT_TRUE(error.ok());  // a Redis error is an answer, not a failure of the connection
  EXPECT_TRUE(error->is_error());
  auto list = h.command({"RPUSH", h.key("l"), "x", "y"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->integer, 2);
  auto range = h.command({"LRANGE", h.key("l"), "0", "-1"});
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->elements.size(), 2u);
  EXPECT_EQ(range->elements[1].text, "y");
}

TEST(RedisClient, ManyCommandsInFlightAnswerInOrder) {
  RedisHarness h(parley::testing::redis_server_url());
  h.run();
  ASSERT_TRUE(h.wait_connected());
  auto last = h.on(0, [&]() -> Task<Result<redis::Reply>> {
    // Pipelined: started together, each awaits its own answer.
    std::vector<std::string> counter{"INCR", h.key("n")};
    Result<redis::Reply> r = parley::Error::internal("none");
    for (int i = 0; i < 500; ++i) r = co_await h.client().command(counter);
    co_return r;
  });
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->integer, 500);
}

TEST(RedisClient, ScriptsAreSentByShaAndReloadedWhenTheServerForgotThem) {
  RedisHarness h(parley::testing::redis_server_url());
  h.run();
  ASSERT_TRUE(h.wait_connected());
  redis::Script script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  EXPECT_EQ(script.sha1().size(), 40u);
  // Built outside the coroutine: g++ 12 rejects string-literal arrays among its temporaries.
  const std::vector<std::string> keys{h.key("s")};
  const std::vector<std::string> args{"5"};
  auto eval = [&]() {
    return h.on(0, [&]() -> Task<Result<redis::Reply>> {
      co_return co_await h.client().eval(script, keys, args);
    });
  };
  auto first = eval();
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->integer, 5);
  ASSERT_TRUE(h.command({"SCRIPT", "FLUSH"}).ok());
  auto second = eval();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->integer, 10);
}

TEST(RedisClient, SubscribersHearMessagesAndResyncAfterReconnecting) {
  RedisProcess server;
  ASSERT_FALSE(server.url().empty());
  RedisHarness h(server.url(), 500ms);
  std::atomic<int> resyncs{0};
  std::mutex mutex;
  std::vector<std::string> heard;
  h.client().subscribe(
      h.key("events"),
      [&](std::string_view m) {
        std::lock_guard lock(mutex);
        heard.emplace_back(m);
      },
      [&] { ++resyncs; });
  h.run();
  ASSERT_TRUE(h.wait_connected());
  EXPECT_EQ(resyncs.load(), 1);
  auto published = h.command({"PUBLISH", h.key("events"), "revoked:key_1"});
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(published->integer, 1);
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mutex);
      if (!heard.empty()) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(heard.size(), 1u);
    EXPECT_EQ(heard[0], "revoked:key_1");
  }
  server.stop();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(h.client().connected());
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(h.wait_connected());
  for (int i = 0; i < 100 && resyncs.load() < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(resyncs.load(), 2);  // messages sent while away are lost: the owner re-reads
}

TEST(RedisClient, ADownServerAnswersAtOnceAndServiceResumesWhenItReturns) {
  RedisProcess server;
  ASSERT_FALSE(server.url().empty());
  RedisHarness h(server.url());
  h.run();
  ASSERT_TRUE(h.wait_connected());
  ASSERT_TRUE(h.command({"SET", h.key("k"), "1"}).ok());
  server.stop();
  // The loss is noticed by the connections (EOF); commands then fail fast.
  for (int i = 0; i < 100 && h.client().connected(); ++i) std::this_thread::sleep_for(10ms);
  const auto started = std::chrono::steady_clock::now();
  auto failed = h.command({"GET", h.key("k")});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().reason, "redis_down");
  EXPECT_FALSE(h.client().last_error().empty());
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(h.wait_connected());
  EXPECT_TRUE(h.command({"PING"}, 0).ok());
  EXPECT_TRUE(h.command({"PING"}, 1).ok());
}

TEST(RedisClient, AServerThatStopsAnsweringFailsCommandsAfterTheTimeout) {
  RedisProcess server;
  ASSERT_FALSE(server.url().empty());
  RedisHarness h(server.url(), 200ms, 1);
  h.run();
  ASSERT_TRUE(h.wait_connected());
  server.pause();
  const auto started = std::chrono::steady_clock::now();
  auto stuck = h.command({"PING"});
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(stuck.ok());
  EXPECT_EQ(stuck.error().reason, "redis_timeout");
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 2s);
  server.resume();
  ASSERT_TRUE(h.wait_connected());
  EXPECT_TRUE(h.command({"PING"}).ok());
}

TEST(RedisClient, AclUsersAuthenticateAndWrongPasswordsAreNotRepeated) {
  RedisProcess server;
  ASSERT_FALSE(server.url().empty());
  {
    RedisHarness admin(server.url());
    admin.run();
    ASSERT_TRUE(admin.wait_connected());
    auto created =
        admin.command({"ACL", "SETUSER", "parley", "on", ">right-pass", "~*", "&*", "+@all"});
    ASSERT_TRUE(created.ok() && !created->is_error());
  }
  const std::string base = "redis://parley:right-pass@127.0.0.1:" + std::to_string(server.port());
  RedisHarness good(base);
  ASSERT_TRUE(good.client().check().ok()) << good.client().check().error().message;
  good.run();
  ASSERT_TRUE(good.wait_connected());
  EXPECT_TRUE(good.command({"PING"}).ok());

  RedisHarness bad("redis://parley:canary-wrong@127.0.0.1:" + std::to_string(server.port()));
  auto refused = bad.client().check();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message.find("canary-wrong"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("AUTH"), std::string::npos) << refused.error().message;
  bad.run();
  // The PING pipelined behind the refused AUTH is answered as Redis's default user; that must
  // not make the connection count as up, even for a moment.
  EXPECT_FALSE(bad.wait_connected(500ms));
  EXPECT_FALSE(bad.command({"PING"}).ok());
  EXPECT_EQ(bad.client().last_error().find("canary-wrong"), std::string::npos);
}

TEST(RedisClient, CheckNamesAnUnreachableServer) {
  redis::RedisSettings settings;
  settings.connect_timeout = 500ms;
  auto endpoint = redis::parse_url("redis://127.0.0.1:9");
  ASSERT_TRUE(endpoint.ok());
  IoPool io(1);
  redis::Client client(io, settings, *endpoint);
  auto r = client.check();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "redis_down");
  EXPECT_NE(r.error().message.find("redis://127.0.0.1:9/0"), std::string::npos)
      << r.error().message;
}

}  // namespace
