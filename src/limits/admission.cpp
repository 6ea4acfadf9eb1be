// Model-call admission and usage booking (see admission.hpp).
#include "limits/admission.hpp"

#include <algorithm>
#include <cstdio>

#include "obs/metrics.hpp"

namespace parley::limits {
namespace {

int64_t seconds_up(int64_t ms) { return std::max<int64_t>(0, (ms + 999) / 1000); }

std::string usd(double v) {
  char buf[32];
  // Cents, or enough digits that a budget of a fraction of a cent does not print as $0.00.
  std::snprintf(buf, sizeof buf, v >= 1 || v == 0 ? "$%.2f" : "$%.6g", v);
  return buf;
}

std::string user_bucket(const Actor& actor) {
  return "user:" + actor.tenant_id + "\n" + actor.user_id;
}
std::string key_bucket(const Actor& actor) { return "key:" + actor.key_id; }

}  // namespace

Actor Actor::local(const std::optional<std::string>& user) {
  Actor a;
  a.user_id = user.value_or("anonymous");
  a.unlimited = true;
  return a;
}

ModelAdmission& ModelAdmission::operator=(ModelAdmission&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    key_slot_ = std::move(other.key_slot_);
    user_slot_ = std::move(other.user_slot_);
  }
  return *this;
}

ModelAdmission::~ModelAdmission() { release(); }

void ModelAdmission::release() {
  if (!limiter_) return;
  if (!key_slot_.empty()) limiter_->leave(key_slot_);
  if (!user_slot_.empty()) limiter_->leave(user_slot_);
  limiter_ = nullptr;
}

Admission::Admission(RateLimiter& limiter, BudgetBook& budgets, BlockingPool& blocking,
                     const Clock& clock, obs::Metrics* metrics)
    : limiter_(limiter), budgets_(budgets), blocking_(blocking), clock_(clock), metrics_(metrics) {}

Task<Result<ModelAdmission>> Admission::admit(const Actor& actor, bool stream) {
  if (actor.unlimited) co_return ModelAdmission();
  const int64_t now = to_unix_ms(clock_.now());
  const std::string user_key = user_bucket(actor);
  const std::string key_key = key_bucket(actor);
  // Tokens are counted after each call; a bucket still in debt refuses the next one.
  struct TokenCheck {
    const std::string* bucket;
    int64_t per_minute;
    const char* name;
  };
  for (const TokenCheck& t :
       {TokenCheck{&user_key, actor.user_limits.tokens_per_minute, "user-tokens"},
        TokenCheck{&key_key, actor.key_limits.tokens_per_minute, "key-tokens"}}) {
    if (t.per_minute <= 0) continue;
    const Quota q{t.name, t.per_minute, 60'000, 0};
    auto d = limiter_.acquire(*t.bucket + "\ntokens", q, 0, now);
    if (!d.allowed) {
      if (metrics_) metrics_->count_rate_limited(t.name);
      co_return Error::too_many_requests(
          "token limit '" + std::string(t.name) + "' reached: " + std::to_string(t.per_minute) +
              " tokens per minute; retry in " + std::to_string(seconds_up(d.retry_after_ms)) + " s",
          "token_limit_reached", std::max<int64_t>(d.retry_after_ms, 1000));
    }
  }
  // Budgets, read from the usage table when the cached spend is stale.
  const bool user_budget = actor.user_limits.usd_per_day > 0 || actor.user_limits.usd_per_month > 0;
  const bool key_budget = actor.key_limits.usd_per_day > 0 || actor.key_limits.usd_per_month > 0;
  if (user_budget || key_budget) {
    auto spends = co_await blocking_.run([&]() -> Result<std::pair<Spend, Spend>> {
      Spend user_spend, key_spend;
      if (user_budget) {
        auto s = budgets_.user_spend(actor.tenant_id, actor.user_id, now);
        if (!s) return std::move(s).error();
        user_spend = *s;
      }
      if (key_budget) {
        auto s = budgets_.key_spend(actor.key_id, now);
        if (!s) return std::move(s).error();
        key_spend = *s;
      }
      return std::make_pair(user_spend, key_spend);
    });
    if (!spends) co_return std::move(spends).error();
    struct BudgetCheck {
      double limit;
      double spent;
      const char* what;
      int64_t resets_at;
    };
    const std::string user_name = "user '" + actor.user_id + "'";
    const std::string key_name = "key '" + actor.key_id + "'";
    const BudgetCheck checks[] = {
        {actor.user_limits.usd_per_day, spends->first.day, "daily", utc_next_day(now)},
        {actor.user_limits.usd_per_month, spends->first.month, "monthly", utc_next_month(now)},
        {actor.key_limits.usd_per_day, spends->second.day, "daily", utc_next_day(now)},
        {actor.key_limits.usd_per_month, spends->second.month, "monthly", utc_next_month(now)},
    };
    for (size_t i = 0; i < 4; ++i) {
      const auto& c = checks[i];
      if (c.limit <= 0 || c.spent < c.limit) continue;
      const std::string& whose = i < 2 ? user_name : key_name;
      if (metrics_) metrics_->count_rate_limited(i < 2 ? "user-budget" : "key-budget");
      co_return Error::too_many_requests(
          "the " + std::string(c.what) + " budget of " + usd(c.limit) + " for " + whose +
              " is spent (" + usd(c.spent) + "); it resets at " + format_utc_ms(c.resets_at),
          "budget_exceeded", c.resets_at - now);
    }
  }
  if (!stream) co_return ModelAdmission();
  std::string key_slot, user_slot;
  if (actor.key_limits.concurrent_streams > 0) {
    key_slot = key_key + "\nstreams";
    if (!limiter_.enter(key_slot, actor.key_limits.concurrent_streams)) {
      if (metrics_) metrics_->count_rate_limited("key-streams");
      co_return Error::too_many_requests("this key already has " +
                                             std::to_string(actor.key_limits.concurrent_streams) +
                                             " streams open (its limit); finish one first",
                                         "concurrency_limit_reached", 1000);
    }
  }
  if (actor.user_limits.concurrent_streams > 0) {
    user_slot = user_key + "\nstreams";
    if (!limiter_.enter(user_slot, actor.user_limits.concurrent_streams)) {
      if (!key_slot.empty()) limiter_.leave(key_slot);
      if (metrics_) metrics_->count_rate_limited("user-streams");
      co_return Error::too_many_requests("user '" + actor.user_id + "' already has " +
                                             std::to_string(actor.user_limits.concurrent_streams) +
                                             " streams open (the limit); finish one first",
                                         "concurrency_limit_reached", 1000);
    }
  }
  co_return ModelAdmission(&limiter_, std::move(key_slot), std::move(user_slot));
}

void Admission::book(const Actor& actor, int64_t tokens, double cost_usd) {
  const int64_t now = to_unix_ms(clock_.now());
  if (tokens > 0 && !actor.unlimited) {
    if (actor.user_limits.tokens_per_minute > 0) {
      const Quota q{"user-tokens", actor.user_limits.tokens_per_minute, 60'000, 0};
      limiter_.acquire(user_bucket(actor) + "\ntokens", q, tokens, now, /*force=*/true);
    }
    if (actor.key_limits.tokens_per_minute > 0) {
      const Quota q{"key-tokens", actor.key_limits.tokens_per_minute, 60'000, 0};
      limiter_.acquire(key_bucket(actor) + "\ntokens", q, tokens, now, /*force=*/true);
    }
  }
  budgets_.add(actor.tenant_id, actor.user_id, actor.key_id, cost_usd, now);
}

}  // namespace parley::limits
