// Background jobs from the database's queue: on SQLite `parley serve` runs them itself; on
// PostgreSQL `parley worker` processes do, beside the replicas. A user's erasure and the usage
// roll-up are jobs; a failing job is retried with back-off, then dead with its last error
// until an admin retries it; a job held by a worker killed with kill -9 is taken up again once
// its lock lapses; the queue's depth, the jobs' durations and failures are metrics.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <thread>

#include "harness.hpp"
#include "support/metrics_text.hpp"
#include "support/test_postgres.hpp"
#include "support/test_redis.hpp"

namespace {

using namespace parley_it;
using json = nlohmann::json;

const std::string kAdminKey = "itest-workers-admin-key-5c1e8a7b93d04f26";

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

ServeOptions on_shared(const std::string& command, const std::string& database_url,
                       const std::string& redis_url, const std::string& prefix,
                       std::vector<std::string> extra = {}) {
  ServeOptions o;
  o.command = command;
  o.args = {"--set", "storage.url=" + database_url, "--set", "redis.url=" + redis_url,
            "--set", "redis.key_prefix=" + prefix};
  o.args.insert(o.args.end(), extra.begin(), extra.end());
  o.env = {{"PARLEY_ADMIN_KEY", kAdminKey}};
  return o;
}

std::string user_key(int port, const std::string& user) {
  auto r = http("POST", port, "/api/v1/admin/keys",
                json{{"scope", "user"}, {"user_id", user}}.dump(), bearer(kAdminKey));
  EXPECT_EQ(r.status, 201) << r.describe();
  auto j = r.json_or_discarded();
  return j.is_object() && j.contains("key") ? j["key"].get<std::string>() : "";
}

json jobs_of(int port, const std::string& query = "") {
  auto r = http("GET", port, "/api/v1/admin/jobs" + query, "", bearer(kAdminKey));
  EXPECT_EQ(r.status, 200) << r.describe();
  return r.json_or_discarded();
}

using parley::testing::metric_sample;

// Two replicas and one worker: the replicas leave jobs to the worker (PostgreSQL's default),
// which erases a user asked on one replica, and whose key news reaches both replicas at once.
TEST(Workers, AWorkerBesideTwoReplicasErasesAUserAndRollsUpUsage) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  const std::vector<std::string> slow_refresh = {"--set", "auth.key_refresh_interval=1h"};
  ParleyProcess a(on_shared("serve", db.url(), redis, prefix, slow_refresh));
  ParleyProcess b(on_shared("serve", db.url(), redis, prefix, slow_refresh));
  ParleyProcess worker(on_shared("worker", db.url(), redis, prefix));

  const std::string alice = user_key(a.port(), "alice");
  ASSERT_FALSE(alice.empty());
  auto chat =
      http("POST", a.port(), "/api/v1/chat", R"({"message":"my cat is Tibbles"})", bearer(alice));
  ASSERT_EQ(chat.status, 201) << chat.describe();
  ASSERT_EQ(http("GET", b.port(), "/api/v1/sessions", "", bearer(alice)).status, 200);

  auto erased = http("DELETE", b.port(), "/api/v1/users/alice", "", bearer(kAdminKey));
  ASSERT_EQ(erased.status, 202) << erased.describe();
  const auto job = wait_for_job(a.port(), erased.json()["job"]["id"], bearer(kAdminKey));
  ASSERT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["attempts"], 1);
  EXPECT_EQ(job["result"]["deleted"]["sessions"], 1) << job.dump();
  EXPECT_EQ(job["result"]["revoked_api_keys"], 1) << job.dump();
  EXPECT_EQ(db.query("SELECT count(*) FROM messages WHERE content LIKE '%Tibbles%'"), "0");
  // Ran by the worker: the replicas run no jobs on PostgreSQL unless told to.
  EXPECT_TRUE(worker.wait_for_log(
      [&](const json& line) {
        return line.value("message", "") == "job done" && line.value("job", "") == job["id"];
      },
      Millis{2000}));
  EXPECT_FALSE(a.wait_for_log([](const json& l) { return l.value("message", "") == "job done"; },
                              Millis{0}));
  // Alice's key, cached by both replicas for an hour, is refused by both within a second.
  for (ParleyProcess* replica : {&a, &b}) {
    EXPECT_TRUE(eventually(
        [&] {
          return http("GET", replica->port(), "/api/v1/sessions", "", bearer(alice)).status == 401;
        },
        Millis{1000}, Millis{10}));
  }

  // The worker queued the usage roll-up when it started, and ran it.
  EXPECT_TRUE(eventually(
      [&] {
        const json done = jobs_of(a.port(), "?state=done");
        for (const auto& j : done["data"]) {
          if (j["kind"] == "usage.rollup" && j["result"].contains("until")) return true;
        }
        return false;
      },
      Millis{5000}, Millis{50}))
      << jobs_of(a.port()).dump();
  EXPECT_NE(db.query("SELECT rolled_until FROM usage_rollup WHERE name = 'usage_daily'"), "");

  // Its probes and metrics.
  EXPECT_EQ(http("GET", worker.port(), "/api/v1/health/readiness").status, 200);
  auto metrics = http("GET", worker.port(), "/metrics").body;
  EXPECT_TRUE(
      metric_sample(metrics, "job_duration_seconds_count{kind=\"user.erase\",outcome=\"done\"}"))
      << metrics;
  EXPECT_TRUE(metric_sample(metrics, "job_queue_depth{state=\"done\"}")) << metrics;
}

// A connection of the test's own that holds row locks, to keep a job's handler waiting.
class Blocker {
 public:
  explicit Blocker(const std::string& url) : conn_(PQconnectdb(url.c_str())) {}
  ~Blocker() { PQfinish(conn_); }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  bool exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const auto status = PQresultStatus(r);
    PQclear(r);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  }

 private:
  PGconn* conn_;
};

TEST(Workers, AJobHeldByAWorkerKilledWithKillNineIsTakenUpAgain) {
  parley::testing::PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  ParleyProcess serve(on_shared("serve", db.url(), redis, prefix));
  auto created =
      http("POST", serve.port(), "/api/v1/sessions", R"({"user_id":"bo"})", bearer(kAdminKey));
  ASSERT_EQ(created.status, 201) << created.describe();

  // Bo's session is locked by another connection: the erasure waits on it, holding its job.
  Blocker blocker(db.url());
  ASSERT_TRUE(blocker.ok());
  ASSERT_TRUE(blocker.exec("BEGIN"));
  ASSERT_TRUE(blocker.exec("SELECT * FROM sessions WHERE user_id = 'bo' FOR UPDATE"));
  const std::vector<std::string> quick = {"--set", "worker.visibility_timeout=3s", "--set",
                                          "worker.poll_interval=50ms"};
  auto first = std::make_unique<ParleyProcess>(on_shared("worker", db.url(), redis, prefix, quick));
  const std::string first_id = first->ready_line()["worker"];
  auto erased = http("DELETE", serve.port(), "/api/v1/users/bo", "", bearer(kAdminKey));
  ASSERT_EQ(erased.status, 202) << erased.describe();
  const std::string job_id = erased.json()["job"]["id"];
  ASSERT_TRUE(eventually(
      [&] {
        auto j = http("GET", serve.port(), "/api/v1/admin/jobs/" + job_id, "", bearer(kAdminKey))
                     .json_or_discarded();
        // Held by one of its threads: "wrk_.../N".
        return j.is_object() && j["state"] == "running" && j["locked_by"].is_string() &&
               j["locked_by"].get<std::string>().rfind(first_id + "/", 0) == 0;
      },
      Millis{5000}, Millis{20}));

  first->kill9();
  first.reset();
  ASSERT_TRUE(blocker.exec("ROLLBACK"));
  // Still held by the dead worker until its lock lapses; then another worker takes it.
  auto held = http("GET", serve.port(), "/api/v1/admin/jobs/" + job_id, "", bearer(kAdminKey));
  EXPECT_EQ(held.json()["state"], "running") << held.describe();
  ParleyProcess second(on_shared("worker", db.url(), redis, prefix, quick));
  const auto job = wait_for_job(serve.port(), job_id, bearer(kAdminKey));
  ASSERT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["attempts"], 2) << job.dump();
  EXPECT_EQ(job["result"]["deleted"]["sessions"], 1) << job.dump();
  EXPECT_EQ(db.query("SELECT count(*) FROM sessions WHERE user_id = 'bo'"), "0");
}

// On SQLite serve runs the jobs itself. A job that keeps failing is retried with growing
// waits, then dead with its last error; an admin sees it and queues it again.
TEST(Workers, AFailingJobRetriesWithBackOffThenIsDeadUntilAnAdminRetriesIt) {
  ServeOptions o;
  o.env = {{"PARLEY_ADMIN_KEY", kAdminKey}};
  o.args = {"--set", "worker.retry_delay=100ms", "--set", "worker.poll_interval=20ms"};
  ParleyProcess p(o);
  // A job this version has no handler for, with three attempts (as a newer replica might
  // queue, or a bad deployment).
  std::string err;
  ASSERT_TRUE(sqlite_query(p.data_dir() + "/parley.db",
                           "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, "
                           "run_at, last_error, created_at, updated_at) VALUES ('job_test_bad', "
                           "'report.unknown', '{}', 'queued', 0, 3, 0, '', 0, 0)",
                           &err))
      << err;
  auto job = wait_for_job(p.port(), "job_test_bad", bearer(kAdminKey));
  ASSERT_EQ(job["state"], "dead") << job.dump();
  EXPECT_EQ(job["attempts"], 3);
  EXPECT_NE(job["last_error"].get<std::string>().find("no handler for job kind 'report.unknown'"),
            std::string::npos)
      << job.dump();
  // Back-off: 100 ms, then 200 ms (±25%) between the three attempts.
  auto failures = p.json_logs();
  std::vector<int64_t> waits;
  for (const auto& l : failures) {
    if (l.value("message", "") == "job failed; it will be retried" && l["job"] == "job_test_bad") {
      waits.push_back(l["retry_in_ms"].get<int64_t>());
    }
  }
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_GE(waits[0], 75);
  EXPECT_LE(waits[0], 125);
  EXPECT_GE(waits[1], 150);
  EXPECT_LE(waits[1], 250);

  auto dead = jobs_of(p.port(), "?state=dead");
  ASSERT_EQ(dead["data"].size(), 1u) << dead.dump();
  EXPECT_EQ(dead["data"][0]["id"], "job_test_bad");
  EXPECT_EQ(dead["counts"]["dead"], 1);
  EXPECT_TRUE(
      is_error(http("GET", p.port(), "/api/v1/admin/jobs?state=lost", "", bearer(kAdminKey)), 400,
               "invalid_field"));

  const auto metrics = http("GET", p.port(), "/metrics").body;
  EXPECT_EQ(metric_sample(metrics, "job_failures_total{kind=\"report.unknown\",outcome=\"retry\"}"),
            2.0)
      << metrics;
  EXPECT_EQ(metric_sample(metrics, "job_failures_total{kind=\"report.unknown\",outcome=\"dead\"}"),
            1.0)
      << metrics;

  // Retried by an admin: fresh attempts, and (still failing) dead again.
  EXPECT_TRUE(is_error(
      http("POST", p.port(), "/api/v1/admin/jobs/job_missing/retry", "", bearer(kAdminKey)), 404,
      "job_not_found"));
  auto retried =
      http("POST", p.port(), "/api/v1/admin/jobs/job_test_bad/retry", "", bearer(kAdminKey));
  ASSERT_EQ(retried.status, 200) << retried.describe();
  EXPECT_EQ(retried.json()["state"], "queued");
  EXPECT_EQ(retried.json()["attempts"], 0);
  job = wait_for_job(p.port(), "job_test_bad", bearer(kAdminKey));
  EXPECT_EQ(job["state"], "dead") << job.dump();
  EXPECT_EQ(job["attempts"], 3);
  // Only a dead job can be retried: the roll-up queued at start is done.
  const json done = jobs_of(p.port(), "?state=done");
  std::string rollup_id;
  for (const auto& j : done["data"]) {
    if (j["kind"] == "usage.rollup") rollup_id = j["id"];
  }
  ASSERT_FALSE(rollup_id.empty()) << done.dump();
  EXPECT_TRUE(is_error(
      http("POST", p.port(), "/api/v1/admin/jobs/" + rollup_id + "/retry", "", bearer(kAdminKey)),
      409, "job_not_dead"));
}

TEST(Workers, AWorkerThatCannotReachItsDatabaseStopsInThePhaseNamed) {
  auto r = run_parley({"worker", "--set", "storage.url=postgresql://nobody@127.0.0.1:1/none",
                       "--set", "worker.listen="});
  EXPECT_EQ(r.exit_code(), 1) << r.describe();
  EXPECT_NE(r.err.find("startup failed in phase 'storage'"), std::string::npos) << r.describe();
}

}  // namespace
