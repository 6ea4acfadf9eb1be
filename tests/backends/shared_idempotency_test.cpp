// Idempotency-Key across replicas (idempotency/shared_idempotency.hpp) on the real Redis and
// PostgreSQL: one claim wins and the other waits, an answer is replayed only once it is in the
// database, a claim given up frees the key, another request under the key is refused, an
// emptied Redis (or a lost "done") still replays what the database holds, an erased answer is not
// replayed, and a Redis that is down refuses rather than risk running twice.
#include <gtest/gtest.h>

#include "idempotency/shared_idempotency.hpp"
#include "store/settings.hpp"
#include "support/manual_clock.hpp"
#include "support/redis_harness.hpp"
#include "support/test_postgres.hpp"
#include "support/test_redis.hpp"

namespace {

using namespace std::chrono_literals;
using parley::Result;
using parley::Task;
using parley::idempotency::Claim;
using parley::idempotency::SharedIdempotency;
using parley::idempotency::StoredResponse;
using parley::testing::RedisHarness;

// A database, a Redis client and the store over them.
class SharedWorld {
 public:
  void open(const std::string& redis_url) {
    ASSERT_FALSE(db.url().empty());
    parley::store::StorageSettings settings;
    settings.url = db.url();
    auto opened = parley::store::open(settings, {});
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    storage = std::move(*opened);
    harness = std::make_unique<RedisHarness>(redis_url, 300ms);
    harness->run();
    ASSERT_TRUE(harness->wait_connected());
    parley::idempotency::LocalOptions options;
    options.flush_interval_ms = 10;
    shared = std::make_unique<SharedIdempotency>(harness->client(), storage->idempotency(),
                                                 blocking, options);
    shared->start();
  }
  void close() {
    if (shared) shared->stop();
    shared.reset();
    harness.reset();
  }

  Result<Claim> claim(const std::string& key, const std::string& fingerprint) {
    return harness->on(0, [&]() -> Task<Result<Claim>> {
      co_return co_await shared->claim(key, fingerprint, now_ms);
    });
  }
  Claim::Kind kind(const std::string& key, const std::string& fingerprint) {
    auto c = claim(key, fingerprint);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? c->kind : Claim::Kind::kMismatch;
  }
  // Written to the database, and the key marked done in Redis (a round trip after it).
  void answer(const std::string& key, const std::string& fingerprint, const std::string& body) {
    shared->complete(key, fingerprint, StoredResponse{200, "application/json", body}, "t", "u",
                     now_ms);
    shared->flush();
    (void)harness->command({"PING"});
  }

  parley::testing::PostgresDatabase db;
  std::unique_ptr<parley::store::Storage> storage;
  parley::BlockingPool blocking{2};
  std::unique_ptr<RedisHarness> harness;
  std::unique_ptr<SharedIdempotency> shared;
  int64_t now_ms = 1'800'000'000'000;
};

class SharedIdempotencyTest : public ::testing::Test, public SharedWorld {
 public:
  void SetUp() override { open(parley::testing::redis_server_url()); }
  void TearDown() override { close(); }
};

TEST_F(SharedIdempotencyTest, OneClaimWinsAndTheAnswerIsReplayedOnceStored) {
  EXPECT_EQ(kind("k1", "fp"), Claim::Kind::kClaimed);
  EXPECT_EQ(kind("k1", "fp"), Claim::Kind::kInProgress);
  answer("k1", "fp", R"({"n":1})");
  auto replay = claim("k1", "fp");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->kind, Claim::Kind::kReplay);
  EXPECT_EQ(replay->response.body, R"({"n":1})");
  EXPECT_EQ(replay->response.status, 200);
  EXPECT_EQ(kind("k1", "other"), Claim::Kind::kMismatch);
}

TEST_F(SharedIdempotencyTest, AClaimGivenUpFreesTheKey) {
  EXPECT_EQ(kind("k2", "fp"), Claim::Kind::kClaimed);
  shared->release("k2");
  (void)harness->command({"PING"});
  EXPECT_EQ(kind("k2", "fp"), Claim::Kind::kClaimed);
}

TEST_F(SharedIdempotencyTest, AnEmptiedRedisStillReplaysWhatTheDatabaseHolds) {
  EXPECT_EQ(kind("k3", "fp"), Claim::Kind::kClaimed);
  answer("k3", "fp", R"({"n":3})");
  ASSERT_TRUE(harness->command({"DEL", harness->key("idem:k3")}).ok());
  auto replay = claim("k3", "fp");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->kind, Claim::Kind::kReplay);
  EXPECT_EQ(replay->response.body, R"({"n":3})");
  EXPECT_EQ(kind("k3", "another request"), Claim::Kind::kMismatch);
}

TEST_F(SharedIdempotencyTest, AnAnswerWhoseDoneWasLostIsStillReplayed) {
  EXPECT_EQ(kind("k7", "fp"), Claim::Kind::kClaimed);
  answer("k7", "fp", R"({"n":7})");
  // As if the replica stopped right after writing the answer, before "done" reached Redis.
  ASSERT_TRUE(harness->command({"HSET", harness->key("idem:k7"), "state", "running"}).ok());
  auto replay = claim("k7", "fp");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->kind, Claim::Kind::kReplay);
  EXPECT_EQ(replay->response.body, R"({"n":7})");
  (void)harness->command({"PING"});
  auto state = harness->command({"HGET", harness->key("idem:k7"), "state"});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->text, "done");
}

TEST_F(SharedIdempotencyTest, AnErasedAnswerIsNotReplayed) {
  EXPECT_EQ(kind("k4", "fp"), Claim::Kind::kClaimed);
  answer("k4", "fp", R"({"secret":"of u"})");
  shared->forget_user(std::nullopt, "u");
  ASSERT_TRUE(storage->user_data().erase_user(std::nullopt, "u", now_ms).ok());
  EXPECT_EQ(kind("k4", "fp"), Claim::Kind::kClaimed);
}

TEST(SharedIdempotencyDown, ARedisThatIsDownRefusesTheClaim) {
  parley::testing::RedisProcess redis;
  ASSERT_FALSE(redis.url().empty());
  SharedWorld t;
  t.open(redis.url());
  EXPECT_EQ(t.kind("k5", "fp"), Claim::Kind::kClaimed);
  redis.stop();
  for (int i = 0; i < 100 && t.harness->client().connected(); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  auto refused = t.claim("k6", "fp");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "idempotency_unavailable");
  t.close();
}

}  // namespace
