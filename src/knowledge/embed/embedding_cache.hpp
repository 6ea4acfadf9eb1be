// The embedding cache (`knowledge.embedding_cache_size`, `knowledge.embedding_cache_ttl`: the
// behaviour of the seed's EMBEDDING_CACHE_SIZE and EMBEDDING_CACHE_TTL): vectors a remote
// embedder made recently, by embedder and text, so a question asked again, a chunk re-ingested
// unchanged or a query repeated by many users costs no call. Least recently used entries go
// first once it is full; an entry older than the TTL is never returned.
//
// Derived and per process: losing it costs calls, never answers. Keys are the SHA-256 of the
// embedder's name and the text, so long chunks do not sit in memory twice.
//
// Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"

namespace parley::knowledge {

class EmbeddingCache {
 public:
  // capacity 0 turns the cache off.
  EmbeddingCache(size_t capacity, std::chrono::milliseconds ttl,
                 const Clock& clock = Clock::system());

  std::optional<std::vector<float>> get(std::string_view embedder, std::string_view text);
  void put(std::string_view embedder, std::string_view text, std::vector<float> vector);

  size_t size() const;
  int64_t hits() const;
  int64_t misses() const;

 private:
  using Key = std::array<unsigned char, 32>;
  struct KeyHash {
    size_t operator()(const Key& key) const noexcept;
  };
  struct Entry {
    Key key;
    std::vector<float> vector;
    std::chrono::steady_clock::time_point stored;
  };

  static Key key_of(std::string_view embedder, std::string_view text);

  size_t capacity_;
  std::chrono::milliseconds ttl_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace parley::knowledge
