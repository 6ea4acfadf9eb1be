// The embedding cache (see embedding_cache.hpp).
#include "knowledge/embed/embedding_cache.hpp"

#include <cstring>
#include <string>

#include "auth/crypto.hpp"

namespace parley::knowledge {

EmbeddingCache::EmbeddingCache(size_t capacity, std::chrono::milliseconds ttl, const Clock& clock)
    : capacity_(capacity), ttl_(ttl), clock_(clock) {}

size_t EmbeddingCache::KeyHash::operator()(const Key& key) const noexcept {
  size_t h;
  std::memcpy(&h, key.data(), sizeof h);  // a SHA-256 prefix is already uniform
  return h;
}

EmbeddingCache::Key EmbeddingCache::key_of(std::string_view embedder, std::string_view text) {
  std::string material;
  material.reserve(embedder.size() + 1 + text.size());
  material.append(embedder);
  material.push_back('\0');
  material.append(text);
  return auth::sha256(material);
}

std::optional<std::vector<float>> EmbeddingCache::get(std::string_view embedder,
                                                      std::string_view text) {
  if (capacity_ == 0) return std::nullopt;
  const Key key = key_of(embedder, text);
  const auto now = clock_.steady_now();
  std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return std::nullopt;
  }
  if (now - it->second->stored > ttl_) {
    entries_.erase(it->second);
    index_.erase(it);
    ++misses_;
    return std::nullopt;
  }
  entries_.splice(entries_.begin(), entries_, it->second);
  ++hits_;
  return it->second->vector;
}

void EmbeddingCache::put(std::string_view embedder, std::string_view text,
                         std::vector<float> vector) {
  if (capacity_ == 0) return;
  const Key key = key_of(embedder, text);
  const auto now = clock_.steady_now();
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find(key); it != index_.end()) {
    it->second->vector = std::move(vector);
    it->second->stored = now;
    entries_.splice(entries_.begin(), entries_, it->second);
    return;
  }
  entries_.push_front(Entry{key, std::move(vector), now});
  index_.emplace(key, entries_.begin());
  while (entries_.size() > capacity_) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
}

size_t EmbeddingCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

int64_t EmbeddingCache::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

int64_t EmbeddingCache::misses() const {
  std::lock_guard lock(mutex_);
  return misses_;
}

}  // namespace parley::knowledge
