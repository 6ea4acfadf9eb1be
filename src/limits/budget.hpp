// USD budgets per day and per month (UTC), for end users and for API keys.
//
// Spend is what the usage table holds (every chat turn and API call is recorded there). One
// process (BudgetBook) caches it per user and per key, re-read every `refresh_ms`, and adds
// what it spends in between, so it enforces its own spending exactly and other processes'
// within `refresh_ms`. Replicas (make_redis_budgets) keep the running totals in Redis, each
// started from the usage table and then increased by every call on every replica, so all of
// them see a call's cost as soon as it is booked.
//
// Thread-safety: all methods from any thread. BudgetBook's reads block (blocking pool).
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/blocking_pool.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "store/store.hpp"

namespace parley::limits {

struct Spend {
  double day = 0;
  double month = 0;
};

// The start of the UTC day and month that contain `now_ms`.
int64_t utc_day_start(int64_t now_ms);
int64_t utc_month_start(int64_t now_ms);
int64_t utc_next_day(int64_t now_ms);
int64_t utc_next_month(int64_t now_ms);

class BudgetBook {
 public:
  explicit BudgetBook(store::UsageRepository& usage, int64_t refresh_ms = 5'000)
      : usage_(usage), refresh_ms_(refresh_ms) {}

  Result<Spend> user_spend(std::string_view tenant_id, std::string_view user_id, int64_t now_ms);
  Result<Spend> key_spend(std::string_view key_id, int64_t now_ms);
  // Adds a call's cost to the cached totals (never blocks).
  void add(std::string_view tenant_id, std::string_view user_id, std::string_view key_id,
           double usd, int64_t now_ms);

 private:
  struct Entry {
    Spend spend;
    int64_t day_start = 0;
    int64_t month_start = 0;
    int64_t loaded_at = 0;
  };
  template <typename Load>
  Result<Spend> get(const std::string& cache_key, int64_t now_ms, Load load);

  store::UsageRepository& usage_;
  int64_t refresh_ms_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> cache_;
};

// Whose spend to read: a user of a tenant, and the key the call is made with.
struct SpendOf {
  std::string_view tenant_id;
  std::string_view user_id;
  std::string_view key_id;
  bool user = false;  // read the user's
  bool key = false;   // read the key's
};

class Budgets {
 public:
  virtual ~Budgets() = default;
  // The day's and the month's spend of the user (first) and of the key (second); zero for one
  // not asked for.
  virtual Task<Result<std::pair<Spend, Spend>>> spend(const SpendOf& whose, int64_t now_ms) = 0;
  // A call's cost, as it is booked. Never blocks.
  virtual void add(std::string_view tenant_id, std::string_view user_id, std::string_view key_id,
                   double usd, int64_t now_ms) = 0;
};

// One process: a BudgetBook read on the blocking pool.
std::unique_ptr<Budgets> make_local_budgets(store::UsageRepository& usage, BlockingPool& blocking);

}  // namespace parley::limits
