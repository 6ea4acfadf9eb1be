// Rate limiting and concurrency limits: the interface, and its in-process implementation.
//
// The algorithm is GCRA (the generic cell rate algorithm), a token bucket kept as one number
// per bucket, its "theoretical arrival time" (TAT):
//   each unit of cost pushes TAT forward by the emission interval T = window / quota;
//   a request is allowed when the new TAT is no further ahead of now than burst * T.
// One number per bucket is what makes a Redis implementation (scale-out issue) a short Lua
// script with the same semantics; that is why this sits behind an interface.
//
// Thread-safety: every method may be called from any thread concurrently; none blocks on I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Takes `cost` units from `key`'s bucket. A refused request takes nothing. With `force` the
  // units are taken even past the limit (cost learned after the fact, like tokens used), and
  // later requests wait until the debt is paid. A cost of 0 only asks whether the bucket is in
  // debt.
  virtual Decision acquire(std::string_view key, const Quota& quota, int64_t cost, int64_t now_ms,
                           bool force = false) = 0;
  // Concurrency: takes one of `max` slots of `key`; false when all are taken.
  virtual bool enter(std::string_view key, int64_t max) = 0;
  virtual void leave(std::string_view key) = 0;
};

// Buckets in memory, in shards so concurrent requests rarely share a lock. Buckets that have
// refilled completely are dropped as the shard is used, so memory follows the active callers.
std::unique_ptr<RateLimiter> make_local_limiter();

}  // namespace parley::limits
