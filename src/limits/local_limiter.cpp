// The GCRA arithmetic and the in-process limiter (see limiter.hpp).
#include <algorithm>
#include <atomic>
#include <limits>

#include "limits/limiter.hpp"

namespace parley::limits {

Gcra::Gcra(const Quota& quota) {
  interval = static_cast<double>(quota.window_ms) / static_cast<double>(quota.quota);
  const int64_t burst = quota.burst > 0 ? quota.burst : quota.quota;
  limit = interval * static_cast<double>(burst);
  // Plus a hair for costed requests: TATs are sums of inexact intervals (60000/9 ms...), and
  // the last request of a full burst must not lose to a rounding error. A microsecond early
  // (less for high quotas) is harmless; Retry-After and RateLimit are computed without it.
  tolerance = limit + std::min(interval / 1024, 0.001);
}

bool Gcra::fits(double tat, double now, int64_t cost) const {
  const double new_tat = tat + interval * static_cast<double>(cost);
  return cost == 0 ? tat - now < limit : new_tat - now <= tolerance;
}

Decision Gcra::decide(double tat, double now, int64_t cost, bool fits, bool charged) const {
  Decision d;
  const double new_tat = tat + interval * static_cast<double>(cost);
  if (charged || fits) {
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
  // The moment the new TAT would fall within the tolerance; a zero-cost check passes only once
  // the bucket is strictly below its limit, a millisecond after it reaches it.
  d.retry_after_ms =
      cost == 0 ? static_cast<int64_t>(tat - now - limit) + 1
                : std::max<int64_t>(1, static_cast<int64_t>(new_tat - now - limit + 0.999));
  return d;
}

namespace {

// Every this many calls a shard drops its idle buckets (amortised, no timer thread).
constexpr int kSweepEvery = 4096;

}  // namespace

// Times are kept relative to the first call: as absolute unix milliseconds (~1.8e12) a double
// resolves only a quarter of a microsecond, too coarse to add a high quota's interval to.
double LocalBuckets::since_epoch(int64_t now_ms) {
  int64_t e = epoch_.load(std::memory_order_acquire);
  if (e == INT64_MIN) {
    int64_t expected = INT64_MIN;
    e = epoch_.compare_exchange_strong(expected, now_ms, std::memory_order_acq_rel) ? now_ms
                                                                                    : expected;
  }
  return static_cast<double>(now_ms - e);
}

LocalBuckets::Shard& LocalBuckets::shard_for(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

void LocalBuckets::sweep(Shard& shard, double now) {
  if (++shard.calls < kSweepEvery) return;
  shard.calls = 0;
  for (auto it = shard.tat.begin(); it != shard.tat.end();) {
    it = it->second <= now ? shard.tat.erase(it) : std::next(it);
  }
}

Decision LocalBuckets::acquire(std::string_view key, const Quota& quota, int64_t cost,
                               int64_t now_ms, bool force) {
  return acquire_all({Take{std::string(key), quota, cost, force}}, now_ms).front();
}

std::vector<Decision> LocalBuckets::acquire_all(const std::vector<Take>& takes, int64_t now_ms) {
  std::vector<Decision> out(takes.size());
  const double now = since_epoch(now_ms);
  // Every shard involved, locked in index order (no deadlock), so the check and the charge
  // of all buckets are one step.
  std::vector<size_t> shards;
  shards.reserve(takes.size());
  for (const auto& t : takes) {
    shards.push_back(std::hash<std::string_view>{}(t.key) % kShards);
  }
  std::vector<size_t> order = shards;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  for (size_t s : order) {
    locks.emplace_back(shards_[s].mutex);
    sweep(shards_[s], now);
  }
  struct State {
    double tat;
    bool fits;
  };
  std::vector<State> states(takes.size());
  bool all_fit = true;
  for (size_t i = 0; i < takes.size(); ++i) {
    const Take& t = takes[i];
    if (t.quota.quota <= 0) {
      states[i] = {now, true};
      continue;
    }
    auto& tats = shards_[shards[i]].tat;
    auto it = tats.find(t.key);
    const double tat = it == tats.end() ? now : std::max(it->second, now);
    const bool fits = Gcra(t.quota).fits(tat, now, t.cost);
    states[i] = {tat, fits};
    if (!fits && !t.force) all_fit = false;
  }
  for (size_t i = 0; i < takes.size(); ++i) {
    const Take& t = takes[i];
    if (t.quota.quota <= 0) continue;  // no limit: an allowed default Decision
    const Gcra gcra(t.quota);
    const bool charged = t.force || (all_fit && states[i].fits);
    if (charged && t.cost > 0) {
      shards_[shards[i]].tat[t.key] = states[i].tat + gcra.interval * static_cast<double>(t.cost);
    }
    out[i] = gcra.decide(states[i].tat, now, t.cost, states[i].fits, charged);
  }
  return out;
}

bool LocalBuckets::enter(std::string_view key, int64_t max) {
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

void LocalBuckets::leave(std::string_view key) {
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.slots.find(std::string(key));
  if (it == shard.slots.end()) return;
  if (--it->second <= 0) shard.slots.erase(it);
}

namespace {

class LocalLimiter final : public RateLimiter {
 public:
  Task<Result<std::vector<Decision>>> acquire(std::vector<Take> takes, int64_t now_ms) override {
    co_return buckets_.acquire_all(takes, now_ms);
  }

  Task<Result<std::optional<size_t>>> enter(std::vector<Slot> slots, std::string,
                                            int64_t) override {
    for (size_t i = 0; i < slots.size(); ++i) {
      if (buckets_.enter(slots[i].key, slots[i].max)) continue;
      for (size_t j = 0; j < i; ++j) {
        if (slots[j].max > 0) buckets_.leave(slots[j].key);
      }
      co_return std::optional<size_t>(i);
    }
    co_return std::optional<size_t>();
  }

  Task<Result<void>> renew(std::vector<std::string>, std::string, int64_t) override {
    co_return success();
  }

  void leave(std::vector<std::string> keys, std::string) override {
    for (const auto& k : keys) buckets_.leave(k);
  }

  void charge(std::vector<Take> takes, int64_t now_ms) override {
    for (auto& t : takes) t.force = true;
    buckets_.acquire_all(takes, now_ms);
  }

  int64_t lease_ms() const override { return 0; }

 private:
  LocalBuckets buckets_;
};

}  // namespace

std::unique_ptr<RateLimiter> make_local_limiter() { return std::make_unique<LocalLimiter>(); }

}  // namespace parley::limits
