// Model-call admission and usage booking (see admission.hpp).
#include "limits/admission.hpp"

#include <algorithm>
#include <cstdio>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/ids.hpp"
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

Error backend_error(const Error& cause) {
  Error e = Error::unavailable("limits cannot be checked: " + cause.message, "limits_unavailable");
  e.retry_after_ms = 1000;
  return e;
}

}  // namespace

Actor Actor::local(const std::optional<std::string>& user) {
  Actor a;
  a.user_id = user.value_or("anonymous");
  a.unlimited = true;
  return a;
}

// The renewal loop of one admission's leases: a timer on the I/O thread the call runs on.
struct ModelAdmission::Renewal {
  explicit Renewal(const IoExecutor& executor) : timer(executor) {}
  boost::asio::steady_timer timer;
  bool released = false;
};

ModelAdmission::ModelAdmission(RateLimiter* limiter, std::vector<std::string> slots,
                               std::string holder, const IoExecutor& executor, const Clock& clock)
    : limiter_(limiter), slots_(std::move(slots)), holder_(std::move(holder)) {
  const int64_t lease_ms = limiter_->lease_ms();
  if (lease_ms <= 0 || slots_.empty()) return;
  renewal_ = std::make_shared<Renewal>(executor);
  boost::asio::co_spawn(
      executor,
      [renewal = renewal_, limiter, slots = slots_, holder = holder_, lease_ms,
       &clock]() -> Task<void> {
        for (;;) {
          renewal->timer.expires_after(std::chrono::milliseconds(lease_ms / 3));
          boost::system::error_code ec;
          co_await renewal->timer.async_wait(boost::asio::redirect_error(use_task, ec));
          if (renewal->released) co_return;
          // A failed renewal is tried again next time; the lease outlives two misses.
          (void)co_await limiter->renew(slots, holder, to_unix_ms(clock.now()));
          if (renewal->released) co_return;
        }
      },
      boost::asio::detached);
}

ModelAdmission& ModelAdmission::operator=(ModelAdmission&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    slots_ = std::move(other.slots_);
    holder_ = std::move(other.holder_);
    renewal_ = std::move(other.renewal_);
  }
  return *this;
}

ModelAdmission::~ModelAdmission() { release(); }

void ModelAdmission::release() {
  if (!limiter_) return;
  if (renewal_) {
    renewal_->released = true;
    renewal_->timer.cancel();
    renewal_.reset();
  }
  if (!slots_.empty()) limiter_->leave(std::move(slots_), std::move(holder_));
  limiter_ = nullptr;
}

Admission::Admission(RateLimiter& limiter, Budgets& budgets, const Clock& clock,
                     obs::Metrics* metrics, bool allow_on_backend_error)
    : limiter_(limiter),
      budgets_(budgets),
      clock_(clock),
      metrics_(metrics),
      allow_on_backend_error_(allow_on_backend_error) {}

Task<Result<ModelAdmission>> Admission::admit(const Actor& actor, bool stream) {
  if (actor.unlimited) co_return ModelAdmission();
  const int64_t now = to_unix_ms(clock_.now());
  const std::string user_key = user_bucket(actor);
  const std::string key_key = key_bucket(actor);
  // Tokens are counted after each call; a bucket still in debt refuses the next one. Both
  // buckets are asked in one step of the limiter.
  std::vector<Take> token_checks;
  if (actor.user_limits.tokens_per_minute > 0) {
    token_checks.push_back({user_key + "\ntokens",
                            {"user-tokens", actor.user_limits.tokens_per_minute, 60'000, 0},
                            0});
  }
  if (actor.key_limits.tokens_per_minute > 0) {
    token_checks.push_back(
        {key_key + "\ntokens", {"key-tokens", actor.key_limits.tokens_per_minute, 60'000, 0}, 0});
  }
  if (!token_checks.empty()) {
    auto decided = co_await limiter_.acquire(token_checks, now);
    if (!decided) {
      if (metrics_) metrics_->count_limiter_error();
      if (!allow_on_backend_error_) co_return backend_error(decided.error());
    } else {
      for (size_t i = 0; i < token_checks.size(); ++i) {
        const Decision& d = (*decided)[i];
        if (d.allowed) continue;
        const Quota& q = token_checks[i].quota;
        if (metrics_) metrics_->count_rate_limited(q.name);
        co_return Error::too_many_requests(
            "token limit '" + std::string(q.name) + "' reached: " + std::to_string(q.quota) +
                " tokens per minute; retry in " + std::to_string(seconds_up(d.retry_after_ms)) +
                " s",
            "token_limit_reached", std::max<int64_t>(d.retry_after_ms, 1000));
      }
    }
  }
  // Budgets, read from the usage table when the cached spend is stale.
  const bool user_budget = actor.user_limits.usd_per_day > 0 || actor.user_limits.usd_per_month > 0;
  const bool key_budget = actor.key_limits.usd_per_day > 0 || actor.key_limits.usd_per_month > 0;
  if (user_budget || key_budget) {
    auto spends = co_await budgets_.spend(
        SpendOf{actor.tenant_id, actor.user_id, actor.key_id, user_budget, key_budget}, now);
    if (!spends) {
      if (metrics_) metrics_->count_limiter_error();
      if (!allow_on_backend_error_) co_return backend_error(spends.error());
    }
    // With limits.on_backend_error: allow and no spend to read, the budgets pass.
    const std::pair<Spend, Spend> spent = spends ? *spends : std::pair<Spend, Spend>();
    struct BudgetCheck {
      double limit;
      double spent;
      const char* what;
      int64_t resets_at;
    };
    const std::string user_name = "user '" + actor.user_id + "'";
    const std::string key_name = "key '" + actor.key_id + "'";
    const BudgetCheck checks[] = {
        {actor.user_limits.usd_per_day, spent.first.day, "daily", utc_next_day(now)},
        {actor.user_limits.usd_per_month, spent.first.month, "monthly", utc_next_month(now)},
        {actor.key_limits.usd_per_day, spent.second.day, "daily", utc_next_day(now)},
        {actor.key_limits.usd_per_month, spent.second.month, "monthly", utc_next_month(now)},
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
  std::vector<Slot> slots;
  if (actor.key_limits.concurrent_streams > 0) {
    slots.push_back({key_key + "\nstreams", actor.key_limits.concurrent_streams});
  }
  if (actor.user_limits.concurrent_streams > 0) {
    slots.push_back({user_key + "\nstreams", actor.user_limits.concurrent_streams});
  }
  if (slots.empty()) co_return ModelAdmission();
  std::string holder = new_resource_id("stream");
  auto entered = co_await limiter_.enter(slots, holder, now);
  if (!entered) {
    // The places may have been taken and only the answer lost: given back, best effort.
    std::vector<std::string> taken;
    taken.reserve(slots.size());
    for (const auto& slot : slots) taken.push_back(slot.key);
    limiter_.leave(std::move(taken), holder);
    if (metrics_) metrics_->count_limiter_error();
    if (!allow_on_backend_error_) co_return backend_error(entered.error());
    co_return ModelAdmission();
  }
  if (*entered) {
    const bool key_full = slots[**entered].key.rfind("key:", 0) == 0;
    if (metrics_) metrics_->count_rate_limited(key_full ? "key-streams" : "user-streams");
    if (key_full) {
      co_return Error::too_many_requests("this key already has " +
                                             std::to_string(actor.key_limits.concurrent_streams) +
                                             " streams open (its limit); finish one first",
                                         "concurrency_limit_reached", 1000);
    }
    co_return Error::too_many_requests("user '" + actor.user_id + "' already has " +
                                           std::to_string(actor.user_limits.concurrent_streams) +
                                           " streams open (the limit); finish one first",
                                       "concurrency_limit_reached", 1000);
  }
  std::vector<std::string> keys;
  keys.reserve(slots.size());
  for (auto& s : slots) keys.push_back(std::move(s.key));
  auto executor = co_await boost::asio::this_coro::executor;
  co_return ModelAdmission(&limiter_, std::move(keys), std::move(holder), executor, clock_);
}

void Admission::book(const Actor& actor, int64_t tokens, double cost_usd) {
  const int64_t now = to_unix_ms(clock_.now());
  if (tokens > 0 && !actor.unlimited) {
    std::vector<Take> charges;
    if (actor.user_limits.tokens_per_minute > 0) {
      charges.push_back({user_bucket(actor) + "\ntokens",
                         {"user-tokens", actor.user_limits.tokens_per_minute, 60'000, 0},
                         tokens,
                         true});
    }
    if (actor.key_limits.tokens_per_minute > 0) {
      charges.push_back({key_bucket(actor) + "\ntokens",
                         {"key-tokens", actor.key_limits.tokens_per_minute, 60'000, 0},
                         tokens,
                         true});
    }
    if (!charges.empty()) limiter_.charge(std::move(charges), now);
  }
  budgets_.add(actor.tenant_id, actor.user_id, actor.key_id, cost_usd, now);
}

}  // namespace parley::limits
