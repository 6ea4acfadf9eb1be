// Idempotency-Key across replicas (see shared_idempotency.hpp).
#include "idempotency/shared_idempotency.hpp"

#include <algorithm>

#include "obs/log.hpp"
#include "obs/metrics.hpp"
#include "redis/client.hpp"

namespace parley::idempotency {
namespace {

// KEYS[1]: the key's hash. ARGV: fingerprint, running lease. "claimed" when it was free (now
// running for this caller), else "mismatch", "running" or "done".
const redis::Script& claim_script() {
  static const redis::Script script(R"lua(
local v = redis.call('HMGET', KEYS[1], 'fp', 'state')
if not v[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'claimed'
end
if v[1] ~= ARGV[1] then return 'mismatch' end
return v[2]
)lua");
  return script;
}

// KEYS[1]: the key's hash. ARGV: fingerprint, ms to keep it. The answer is in the database.
const redis::Script& done_script() {
  static const redis::Script script(R"lua(
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'done')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
)lua");
  return script;
}

// KEYS[1]: the key's hash. Frees a claim that is still running (never a finished answer).
const redis::Script& release_script() {
  static const redis::Script script(R"lua(
if redis.call('HGET', KEYS[1], 'state') == 'running' then redis.call('DEL', KEYS[1]) end
return 0
)lua");
  return script;
}

// KEYS[1]: the key's hash. Forgets a "done" whose answer the database no longer has.
const redis::Script& forget_script() {
  static const redis::Script script(R"lua(
if redis.call('HGET', KEYS[1], 'state') == 'done' then redis.call('DEL', KEYS[1]) end
return 0
)lua");
  return script;
}

Error unavailable(const Error& cause) {
  Error e = Error::unavailable(
      "Idempotency-Key cannot be checked (" + cause.message + "); retry with the same key",
      "idempotency_unavailable");
  e.retry_after_ms = 1000;
  return e;
}

}  // namespace

SharedIdempotency::SharedIdempotency(redis::Client& redis, store::IdempotencyRepository& repo,
                                     BlockingPool& blocking, LocalOptions options)
    : redis_(redis),
      repo_(repo),
      blocking_(blocking),
      options_(options),
      writer_(answer_writer_options(
                  options,
                  [this] {
                    // Every replica purges; deleting what another already
                    // deleted is harmless.
                    const Clock& clock = options_.clock ? *options_.clock : Clock::system();
                    if (auto r = repo_.purge_expired(to_unix_ms(clock.now())); !r) {
                      log::warn("expired idempotency keys could not be purged",
                                {{"error", r.error().message}});
                    }
                  }),
              [this](const std::vector<store::IdempotencyRecord>& batch) {
                auto written = repo_.put(batch);
                if (!written) return written;
                // Now in the database: every replica may replay them.
                for (const auto& r : batch) {
                  std::vector<std::string> keys{redis_key(r.key)};
                  std::vector<std::string> args{
                      r.fingerprint,
                      std::to_string(std::max<int64_t>(1, r.expires_at_ms - r.created_at_ms))};
                  redis_.eval_detached(done_script(), std::move(keys), std::move(args));
                }
                return written;
              }) {}

SharedIdempotency::~SharedIdempotency() { stop(); }

void SharedIdempotency::start() { writer_.start(); }
void SharedIdempotency::stop() { writer_.stop(); }
void SharedIdempotency::flush() { (void)writer_.flush(); }

std::string SharedIdempotency::redis_key(const std::string& key) const {
  return redis_.key("idem:" + key);
}

Task<Result<std::optional<store::IdempotencyRecord>>> SharedIdempotency::stored(
    const std::string& key, int64_t now_ms) {
  auto record = co_await blocking_.run([&] { return repo_.get(key); });
  if (!record) co_return std::move(record).error();
  if (*record && (*record)->expires_at_ms <= now_ms) record->reset();
  co_return std::move(*record);
}

Task<Result<Claim>> SharedIdempotency::claim(const std::string& key, const std::string& fingerprint,
                                             int64_t now_ms) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<std::string> keys{redis_key(key)};
    std::vector<std::string> args{fingerprint, std::to_string(kRunningLeaseMs)};
    auto state = co_await redis_.eval(claim_script(), std::move(keys), std::move(args));
    if (!state) co_return unavailable(state.error());
    if (state->is_error()) co_return unavailable(Error::unavailable(state->text));
    Claim c;
    if (state->text == "mismatch") {
      c.kind = Claim::Kind::kMismatch;
      co_return c;
    }
    // Claimed, running or done: the database says whether an answer exists. (A "running" key
    // whose answer is written lost its "done" on the way: a replica stopped right after
    // writing, or its connection was being replaced; it is marked again here.)
    auto record = co_await stored(key, now_ms);
    if (!record) {
      if (state->text == "claimed") release(key);
      co_return unavailable(record.error());
    }
    if (!*record && state->text == "running") {
      c.kind = Claim::Kind::kInProgress;
      co_return c;
    }
    if (*record) {
      if ((*record)->fingerprint != fingerprint) {
        if (state->text == "claimed") release(key);
        c.kind = Claim::Kind::kMismatch;
        co_return c;
      }
      if (state->text != "done") {
        // Redis had forgotten it, or its "done" was lost: "done" again, so the next retry is
        // quicker.
        std::vector<std::string> done_keys{redis_key(key)};
        std::vector<std::string> done_args{
            fingerprint, std::to_string(std::max<int64_t>(1, (*record)->expires_at_ms - now_ms))};
        redis_.eval_detached(done_script(), std::move(done_keys), std::move(done_args));
      }
      c.kind = Claim::Kind::kReplay;
      c.response = StoredResponse{(*record)->status, std::move((*record)->content_type),
                                  std::move((*record)->body)};
      co_return c;
    }
    if (state->text == "claimed") {
      c.kind = Claim::Kind::kClaimed;
      co_return c;
    }
    // "done" but no answer: erased, or expired. Forget it and claim afresh.
    std::vector<std::string> forget_keys{redis_key(key)};
    auto forgot =
        co_await redis_.eval(forget_script(), std::move(forget_keys), std::vector<std::string>{});
    if (!forgot) co_return unavailable(forgot.error());
  }
  Claim busy;
  busy.kind = Claim::Kind::kInProgress;
  co_return busy;
}

Result<std::optional<StoredResponse>> SharedIdempotency::load(const std::string& key) {
  return find_answer(writer_, repo_, key);
}

void SharedIdempotency::complete(const std::string& key, const std::string& fingerprint,
                                 StoredResponse response, const std::string& tenant_id,
                                 const std::string& user_id, int64_t now_ms) {
  store::IdempotencyRecord record;
  record.key = key;
  record.fingerprint = fingerprint;
  record.status = response.status;
  record.content_type = std::move(response.content_type);
  record.body = std::move(response.body);
  record.created_at_ms = now_ms;
  record.expires_at_ms = now_ms + options_.ttl.count();
  record.tenant_id = tenant_id;
  record.user_id = user_id;
  // Until it is written the key stays "running": a retry meanwhile gets 409, never a miss.
  writer_.enqueue(std::move(record));
}

void SharedIdempotency::release(const std::string& key) {
  std::vector<std::string> keys{redis_key(key)};
  redis_.eval_detached(release_script(), std::move(keys), {});
}

void SharedIdempotency::forget_user(const std::optional<std::string>& tenant_id,
                                    const std::string& user_id) {
  // Nothing of the user's may reach the database after this returns; what is there the caller
  // deletes. Keys left "done" in Redis find no answer and are claimed afresh.
  writer_.with_writes_paused([&] {
    writer_.erase_if([&](const store::IdempotencyRecord& r) {
      return r.user_id == user_id && (!tenant_id || r.tenant_id == *tenant_id);
    });
  });
}

}  // namespace parley::idempotency
