// The Redis RateLimiter (see redis_limiter.hpp).
#include "limits/redis_limiter.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <unordered_map>

#include "redis/client.hpp"

namespace parley::limits {
namespace {

namespace asio = boost::asio;

// The most requests one script call decides.
constexpr size_t kMaxBatch = 128;

// 2026-01-01T00:00:00Z: bucket times are kept relative to it.
constexpr int64_t kEpochMs = 1'767'225'600'000;

// Several requests' takes in one call, decided in order as if each ran alone. KEYS: the
// distinct buckets. ARGV: the number of distinct quotas, then three values per quota
// (interval, limit, tolerance); the number of requests, then per request its now and its
// bucket count, and per bucket four values: the bucket's index in KEYS, its quota's index,
// cost, force. Within a request every bucket is checked first; unless one that is not forced
// refuses, all are charged (forced ones always). A bucket is read once and written once per
// call, however many requests share it. Per bucket, flat: its TAT before the request, and
// fits + 2 * charged. Numbers travel in decimal forms that parse back to the same doubles
// (%.17g from Lua), so both sides compute with the same values as Gcra.
const redis::Script& acquire_script() {
  static const redis::Script script(R"lua(
local quotas, tats, expiry, out = {}, {}, {}, {}
local p = 2
for q = 1, tonumber(ARGV[1]) do
  quotas[q] = {tonumber(ARGV[p]), tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])}
  p = p + 3
end
local requests = tonumber(ARGV[p])
p = p + 1
for _ = 1, requests do
  local now, n = tonumber(ARGV[p]), tonumber(ARGV[p + 1])
  p = p + 2
  local first, seen, fits, all_fit = p, {}, {}, true
  for i = 1, n do
    local k, quota, cost = tonumber(ARGV[p]), quotas[tonumber(ARGV[p + 1])], tonumber(ARGV[p + 2])
    local tat = tats[k]
    if tat == nil then
      local stored = redis.call('GET', KEYS[k])
      -- An absent bucket is full at any request's now (the requests' nows need not rise).
      tat = stored and tonumber(stored) or -math.huge
      tats[k] = tat
    end
    if tat < now then tat = now end
    local ok
    if cost == 0 then ok = (tat - now < quota[2]) else ok = (tat + quota[1] * cost - now <= quota[3]) end
    seen[i], fits[i] = tat, ok
    if (not ok) and ARGV[p + 3] ~= '1' then all_fit = false end
    p = p + 4
  end
  for i = 1, n do
    local b = first + (i - 1) * 4
    local k, cost = tonumber(ARGV[b]), tonumber(ARGV[b + 2])
    local charged = ARGV[b + 3] == '1' or (all_fit and fits[i])
    if charged and cost > 0 then
      tats[k] = seen[i] + quotas[tonumber(ARGV[b + 1])][1] * cost
      expiry[k] = math.ceil(tats[k] - now) + 1000
    end
    out[#out + 1] = string.format('%.17g', seen[i])
    out[#out + 1] = (fits[i] and 1 or 0) + (charged and 2 or 0)
  end
end
for k, ms in pairs(expiry) do
  redis.call('SET', KEYS[k], string.format('%.17g', tats[k]), 'PX', ms)
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

// The shortest decimal that reads back as exactly `v` (std::to_chars), which Lua's tonumber
// and strtod turn into the same double.
std::string exact(double v) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  return std::string(buf, end);
}

// What a script call answered one of the requests it carried: the whole flat reply (shared
// by the batch) and where this request's rows begin in it.
struct Outcome {
  std::shared_ptr<const Result<redis::Reply>> reply;
  size_t first_row = 0;
};

// One request's takes with a quota, waiting for the script call that decides them.
struct Queued {
  const std::vector<Take>* takes;
  const std::vector<size_t>* limited;  // indexes into *takes: the buckets, in order
  int64_t now_ms;
  Outcome* outcome;
  std::function<void()> resume;  // null for the request that sends
};

// The script's KEYS and ARGV for a batch of requests (see acquire_script).
class ScriptCall {
 public:
  explicit ScriptCall(const redis::Client& client) : client_(client) {}

  // Adds a request; returns the index of its first bucket's row in the reply.
  size_t add(const std::vector<Take>& takes, const std::vector<size_t>& limited, int64_t now_ms) {
    const size_t first = rows_;
    ++requests_;
    requests_args_.push_back(exact(static_cast<double>(now_ms - kEpochMs)));
    requests_args_.push_back(std::to_string(limited.size()));
    for (size_t i : limited) {
      const Take& t = takes[i];
      auto [key, new_key] = keys_index_.try_emplace(t.key, keys_.size() + 1);
      if (new_key) keys_.push_back(client_.key("rl:" + t.key));
      const std::array<int64_t, 3> shape{t.quota.quota, t.quota.window_ms, t.quota.burst};
      auto [quota, new_quota] = quotas_index_.try_emplace(shape, quotas_index_.size() + 1);
      if (new_quota) {
        const Gcra gcra(t.quota);
        quotas_args_.push_back(exact(gcra.interval));
        quotas_args_.push_back(exact(gcra.limit));
        quotas_args_.push_back(exact(gcra.tolerance));
      }
      requests_args_.push_back(std::to_string(key->second));
      requests_args_.push_back(std::to_string(quota->second));
      requests_args_.push_back(std::to_string(t.cost));
      requests_args_.push_back(t.force ? "1" : "0");
    }
    rows_ += limited.size();
    return first;
  }
  std::vector<std::string> take_keys() { return std::move(keys_); }
  std::vector<std::string> take_args() {
    std::vector<std::string> args;
    args.reserve(2 + quotas_args_.size() + requests_args_.size());
    args.push_back(std::to_string(quotas_index_.size()));
    std::move(quotas_args_.begin(), quotas_args_.end(), std::back_inserter(args));
    args.push_back(std::to_string(requests_));
    std::move(requests_args_.begin(), requests_args_.end(), std::back_inserter(args));
    return args;
  }

 private:
  const redis::Client& client_;
  std::unordered_map<std::string, size_t> keys_index_;  // bucket → its 1-based index in KEYS
  std::vector<std::string> keys_;
  std::map<std::array<int64_t, 3>, size_t> quotas_index_;  // quota → its 1-based index
  std::vector<std::string> quotas_args_;
  std::vector<std::string> requests_args_;
  size_t requests_ = 0;
  size_t rows_ = 0;
};

Error malformed() {
  return Error::unavailable("Redis answered the limiter with something unexpected",
                            "redis_protocol");
}

class RedisLimiter final : public RateLimiter {
 public:
  RedisLimiter(redis::Client& client, int64_t lease_ms) : client_(client), lease_ms_(lease_ms) {
    for (int i = 0; i < client.io().size(); ++i) {
      batches_.push_back(Batch{&client.io().context(i), {}});
    }
  }

  // The requests that reach the limiter on one I/O thread in one turn of its event loop share
  // one script call: the first of them yields once so the others can join, then sends for all
  // of them and hands each its rows. Under load that is one Redis command (and one Lua run)
  // for many requests (at most kMaxBatch); alone, a request only waits for that one yield. A
  // failed call (Redis gone, a script error) fails every request it carried, as it would have
  // failed each of them alone.
  Task<Result<std::vector<Decision>>> acquire(std::vector<Take> takes, int64_t now_ms) override {
    std::vector<Decision> out(takes.size());
    std::vector<size_t> limited;  // takes with a quota: the script's buckets, in order
    for (size_t i = 0; i < takes.size(); ++i) {
      if (takes[i].quota.quota > 0) limited.push_back(i);
    }
    if (limited.empty()) co_return out;
    const auto executor = co_await asio::this_coro::executor;
    Batch* batch = batch_for(executor.context());
    if (!batch) co_return Error::internal("the limiter was called outside its I/O threads");

    Outcome outcome;
    if (batch->queued.size() >= kMaxBatch) {
      // The batch is full: this request goes on its own rather than lengthen one Lua run,
      // which holds up every other client of Redis while it lasts.
      std::vector<Queued> alone;
      alone.push_back(Queued{&takes, &limited, now_ms, &outcome, nullptr});
      co_await send(std::move(alone));
    } else if (batch->queued.empty()) {
      batch->queued.push_back(Queued{&takes, &limited, now_ms, &outcome, nullptr});
      co_await asio::post(executor, use_task);
      std::vector<Queued> carried;
      carried.swap(batch->queued);
      co_await send(std::move(carried));
    } else {
      co_await asio::async_initiate<decltype(use_task), void()>(
          [&](auto handler) {
            auto held = std::make_shared<decltype(handler)>(std::move(handler));
            batch->queued.push_back(Queued{&takes, &limited, now_ms, &outcome,
                                           [held] { asio::post(std::move(*held)); }});
          },
          use_task);
    }
    const Result<redis::Reply>& reply = *outcome.reply;
    if (!reply) co_return reply.error();
    if (reply->is_error()) co_return redis_error(*reply);
    if (reply->type != redis::Reply::Type::kArray ||
        reply->elements.size() < 2 * (outcome.first_row + limited.size())) {
      co_return malformed();
    }
    const double now = static_cast<double>(now_ms - kEpochMs);
    for (size_t j = 0; j < limited.size(); ++j) {
      const auto* row = &reply->elements[2 * (outcome.first_row + j)];
      const double tat = std::strtod(row[0].text.c_str(), nullptr);
      const Take& t = takes[limited[j]];
      out[limited[j]] = Gcra(t.quota).decide(tat, now, t.cost, (row[1].integer & 1) != 0,
                                             (row[1].integer & 2) != 0);
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
    std::vector<size_t> limited;
    for (size_t i = 0; i < takes.size(); ++i) {
      takes[i].force = true;
      if (takes[i].quota.quota > 0 && takes[i].cost > 0) limited.push_back(i);
    }
    if (limited.empty()) return;
    ScriptCall call(client_);
    call.add(takes, limited, now_ms);
    client_.eval_detached(acquire_script(), call.take_keys(), call.take_args());
  }

  int64_t lease_ms() const override { return lease_ms_; }

 private:
  std::string slot_key(const std::string& slot) const { return client_.key("slot:" + slot); }
  static Error redis_error(const redis::Reply& reply) {
    return Error::unavailable("Redis refused the limiter's script: " + reply.text, "redis_error");
  }

  // The requests waiting for the next script call on one I/O thread; touched only there.
  struct Batch {
    boost::asio::io_context* context;
    std::vector<Queued> queued;
  };

  Batch* batch_for(boost::asio::io_context& context) {
    for (auto& b : batches_) {
      if (b.context == &context) return &b;
    }
    return nullptr;
  }

  // One script call for `carried`; every request's outcome is set before any resumes.
  Task<void> send(std::vector<Queued> carried) {
    ScriptCall call(client_);
    for (Queued& q : carried) q.outcome->first_row = call.add(*q.takes, *q.limited, q.now_ms);
    auto answer = co_await client_.eval(acquire_script(), call.take_keys(), call.take_args());
    auto reply = std::make_shared<const Result<redis::Reply>>(std::move(answer));
    for (Queued& q : carried) {
      q.outcome->reply = reply;
      if (q.resume) q.resume();
    }
  }

  redis::Client& client_;
  int64_t lease_ms_;
  std::vector<Batch> batches_;  // one per I/O thread
};

}  // namespace

std::unique_ptr<RateLimiter> make_redis_limiter(redis::Client& client, int64_t lease_ms) {
  return std::make_unique<RedisLimiter>(client, lease_ms);
}

}  // namespace parley::limits
