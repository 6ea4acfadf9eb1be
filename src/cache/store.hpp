// Where the response caches keep their answers: this process's memory, or Redis when
// `redis.url` is set, so that every replica answers from what any of them cached. Either way
// the cache is derived: losing it costs model calls, never answers, and a store that fails
// (Redis down) answers "nothing cached" rather than failing the request.
//
// Two shapes: plain entries by key (the exact cache), and partitions of recent entries,
// newest first, each of which a lookup reads whole (the semantic cache compares a question
// with every question cached for the same tenant, model, prompt and conversation).
//
// Thread-safe; the awaitable calls run on an I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/task.hpp"

namespace parley::redis {
class Client;
}

namespace parley::cache {

class CacheStore {
 public:
  virtual ~CacheStore() = default;
  virtual Task<std::optional<std::string>> get(std::string key) = 0;
  // Without waiting: an answer is cached after it went out.
  virtual void put(std::string key, std::string value, std::chrono::milliseconds ttl) = 0;
  // The partition's entries, newest first, none older than the TTL they were added with.
  virtual Task<std::vector<std::string>> partition(std::string key) = 0;
  // Adds an entry in front, keeping the newest `keep`.
  virtual void add_to_partition(std::string key, std::string entry, std::chrono::milliseconds ttl,
                                int64_t keep) = 0;
};

// In memory: at most `max_entries` plain entries and `max_partition_entries` partition entries
// (least recently used first out).
std::unique_ptr<CacheStore> make_local_store(int64_t max_entries, int64_t max_partition_entries,
                                             const Clock& clock = Clock::system());
// In Redis, under the client's key prefix + "cache:".
std::unique_ptr<CacheStore> make_redis_store(redis::Client& client,
                                             const Clock& clock = Clock::system());

}  // namespace parley::cache
