// ManualClock: a Clock (core/clock.hpp) that only the test moves. Code that reads time through
// the seam — storage timestamps, budgets that reset at midnight UTC, key expiry, TTLs, circuit
// breaker cooldowns — can be taken across a boundary in one step instead of by sleeping, and its
// timestamps are exact.
//
// Wall time starts at a given instant (2026-11-22T10:00:00Z unless told otherwise) and steady
// time at a fixed origin. advance() moves both together, as real time passes; set() moves wall
// time alone, as when the system clock is stepped (steady time never jumps).
//
// Thread-safe: every method from any thread (the blocking pool and background writers read the
// clock while the test moves it).
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>

#include "core/clock.hpp"

namespace parley {

class ManualClock final : public Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  // 2026-11-22T10:00:00Z, in milliseconds since the Unix epoch.
  static constexpr int64_t kDefaultStartMs = 1'795'341'600'000;

  explicit ManualClock(WallTime start = WallTime(std::chrono::milliseconds(kDefaultStartMs)),
                       SteadyTime steady_origin = SteadyTime(std::chrono::hours(1)))
      : wall_ns_(nanos(start.time_since_epoch())),
        steady_ns_(nanos(steady_origin.time_since_epoch())) {}
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  WallTime now() const override {
    return WallTime(std::chrono::duration_cast<WallTime::duration>(
        std::chrono::nanoseconds(wall_ns_.load(std::memory_order_acquire))));
  }
  SteadyTime steady_now() const override {
    return SteadyTime(std::chrono::duration_cast<SteadyTime::duration>(
        std::chrono::nanoseconds(steady_ns_.load(std::memory_order_acquire))));
  }

  // Time passes: wall and steady time both move forward by `step` (never backward: steady
  // time is monotonic by contract).
  void advance(std::chrono::nanoseconds step) {
    assert(step.count() >= 0);
    wall_ns_.fetch_add(step.count(), std::memory_order_acq_rel);
    steady_ns_.fetch_add(step.count(), std::memory_order_acq_rel);
  }

  // The wall clock is stepped to `t` (forward or back); steady time stays where it is.
  void set(WallTime t) { wall_ns_.store(nanos(t.time_since_epoch()), std::memory_order_release); }

  // Wall time in milliseconds since the Unix epoch (what storage and the limits take).
  int64_t unix_ms() const { return to_unix_ms(now()); }

 private:
  template <typename Duration>
  static int64_t nanos(Duration d) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

  std::atomic<int64_t> wall_ns_;
  std::atomic<int64_t> steady_ns_;
};

}  // namespace parley
