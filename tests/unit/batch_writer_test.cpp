// BatchWriter (jobs/batch_writer.hpp), the background writer behind usage records, the
// moderation log and stored idempotent answers: items are written in order, merged by key, at
// once past flush_at or after the interval; a full queue drops the oldest and reports the count;
// a failed batch goes back in front (within the bound) and is written by the next attempt;
// flush() is synchronous and waits for a write in progress; stop() writes what is left, once;
// the batch being written stays visible to for_each_pending(); erase_if() removes queued items,
// and inside with_writes_paused() also those of a failed batch in flight; housekeeping ticks
// run on the writer thread; and four threads enqueueing at once lose nothing.
//
// The write functions here record what they are given; a Gate holds a write until the test has
// looked. Intervals are an hour unless a test is about them, so that only flush_at, flush() and
// stop() write.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/result.hpp"
#include "jobs/batch_writer.hpp"

namespace {

using parley::Error;
using parley::Result;
using parley::jobs::BatchWriter;
using namespace std::chrono_literals;

constexpr auto kPatience = std::chrono::seconds(5);  // for a condition that comes at once

// What the write function was given, batch by batch; the next `fail_next` writes fail.
struct Sink {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::vector<int>> batches;
  int fail_next = 0;

  BatchWriter<int>::WriteFn writer() {
    return [this](const std::vector<int>& batch) -> Result<void> {
      std::lock_guard lock(mutex);
      changed.notify_all();
      if (fail_next > 0) {
        --fail_next;
        return Error::unavailable("database is down");
      }
      batches.push_back(batch);
      return parley::success();
    };
  }
  std::vector<int> all() {
    std::lock_guard lock(mutex);
    std::vector<int> items;
    for (const auto& b : batches) items.insert(items.end(), b.begin(), b.end());
    return items;
  }
  size_t batch_count() {
    std::lock_guard lock(mutex);
    return batches.size();
  }
  bool wait_for_items(size_t n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, kPatience, [&] {
      size_t total = 0;
      for (const auto& b : batches) total += b.size();
      return total >= n;
    });
  }
};

// Holds the writes that pass() until release(); entered() says one is waiting.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool entered = false;
  bool open = false;

  void pass() {
    std::unique_lock lock(mutex);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  bool wait_entered() {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, kPatience, [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    cv.notify_all();
  }
};

BatchWriter<int>::Options options(size_t max_queued = 1000) {
  BatchWriter<int>::Options o;
  o.name = "test";
  o.interval = std::chrono::hours(1);
  o.flush_at = 1000;
  o.max_queued = max_queued;
  return o;
}

TEST(BatchWriterTest, WritesItemsInOrderInOneBatch) {
  Sink sink;
  BatchWriter<int> writer(options(), sink.writer());
  for (int i = 1; i <= 5; ++i) writer.enqueue(i);
  EXPECT_EQ(writer.queued(), 5u);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(writer.queued(), 0u);
  EXPECT_EQ(sink.batch_count(), 1u);
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2, 3, 4, 5}));
  // Nothing queued: nothing written.
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.batch_count(), 1u);
}

struct Counted {
  std::string key;
  int n = 0;
};

BatchWriter<Counted>::Options merging(size_t max_queued = 1000) {
  BatchWriter<Counted>::Options o;
  o.name = "test";
  o.interval = std::chrono::hours(1);
  o.flush_at = 1000;
  o.max_queued = max_queued;
  o.key = [](const Counted& c) { return c.key; };
  o.merge = [](Counted& into, Counted&& from) { into.n += from.n; };
  return o;
}

// Written batches as "key=n" strings.
struct CountedSink {
  std::vector<std::string> rows;
  BatchWriter<Counted>::WriteFn writer() {
    return [this](const std::vector<Counted>& batch) -> Result<void> {
      for (const auto& c : batch) rows.push_back(c.key + "=" + std::to_string(c.n));
      return parley::success();
    };
  }
};

TEST(BatchWriterTest, MergesItemsWithTheSameKey) {
  CountedSink sink;
  BatchWriter<Counted> writer(merging(), sink.writer());
  writer.enqueue({"a", 1});
  writer.enqueue({"b", 2});
  writer.enqueue({"a", 3});
  writer.enqueue({"a", 10});
  EXPECT_EQ(writer.queued(), 2u);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.rows, (std::vector<std::string>{"a=14", "b=2"}));
}

TEST(BatchWriterTest, AKeyDroppedFromTheFrontTakesANewSlotAndMergesAgain) {
  CountedSink sink;
  BatchWriter<Counted> writer(merging(/*max_queued=*/2), sink.writer());
  writer.enqueue({"a", 1});
  writer.enqueue({"b", 1});
  writer.enqueue({"c", 1});  // a goes
  writer.enqueue({"a", 2});  // b goes; a is queued anew
  writer.enqueue({"c", 5});  // merged
  writer.enqueue({"a", 3});  // merged
  EXPECT_EQ(writer.dropped(), 2);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.rows, (std::vector<std::string>{"c=6", "a=5"}));
}

TEST(BatchWriterTest, FlushAtWritesWithoutWaitingForTheInterval) {
  Sink sink;
  auto o = options();
  o.flush_at = 3;
  BatchWriter<int> writer(o, sink.writer());
  writer.start();
  for (int i = 1; i <= 3; ++i) writer.enqueue(i);
  ASSERT_TRUE(sink.wait_for_items(3));  // long before the hour
  EXPECT_EQ(sink.batch_count(), 1u);
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2, 3}));
}

TEST(BatchWriterTest, IntervalWritesAPartialBatch) {
  Sink sink;
  auto o = options();
  o.interval = 5ms;
  BatchWriter<int> writer(o, sink.writer());
  writer.start();
  writer.enqueue(7);
  ASSERT_TRUE(sink.wait_for_items(1));
  EXPECT_EQ(sink.all(), (std::vector<int>{7}));
}

TEST(BatchWriterTest, FullQueueDropsTheOldestAndReportsTheCount) {
  Sink sink;
  std::vector<std::pair<std::string, int64_t>> drops;
  auto o = options(/*max_queued=*/3);
  o.on_drop = [&](std::string_view writer, int64_t n) { drops.emplace_back(writer, n); };
  BatchWriter<int> writer(o, sink.writer());
  for (int i = 1; i <= 5; ++i) writer.enqueue(i);
  EXPECT_EQ(writer.queued(), 3u);
  EXPECT_EQ(writer.dropped(), 2);
  int64_t reported = 0;
  for (const auto& [name, n] : drops) {
    EXPECT_EQ(name, "test");
    reported += n;
  }
  EXPECT_EQ(reported, 2);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.all(), (std::vector<int>{3, 4, 5}));
}

TEST(BatchWriterTest, FailedWriteIsRetriedWithTheSameItemsAndNothingIsLost) {
  Sink sink;
  sink.fail_next = 1;
  BatchWriter<int> writer(options(), sink.writer());
  writer.enqueue(1);
  writer.enqueue(2);
  EXPECT_FALSE(writer.flush());
  EXPECT_EQ(writer.failed_writes(), 1);
  EXPECT_EQ(writer.queued(), 2u);
  writer.enqueue(3);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.batch_count(), 1u);
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(writer.dropped(), 0);
}

TEST(BatchWriterTest, FailedBatchGoesBackInFrontWithinTheBound) {
  Sink sink;
  sink.fail_next = 1;
  auto write = sink.writer();
  BatchWriter<int>* during = nullptr;
  BatchWriter<int> writer(options(/*max_queued=*/3), [&](const std::vector<int>& batch) {
    if (during) {  // queued while the batch is being written
      during->enqueue(4);
      during->enqueue(5);
      during = nullptr;
    }
    return write(batch);
  });
  during = &writer;
  for (int i = 1; i <= 3; ++i) writer.enqueue(i);
  EXPECT_FALSE(writer.flush());
  // [1 2 3] back in front of [4 5], with room for three: the two oldest go.
  EXPECT_EQ(writer.dropped(), 2);
  EXPECT_EQ(writer.queued(), 3u);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.all(), (std::vector<int>{3, 4, 5}));
}

TEST(BatchWriterTest, FlushWaitsForTheWriteInProgressAndWritesWhatIsQueued) {
  Gate gate;
  Sink sink;
  auto write = sink.writer();
  auto o = options();
  o.flush_at = 1;
  BatchWriter<int> writer(o, [&](const std::vector<int>& batch) {
    gate.pass();
    return write(batch);
  });
  writer.start();
  writer.enqueue(1);
  ASSERT_TRUE(gate.wait_entered());  // the thread is writing [1]
  writer.enqueue(2);
  auto flushed = std::async(std::launch::async, [&] { return writer.flush(); });
  EXPECT_EQ(flushed.wait_for(20ms), std::future_status::timeout);
  gate.release();
  EXPECT_TRUE(flushed.get());
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2}));
}

TEST(BatchWriterTest, StopWritesWhatIsLeftAndIsIdempotent) {
  Sink sink;
  BatchWriter<int> writer(options(), sink.writer());
  writer.start();
  writer.enqueue(1);
  writer.enqueue(2);
  writer.stop();
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2}));
  writer.stop();
  EXPECT_EQ(sink.batch_count(), 1u);
  // After stop() only flush() writes.
  writer.enqueue(3);
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2, 3}));
}

TEST(BatchWriterTest, PendingItemsIncludeTheBatchBeingWritten) {
  Gate gate;
  Sink sink;
  auto write = sink.writer();
  auto o = options();
  o.flush_at = 1;
  BatchWriter<int> writer(o, [&](const std::vector<int>& batch) {
    gate.pass();
    return write(batch);
  });
  writer.start();
  writer.enqueue(1);
  ASSERT_TRUE(gate.wait_entered());  // [1] is being written, not yet stored
  writer.enqueue(2);
  std::vector<int> pending;
  writer.for_each_pending([&](int item) { pending.push_back(item); });
  EXPECT_EQ(pending, (std::vector<int>{1, 2}));
  EXPECT_EQ(writer.queued(), 1u);
  gate.release();
  writer.stop();
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 2}));
  pending.clear();
  writer.for_each_pending([&](int item) { pending.push_back(item); });
  EXPECT_TRUE(pending.empty());
}

TEST(BatchWriterTest, EraseIfRemovesQueuedItems) {
  Sink sink;
  BatchWriter<int> writer(options(), sink.writer());
  for (int i = 1; i <= 6; ++i) writer.enqueue(i);
  EXPECT_EQ(writer.erase_if([](int i) { return i % 2 == 0; }), 3u);
  EXPECT_EQ(writer.queued(), 3u);
  EXPECT_EQ(writer.dropped(), 0);  // erased, not dropped
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.all(), (std::vector<int>{1, 3, 5}));
}

TEST(BatchWriterTest, EraseIfKeepsMergingRight) {
  CountedSink sink;
  BatchWriter<Counted> writer(merging(), sink.writer());
  writer.enqueue({"a", 1});
  writer.enqueue({"b", 1});
  writer.enqueue({"c", 1});
  EXPECT_EQ(writer.erase_if([](const Counted& c) { return c.key == "a"; }), 1u);
  writer.enqueue({"c", 2});
  writer.enqueue({"a", 4});
  EXPECT_TRUE(writer.flush());
  EXPECT_EQ(sink.rows, (std::vector<std::string>{"b=1", "c=3", "a=4"}));
}

// The erasure's guarantee (idempotency's forget_user): inside with_writes_paused() no write is
// in flight, and a batch whose write failed is back in the queue, where erase_if finds it.
TEST(BatchWriterTest, PausedWritesWaitForTheWriteInFlight) {
  Gate gate;
  Sink sink;
  sink.fail_next = 1;
  auto write = sink.writer();
  auto o = options();
  o.flush_at = 1;
  BatchWriter<int> writer(o, [&](const std::vector<int>& batch) {
    gate.pass();
    return write(batch);
  });
  writer.start();
  writer.enqueue(1);
  ASSERT_TRUE(gate.wait_entered());  // [1] is being written, and will fail
  std::atomic<bool> ran{false};
  auto erased = std::async(std::launch::async, [&] {
    return writer.with_writes_paused([&] {
      ran = true;
      return writer.erase_if([](int i) { return i == 1; });
    });
  });
  EXPECT_EQ(erased.wait_for(10ms), std::future_status::timeout);
  EXPECT_FALSE(ran.load());
  gate.release();
  EXPECT_EQ(erased.get(), 1u);
  writer.stop();
  EXPECT_TRUE(sink.all().empty());
  EXPECT_EQ(writer.failed_writes(), 1);
}

TEST(BatchWriterTest, TicksRunOnTheWriterThread) {
  std::mutex mutex;
  std::condition_variable ticked;
  int ticks = 0;
  std::thread::id where;
  Sink sink;
  auto o = options();
  o.tick_interval = 1ms;
  o.on_tick = [&] {
    std::lock_guard lock(mutex);
    ++ticks;
    where = std::this_thread::get_id();
    ticked.notify_all();
  };
  BatchWriter<int> writer(o, sink.writer());
  writer.start();
  {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(ticked.wait_for(lock, kPatience, [&] { return ticks >= 2; }));
    EXPECT_NE(where, std::this_thread::get_id());
  }
  writer.stop();
}

TEST(BatchWriterTest, ConcurrentEnqueuesAreAllWrittenInEachThreadsOrder) {
  struct Tagged {
    int thread = 0;
    int seq = 0;
  };
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10'000;
  std::mutex mutex;
  int64_t written = 0;
  std::vector<int> last(kThreads, -1);
  bool in_order = true;
  BatchWriter<Tagged>::Options o;
  o.name = "test";
  o.interval = 1ms;
  o.flush_at = 512;
  o.max_queued = 1'000'000;
  BatchWriter<Tagged> writer(o, [&](const std::vector<Tagged>& batch) -> Result<void> {
    std::lock_guard lock(mutex);
    for (const auto& t : batch) {
      if (t.seq != last[t.thread] + 1) in_order = false;
      last[t.thread] = t.seq;
      ++written;
    }
    return parley::success();
  });
  writer.start();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&writer, t] {
      for (int i = 0; i < kPerThread; ++i) writer.enqueue(Tagged{t, i});
    });
  }
  for (auto& thread : threads) thread.join();
  writer.stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(written, int64_t{kThreads} * kPerThread);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(writer.dropped(), 0);
}

}  // namespace
