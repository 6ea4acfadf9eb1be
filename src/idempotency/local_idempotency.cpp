// The single-process idempotency store (see idempotency.hpp).
#include <chrono>

#include "core/clock.hpp"
#include "idempotency/idempotency.hpp"
#include "obs/log.hpp"

namespace parley::idempotency {

LocalIdempotency::LocalIdempotency(store::IdempotencyRepository& repo, LocalOptions options)
    : repo_(repo), options_(options) {}

LocalIdempotency::~LocalIdempotency() { stop(); }

Result<void> LocalIdempotency::start(int64_t now_ms) {
  auto keys = repo_.unexpired_keys(now_ms);
  if (!keys) return std::move(keys).error();
  {
    std::lock_guard lock(mutex_);
    for (auto& r : *keys) {
      Entry e;
      e.fingerprint = std::move(r.fingerprint);
      e.expires_at_ms = r.expires_at_ms;
      e.tenant_id = std::move(r.tenant_id);
      e.user_id = std::move(r.user_id);
      entries_.insert_or_assign(std::move(r.key), std::move(e));
    }
    last_purge_ms_ = now_ms;
  }
  writer_ = std::thread([this] { writer_loop(); });
  return success();
}

void LocalIdempotency::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  flush();
}

Claim LocalIdempotency::claim(const std::string& key, const std::string& fingerprint,
                              int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.expires_at_ms <= now_ms && !it->second.running) {
    if (it->second.response) memory_used_ -= it->second.response->body.size();
    entries_.erase(it);  // its place in bodies_in_memory_ goes at the next purge or eviction
    it = entries_.end();
  }
  Claim c;
  if (it == entries_.end()) {
    Entry e;
    e.fingerprint = fingerprint;
    e.running = true;
    e.expires_at_ms = now_ms + options_.ttl_ms;
    entries_.emplace(key, std::move(e));
    c.kind = Claim::Kind::kClaimed;
    return c;
  }
  const Entry& e = it->second;
  if (e.fingerprint != fingerprint) {
    c.kind = Claim::Kind::kMismatch;
  } else if (e.running) {
    c.kind = Claim::Kind::kInProgress;
  } else if (e.response) {
    c.kind = Claim::Kind::kReplay;
    c.response = *e.response;
  } else {
    c.kind = Claim::Kind::kReplayLoad;
  }
  return c;
}

Result<std::optional<StoredResponse>> LocalIdempotency::load(const std::string& key) {
  {
    // It may still be queued for writing.
    std::lock_guard lock(mutex_);
    for (const auto* list : {&queue_, &writing_}) {
      for (const auto& r : *list) {
        if (r.key == key)
          return std::optional<StoredResponse>(StoredResponse{r.status, r.content_type, r.body});
      }
    }
  }
  auto record = repo_.get(key);
  if (!record) return std::move(record).error();
  if (!*record) {
    // Expired, or never written (the write failed): the key is free for the request again.
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && !it->second.running && !it->second.response) entries_.erase(it);
    return std::optional<StoredResponse>();
  }
  return std::optional<StoredResponse>(StoredResponse{
      (*record)->status, std::move((*record)->content_type), std::move((*record)->body)});
}

void LocalIdempotency::complete(const std::string& key, const std::string& fingerprint,
                                StoredResponse response, const std::string& tenant_id,
                                const std::string& user_id, int64_t now_ms) {
  store::IdempotencyRecord record;
  record.key = key;
  record.fingerprint = fingerprint;
  record.status = response.status;
  record.content_type = response.content_type;
  record.body = response.body;
  record.created_at_ms = now_ms;
  record.expires_at_ms = now_ms + options_.ttl_ms;
  record.tenant_id = tenant_id;
  record.user_id = user_id;
  {
    std::lock_guard lock(mutex_);
    Entry& e = entries_[key];
    e.fingerprint = fingerprint;
    e.running = false;
    e.expires_at_ms = record.expires_at_ms;
    e.tenant_id = tenant_id;
    e.user_id = user_id;
    memory_used_ += response.body.size();
    e.response = std::move(response);
    bodies_in_memory_.push_back(key);
    // Over the memory budget: the oldest bodies are dropped here (their keys stay indexed,
    // their bodies are in the store).
    while (memory_used_ > options_.memory_bytes && !bodies_in_memory_.empty()) {
      auto old = entries_.find(bodies_in_memory_.front());
      bodies_in_memory_.pop_front();
      if (old != entries_.end() && old->second.response) {
        memory_used_ -= old->second.response->body.size();
        old->second.response.reset();
      }
    }
    queue_.push_back(std::move(record));
  }
  wake_.notify_one();
}

void LocalIdempotency::release(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.running) entries_.erase(it);
}

void LocalIdempotency::forget_user(const std::optional<std::string>& tenant_id,
                                   const std::string& user_id) {
  auto owned = [&](const std::string& tenant, const std::string& user) {
    return user == user_id && (!tenant_id || tenant == *tenant_id);
  };
  // Waits for a batch being written: once this returns, nothing of the user's is on its way to
  // the store, and the caller deletes what is there.
  std::lock_guard flushing(flush_mutex_);
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (owned(it->second.tenant_id, it->second.user_id) && !it->second.running) {
      if (it->second.response) memory_used_ -= it->second.response->body.size();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(queue_,
                [&](const store::IdempotencyRecord& r) { return owned(r.tenant_id, r.user_id); });
}

void LocalIdempotency::flush() {
  // One flush at a time; the batch being written stays readable (load()) until it is in the
  // store, so a retry never finds its answer in neither place.
  std::lock_guard flushing(flush_mutex_);
  {
    std::lock_guard lock(mutex_);
    writing_.swap(queue_);
  }
  if (writing_.empty()) return;
  if (auto r = repo_.put(writing_); !r) {
    // Answers still in memory replay for this process's life; a retry whose answer is
    // neither in memory nor in the store runs again (load() frees its key).
    log::warn("stored idempotent responses could not be written",
              {{"responses", static_cast<int64_t>(writing_.size())}, {"error", r.error().message}});
  }
  std::lock_guard lock(mutex_);
  writing_.clear();
}

void LocalIdempotency::purge(int64_t now_ms) {
  {
    std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!it->second.running && it->second.expires_at_ms <= now_ms) {
        if (it->second.response) memory_used_ -= it->second.response->body.size();
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(bodies_in_memory_, [&](const std::string& k) { return !entries_.count(k); });
  }
  if (auto r = repo_.purge_expired(now_ms); !r) {
    log::warn("expired idempotency keys could not be purged", {{"error", r.error().message}});
  }
}

void LocalIdempotency::writer_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.purge_interval_ms),
                   [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    // Gather what arrives within the flush interval into one transaction.
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.flush_interval_ms));
    flush();
    const int64_t now = to_unix_ms(std::chrono::system_clock::now());
    lock.lock();
    if (now - last_purge_ms_ >= options_.purge_interval_ms) {
      last_purge_ms_ = now;
      lock.unlock();
      purge(now);
      lock.lock();
    }
  }
}

}  // namespace parley::idempotency
