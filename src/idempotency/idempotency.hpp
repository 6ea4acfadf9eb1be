// Idempotency-Key: a client's retry of a POST gets the first attempt's answer instead of a
// second side effect (a second chat turn, a second paid model call).
//
// A key is scoped to the caller (the API key, or the token's tenant and user), so two clients
// can never see each other's answers. The first request with a key claims it; its response is
// stored with a fingerprint of its method, target and body. Then, for 24 h (configurable):
//   same key, same fingerprint, finished   -> the stored response again (Idempotent-Replayed)
//   same key, same fingerprint, running    -> 409: wait and retry
//   same key, different fingerprint        -> 422: a key names one request
// Responses that say "try again" are not stored, so a retry runs again: 5xx, 429, and any
// request whose client left before it was answered (it was cancelled then).
//
// LocalIdempotency below serves one process; SharedIdempotency (shared_idempotency.hpp) serves
// many replicas through Redis, with the answers in the database either way.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "jobs/batch_writer.hpp"
#include "store/store.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::config {
class Schema;
}

namespace parley::idempotency {

// `idempotency.*`, bound to LocalOptions.
void declare_settings(config::Schema& schema);

struct StoredResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

struct Claim {
  enum class Kind {
    kClaimed,     // the caller runs the request, then complete() or release()
    kReplay,      // `response` is the stored answer
    kReplayLoad,  // stored, but only in the store: load() it (blocking)
    kInProgress,  // the first request is still running
    kMismatch,    // the key was used for a different request
  };
  Kind kind = Kind::kClaimed;
  StoredResponse response;
};

class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;
  // On an I/O thread; never blocks it. kUnavailable when a shared store cannot answer (a
  // request with a key is then refused rather than risk running twice).
  virtual Task<Result<Claim>> claim(const std::string& key, const std::string& fingerprint,
                                    int64_t now_ms) = 0;
  // The largest answer complete() keeps; the guard does not record larger ones.
  virtual uint64_t max_response_size() const = 0;
  // For kReplayLoad: reads the stored answer (blocking; call on the blocking pool). nullopt when
  // it expired meanwhile.
  virtual Result<std::optional<StoredResponse>> load(const std::string& key) = 0;
  // Stores the claimed request's answer. Never blocks (persisted in the background).
  virtual void complete(const std::string& key, const std::string& fingerprint,
                        StoredResponse response, const std::string& tenant_id,
                        const std::string& user_id, int64_t now_ms) = 0;
  // Gives the claim up without storing anything: a retry runs the request again.
  virtual void release(const std::string& key) = 0;
  // Forgets a user's stored answers (erasure) in one tenant, or in every tenant (nullopt);
  // the store's rows are deleted by the caller, after this returns (none is written later).
  // May block (call on the blocking pool).
  virtual void forget_user(const std::optional<std::string>& tenant_id,
                           const std::string& user_id) = 0;
};

struct LocalOptions {
  std::chrono::milliseconds ttl{24LL * 3600 * 1000};
  // The largest answer stored for replay; a larger one is not stored (a retry runs again).
  uint64_t max_response_size = 4ULL * 1024 * 1024;
  // Bodies kept in memory for fast replays, in total; older ones are read back from the store.
  size_t memory_bytes = size_t{32} * 1024 * 1024;
  int64_t flush_interval_ms = 50;
  int64_t purge_interval_ms = 60'000;
  // Counts answers dropped from a full write queue (background_items_dropped_total); may be null.
  obs::Metrics* metrics = nullptr;
  // The time the background purge of expired keys goes by; null: Clock::system().
  const Clock* clock = nullptr;
};

// The options of the BatchWriter both stores write answers with: bounded, drops counted,
// `on_tick` (the purge of expired answers) every purge_interval_ms.
jobs::BatchWriter<store::IdempotencyRecord>::Options answer_writer_options(
    const LocalOptions& options, std::function<void()> on_tick);

// The stored answer under `key`: still queued in `writer` (the latest wins) or in the store;
// nullopt when neither has it (expired, or its write failed). Blocks on the store.
Result<std::optional<StoredResponse>> find_answer(
    jobs::BatchWriter<store::IdempotencyRecord>& writer, store::IdempotencyRepository& repo,
    const std::string& key);

// One process: every unexpired key is indexed in memory (loaded from the store at start, about
// 150 bytes a key); stored answers are written to the store by a BatchWriter
// (jobs/batch_writer.hpp) within `flush_interval_ms` and survive restarts; its thread also purges
// expired keys every `purge_interval_ms`. A crash loses at most that interval of answers, in
// which case a retry runs its request again. A failed write is retried; the answers waiting are
// bounded (10'000, the oldest dropped and counted in background_items_dropped_total{writer=
// "idempotency"}), and until written they are still found by load().
class LocalIdempotency final : public IdempotencyStore {
 public:
  LocalIdempotency(store::IdempotencyRepository& repo, LocalOptions options);
  ~LocalIdempotency() override;
  LocalIdempotency(const LocalIdempotency&) = delete;
  LocalIdempotency& operator=(const LocalIdempotency&) = delete;

  // Loads the index and starts the writer thread (before start(), only flush() writes).
  Result<void> start(int64_t now_ms);
  // Stops the writer thread and writes what is queued. Idempotent.
  void stop();

  Task<Result<Claim>> claim(const std::string& key, const std::string& fingerprint,
                            int64_t now_ms) override {
    co_return claim_now(key, fingerprint, now_ms);
  }
  // claim() without the coroutine (it never waits).
  Claim claim_now(const std::string& key, const std::string& fingerprint, int64_t now_ms);
  uint64_t max_response_size() const override { return options_.max_response_size; }
  Result<std::optional<StoredResponse>> load(const std::string& key) override;
  void complete(const std::string& key, const std::string& fingerprint, StoredResponse response,
                const std::string& tenant_id, const std::string& user_id, int64_t now_ms) override;
  void release(const std::string& key) override;
  void forget_user(const std::optional<std::string>& tenant_id,
                   const std::string& user_id) override;

  // Writes the queue now and returns when it is done (tests, shutdown).
  void flush();

 private:
  struct Entry {
    std::string fingerprint;
    bool running = false;
    int64_t expires_at_ms = 0;
    std::string tenant_id;  // whose answer it is, for erasure
    std::string user_id;
    std::optional<StoredResponse> response;  // in memory; else in the store
  };

  void purge(int64_t now_ms);

  store::IdempotencyRepository& repo_;
  LocalOptions options_;
  // Lock order: writer_'s write lock (with_writes_paused), then mutex_, then writer_'s queue lock
  // (complete() enqueues under mutex_, so that an answer and its index entry go together).
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> bodies_in_memory_;  // keys, oldest first, for dropping bodies
  size_t memory_used_ = 0;
  // Answers on their way to the store; last, so that its thread stops before the members above go.
  jobs::BatchWriter<store::IdempotencyRecord> writer_;
};

}  // namespace parley::idempotency
