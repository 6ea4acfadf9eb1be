// Rate limiting and concurrency limits: the interface every replica shares them through, the
// arithmetic, and the in-process implementation.
//
// The algorithm is GCRA (the generic cell rate algorithm), a token bucket kept as one number
// per bucket, its "theoretical arrival time" (TAT):
//   each unit of cost pushes TAT forward by the emission interval T = window / quota;
//   a request is allowed when the new TAT is no further ahead of now than burst * T.
// One number per bucket is what makes the Redis implementation (limits/redis_limiter.cpp) a
// short Lua script with the same semantics as the one in memory here.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "core/task.hpp"

namespace parley::limits {

struct Quota {
  std::string_view name;  // the policy's name in RateLimit headers: "key-minute", "user-tokens"
  int64_t quota = 0;      // units allowed per window (requests or tokens); > 0
  int64_t window_ms = 60'000;
  int64_t burst = 0;  // units that may arrive at once; 0 = quota
};

struct Decision {
  bool allowed = true;
  int64_t remaining = 0;       // units left in the bucket after this request
  int64_t reset_ms = 0;        // until the bucket is full again
  int64_t retry_after_ms = 0;  // when refused: until a request of this cost would pass
};

// The arithmetic both implementations share, in milliseconds since an epoch of the caller's.
struct Gcra {
  explicit Gcra(const Quota& quota);
  double interval = 0;   // ms per unit
  double limit = 0;      // burst * interval
  double tolerance = 0;  // limit plus a hair for rounding (see the .cpp)
  // Whether `cost` units fit a bucket whose TAT is `tat` (already no earlier than `now`). A
  // zero-cost check passes while the bucket holds at least part of a unit.
  bool fits(double tat, double now, int64_t cost) const;
  // The decision for a bucket at `tat`; `charged`: the cost was added (the TAT is now
  // tat + interval * cost).
  Decision decide(double tat, double now, int64_t cost, bool fits, bool charged) const;
};

// One bucket a request takes from.
struct Take {
  std::string key;
  Quota quota;
  int64_t cost = 1;
  // Taken even past the limit (cost learned after the fact, like tokens used): later requests
  // wait until the debt is paid.
  bool force = false;
};

// One concurrency limit a request holds a place in.
struct Slot {
  std::string key;
  int64_t max = 0;  // <= 0: no limit
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Takes from every bucket at once: when any bucket that is not forced refuses, none of those
  // is charged (forced ones always are). One Decision per take, in order; the request passes
  // when every one is allowed. kUnavailable when the shared store cannot answer.
  virtual Task<Result<std::vector<Decision>>> acquire(std::vector<Take> takes, int64_t now_ms) = 0;
  // Takes a place in every slot for `holder` (unique per request), all or none. The index of
  // the first slot that is full, or nullopt when every place was taken. A place is a lease of
  // `lease_ms`: its holder renews it while it runs, and one whose process died frees itself.
  virtual Task<Result<std::optional<size_t>>> enter(std::vector<Slot> slots, std::string holder,
                                                    int64_t now_ms) = 0;
  virtual Task<Result<void>> renew(std::vector<std::string> keys, std::string holder,
                                   int64_t now_ms) = 0;
  // Gives the places back. Never blocks; may complete after it returns. From any thread.
  virtual void leave(std::vector<std::string> keys, std::string holder) = 0;
  // Charges forced takes without waiting for the answer (tokens after a call). Any thread.
  virtual void charge(std::vector<Take> takes, int64_t now_ms) = 0;
  // How long a place lasts unrenewed; the holder renews at a third of it.
  virtual int64_t lease_ms() const = 0;
};

// Buckets and slots in memory, in shards so concurrent requests rarely share a lock. Buckets
// that have refilled completely are dropped as the shard is used, so memory follows the active
// callers. Thread-safe; never blocks on I/O.
class LocalBuckets {
 public:
  // Takes `cost` units from `key`'s bucket (see Take for `force`). A refused request takes
  // nothing; a cost of 0 only asks whether the bucket is in debt.
  Decision acquire(std::string_view key, const Quota& quota, int64_t cost, int64_t now_ms,
                   bool force = false);
  // All or nothing over several buckets (RateLimiter::acquire).
  std::vector<Decision> acquire_all(const std::vector<Take>& takes, int64_t now_ms);
  // Concurrency: takes one of `max` slots of `key`; false when all are taken.
  bool enter(std::string_view key, int64_t max);
  void leave(std::string_view key);

 private:
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, double> tat;  // ms since the epoch
    std::unordered_map<std::string, int64_t> slots;
    int calls = 0;
  };
  static constexpr size_t kShards = 32;
  double since_epoch(int64_t now_ms);
  Shard& shard_for(std::string_view key);
  static void sweep(Shard& shard, double now);
  std::atomic<int64_t> epoch_{INT64_MIN};
  std::array<Shard, kShards> shards_;
};

// One process: LocalBuckets behind the RateLimiter interface (a process's slots die with it,
// so its leases need no renewal).
std::unique_ptr<RateLimiter> make_local_limiter();

}  // namespace parley::limits
