// Idempotency-Key across replicas: claims in Redis, answers in the database.
//
// A key's state lives in a Redis hash (its request's fingerprint, and "running" or "done"):
// claiming it is one Lua script, so of two replicas receiving the same key at once exactly one
// runs the request; the other answers 409 until it is done, then replays the stored answer.
// The answer itself is written to the database (the record; erasure and export see it), and
// only once it is there does the key turn "done", so a replica that sees "done" always finds
// the answer. A claim whose replica died lapses after kRunningLease, and the retry runs.
//
// When Redis was emptied (a restart without persistence), a new claim still finds an answer
// already in the database: every successful claim reads it once (requests with a key do real
// work; one indexed read is small beside it), so nothing runs twice.
//
// Thread-safety: claim() on an I/O thread; the rest from any thread; load() and forget_user()
// block (call them on the blocking pool).
#pragma once

#include "core/blocking_pool.hpp"
#include "idempotency/idempotency.hpp"

namespace parley::redis {
class Client;
}

namespace parley::idempotency {

class SharedIdempotency final : public IdempotencyStore {
 public:
  // How long a claim lasts without its answer: a replica that died mid-request frees the key
  // this long after it claimed it.
  static constexpr int64_t kRunningLeaseMs = 10LL * 60 * 1000;

  SharedIdempotency(redis::Client& redis, store::IdempotencyRepository& repo,
                    BlockingPool& blocking, LocalOptions options);
  ~SharedIdempotency() override;
  SharedIdempotency(const SharedIdempotency&) = delete;
  SharedIdempotency& operator=(const SharedIdempotency&) = delete;

  // Starts the writer thread (answers, and the purge of expired ones). stop() writes what is
  // queued. Idempotent.
  void start();
  void stop();
  void flush();

  Task<Result<Claim>> claim(const std::string& key, const std::string& fingerprint,
                            int64_t now_ms) override;
  uint64_t max_response_size() const override { return options_.max_response_size; }
  Result<std::optional<StoredResponse>> load(const std::string& key) override;
  void complete(const std::string& key, const std::string& fingerprint, StoredResponse response,
                const std::string& tenant_id, const std::string& user_id, int64_t now_ms) override;
  void release(const std::string& key) override;
  void forget_user(const std::optional<std::string>& tenant_id,
                   const std::string& user_id) override;

 private:
  std::string redis_key(const std::string& key) const;
  // The stored answer, if the database holds one that has not expired.
  Task<Result<std::optional<store::IdempotencyRecord>>> stored(const std::string& key,
                                                               int64_t now_ms);

  redis::Client& redis_;
  store::IdempotencyRepository& repo_;
  BlockingPool& blocking_;
  LocalOptions options_;
  // Last, so that its thread stops before the members above go.
  jobs::BatchWriter<store::IdempotencyRecord> writer_;
};

}  // namespace parley::idempotency
