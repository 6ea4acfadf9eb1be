// The Redis RateLimiter (see redis_limiter.hpp).
#include "limits/redis_limiter.hpp"

#include <charconv>
#include <cstdio>

#include "redis/client.hpp"

namespace parley::limits {
namespace {

// 2026-01-01T00:00:00Z: bucket times are kept relative to it.
constexpr int64_t kEpochMs = 1'767'225'600'000;

// KEYS: the buckets. ARGV[1]: now; then five per bucket: interval, limit, tolerance, cost,
// force. Every bucket is checked first; unless one that is not forced refuses, all are
// charged (forced ones always). Per bucket: {tat, fits, charged}. Numbers travel as %.17g so
// they are the same doubles here and in Gcra.
const redis::Script& acquire_script() {
  static const redis::Script script(R"lua(
local now = tonumber(ARGV[1])
local n = #KEYS
local tats, fits = {}, {}
local all_fit = true
for i = 1, n do
  local b = 2 + (i - 1) * 5
  local interval, limit, tolerance = tonumber(ARGV[b]), tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local cost = tonumber(ARGV[b + 3])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  local ok
  if cost == 0 then ok = (tat - now < limit) else ok = (tat + interval * cost - now <= tolerance) end
  tats[i] = tat
  fits[i] = ok
  if (not ok) and ARGV[b + 4] ~= '1' then all_fit = false end
end
local out = {}
for i = 1, n do
  local b = 2 + (i - 1) * 5
  local cost = tonumber(ARGV[b + 3])
  local charged = ARGV[b + 4] == '1' or (all_fit and fits[i])
  if charged and cost > 0 then
    local new_tat = tats[i] + tonumber(ARGV[b]) * cost
    redis.call('SET', KEYS[i], string.format('%.17g', new_tat), 'PX',
               math.ceil(new_tat - now) + 1000)
  end
  out[i] = {string.format('%.17g', tats[i]), fits[i] and 1 or 0, charged and 1 or 0}
end
return out
)lua");
  return script;
}

// KEYS: slot sets. ARGV: now, lease, holder, then each slot's max. The 1-based index of the
// first full slot, or 0 when the holder now has a place in each.
const redis::Script& enter_script() {
  static const redis::Script script(R"lua(
local now, lease, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) and
     not redis.call('ZSCORE', KEYS[i], holder) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, holder)
  redis.call('PEXPIRE', KEYS[i], lease * 2)
end
return 0
)lua");
  return script;
}

// KEYS: slot sets. ARGV: now, lease, holder. Extends the holder's lease in each (putting it
// back if it lapsed: the call it stands for is still running).
const redis::Script& renew_script() {
  static const redis::Script script(R"lua(
local now, lease, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, holder)
  redis.call('PEXPIRE', KEYS[i], lease * 2)
end
return 0
)lua");
  return script;
}

const redis::Script& leave_script() {
  static const redis::Script script(R"lua(
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 0
)lua");
  return script;
}

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// A bucket's key and its five arguments to the acquire script.
void add_bucket(const redis::Client& client, const Take& t, std::vector<std::string>& keys,
                std::vector<std::string>& args) {
  const Gcra gcra(t.quota);
  keys.push_back(client.key("rl:" + t.key));
  args.push_back(exact(gcra.interval));
  args.push_back(exact(gcra.limit));
  args.push_back(exact(gcra.tolerance));
  args.push_back(std::to_string(t.cost));
  args.push_back(t.force ? "1" : "0");
}

Error malformed() {
  return Error::unavailable("Redis answered the limiter with something unexpected",
                            "redis_protocol");
}

class RedisLimiter final : public RateLimiter {
 public:
  RedisLimiter(redis::Client& client, int64_t lease_ms) : client_(client), lease_ms_(lease_ms) {}

  Task<Result<std::vector<Decision>>> acquire(std::vector<Take> takes, int64_t now_ms) override {
    std::vector<Decision> out(takes.size());
    std::vector<size_t> limited;  // takes with a quota: the script's buckets, in order
    for (size_t i = 0; i < takes.size(); ++i) {
      if (takes[i].quota.quota > 0) limited.push_back(i);
    }
    if (limited.empty()) co_return out;
    const double now = static_cast<double>(now_ms - kEpochMs);
    std::vector<std::string> keys;
    std::vector<std::string> args{exact(now)};
    for (size_t i : limited) add_bucket(client_, takes[i], keys, args);
    auto reply = co_await client_.eval(acquire_script(), std::move(keys), std::move(args));
    if (!reply) co_return std::move(reply).error();
    if (reply->is_error()) co_return redis_error(*reply);
    if (reply->type != redis::Reply::Type::kArray || reply->elements.size() != limited.size()) {
      co_return malformed();
    }
    for (size_t j = 0; j < limited.size(); ++j) {
      const auto& row = reply->elements[j];
      if (row.elements.size() != 3) co_return malformed();
      const double tat = std::strtod(row.elements[0].text.c_str(), nullptr);
      const Take& t = takes[limited[j]];
      out[limited[j]] = Gcra(t.quota).decide(tat, now, t.cost, row.elements[1].integer == 1,
                                             row.elements[2].integer == 1);
    }
    co_return out;
  }

  Task<Result<std::optional<size_t>>> enter(std::vector<Slot> slots, std::string holder,
                                            int64_t now_ms) override {
    std::vector<size_t> limited;
    std::vector<std::string> keys;
    std::vector<std::string> args{std::to_string(now_ms), std::to_string(lease_ms_), holder};
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].max <= 0) continue;
      limited.push_back(i);
      keys.push_back(slot_key(slots[i].key));
      args.push_back(std::to_string(slots[i].max));
    }
    if (limited.empty()) co_return std::optional<size_t>();
    auto reply = co_await client_.eval(enter_script(), std::move(keys), std::move(args));
    if (!reply) co_return std::move(reply).error();
    if (reply->is_error()) co_return redis_error(*reply);
    if (reply->type != redis::Reply::Type::kInteger) co_return malformed();
    if (reply->integer == 0) co_return std::optional<size_t>();
    const auto full = static_cast<size_t>(reply->integer - 1);
    if (full >= limited.size()) co_return malformed();
    co_return std::optional<size_t>(limited[full]);
  }

  Task<Result<void>> renew(std::vector<std::string> keys, std::string holder,
                           int64_t now_ms) override {
    for (auto& k : keys) k = slot_key(k);
    // Built before the await: g++ 12 rejects arrays among a coroutine's temporaries.
    std::vector<std::string> args{std::to_string(now_ms), std::to_string(lease_ms_),
                                  std::move(holder)};
    auto reply = co_await client_.eval(renew_script(), std::move(keys), std::move(args));
    if (!reply) co_return std::move(reply).error();
    if (reply->is_error()) co_return redis_error(*reply);
    co_return success();
  }

  void leave(std::vector<std::string> keys, std::string holder) override {
    for (auto& k : keys) k = slot_key(k);
    std::vector<std::string> args{std::move(holder)};
    client_.eval_detached(leave_script(), std::move(keys), std::move(args));
  }

  void charge(std::vector<Take> takes, int64_t now_ms) override {
    std::vector<std::string> keys;
    std::vector<std::string> args{exact(static_cast<double>(now_ms - kEpochMs))};
    for (auto& t : takes) {
      if (t.quota.quota <= 0 || t.cost <= 0) continue;
      t.force = true;
      add_bucket(client_, t, keys, args);
    }
    if (keys.empty()) return;
    client_.eval_detached(acquire_script(), std::move(keys), std::move(args));
  }

  int64_t lease_ms() const override { return lease_ms_; }

 private:
  std::string slot_key(const std::string& slot) const { return client_.key("slot:" + slot); }
  static Error redis_error(const redis::Reply& reply) {
    return Error::unavailable("Redis refused the limiter's script: " + reply.text, "redis_error");
  }

  redis::Client& client_;
  int64_t lease_ms_;
};

}  // namespace

std::unique_ptr<RateLimiter> make_redis_limiter(redis::Client& client, int64_t lease_ms) {
  return std::make_unique<RedisLimiter>(client, lease_ms);
}

}  // namespace parley::limits
