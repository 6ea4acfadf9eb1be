// Many replicas on one PostgreSQL and one Redis (the harness's real servers): a session
// created on one replica is read and continued on the other; a key's limit of N requests a
// minute allows exactly N across both; three replicas starting together on an empty database
// migrate it once; a database or a Redis that cannot be reached at start stops the process in
// its named phase with one line; and Redis lost under traffic turns requests and readiness 503
// (or lets requests through with limits.on_backend_error: allow) until it returns, when
// service resumes by itself.
#include <gtest/gtest.h>

#include <thread>

#include "harness.hpp"
#include "support/test_postgres.hpp"
#include "support/test_redis.hpp"

namespace {

using namespace parley_it;
using json = nlohmann::json;

const std::string kAdminKey = "itest-replicas-admin-key-2b7d91c04e5a6f38";

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// A replica's options: the shared database and Redis, under one key prefix.
ServeOptions replica(const std::string& database_url, const std::string& redis_url,
                     const std::string& prefix, std::vector<std::string> extra = {}) {
  ServeOptions o;
  o.args = {"--set", "storage.url=" + database_url, "--set", "redis.url=" + redis_url,
            "--set", "redis.key_prefix=" + prefix};
  o.args.insert(o.args.end(), extra.begin(), extra.end());
  o.env = {{"PARLEY_ADMIN_KEY", kAdminKey}};
  return o;
}

std::string create_key(int port, const json& spec) {
  auto r = http("POST", port, "/api/v1/admin/keys", spec.dump(), bearer(kAdminKey));
  EXPECT_EQ(r.status, 201) << r.describe();
  auto j = r.json_or_discarded();
  return j.is_object() && j.contains("key") ? j["key"].get<std::string>() : "";
}

TEST(Replicas, ASessionStartedOnOneIsContinuedOnTheOther) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  ParleyProcess a(replica(db.url(), redis, prefix));
  ParleyProcess b(replica(db.url(), redis, prefix));

  auto created =
      http("POST", a.port(), "/api/v1/sessions", R"({"user_id":"ana"})", bearer(kAdminKey));
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string id = created.json()["id"];
  auto read = http("GET", b.port(), "/api/v1/sessions/" + id, "", bearer(kAdminKey));
  ASSERT_EQ(read.status, 200) << read.describe();
  EXPECT_EQ(read.json()["user_id"], "ana");

  auto turn = http("POST", b.port(), "/api/v1/sessions/" + id + "/messages",
                   R"({"content":"hello from replica b"})", bearer(kAdminKey));
  ASSERT_EQ(turn.status, 200) << turn.describe();
  auto listed =
      http("GET", a.port(), "/api/v1/sessions/" + id + "/messages", "", bearer(kAdminKey));
  ASSERT_EQ(listed.status, 200) << listed.describe();
  const json messages = listed.json()["data"];
  ASSERT_EQ(messages.size(), 2u) << listed.describe();
  EXPECT_EQ(messages[0]["content"], "hello from replica b");
  EXPECT_EQ(messages[1]["role"], "assistant");
  EXPECT_EQ(messages[1]["status"], "complete");
}

TEST(Replicas, AKeyLimitOfNAllowsExactlyNAcrossBoth) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  ParleyProcess a(replica(db.url(), redis, prefix));
  ParleyProcess b(replica(db.url(), redis, prefix));
  const std::string key = create_key(
      a.port(), {{"scope", "service"}, {"limits", {{"key", {{"requests_per_minute", 7}}}}}});
  ASSERT_FALSE(key.empty());
  int allowed = 0, limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = http("GET", (i % 2 ? b : a).port(), "/api/v1/sessions", "", {{"X-API-Key", key}});
    if (r.status == 200) ++allowed;
    if (r.status == 429) {
      EXPECT_TRUE(is_error(r, 429, "rate_limited"));
      ++limited;
    }
  }
  EXPECT_EQ(allowed, 7);
  EXPECT_EQ(limited, 13);
}

TEST(Replicas, AKeyRevokedOnOneIsRefusedByTheOtherWithinASecond) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  // A key refresh interval far longer than the test: only the broadcast can tell B in time.
  ParleyProcess a(replica(db.url(), redis, prefix, {"--set", "auth.key_refresh_interval=1h"}));
  ParleyProcess b(replica(db.url(), redis, prefix, {"--set", "auth.key_refresh_interval=1h"}));
  const std::string key = create_key(a.port(), {{"scope", "service"}});
  ASSERT_FALSE(key.empty());
  // B learns the key on first use and caches it.
  ASSERT_EQ(http("GET", b.port(), "/api/v1/sessions", "", {{"X-API-Key", key}}).status, 200);
  const std::string id = key.substr(7, key.rfind('_') - 7);
  auto revoked = http("DELETE", a.port(), "/api/v1/admin/keys/" + id, "", bearer(kAdminKey));
  ASSERT_EQ(revoked.status, 200) << revoked.describe();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually(
      [&] {
        return http("GET", b.port(), "/api/v1/sessions", "", {{"X-API-Key", key}}).status == 401;
      },
      Millis{1000}, Millis{10}));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(Replicas, ThreeStartingTogetherOnAnEmptyDatabaseMigrateItOnce) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  std::vector<std::unique_ptr<ParleyProcess>> replicas(3);
  // Each started from a thread of its own, at once. The threads stay until the end: a child
  // dies with the thread that spawned it (PR_SET_PDEATHSIG).
  std::vector<std::thread> starting;
  std::atomic<int> started{0};
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  for (int i = 0; i < 3; ++i) {
    starting.emplace_back([&, i] {
      try {
        replicas[static_cast<size_t>(i)] =
            std::make_unique<ParleyProcess>(replica(db.url(), redis, prefix));
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
      ++started;
      while (!done) std::this_thread::sleep_for(Millis{10});
      replicas[static_cast<size_t>(i)].reset();
    });
  }
  struct Finish {
    std::atomic<bool>& done;
    std::vector<std::thread>& threads;
    ~Finish() {
      done = true;
      for (auto& t : threads) t.join();
    }
  } finish{done, starting};
  while (started < 3) std::this_thread::sleep_for(Millis{10});
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(db.query("SELECT count(*) FROM schema_migrations"),
            db.query("SELECT max(version) FROM schema_migrations"));
  for (auto& r : replicas) {
    auto ready = http("GET", r->port(), "/api/v1/health/readiness");
    EXPECT_EQ(ready.status, 200) << ready.describe() << r->output_dump();
  }
}

TEST(Replicas, UnreachableDependenciesStopTheStartInTheirPhase) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  auto no_redis =
      run_parley({"serve", "--listen", "127.0.0.1:0", "--set", "storage.url=" + db.url(), "--set",
                  "redis.url=redis://:canary-pass@127.0.0.1:9"});
  EXPECT_NE(no_redis.exit_code(), 0);
  EXPECT_NE(no_redis.err.find("startup failed in phase 'redis'"), std::string::npos)
      << no_redis.describe();
  EXPECT_EQ(no_redis.err.find("canary-pass"), std::string::npos);
  EXPECT_EQ(no_redis.out.find("canary-pass"), std::string::npos);
  auto no_database = run_parley({"serve", "--listen", "127.0.0.1:0", "--set",
                                 "storage.url=postgresql://parley:canary-pass@127.0.0.1:9/parley"});
  EXPECT_NE(no_database.exit_code(), 0);
  EXPECT_NE(no_database.err.find("startup failed in phase 'storage'"), std::string::npos)
      << no_database.describe();
  EXPECT_EQ(no_database.err.find("canary-pass"), std::string::npos);
}

TEST(Replicas, RedisLostUnderTrafficFailsClosedThenServiceResumes) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  parley::testing::RedisProcess redis;
  ASSERT_FALSE(redis.url().empty());
  const std::string prefix = parley::testing::unique_redis_prefix();
  ParleyProcess closed(replica(db.url(), redis.url(), prefix, {"--set", "redis.timeout=300ms"}));
  ParleyProcess open(
      replica(db.url(), redis.url(), prefix,
              {"--set", "redis.timeout=300ms", "--set", "limits.on_backend_error=allow"}));
  const std::string key =
      create_key(closed.port(),
                 {{"scope", "service"}, {"limits", {{"key", {{"requests_per_minute", 1000}}}}}});
  ASSERT_FALSE(key.empty());
  EXPECT_EQ(http("GET", closed.port(), "/api/v1/sessions", "", {{"X-API-Key", key}}).status, 200);

  redis.stop();
  EXPECT_TRUE(eventually(
      [&] { return http("GET", closed.port(), "/api/v1/health/readiness").status == 503; },
      Millis{5000}));
  auto ready = http("GET", closed.port(), "/api/v1/health/readiness");
  EXPECT_EQ(ready.json()["checks"]["redis"]["status"], "fail") << ready.describe();
  auto refused = http("GET", closed.port(), "/api/v1/sessions", "", {{"X-API-Key", key}});
  EXPECT_TRUE(is_error(refused, 503, "limits_unavailable"));
  EXPECT_TRUE(refused.header("Retry-After").has_value());
  auto through = http("GET", open.port(), "/api/v1/sessions", "", {{"X-API-Key", key}});
  EXPECT_EQ(through.status, 200) << through.describe();
  EXPECT_TRUE(closed.running());

  ASSERT_TRUE(redis.start());
  EXPECT_TRUE(eventually(
      [&] { return http("GET", closed.port(), "/api/v1/health/readiness").status == 200; },
      Millis{10000}));
  EXPECT_EQ(http("GET", closed.port(), "/api/v1/sessions", "", {{"X-API-Key", key}}).status, 200);
}

}  // namespace
