// Budgets' running spend in Redis, shared by every replica (see budget.hpp, redis_limiter.hpp).
//
// One key per user or key and per UTC day and month holds the USD spent: started from the
// usage table (the record) the first time it is asked for, then increased by every booked call
// on any replica (INCRBYFLOAT, only while the key exists, so a total is never started from a
// partial sum). Keys expire after their period, and a Redis that lost them rebuilds them from
// the table; usage a replica has not yet written is then missing for at most
// llm.usage_flush_interval.
#include <ctime>
#include <mutex>
#include <utility>

#include "limits/budget.hpp"
#include "limits/redis_limiter.hpp"
#include "redis/client.hpp"

namespace parley::limits {
namespace {

constexpr int64_t kDayKeyTtlMs = 2LL * 24 * 3600 * 1000;
constexpr int64_t kMonthKeyTtlMs = 32LL * 24 * 3600 * 1000;

const redis::Script& read_script() {
  static const redis::Script script(R"lua(
local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then out[i] = v else out[i] = '' end
end
return out
)lua");
  return script;
}

// KEYS[1]: a total. ARGV: the table's sum, ttl. Another replica's start wins a race.
const redis::Script& start_script() {
  static const redis::Script script(R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return redis.call('GET', KEYS[1])
)lua");
  return script;
}

const redis::Script& add_script() {
  static const redis::Script script(R"lua(
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBYFLOAT', KEYS[i], ARGV[1]) end
end
return 0
)lua");
  return script;
}

std::string period(int64_t now_ms, const char* format) {
  const std::time_t seconds = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

class RedisBudgets final : public Budgets {
 public:
  RedisBudgets(redis::Client& client, store::UsageRepository& usage, BlockingPool& blocking)
      : client_(client), usage_(usage), blocking_(blocking) {}

  Task<Result<std::pair<Spend, Spend>>> spend(const SpendOf& whose, int64_t now_ms) override {
    struct Total {
      std::string key;
      bool user;
      bool month;
      double* into;
    };
    std::pair<Spend, Spend> out;
    std::vector<Total> totals;
    if (whose.user) {
      const std::string who = user_prefix(whose.tenant_id, whose.user_id);
      totals.push_back({who + day(now_ms), true, false, &out.first.day});
      totals.push_back({who + month(now_ms), true, true, &out.first.month});
    }
    if (whose.key) {
      const std::string who = key_prefix(whose.key_id);
      totals.push_back({who + day(now_ms), false, false, &out.second.day});
      totals.push_back({who + month(now_ms), false, true, &out.second.month});
    }
    if (totals.empty()) co_return out;
    // Totals an increment may have missed are dropped, so they are started again from the
    // table (which has every call) rather than stay short until they expire.
    std::vector<std::string> lost = take_lost();
    if (!lost.empty()) {
      std::vector<std::string> del{"DEL"};
      del.insert(del.end(), lost.begin(), lost.end());
      auto dropped = co_await client_.command(std::move(del));
      if (!dropped || dropped->is_error()) {
        remember_lost(lost);
        co_return Error::unavailable("budget totals cannot be rebuilt in Redis", "redis_down");
      }
    }
    std::vector<std::string> keys;
    keys.reserve(totals.size());
    for (const auto& t : totals) keys.push_back(t.key);
    auto values = co_await client_.eval(read_script(), std::move(keys), {});
    if (!values) co_return std::move(values).error();
    if (values->is_error() || values->elements.size() != totals.size()) {
      co_return Error::unavailable("Redis answered the budget read with something unexpected",
                                   "redis_protocol");
    }
    for (size_t i = 0; i < totals.size(); ++i) {
      const Total& t = totals[i];
      if (!values->elements[i].text.empty()) {
        *t.into = std::strtod(values->elements[i].text.c_str(), nullptr);
        continue;
      }
      // Not started yet (or lost): from the usage table.
      const int64_t from = t.month ? utc_month_start(now_ms) : utc_day_start(now_ms);
      auto sum = co_await blocking_.run([&] {
        return t.user ? usage_.spent(whose.tenant_id, whose.user_id, from)
                      : usage_.spent_by_key(whose.key_id, from);
      });
      if (!sum) co_return std::move(sum).error();
      char text[40];
      std::snprintf(text, sizeof text, "%.17g", *sum);
      std::vector<std::string> start_keys{t.key};
      std::vector<std::string> start_args{text,
                                          std::to_string(t.month ? kMonthKeyTtlMs : kDayKeyTtlMs)};
      auto started =
          co_await client_.eval(start_script(), std::move(start_keys), std::move(start_args));
      if (!started) co_return std::move(started).error();
      if (started->is_error() || started->type != redis::Reply::Type::kString) {
        co_return Error::unavailable("Redis refused a budget total: " + started->text,
                                     "redis_error");
      }
      *t.into = std::strtod(started->text.c_str(), nullptr);
    }
    co_return out;
  }

  void add(std::string_view tenant_id, std::string_view user_id, std::string_view key_id,
           double usd, int64_t now_ms) override {
    if (usd <= 0) return;
    const std::string user = user_prefix(tenant_id, user_id);
    const std::string key = key_prefix(key_id);
    std::vector<std::string> keys{user + day(now_ms), user + month(now_ms), key + day(now_ms),
                                  key + month(now_ms)};
    char amount[40];
    std::snprintf(amount, sizeof amount, "%.17g", usd);
    std::vector<std::string> args{amount};
    client_.detached([this, keys = std::move(keys), args = std::move(args)]() -> Task<void> {
      auto added = co_await client_.eval(add_script(), keys, args);
      if (!added || added->is_error()) remember_lost(keys);
    });
  }

 private:
  std::string user_prefix(std::string_view tenant_id, std::string_view user_id) const {
    return client_.key("spend:u:" + std::string(tenant_id) + "\n" + std::string(user_id));
  }
  std::string key_prefix(std::string_view key_id) const {
    return client_.key("spend:k:" + std::string(key_id));
  }
  static std::string day(int64_t now_ms) { return ":d:" + period(now_ms, "%Y-%m-%d"); }
  static std::string month(int64_t now_ms) { return ":m:" + period(now_ms, "%Y-%m"); }

  void remember_lost(const std::vector<std::string>& keys) {
    std::lock_guard lock(lost_mutex_);
    lost_.insert(lost_.end(), keys.begin(), keys.end());
  }
  std::vector<std::string> take_lost() {
    std::lock_guard lock(lost_mutex_);
    return std::exchange(lost_, {});
  }

  redis::Client& client_;
  store::UsageRepository& usage_;
  BlockingPool& blocking_;
  std::mutex lost_mutex_;
  std::vector<std::string> lost_;  // totals an increment failed to reach
};

}  // namespace

std::unique_ptr<Budgets> make_redis_budgets(redis::Client& client, store::UsageRepository& usage,
                                            BlockingPool& blocking) {
  return std::make_unique<RedisBudgets>(client, usage, blocking);
}

}  // namespace parley::limits
