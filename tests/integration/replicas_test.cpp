// Many replicas on one PostgreSQL and one Redis (the harness's real servers): a session
// created on one replica is read and continued on the other; a memory written or deleted through
// one counts in the other's next turn; a key's limit of N requests a
// minute allows exactly N across both; three replicas starting together on an empty database
// migrate it once; a database or a Redis that cannot be reached at start stops the process in
// its named phase with one line; and Redis lost under traffic turns requests and readiness 503
// (or lets requests through with limits.on_backend_error: allow) until it returns, when
// service resumes by itself.
#include <gtest/gtest.h>

#include <thread>

#include "harness.hpp"
#include "support/metrics_text.hpp"
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

TEST(Replicas, AMemoryWrittenOnOneIsRecalledOnTheOtherInTheNextTurnAndGoneWhenDeleted) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  ParleyProcess a(replica(db.url(), redis, prefix));
  ParleyProcess b(replica(db.url(), redis, prefix));
  const std::string session = [&] {
    auto created =
        http("POST", b.port(), "/api/v1/sessions", R"({"user_id":"ana"})", bearer(kAdminKey));
    EXPECT_EQ(created.status, 201) << created.describe();
    return created.json_or_discarded().value("id", std::string());
  }();
  const auto recalled_on_b = [&] {
    auto turn = http("POST", b.port(), "/api/v1/sessions/" + session + "/messages",
                     R"({"content":"Any peanuts in this cake?"})", bearer(kAdminKey));
    EXPECT_EQ(turn.status, 200) << turn.describe();
    const json answer = turn.json_or_discarded();
    std::vector<std::string> texts;
    for (const auto& m : answer["reply"]["memories"]) texts.push_back(m["text"]);
    return texts;
  };
  EXPECT_TRUE(recalled_on_b().empty());

  // Written through replica a: b's recall index follows the change log before its next turn.
  auto added = http("POST", a.port(), "/api/v1/users/ana/memories",
                    R"({"text":"Is allergic to peanuts"})", bearer(kAdminKey));
  ASSERT_EQ(added.status, 201) << added.describe();
  EXPECT_EQ(recalled_on_b(), (std::vector<std::string>{"Is allergic to peanuts"}));

  // Deleted through a: gone from b's next turn.
  const std::string id = added.json()["id"];
  ASSERT_EQ(
      http("DELETE", a.port(), "/api/v1/users/ana/memories/" + id, "", bearer(kAdminKey)).status,
      200);
  EXPECT_TRUE(recalled_on_b().empty());
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

TEST(Replicas, OneIdempotencyKeyOnBothRunsOnceAndReplaysTheSameAnswer) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  FakeProvider fake;
  TempDir dir("parley-replicas");
  const std::string config = dir.write_file("parley.yaml", fake.base_config());
  ParleyProcess a(replica(db.url(), redis, prefix, {"--config", config}));
  ParleyProcess b(replica(db.url(), redis, prefix, {"--config", config}));
  // A slow answer, so the retries on the other replica arrive while it runs.
  fake.enqueue({{"body", openai_completion_body("Exactly once.")}, {"delay_before_head_ms", 700}});
  const std::string body = openai_chat_request("Say it once");
  HeaderList headers = bearer(kAdminKey);
  headers.emplace_back("Idempotency-Key", "replicas-once-1");

  Response first;
  std::thread running(
      [&] { first = http("POST", a.port(), "/v1/chat/completions", body, headers); });
  std::this_thread::sleep_for(Millis{250});
  auto during = http("POST", b.port(), "/v1/chat/completions", body, headers);
  EXPECT_TRUE(is_error(during, 409, "idempotency_key_in_use"));
  running.join();
  ASSERT_EQ(first.status, 200) << first.describe();

  // After: the same answer from either replica, once it is stored (within the flush interval).
  Response after;
  EXPECT_TRUE(eventually(
      [&] {
        after = http("POST", b.port(), "/v1/chat/completions", body, headers);
        return after.status == 200;
      },
      Millis{3000}, Millis{50}));
  EXPECT_EQ(after.body, first.body);
  EXPECT_EQ(after.header("Idempotent-Replayed"), std::optional<std::string>("true"));
  auto again = http("POST", a.port(), "/v1/chat/completions", body, headers);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(fake.calls(), 1);

  // The same key with another body is refused on both.
  auto other = http("POST", b.port(), "/v1/chat/completions", openai_chat_request("Else"), headers);
  EXPECT_TRUE(is_error(other, 422, "idempotency_key_reused"));
}

TEST(Replicas, KillNineMidStreamLosesNoAcknowledgedWriteAndFreesTheSlot) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  FakeProvider fake;
  TempDir dir("parley-replicas");
  const std::string config = dir.write_file("parley.yaml", fake.base_config());
  const std::vector<std::string> extra{"--config", config,
                                       "--set",    "storage.replica_timeout=2s",
                                       "--set",    "limits.stream_lease=2s",
                                       "--set",    "limits.user.concurrent_streams=1"};
  auto a = std::make_unique<ParleyProcess>(replica(db.url(), redis, prefix, extra));
  ParleyProcess b(replica(db.url(), redis, prefix, extra));
  const std::string alice = create_key(a->port(), {{"scope", "user"}, {"user_id", "alice"}});
  ASSERT_FALSE(alice.empty());
  auto session = http("POST", a->port(), "/api/v1/sessions", "{}", bearer(alice));
  ASSERT_EQ(session.status, 201) << session.describe();
  const std::string id = session.json()["id"];

  // A stream on A: one delta, then the upstream says nothing more.
  fake.enqueue(
      {{"pieces", {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Held \"}}]}\n\n"}},
       {"content_type", "text/event-stream"},
       {"stall", true}});
  RawConnection held(a->port());
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held.send_all(
      raw_request("POST", "/api/v1/sessions/" + id + "/messages",
                  {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + alice}},
                  R"({"content":"keep this question","stream":true})")));
  ASSERT_TRUE(eventually(
      [&] {
        held.read_some(Millis{50});
        return held.buffer().find("Held ") != std::string::npos;
      },
      Millis{5000}))
      << held.buffer();
  a->kill9();
  a.reset();

  // The slot A held is still taken until its lease lapses, then free.
  auto refused = http("POST", b.port(), "/v1/chat/completions", openai_chat_request("me too", true),
                      bearer(alice));
  EXPECT_TRUE(is_error(refused, 429, "concurrency_limit_reached"));
  const auto killed = std::chrono::steady_clock::now();
  Response freed;
  EXPECT_TRUE(eventually(
      [&] {
        freed = http("POST", b.port(), "/v1/chat/completions", openai_chat_request("now", true),
                     bearer(alice));
        return freed.status == 200;
      },
      Millis{6000}, Millis{100}))
      << freed.describe();
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(4));

  // The question was acknowledged before the stream began: it is there. The reply A left
  // pending is marked interrupted by B once A has been silent for storage.replica_timeout.
  Response listed;
  EXPECT_TRUE(eventually(
      [&] {
        listed = http("GET", b.port(), "/api/v1/sessions/" + id + "/messages", "", bearer(alice));
        const json data = listed.json_or_discarded().value("data", json::array());
        return data.size() == 2 && data[1].value("status", "") == "partial";
      },
      Millis{8000}, Millis{100}))
      << listed.describe();
  const json data = listed.json()["data"];
  EXPECT_EQ(data[0]["content"], "keep this question");
  EXPECT_EQ(data[0]["status"], "complete");
  EXPECT_EQ(data[1]["finish_reason"], "interrupted");
}

TEST(Replicas, ABudgetSpentOnOneIsSeenByTheOtherAtOnce) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  FakeProvider fake;
  TempDir dir("parley-replicas");
  // 11 prompt and 6 completion tokens (the fake's usage) cost $0.00007 a call.
  const std::string config = dir.write_file(
      "parley.yaml",
      fake.base_config() + "models:\n  fake-model:\n    input: 2.0\n    output: 8.0\n");
  const std::vector<std::string> extra{"--config", config, "--set",
                                       "limits.user.usd_per_day=0.0001"};
  ParleyProcess a(replica(db.url(), redis, prefix, extra));
  ParleyProcess b(replica(db.url(), redis, prefix, extra));
  const std::string alice = create_key(a.port(), {{"scope", "user"}, {"user_id", "alice"}});
  ASSERT_FALSE(alice.empty());
  for (int i = 0; i < 2; ++i) fake.enqueue({{"body", openai_completion_body("Priced.")}});
  // B reads alice's spend (nothing yet) and books $0.00007; A books another.
  EXPECT_EQ(
      http("POST", b.port(), "/v1/chat/completions", openai_chat_request("one"), bearer(alice))
          .status,
      200);
  EXPECT_EQ(
      http("POST", a.port(), "/v1/chat/completions", openai_chat_request("two"), bearer(alice))
          .status,
      200);
  // Each spend is added to the shared total in Redis after its answer: wait until both are.
  double total = 0;
  for (int i = 0; i < 500 && total < 0.00013; ++i) {
    const auto keys = parley::testing::redis_keys(redis, prefix + "spend:u:*alice:d:*");
    const std::string value =
        keys.empty() ? std::string() : parley::testing::redis_get(redis, keys.front());
    total = value.empty() ? 0 : std::stod(value);
    if (total < 0.00013) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(total, 0.00013);
  // $0.00014 spent of $0.0001: refused on B, though B booked only half of it.
  auto refused =
      http("POST", b.port(), "/v1/chat/completions", openai_chat_request("three"), bearer(alice));
  EXPECT_TRUE(is_error(refused, 429, "budget_exceeded"));
  EXPECT_EQ(fake.calls(), 2);
}

TEST(Replicas, PostgresLostUnderTrafficAnswers503ThenServiceResumes) {
  parley::testing::PostgresServer postgres;
  ASSERT_FALSE(postgres.url().empty());
  ParleyProcess p(replica(postgres.url(), parley::testing::redis_server_url(),
                          parley::testing::unique_redis_prefix(),
                          {"--set", "storage.busy_timeout=500ms"}));
  ASSERT_EQ(http("POST", p.port(), "/api/v1/sessions", "{}", bearer(kAdminKey)).status, 201);

  postgres.stop();
  auto refused = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(kAdminKey));
  EXPECT_TRUE(is_error(refused, 503, "storage_down"));
  auto ready = http("GET", p.port(), "/api/v1/health/readiness");
  EXPECT_EQ(ready.status, 503) << ready.describe();
  EXPECT_EQ(ready.json_or_discarded()["checks"]["database"]["status"], "fail");
  EXPECT_TRUE(p.running());

  ASSERT_TRUE(postgres.start());
  EXPECT_TRUE(
      eventually([&] { return http("GET", p.port(), "/api/v1/health/readiness").status == 200; },
                 Millis{10000}, Millis{100}));
  auto created = http("POST", p.port(), "/api/v1/sessions", "{}", bearer(kAdminKey));
  EXPECT_EQ(created.status, 201) << created.describe();
  auto listed = http("GET", p.port(), "/api/v1/sessions?limit=10", "", bearer(kAdminKey));
  ASSERT_EQ(listed.status, 200) << listed.describe();
  EXPECT_EQ(listed.json()["data"].size(), 2u);  // the one before, the one after
}

TEST(Replicas, UsageTotalsAreExactAcrossBoth) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  FakeProvider fake;
  TempDir dir("parley-replicas");
  const std::string config = dir.write_file(
      "parley.yaml",
      fake.base_config() + "models:\n  fake-model:\n    input: 2.0\n    output: 8.0\n");
  const std::vector<std::string> extra{"--config", config, "--set",
                                       "llm.usage_flush_interval=50ms"};
  ParleyProcess a(replica(db.url(), redis, prefix, extra));
  ParleyProcess b(replica(db.url(), redis, prefix, extra));
  constexpr int kEach = 5;
  for (int i = 0; i < 2 * kEach; ++i) fake.enqueue({{"body", openai_completion_body("Counted.")}});
  for (int i = 0; i < 2 * kEach; ++i) {
    auto r = http("POST", (i % 2 ? b : a).port(), "/v1/chat/completions",
                  openai_chat_request("count me", false, "carol"), bearer(kAdminKey));
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  // Each replica writes its usage in batches; both land in the one table.
  json total;
  EXPECT_TRUE(eventually(
      [&] {
        auto r = http("GET", b.port(), "/api/v1/usage?user_id=carol", "", bearer(kAdminKey));
        total = r.json_or_discarded().value("total", json::object());
        return total.value("requests", 0) == 2 * kEach;
      },
      Millis{5000}, Millis{50}))
      << total.dump();
  EXPECT_EQ(total["input_tokens"], 11 * 2 * kEach);
  EXPECT_EQ(total["output_tokens"], 6 * 2 * kEach);
  EXPECT_NEAR(total["cost_usd"].get<double>(), 0.00007 * 2 * kEach, 1e-12);
}

// The value of redis_commands_total on a replica's /metrics.
double redis_commands(int port) {
  return parley::testing::metric_sample(http("GET", port, "/metrics").body, "redis_commands_total")
      .value_or(-1);
}

// A service key naming its end user in the body: the key's quota and the user's are taken in
// one Lua script, one round trip to Redis per request; a request refused before it names a
// user (a malformed body) still counts against the key.
TEST(Replicas, AServiceKeysQuotaAndItsUsersAreTakenInOneRoundTrip) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  FakeProvider fake;
  TempDir dir("parley-replicas");
  const std::string config = dir.write_file("parley.yaml", fake.base_config());
  ParleyProcess a(replica(db.url(), redis, prefix, {"--config", config}));
  const std::string key = create_key(
      a.port(),
      {{"scope", "service"},
       {"limits",
        {{"key", {{"requests_per_minute", 6}}}, {"user", {{"requests_per_minute", 100}}}}}});
  ASSERT_FALSE(key.empty());
  const HeaderList with_key = {{"X-API-Key", key}};
  for (int i = 0; i < 4; ++i) fake.enqueue({{"body", openai_completion_body("One trip.")}});
  const double before = redis_commands(a.port());
  ASSERT_GE(before, 0);
  for (int i = 0; i < 4; ++i) {
    auto r = http("POST", a.port(), "/v1/chat/completions",
                  openai_chat_request("hello", false, "user-" + std::to_string(i)), with_key);
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  EXPECT_EQ(redis_commands(a.port()) - before, 4.0);
  // Malformed: refused before naming a user, and still the fifth request of the key's six.
  EXPECT_TRUE(is_error(http("POST", a.port(), "/v1/chat/completions", "{not json", with_key), 400,
                       "malformed_json"));
  fake.enqueue({{"body", openai_completion_body("Sixth.")}});
  EXPECT_EQ(http("POST", a.port(), "/v1/chat/completions", openai_chat_request("hi", false, "z"),
                 with_key)
                .status,
            200);
  auto seventh = http("POST", a.port(), "/v1/chat/completions",
                      openai_chat_request("hi", false, "z"), with_key);
  EXPECT_TRUE(is_error(seventh, 429, "rate_limited"));
  EXPECT_NE(seventh.body.find("key-minute"), std::string::npos) << seventh.body;
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
