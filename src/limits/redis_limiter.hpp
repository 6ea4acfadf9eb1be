// The RateLimiter every replica shares: GCRA buckets and stream-slot leases in Redis, each
// request's buckets taken atomically by one Lua script call (at most one round trip), with
// the arithmetic of limits/limiter.hpp (Gcra) so it decides exactly as one process does. The
// requests that reach the limiter on one I/O thread in one turn of its event loop share a
// call, decided in their order as if each ran alone: under load, one Redis command and one
// Lua run serve many requests.
//
// Buckets are string keys holding the TAT (ms since 2026-01-01, so a double keeps sub-
// microsecond precision) and expire once full again; slots are sorted sets of holders scored
// by their lease's end, so a replica's places free themselves `lease_ms` after it died.
// Replicas' clocks feed `now`: keep them in step (NTP); skew shifts a bucket by that much.
// The keys of one request must live on one Redis (no Cluster).
#pragma once

#include <memory>

#include "core/blocking_pool.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"

namespace parley::redis {
class Client;
}

namespace parley::limits {

std::unique_ptr<RateLimiter> make_redis_limiter(redis::Client& client, int64_t lease_ms = 30'000);

// Budgets' running totals in Redis (redis_budgets.cpp): every replica sees a call's cost as
// soon as it is booked.
std::unique_ptr<Budgets> make_redis_budgets(redis::Client& client, store::UsageRepository& usage,
                                            BlockingPool& blocking);

}  // namespace parley::limits
