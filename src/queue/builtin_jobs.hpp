// The jobs Parley itself queues: erasing a user's data and rolling usage up into daily totals.
// The features of later modules (ingestion, embeddings, memory extraction) add theirs the same
// way: a kind, a payload, an idempotent handler registered with the Worker.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "queue/worker.hpp"
#include "store/store.hpp"

namespace parley::queue {

inline constexpr std::string_view kUserErasure = "user.erase";
inline constexpr std::string_view kUsageRollup = "usage.rollup";
inline constexpr std::string_view kPurgeDone = "jobs.purge";
inline constexpr std::chrono::hours kPurgeInterval{1};

// How long after a UTC midnight its day is rolled up: a reply's usage is written when it
// ends, so a day is closed only once no reply that began in it can still be running.
inline constexpr std::chrono::hours kRollupMargin{2};

// "user.erase" of `user_id` in one tenant (nullopt: every tenant).
store::NewJob user_erasure_job(const std::optional<std::string>& tenant_id,
                               std::string_view user_id, int64_t run_at_ms, int64_t max_attempts);

// Deletes the user's sessions, messages, usage, moderation log and stored answers and revokes
// their keys (store::UserDataRepository::erase_user); answers what it removed. `keys_revoked`
// runs after it revoked any key, so that every replica's key cache drops them now.
Handler user_erasure(store::Storage& storage, const Clock& clock,
                     std::function<void()> keys_revoked);

// Rolls up every day that ended kRollupMargin ago or earlier.
Handler usage_rollup(store::UsageRepository& usage, const Clock& clock);

// Deletes the done jobs older than `keep` (worker.keep_done).
Handler purge_done(store::JobRepository& jobs, const Clock& clock, std::chrono::milliseconds keep);

// Registers the three with `worker`: the roll-up every worker.usage_rollup_interval, the purge
// hourly.
void add_builtin_jobs(Worker& worker, store::Storage& storage, const Clock& clock,
                      const WorkerSettings& settings, std::function<void()> keys_revoked);

}  // namespace parley::queue
