// BatchWriter<Item>: the one background writer of the server. Items that a request must not
// wait on a database for (usage records, moderation-log entries, stored idempotent answers)
// are queued here and written in batches by one thread: after `interval` has passed since the
// first item of a batch arrived, or at once when `flush_at` items are queued. A batch is one
// call of the owner's write function, so one transaction instead of one per item.
//
// Bounded: at most `max_queued` items wait. When the queue is full the OLDEST queued item is
// dropped to make room: when storage has been failing for long, the newest data is the most
// useful (today's usage, the latest decisions). Every drop is counted (dropped(), and the
// owner's `on_drop`, which feeds background_items_dropped_total{writer}); the first drop after
// a successful write is also logged.
//
// A failed write is logged (writer name, items, error) and its batch is put back in front of
// what was queued since, for the next attempt (the thread waits max(interval, 1 s) before
// retrying, rather than hammer a failing database); items beyond max_queued are dropped, the
// oldest first, and counted. Nothing is lost silently.
//
// With `key` and `merge` set, an item whose key is already queued is merged into the queued one
// instead of taking a slot (usage per user, model and minute becomes one row). Items in the
// batch being written are never merged into; an item queued meanwhile takes a new slot.
//
// Threading: enqueue(), flush(), for_each_pending(), erase_if(), with_writes_paused() and the
// accessors from any thread. The write function runs on one thread at a time: the writer
// thread, or a thread calling flush() or stop(). start() and stop() belong to the owner. The
// write function, `on_drop` and `on_tick` are called without the queue's lock held, so they
// may take the owner's locks; they must not throw, and must not call flush(), stop() or
// with_writes_paused() (they would wait on themselves). Ownership: the writer owns its items;
// the callbacks usually capture the owner, which must stop() the writer before its own members
// go (declare the writer last, and call stop() in the owner's destructor).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace parley::jobs {

namespace detail {
// Logging lives in batch_writer.cpp: core/ headers do not pull in obs/.
void log_batch_write_failed(std::string_view writer, size_t items, std::string_view error);
void log_batch_queue_full(std::string_view writer, size_t max_queued);
}  // namespace detail

template <typename Item>
class BatchWriter {
 public:
  struct Options {
    // For logs and the metric label ("usage", "moderation_log", "idempotency").
    std::string name;
    // How long to gather after the first item of a batch before writing it.
    std::chrono::milliseconds interval{100};
    // Write at once when this many items are queued.
    size_t flush_at = 512;
    // The bound; at least 1.
    size_t max_queued = 100'000;
    // Optional merging: both set, or neither. `key` must be cheap and deterministic.
    std::function<std::string(const Item&)> key;
    std::function<void(Item& into, Item&& from)> merge;
    // Called with the number of items just dropped (never 0); may be unset.
    std::function<void(std::string_view writer, int64_t dropped)> on_drop;
    // Optional housekeeping on the writer thread (idempotency purges expired keys): called every
    // `tick_interval` between the thread's writes, from start() until stop(). A flush() from
    // another thread may run meanwhile.
    std::chrono::milliseconds tick_interval{0};
    std::function<void()> on_tick;
  };
  // Writes one batch, oldest item first, and says whether it is stored. The batch must not be
  // changed: for_each_pending() reads it meanwhile, and a failed batch is queued again as it is.
  using WriteFn = std::function<Result<void>(const std::vector<Item>& batch)>;

  // Starts no thread: until start(), items are written only by flush() (and stop()).
  BatchWriter(Options options, WriteFn write)
      : options_(std::move(options)), write_(std::move(write)) {
    options_.max_queued = std::max<size_t>(options_.max_queued, 1);
    options_.flush_at = std::max<size_t>(options_.flush_at, 1);
  }
  ~BatchWriter() { stop(); }
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Starts the writer thread. Does nothing when it runs already or after stop().
  void start() {
    std::lock_guard lock(mutex_);
    if (stopping_ || thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
  }

  // Stops the thread (waiting for a write in progress), then writes what is left. Idempotent.
  // Items enqueued after stop() are written only by flush().
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    flush();
  }

  // Queues an item (merged into a queued one with the same key, when merging is set); when the
  // queue is full the oldest queued item is dropped and counted. Never waits on a write.
  void enqueue(Item item) {
    int64_t dropped = 0;
    bool warn = false;
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (merging()) {
        std::string key = options_.key(item);
        if (auto it = index_.find(key); it != index_.end()) {
          options_.merge(queue_[static_cast<size_t>(it->second - base_)], std::move(item));
          return;
        }
        while (queue_.size() >= options_.max_queued) dropped += drop_oldest(warn);
        index_.insert_or_assign(std::move(key), base_ + queue_.size());
      } else {
        while (queue_.size() >= options_.max_queued) dropped += drop_oldest(warn);
      }
      if (queue_.empty()) first_queued_at_ = std::chrono::steady_clock::now();
      queue_.push_back(std::move(item));
      // Wake the thread when a batch begins (it then gathers for `interval`) or is full; not at
      // every item, which would cost a system call each.
      wake = queue_.size() == 1 || queue_.size() == options_.flush_at;
    }
    report_drops(dropped, warn);
    if (wake) wake_.notify_one();
  }

  // Writes everything queued now, in one batch, and returns when it is done: true when it was
  // stored (or nothing was queued), false when the write failed (the items are queued again).
  // A write in progress on another thread is waited for first.
  bool flush() {
    std::lock_guard writing(write_mutex_);
    return write_queued();
  }

  // Calls f(const Item&) for every item not yet stored: the batch being written (until its write
  // returns), then the queue, oldest first. f runs under the queue's lock: keep it short, and do
  // not call back into the writer.
  template <typename F>
  void for_each_pending(F f) const {
    std::lock_guard lock(mutex_);
    for (const Item& item : writing_) f(item);
    for (const Item& item : queue_) f(item);
  }

  // Removes the queued items for which pred(const Item&) is true and returns how many; they are
  // not counted as dropped. The batch being written, if any, is NOT touched, and if its write
  // fails its items return to the queue: to remove an item wherever it is, call erase_if inside
  // with_writes_paused().
  template <typename Pred>
  size_t erase_if(Pred pred) {
    std::lock_guard lock(mutex_);
    const size_t removed = std::erase_if(queue_, [&](const Item& item) { return pred(item); });
    if (removed > 0) rebuild_index();
    return removed;
  }

  // Runs f() with no write in progress (it waits for one to return, failed batches queued again)
  // and none starting until f returns; returns what f returns. For an erasure that must know
  // nothing of a user's is on its way to storage once it is done. f may call enqueue(),
  // erase_if(), for_each_pending() and the accessors, not flush() or stop().
  template <typename F>
  auto with_writes_paused(F f) {
    std::lock_guard writing(write_mutex_);
    return f();
  }

  // Items queued, not counting a batch being written.
  size_t queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }
  // Items dropped for the bound since construction.
  int64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }
  // Writes that failed since construction.
  int64_t failed_writes() const {
    std::lock_guard lock(mutex_);
    return failed_writes_;
  }
  const std::string& name() const { return options_.name; }

 private:
  using Clock = std::chrono::steady_clock;
  // The shortest wait before a failed write is tried again by the thread.
  static constexpr std::chrono::milliseconds kMinRetryDelay{1000};

  bool merging() const { return options_.key && options_.merge; }

  // mutex_ held. Drops queue_.front(); sets `warn` for the first drop since a successful write.
  int64_t drop_oldest(bool& warn) {
    if (merging()) {
      // The index may name a later item with the same key (after a failed write put a batch
      // back); only an entry for this very item goes.
      if (auto it = index_.find(options_.key(queue_.front()));
          it != index_.end() && it->second == base_) {
        index_.erase(it);
      }
    }
    queue_.pop_front();
    ++base_;
    ++dropped_;
    if (!overflow_logged_) {
      overflow_logged_ = true;
      warn = true;
    }
    return 1;
  }

  // mutex_ held. Positions restart at 0; a key queued twice maps to its latest item.
  void rebuild_index() {
    index_.clear();
    base_ = 0;
    if (!merging()) return;
    for (size_t i = 0; i < queue_.size(); ++i) index_.insert_or_assign(options_.key(queue_[i]), i);
  }

  // Called without mutex_.
  void report_drops(int64_t dropped, bool warn) {
    if (warn) detail::log_batch_queue_full(options_.name, options_.max_queued);
    if (dropped > 0 && options_.on_drop) options_.on_drop(options_.name, dropped);
  }

  // write_mutex_ held, mutex_ not. Writes the whole queue as one batch.
  bool write_queued() {
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return true;
      writing_.assign(std::make_move_iterator(queue_.begin()),
                      std::make_move_iterator(queue_.end()));
      queue_.clear();
      index_.clear();
      base_ = 0;
    }
    // writing_ is read here without mutex_: only this function changes it, under write_mutex_,
    // and for_each_pending() only reads it.
    const Result<void> written = write_(writing_);
    const size_t count = writing_.size();
    std::vector<Item> done;  // destroyed outside the lock
    int64_t dropped = 0;
    bool warn = false;
    {
      std::lock_guard lock(mutex_);
      if (written.ok()) {
        done.swap(writing_);
        overflow_logged_ = false;
      } else {
        ++failed_writes_;
        // Back in front of what was queued since, within the bound: the queue alone never
        // exceeds it, so the excess is the oldest of the batch.
        const size_t total = writing_.size() + queue_.size();
        const size_t excess = std::min(
            writing_.size(), total > options_.max_queued ? total - options_.max_queued : 0);
        queue_.insert(
            queue_.begin(),
            std::make_move_iterator(writing_.begin() + static_cast<std::ptrdiff_t>(excess)),
            std::make_move_iterator(writing_.end()));
        writing_.clear();
        if (excess > 0) {
          dropped = static_cast<int64_t>(excess);
          dropped_ += dropped;
          if (!overflow_logged_) {
            overflow_logged_ = true;
            warn = true;
          }
        }
        first_queued_at_ = Clock::now();
        rebuild_index();
      }
    }
    if (!written.ok())
      detail::log_batch_write_failed(options_.name, count, written.error().message);
    report_drops(dropped, warn);
    return written.ok();
  }

  void run() {
    const bool ticking = options_.on_tick && options_.tick_interval.count() > 0;
    auto next_tick = Clock::now() + options_.tick_interval;
    auto has_work = [this] { return stopping_ || !queue_.empty(); };
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (ticking) {
        wake_.wait_until(lock, next_tick, has_work);
      } else {
        wake_.wait(lock, has_work);
      }
      if (stopping_) break;
      if (!queue_.empty()) {
        // Gather what arrives within the interval after the batch's first item, unless the
        // batch fills first.
        wake_.wait_until(lock, first_queued_at_ + options_.interval,
                         [this] { return stopping_ || queue_.size() >= options_.flush_at; });
        if (stopping_) break;  // stop() writes what is left
        lock.unlock();
        bool ok = true;
        {
          std::lock_guard writing(write_mutex_);
          ok = write_queued();
        }
        lock.lock();
        if (!ok) {
          wake_.wait_for(lock,
                         std::max<std::chrono::milliseconds>(options_.interval, kMinRetryDelay),
                         [this] { return stopping_; });
        }
      }
      if (ticking && !stopping_ && Clock::now() >= next_tick) {
        next_tick = Clock::now() + options_.tick_interval;
        lock.unlock();
        options_.on_tick();
        lock.lock();
      }
    }
  }

  Options options_;
  WriteFn write_;

  mutable std::mutex mutex_;  // the queue's lock: guards the members from here to write_mutex_
  std::condition_variable wake_;
  std::deque<Item> queue_;
  // Merging: key -> sequence number of its queued item; queue_[seq - base_] is the item.
  // Sequence numbers let drop_oldest() pop the front without renumbering every entry.
  std::unordered_map<std::string, size_t> index_;
  size_t base_ = 0;            // the sequence number of queue_.front()
  std::vector<Item> writing_;  // the batch being written (changed only under write_mutex_)
  Clock::time_point first_queued_at_{};
  bool stopping_ = false;
  bool overflow_logged_ = false;  // a drop was logged since the last successful write
  int64_t dropped_ = 0;
  int64_t failed_writes_ = 0;

  std::mutex write_mutex_;  // one write at a time; taken before mutex_, never after
  std::thread thread_;
};

}  // namespace parley::jobs
