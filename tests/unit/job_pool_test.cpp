// JobPool (jobs/job_pool.hpp): long background jobs on threads of their own, bounded. Jobs
// run off the caller's thread and in order on one thread; a full queue refuses and says so;
// a throwing job is counted as failed and the pool goes on; stop() finishes the running job,
// drops the waiting ones and refuses new ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "jobs/job_pool.hpp"

namespace {

using parley::jobs::JobPool;
using parley::jobs::JobPoolOptions;

// Outcomes reported by the pool, thread-safe.
struct Outcomes {
  std::mutex mutex;
  std::vector<std::string> seen;
  std::function<void(std::string_view)> callback() {
    return [this](std::string_view o) {
      std::lock_guard lock(mutex);
      seen.emplace_back(o);
    };
  }
  int count(const std::string& outcome) {
    std::lock_guard lock(mutex);
    return static_cast<int>(std::count(seen.begin(), seen.end(), outcome));
  }
};

// A gate a job waits at until the test opens it.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  bool entered = false;
  void wait() {
    std::unique_lock lock(mutex);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void wait_entered() {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    cv.notify_all();
  }
};

template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 2000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

TEST(JobPoolTest, RunsJobsInOrderOffTheCallersThread) {
  Outcomes outcomes;
  JobPool pool(JobPoolOptions{1, 100, outcomes.callback()});
  std::mutex mutex;
  std::vector<int> order;
  std::atomic<bool> other_thread{true};
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pool.submit([&, i] {
      if (std::this_thread::get_id() == caller) other_thread = false;
      std::lock_guard lock(mutex);
      order.push_back(i);
    }));
  }
  ASSERT_TRUE(eventually([&] { return outcomes.count("done") == 20; }));
  EXPECT_TRUE(other_thread);
  std::lock_guard lock(mutex);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

TEST(JobPoolTest, AFullQueueRefusesAndCountsIt) {
  Outcomes outcomes;
  JobPool pool(JobPoolOptions{1, 2, outcomes.callback()});
  Gate gate;
  ASSERT_TRUE(pool.submit([&] { gate.wait(); }));
  gate.wait_entered();  // the one thread is busy; the queue is empty
  EXPECT_TRUE(pool.submit([] {}));
  EXPECT_TRUE(pool.submit([] {}));
  EXPECT_FALSE(pool.submit([] {}));  // the bound
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_EQ(outcomes.count("rejected"), 1);
  gate.release();
  EXPECT_TRUE(eventually([&] { return outcomes.count("done") == 3; }));
}

TEST(JobPoolTest, AThrowingJobIsCountedAndThePoolGoesOn) {
  Outcomes outcomes;
  JobPool pool(JobPoolOptions{1, 10, outcomes.callback()});
  ASSERT_TRUE(pool.submit([] { throw std::runtime_error("extraction failed"); }));
  std::atomic<bool> ran{false};
  ASSERT_TRUE(pool.submit([&] { ran = true; }));
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_EQ(outcomes.count("failed"), 1);
}

TEST(JobPoolTest, StopFinishesTheRunningJobDropsTheRestAndRefusesNewOnes) {
  Outcomes outcomes;
  JobPool pool(JobPoolOptions{1, 10, outcomes.callback()});
  Gate gate;
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.submit([&] {
    gate.wait();
    ++ran;
  }));
  gate.wait_entered();
  ASSERT_TRUE(pool.submit([&] { ++ran; }));
  std::thread stopper([&] { pool.stop(); });
  EXPECT_TRUE(eventually([&] { return pool.stopped(); }));  // stopping; the job still runs
  gate.release();
  stopper.join();
  EXPECT_EQ(ran.load(), 1);  // the running one finished; the waiting one was dropped
  EXPECT_FALSE(pool.submit([] {}));
  pool.stop();  // again: a no-op
}

}  // namespace

namespace {

TEST(JobPoolTest, JobsWaitingAtStopAreCountedAsDropped) {
  Outcomes outcomes;
  JobPool pool(JobPoolOptions{1, 10, outcomes.callback()});
  Gate gate;
  ASSERT_TRUE(pool.submit([&] { gate.wait(); }));
  gate.wait_entered();
  ASSERT_TRUE(pool.submit([] {}));
  ASSERT_TRUE(pool.submit([] {}));
  std::thread stopper([&] { pool.stop(); });
  EXPECT_TRUE(eventually([&] { return pool.stopped(); }));  // stopping; the job still runs
  gate.release();
  stopper.join();
  EXPECT_EQ(outcomes.count("dropped"), 2);
  EXPECT_EQ(outcomes.count("done"), 1);
}

}  // namespace
