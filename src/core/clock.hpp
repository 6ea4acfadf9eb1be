// Clock: the one source of wall and monotonic time, injectable so tests can control time.
// Request-path code reads time here, never from system_clock::now(): storage timestamps, the
// access guard (key expiry, request quotas, idempotency TTLs), admission (token buckets, budgets
// that reset at midnight UTC), the chat pipeline, the gateway's circuit breakers and the
// moderation log. A test moves time with a ManualClock (tests/support/manual_clock.hpp).
//
// Not through here: deadlines of real I/O (curl transfers, socket timeouts, asio timers, the
// batch writers' intervals) and measured latencies. A timer can only wait on real time, and a
// latency is what the caller really waited; both use std::chrono::steady_clock directly.
//
// Thread-safe: implementations must allow concurrent calls from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace parley {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;

  // The process-wide real clock.
  static const Clock& system();
};

// Milliseconds since the Unix epoch.
int64_t to_unix_ms(std::chrono::system_clock::time_point tp);
// RFC 3339 / ISO 8601 UTC with milliseconds: 2026-11-22T10:00:00.123Z
std::string format_utc_ms(std::chrono::system_clock::time_point tp);
std::string format_utc_ms(int64_t unix_ms);
// Appends the same text to `out` (for callers that build a line in a reused buffer).
void append_utc_ms(std::string& out, int64_t unix_ms);

}  // namespace parley
