// The in-process RateLimiter (see limiter.hpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>

#include "limits/limiter.hpp"

namespace parley::limits {
namespace {

constexpr size_t kShards = 32;
// Every this many calls a shard drops its idle buckets (amortised, no timer thread).
constexpr int kSweepEvery = 4096;

struct Shard {
  std::mutex mutex;
  // bucket -> theoretical arrival time, in ms since the limiter's epoch
  std::unordered_map<std::string, double> tat;
  std::unordered_map<std::string, int64_t> slots;
  int calls = 0;
};

class LocalLimiter final : public RateLimiter {
 public:
  Decision acquire(std::string_view key, const Quota& quota, int64_t cost, int64_t now_ms,
                   bool force) override {
    Decision d;
    if (quota.quota <= 0) return d;
    const double interval = static_cast<double>(quota.window_ms) / static_cast<double>(quota.quota);
    const int64_t burst = quota.burst > 0 ? quota.burst : quota.quota;
    const double limit = interval * static_cast<double>(burst);
    // Plus a hair for costed requests: TATs are sums of inexact intervals (60000/9 ms...), and
    // the last request of a full burst must not lose to a rounding error. A microsecond early
    // (less for high quotas) is harmless; Retry-After and RateLimit are computed without it.
    const double tolerance = limit + std::min(interval / 1024, 0.001);
    const double now = static_cast<double>(now_ms - epoch(now_ms));
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    sweep(shard, now);
    auto it = shard.tat.find(std::string(key));
    const double tat = it == shard.tat.end() ? now : std::max(it->second, now);
    const double new_tat = tat + interval * static_cast<double>(cost);
    // A zero-cost check passes while the bucket holds at least part of a unit; a costed one
    // while the new TAT is within the tolerance.
    const bool fits = cost == 0 ? tat - now < limit : new_tat - now <= tolerance;
    if (fits || force) {
      if (it == shard.tat.end()) {
        shard.tat.emplace(std::string(key), new_tat);
      } else {
        it->second = new_tat;
      }
      d.allowed = fits;
      const double ahead = new_tat - now;
      d.remaining = std::max<int64_t>(0, static_cast<int64_t>((tolerance - ahead) / interval));
      d.reset_ms = static_cast<int64_t>(ahead + 0.999);
      if (!fits) d.retry_after_ms = static_cast<int64_t>(ahead - limit + interval + 0.999);
      return d;
    }
    d.allowed = false;
    d.remaining = 0;
    d.reset_ms = static_cast<int64_t>(tat - now + 0.999);
    // The moment the new TAT would fall within the tolerance.
    d.retry_after_ms = std::max<int64_t>(1, static_cast<int64_t>(new_tat - now - limit + 0.999));
    return d;
  }

  bool enter(std::string_view key, int64_t max) override {
    if (max <= 0) return true;
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    int64_t& used = shard.slots[std::string(key)];
    if (used >= max) {
      if (used == 0) shard.slots.erase(std::string(key));
      return false;
    }
    ++used;
    return true;
  }

  void leave(std::string_view key) override {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.slots.find(std::string(key));
    if (it == shard.slots.end()) return;
    if (--it->second <= 0) shard.slots.erase(it);
  }

 private:
  // Times are kept relative to the first call: as absolute unix milliseconds (~1.8e12) a double
  // resolves only a quarter of a microsecond, too coarse to add a high quota's interval to.
  int64_t epoch(int64_t now_ms) {
    int64_t e = epoch_.load(std::memory_order_acquire);
    if (e != kNoEpoch) return e;
    e = kNoEpoch;
    return epoch_.compare_exchange_strong(e, now_ms, std::memory_order_acq_rel) ? now_ms : e;
  }

  Shard& shard_for(std::string_view key) {
    return shards_[std::hash<std::string_view>{}(key) % kShards];
  }

  static void sweep(Shard& shard, double now) {
    if (++shard.calls < kSweepEvery) return;
    shard.calls = 0;
    for (auto it = shard.tat.begin(); it != shard.tat.end();) {
      it = it->second <= now ? shard.tat.erase(it) : std::next(it);
    }
  }

  static constexpr int64_t kNoEpoch = std::numeric_limits<int64_t>::min();
  std::atomic<int64_t> epoch_{kNoEpoch};
  std::array<Shard, kShards> shards_;
};

}  // namespace

std::unique_ptr<RateLimiter> make_local_limiter() { return std::make_unique<LocalLimiter>(); }

}  // namespace parley::limits
