// The job runner (queue/worker.hpp) over a real SQLite queue: handlers' answers are kept,
// failures are retried with doubling waits and then dead, an enqueue in the process wakes an
// idle worker at once, stop() lets a running job finish, a long job keeps its lock, and
// periodic jobs are queued.
#include "queue/worker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/clock.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using parley::queue::Worker;
using parley::queue::WorkerSettings;
using parley::store::Job;
using parley::testing::TempDir;

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest() {
    parley::store::sqlite::Options options;
    options.path = dir_.path() + "/parley.db";
    auto opened = parley::store::sqlite::open(options);
    if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
    storage_ = std::move(opened).value();
  }
  ~WorkerTest() override { storage_->close(); }

  static WorkerSettings quick() {
    WorkerSettings s;
    s.concurrency = 2;
    s.poll_interval = 20ms;
    s.retry_delay = 10ms;
    s.retry_max_delay = 40ms;
    return s;
  }

  Job enqueue(const std::string& kind, int64_t max_attempts = 5) {
    auto job = storage_->jobs().enqueue({kind, R"({"n":1})", 0, max_attempts, ""}, now());
    EXPECT_TRUE(job.ok()) << job.error().message;
    return job.ok() ? *job : Job{};
  }

  // Polls the job until it is done or dead (or 10 s pass).
  Job finished(const std::string& id) {
    Job j;
    for (int i = 0; i < 1000; ++i) {
      auto got = storage_->jobs().get(id);
      if (got.ok()) {
        j = *got;
        if (j.state == "done" || j.state == "dead") return j;
      }
      std::this_thread::sleep_for(10ms);
    }
    return j;
  }

  static int64_t now() { return parley::to_unix_ms(std::chrono::system_clock::now()); }

  TempDir dir_{"parley-worker"};
  std::unique_ptr<parley::store::Storage> storage_;
  const parley::Clock& clock_ = parley::Clock::system();
};

TEST(WorkerBackoff, DoublesFromTheFirstDelayUpToTheLongest) {
  WorkerSettings s;
  s.retry_delay = 5s;
  s.retry_max_delay = 60s;
  EXPECT_EQ(Worker::backoff(s, 1), 5s);
  EXPECT_EQ(Worker::backoff(s, 2), 10s);
  EXPECT_EQ(Worker::backoff(s, 3), 20s);
  EXPECT_EQ(Worker::backoff(s, 4), 40s);
  EXPECT_EQ(Worker::backoff(s, 5), 60s);
  EXPECT_EQ(Worker::backoff(s, 500), 60s);
}

TEST_F(WorkerTest, AHandlersAnswerIsKeptOnTheDoneJob) {
  Worker worker(storage_->jobs(), quick(), clock_, nullptr, "w1");
  worker.handle("echo", [](const Job& job) -> parley::Result<nlohmann::json> {
    return nlohmann::json{{"seen", nlohmann::json::parse(job.payload_json)["n"]}};
  });
  worker.start();
  const Job job = finished(enqueue("echo").id);
  EXPECT_EQ(job.state, "done");
  EXPECT_EQ(job.attempts, 1);
  EXPECT_EQ(job.result_json, R"({"seen":1})");
}

TEST_F(WorkerTest, AFailingJobIsRetriedThenDeadWithItsLastError) {
  Worker worker(storage_->jobs(), quick(), clock_, nullptr, "w1");
  std::atomic<int> calls{0};
  worker.handle("flaky", [&](const Job& job) -> parley::Result<nlohmann::json> {
    ++calls;
    return parley::Error::unavailable("attempt " + std::to_string(job.attempts) + " failed");
  });
  worker.start();
  const Job job = finished(enqueue("flaky", 3).id);
  EXPECT_EQ(job.state, "dead");
  EXPECT_EQ(job.attempts, 3);
  EXPECT_EQ(job.last_error, "attempt 3 failed");
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(WorkerTest, AHandlerThatThrowsFailsItsJobAndTheWorkerGoesOn) {
  Worker worker(storage_->jobs(), quick(), clock_, nullptr, "w1");
  worker.handle("throws", [](const Job&) -> parley::Result<nlohmann::json> {
    throw std::runtime_error("boom");
  });
  worker.handle("echo", [](const Job&) -> parley::Result<nlohmann::json> {
    return nlohmann::json::object();
  });
  worker.start();
  const Job bad = finished(enqueue("throws", 1).id);
  EXPECT_EQ(bad.state, "dead");
  EXPECT_NE(bad.last_error.find("boom"), std::string::npos) << bad.last_error;
  EXPECT_EQ(finished(enqueue("echo").id).state, "done");
}

TEST_F(WorkerTest, WakeTakesAJobAtOnceRatherThanAtTheNextPoll) {
  WorkerSettings s = quick();
  s.poll_interval = 60s;
  s.concurrency = 1;
  Worker worker(storage_->jobs(), s, clock_, nullptr, "w1");
  worker.handle("echo", [](const Job&) -> parley::Result<nlohmann::json> {
    return nlohmann::json::object();
  });
  worker.start();
  std::this_thread::sleep_for(50ms);  // idle: waiting out its minute
  const Job job = enqueue("echo");
  worker.wake();
  EXPECT_EQ(finished(job.id).state, "done");  // finished() gives up after 10 s
}

TEST_F(WorkerTest, StopLetsTheRunningJobFinish) {
  Worker worker(storage_->jobs(), quick(), clock_, nullptr, "w1");
  std::atomic<bool> running{false};
  worker.handle("slow", [&](const Job&) -> parley::Result<nlohmann::json> {
    running = true;
    std::this_thread::sleep_for(200ms);
    return nlohmann::json{{"finished", true}};
  });
  worker.start();
  const Job job = enqueue("slow");
  for (int i = 0; i < 500 && !running; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(running);
  worker.stop();
  auto got = storage_->jobs().get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, "done");
  EXPECT_EQ(got->result_json, R"({"finished":true})");
}

TEST_F(WorkerTest, TwoWorkersShareTheQueueAndRunEveryJobOnce) {
  std::atomic<int> runs{0};
  auto count = [&](const Job&) -> parley::Result<nlohmann::json> {
    ++runs;
    return nlohmann::json::object();
  };
  Worker a(storage_->jobs(), quick(), clock_, nullptr, "wa");
  Worker b(storage_->jobs(), quick(), clock_, nullptr, "wb");
  a.handle("count", count);
  b.handle("count", count);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(enqueue("count").id);
  a.start();
  b.start();
  for (const auto& id : ids) EXPECT_EQ(finished(id).state, "done");
  EXPECT_EQ(runs.load(), 40);
}

TEST_F(WorkerTest, AJobRunningLongerThanTheVisibilityTimeoutKeepsItsLockAndRunsOnce) {
  WorkerSettings settings = quick();
  settings.visibility_timeout = 500ms;  // renewed every 166 ms while the job runs
  std::atomic<int> runs{0};
  auto slow = [&](const Job&) -> parley::Result<nlohmann::json> {
    ++runs;
    std::this_thread::sleep_for(2000ms);  // four timeouts
    return nlohmann::json::object();
  };
  Worker a(storage_->jobs(), settings, clock_, nullptr, "wa");
  Worker b(storage_->jobs(), settings, clock_, nullptr, "wb");
  a.handle("slow", slow);
  b.handle("slow", slow);
  const Job job = enqueue("slow");
  a.start();
  b.start();  // polls every 20 ms: it would take the job as soon as its lock lapsed
  const Job done = finished(job.id);
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(runs.load(), 1);
}

TEST_F(WorkerTest, PeriodicJobsAreQueuedAtStartAndThenEveryInterval) {
  WorkerSettings s = quick();
  Worker worker(storage_->jobs(), s, clock_, nullptr, "w1");
  std::atomic<int> runs{0};
  worker.handle("tick", [&](const Job&) -> parley::Result<nlohmann::json> {
    ++runs;
    return nlohmann::json::object();
  });
  worker.every({"tick", 150ms});
  worker.start();
  for (int i = 0; i < 400 && runs < 3; ++i) std::this_thread::sleep_for(5ms);
  worker.stop();
  EXPECT_GE(runs.load(), 3);
  EXPECT_LE(runs.load(), 12);  // every 150 ms for at most two seconds, never each poll
}

}  // namespace
