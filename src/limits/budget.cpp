// Budget spend, cached over the usage table (see budget.hpp).
#include "limits/budget.hpp"

#include <ctime>

namespace parley::limits {
namespace {

constexpr int64_t kDayMs = 86'400'000;

std::tm utc(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

int64_t to_ms(std::tm tm) { return static_cast<int64_t>(timegm(&tm)) * 1000; }

}  // namespace

int64_t utc_day_start(int64_t now_ms) { return now_ms - now_ms % kDayMs; }
int64_t utc_next_day(int64_t now_ms) { return utc_day_start(now_ms) + kDayMs; }

int64_t utc_month_start(int64_t now_ms) {
  std::tm tm = utc(now_ms);
  tm.tm_mday = 1;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  return to_ms(tm);
}

int64_t utc_next_month(int64_t now_ms) {
  std::tm tm = utc(now_ms);
  tm.tm_mday = 1;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  tm.tm_mon += 1;  // timegm normalises December + 1
  return to_ms(tm);
}

template <typename Load>
Result<Spend> BudgetBook::get(const std::string& cache_key, int64_t now_ms, Load load) {
  const int64_t day = utc_day_start(now_ms);
  const int64_t month = utc_month_start(now_ms);
  {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(cache_key);
    if (it != cache_.end() && it->second.day_start == day && it->second.month_start == month &&
        now_ms - it->second.loaded_at < refresh_ms_) {
      return it->second.spend;
    }
  }
  auto day_spend = load(day);
  if (!day_spend) return std::move(day_spend).error();
  auto month_spend = load(month);
  if (!month_spend) return std::move(month_spend).error();
  Entry e{Spend{*day_spend, *month_spend}, day, month, now_ms};
  std::lock_guard lock(mutex_);
  cache_[cache_key] = e;
  return e.spend;
}

Result<Spend> BudgetBook::user_spend(std::string_view tenant_id, std::string_view user_id,
                                     int64_t now_ms) {
  std::string key = "u\n" + std::string(tenant_id) + "\n" + std::string(user_id);
  return get(key, now_ms, [&](int64_t from) { return usage_.spent(tenant_id, user_id, from); });
}

Result<Spend> BudgetBook::key_spend(std::string_view key_id, int64_t now_ms) {
  std::string key = "k\n" + std::string(key_id);
  return get(key, now_ms, [&](int64_t from) { return usage_.spent_by_key(key_id, from); });
}

void BudgetBook::add(std::string_view tenant_id, std::string_view user_id, std::string_view key_id,
                     double usd, int64_t now_ms) {
  if (usd <= 0) return;
  const int64_t day = utc_day_start(now_ms);
  std::lock_guard lock(mutex_);
  for (const std::string& k : {"u\n" + std::string(tenant_id) + "\n" + std::string(user_id),
                               "k\n" + std::string(key_id)}) {
    auto it = cache_.find(k);
    if (it == cache_.end() || it->second.day_start != day) continue;  // next read loads it
    it->second.spend.day += usd;
    it->second.spend.month += usd;
  }
}

namespace {

class LocalBudgets final : public Budgets {
 public:
  LocalBudgets(store::UsageRepository& usage, BlockingPool& blocking)
      : book_(usage), blocking_(blocking) {}

  Task<Result<std::pair<Spend, Spend>>> spend(const SpendOf& whose, int64_t now_ms) override {
    co_return co_await blocking_.run([&]() -> Result<std::pair<Spend, Spend>> {
      Spend user_spend, key_spend;
      if (whose.user) {
        auto s = book_.user_spend(whose.tenant_id, whose.user_id, now_ms);
        if (!s) return std::move(s).error();
        user_spend = *s;
      }
      if (whose.key) {
        auto s = book_.key_spend(whose.key_id, now_ms);
        if (!s) return std::move(s).error();
        key_spend = *s;
      }
      return std::make_pair(user_spend, key_spend);
    });
  }

  void add(std::string_view tenant_id, std::string_view user_id, std::string_view key_id,
           double usd, int64_t now_ms) override {
    book_.add(tenant_id, user_id, key_id, usd, now_ms);
  }

 private:
  BudgetBook book_;
  BlockingPool& blocking_;
};

}  // namespace

std::unique_ptr<Budgets> make_local_budgets(store::UsageRepository& usage, BlockingPool& blocking) {
  return std::make_unique<LocalBudgets>(usage, blocking);
}

}  // namespace parley::limits
