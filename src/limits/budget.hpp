// USD budgets per day and per month (UTC), for end users and for API keys.
//
// Spend is what the usage table holds (every chat turn and API call is recorded there),
// cached per user and per key and re-read every `refresh_ms`; what this process spends in
// between is added to the cache as it happens, so one process enforces its own spending
// exactly and other replicas' spending within `refresh_ms`.
//
// Thread-safety: all methods from any thread. spend() may read the store (blocking pool).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"
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

}  // namespace parley::limits
