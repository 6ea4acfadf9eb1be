// The response caches' stores (see store.hpp).
#include "cache/store.hpp"

#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include "redis/client.hpp"

namespace parley::cache {

namespace {

using std::chrono::milliseconds;

// A partition entry as kept: its expiry (unix ms, 8 bytes) in front, so Redis needs no
// per-element TTL.
std::string stamped(const Clock& clock, const std::string& entry, milliseconds ttl) {
  const int64_t expires = to_unix_ms(clock.now()) + ttl.count();
  std::string out(sizeof expires, '\0');
  std::memcpy(out.data(), &expires, sizeof expires);
  out += entry;
  return out;
}

// The entry, or nullopt when it expired (or is not one of ours).
std::optional<std::string> unstamped(const Clock& clock, const std::string& stored) {
  int64_t expires = 0;
  if (stored.size() < sizeof expires) return std::nullopt;
  std::memcpy(&expires, stored.data(), sizeof expires);
  if (expires <= to_unix_ms(clock.now())) return std::nullopt;
  return stored.substr(sizeof expires);
}

class LocalStore final : public CacheStore {
 public:
  LocalStore(int64_t max_entries, int64_t max_partition_entries, const Clock& clock)
      : max_entries_(static_cast<size_t>(max_entries)),
        max_partition_entries_(static_cast<size_t>(max_partition_entries)),
        clock_(clock) {}

  Task<std::optional<std::string>> get(std::string key) override { co_return find(key); }

  void put(std::string key, std::string value, milliseconds ttl) override {
    if (max_entries_ == 0) return;
    std::lock_guard lock(mutex_);
    const auto expires = clock_.steady_now() + ttl;
    if (auto it = entries_.find(key); it != entries_.end()) {
      it->second->value = std::move(value);
      it->second->expires = expires;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.push_front(Entry{key, std::move(value), expires});
    entries_.emplace(std::move(key), order_.begin());
    while (order_.size() > max_entries_) {
      entries_.erase(order_.back().key);
      order_.pop_back();
    }
  }

  Task<std::vector<std::string>> partition(std::string key) override {
    std::vector<std::string> out;
    {
      std::lock_guard lock(mutex_);
      const auto it = partitions_.find(key);
      if (it != partitions_.end()) {
        partition_order_.splice(partition_order_.begin(), partition_order_, it->second);
        for (const auto& stored : it->second->entries) {
          if (auto entry = unstamped(clock_, stored)) out.push_back(std::move(*entry));
        }
      }
    }
    co_return out;
  }

  void add_to_partition(std::string key, std::string entry, milliseconds ttl,
                        int64_t keep) override {
    if (max_partition_entries_ == 0) return;
    std::lock_guard lock(mutex_);
    auto it = partitions_.find(key);
    if (it == partitions_.end()) {
      partition_order_.push_front(Partition{key, {}});
      it = partitions_.emplace(std::move(key), partition_order_.begin()).first;
    } else {
      partition_order_.splice(partition_order_.begin(), partition_order_, it->second);
    }
    auto& entries = it->second->entries;
    entries.push_front(stamped(clock_, entry, ttl));
    ++partition_entries_;
    while (entries.size() > static_cast<size_t>(std::max<int64_t>(1, keep))) {
      entries.pop_back();
      --partition_entries_;
    }
    // Over the bound: the least recently used partitions give up their oldest entries.
    while (partition_entries_ > max_partition_entries_ && !partition_order_.empty()) {
      auto& last = partition_order_.back();
      if (last.entries.empty()) {
        partitions_.erase(last.key);
        partition_order_.pop_back();
        continue;
      }
      last.entries.pop_back();
      --partition_entries_;
    }
  }

 private:
  struct Entry {
    std::string key;
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  struct Partition {
    std::string key;
    std::list<std::string> entries;  // stamped, newest first
  };

  std::optional<std::string> find(const std::string& key) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (it->second->expires <= clock_.steady_now()) {
      order_.erase(it->second);
      entries_.erase(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }

  const size_t max_entries_;
  const size_t max_partition_entries_;
  const Clock& clock_;
  std::mutex mutex_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> entries_;
  std::list<Partition> partition_order_;  // most recently used first
  std::unordered_map<std::string, std::list<Partition>::iterator> partitions_;
  size_t partition_entries_ = 0;
};

class RedisStore final : public CacheStore {
 public:
  RedisStore(redis::Client& client, const Clock& clock) : client_(client), clock_(clock) {}

  Task<std::optional<std::string>> get(std::string key) override {
    std::vector<std::string> args{"GET", client_.key("cache:" + key)};
    auto reply = co_await client_.command(std::move(args));
    if (!reply || reply->type != redis::Reply::Type::kString) co_return std::nullopt;
    co_return std::move(reply->text);
  }

  void put(std::string key, std::string value, milliseconds ttl) override {
    client_.command_detached(
        {"SET", client_.key("cache:" + key), std::move(value), "PX", std::to_string(ttl.count())});
  }

  Task<std::vector<std::string>> partition(std::string key) override {
    std::vector<std::string> args{"LRANGE", client_.key("cache:" + key), "0", "-1"};
    auto reply = co_await client_.command(std::move(args));
    std::vector<std::string> out;
    if (!reply || reply->type != redis::Reply::Type::kArray) co_return out;
    for (const auto& element : reply->elements) {
      if (auto entry = unstamped(clock_, element.text)) out.push_back(std::move(*entry));
    }
    co_return out;
  }

  void add_to_partition(std::string key, std::string entry, milliseconds ttl,
                        int64_t keep) override {
    static const redis::Script kAdd(
        "redis.call('LPUSH', KEYS[1], ARGV[1]) "
        "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1) "
        "redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1");
    client_.eval_detached(kAdd, {client_.key("cache:" + key)},
                          {stamped(clock_, entry, ttl), std::to_string(std::max<int64_t>(1, keep)),
                           std::to_string(ttl.count())});
  }

 private:
  redis::Client& client_;
  const Clock& clock_;
};

}  // namespace

std::unique_ptr<CacheStore> make_local_store(int64_t max_entries, int64_t max_partition_entries,
                                             const Clock& clock) {
  return std::make_unique<LocalStore>(max_entries, max_partition_entries, clock);
}

std::unique_ptr<CacheStore> make_redis_store(redis::Client& client, const Clock& clock) {
  return std::make_unique<RedisStore>(client, clock);
}

}  // namespace parley::cache
