// The single-process idempotency store (see idempotency.hpp): the in-memory index of keys, and
// a BatchWriter (jobs/batch_writer.hpp) that writes the stored answers and purges expired keys.
#include <algorithm>
#include <chrono>

#include "core/clock.hpp"
#include "idempotency/idempotency.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::idempotency {

namespace {
// Answers waiting for the store (it is failing, or slow): beyond this many the oldest are
// dropped. Lower than the other writers' bound because each holds a whole response body.
constexpr size_t kMaxQueued = 10'000;
constexpr size_t kFlushAt = 512;
}  // namespace

LocalIdempotency::LocalIdempotency(store::IdempotencyRepository& repo, LocalOptions options)
    : repo_(repo),
      options_(options),
      writer_(answer_writer_options(options,
                                    [this] {
                                      const Clock& clock =
                                          options_.clock ? *options_.clock : Clock::system();
                                      purge(to_unix_ms(clock.now()));
                                    }),
              [this](const std::vector<store::IdempotencyRecord>& batch) {
                // Until this returns the batch is still found by load() (for_each_pending), so a
                // retry never finds its answer in neither place.
                return repo_.put(batch);
              }) {}

LocalIdempotency::~LocalIdempotency() { stop(); }

jobs::BatchWriter<store::IdempotencyRecord>::Options answer_writer_options(
    const LocalOptions& options, std::function<void()> on_tick) {
  jobs::BatchWriter<store::IdempotencyRecord>::Options o;
  o.name = "idempotency";
  o.interval = std::chrono::milliseconds(std::max<int64_t>(options.flush_interval_ms, 0));
  o.flush_at = kFlushAt;
  o.max_queued = kMaxQueued;
  if (options.metrics) {
    obs::Metrics* metrics = options.metrics;
    o.on_drop = [metrics](std::string_view writer, int64_t n) {
      metrics->count_dropped(writer, n);
    };
  }
  o.tick_interval = std::chrono::milliseconds(std::max<int64_t>(options.purge_interval_ms, 0));
  o.on_tick = std::move(on_tick);
  return o;
}

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
  }
  // The first purge comes purge_interval_ms from now, on the writer's thread.
  writer_.start();
  return success();
}

void LocalIdempotency::stop() { writer_.stop(); }

Claim LocalIdempotency::claim_now(const std::string& key, const std::string& fingerprint,
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
    e.expires_at_ms = now_ms + options_.ttl.count();
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

Result<std::optional<StoredResponse>> find_answer(
    jobs::BatchWriter<store::IdempotencyRecord>& writer, store::IdempotencyRepository& repo,
    const std::string& key) {
  // It may still be queued for writing, or in the batch being written; the latest answer
  // under the key wins (pending items are visited oldest first).
  std::optional<StoredResponse> pending;
  writer.for_each_pending([&](const store::IdempotencyRecord& r) {
    if (r.key == key) pending = StoredResponse{r.status, r.content_type, r.body};
  });
  if (pending) return pending;
  auto record = repo.get(key);
  if (!record) return std::move(record).error();
  if (!*record) return std::optional<StoredResponse>();
  return std::optional<StoredResponse>(StoredResponse{
      (*record)->status, std::move((*record)->content_type), std::move((*record)->body)});
}

Result<std::optional<StoredResponse>> LocalIdempotency::load(const std::string& key) {
  auto answer = find_answer(writer_, repo_, key);
  if (answer && !*answer) {
    // Expired, or never written (the write failed): the key is free for the request again.
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && !it->second.running && !it->second.response) entries_.erase(it);
  }
  return answer;
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
  record.expires_at_ms = now_ms + options_.ttl.count();
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
    // Under mutex_, so that forget_user() finds the answer in both places or in neither.
    writer_.enqueue(std::move(record));
  }
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
  // With the writer's writes paused: a batch being written is waited for (and, if its write
  // failed, is back in the queue), so once this returns nothing of the user's is on its way to
  // the store, and the caller deletes what is there. claim() is not held up meanwhile: mutex_
  // is taken only once the write is done.
  writer_.with_writes_paused([&] {
    std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (owned(it->second.tenant_id, it->second.user_id) && !it->second.running) {
        if (it->second.response) memory_used_ -= it->second.response->body.size();
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    writer_.erase_if(
        [&](const store::IdempotencyRecord& r) { return owned(r.tenant_id, r.user_id); });
  });
}

void LocalIdempotency::flush() {
  // A failed write is logged and queued again by the writer. Meanwhile answers still in memory
  // replay, load() finds the others among the pending ones, and an answer dropped from a full
  // queue is in neither place: its retry runs again (load() frees its key).
  (void)writer_.flush();
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

}  // namespace parley::idempotency
