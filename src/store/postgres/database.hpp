// What the PostgreSQL tables share: the pool, the options, the row readers and the column
// lists. Private to store/postgres/.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "obs/metrics.hpp"
#include "store/common.hpp"
#include "store/postgres/connection.hpp"
#include "store/postgres/postgres_store.hpp"

namespace parley::store::postgres {

struct Database {
  explicit Database(const Options& o)
      : options(o), pool(o.url, o.connect, o.pool_size, o.pool_wait) {}
  Options options;
  Pool pool;
  int64_t now_ms() const { return to_unix_ms(options.clock->now()); }
};

inline constexpr const char* kSessionColumns =
    "id, user_id, assistant, title, metadata, created_at, updated_at, tenant_id";
inline constexpr const char* kMessageColumns =
    "id, session_id, role, content, tool_calls, status, model, provider, input_tokens, "
    "output_tokens, cost_usd, latency_ms, ttft_ms, finish_reason, request_id, created_at, "
    "completed_at";
// What a message is read with: its columns, then its citations and memories (the insert leaves
// them out).
inline constexpr const char* kMessageReadColumns =
    "id, session_id, role, content, tool_calls, status, model, provider, input_tokens, "
    "output_tokens, cost_usd, latency_ms, ttft_ms, finish_reason, request_id, created_at, "
    "completed_at, citations, memories, seq, intent, intent_confidence";
inline constexpr const char* kKeyColumns =
    "id, name, scope, tenant_id, user_id, secret_hash, limits, created_by, created_at, "
    "expires_at, revoked_at";
inline constexpr const char* kModerationColumns =
    "id, at, tenant_id, user_id, session_id, request_id, stage, action, source, findings";
inline constexpr const char* kUsageColumns =
    "at, tenant_id, user_id, key_id, session_id, source, provider, model, input_tokens, "
    "output_tokens, cost_usd, status, request_id, requests";

// A transaction-level advisory lock that usage roll-ups and user erasure both take first:
// under READ COMMITTED, an erasure running beside a roll-up could not see (so not delete) the
// daily totals the roll-up was about to commit from the user's records. With it they take
// turns.
inline constexpr const char* kUsageDailyLock = "SELECT pg_advisory_xact_lock(7261001120002)";

// The memory change log's transaction-level lock (memory_table.cpp): every writer of
// memory_changes takes it just before writing there, so that log order is commit order.
inline constexpr const char* kMemoryChangeLogLock = "SELECT pg_advisory_xact_lock(7261001120004)";

// The knowledge change log's (knowledge_table.cpp), taken the same way before writing kb_changes.
inline constexpr const char* kKnowledgeChangeLogLock =
    "SELECT pg_advisory_xact_lock(7261001120003)";

// "{1,2,3}": a bigint[] parameter (`= ANY($1::bigint[])`).
std::string integer_array(const std::vector<int64_t>& values);

// "a, b" with prefix "m." -> "m.a, m.b" (for joins).
std::string prefixed(const char* columns, const char* prefix);

Session read_session(const Rows& rows, int row, int first = 0);
Message read_message(const Rows& rows, int row, int first = 0);
ApiKey read_key(const Rows& rows, int row, int first = 0);
ModerationLogEntry read_moderation(const Rows& rows, int row, int first = 0);
UsageRecord read_usage(const Rows& rows, int row, int first = 0);

// Inserts a job on `db` (inside the caller's transaction, if any); nullopt when a live job
// already holds `job.unique_key`, so nothing was added (job_table.cpp).
Result<std::optional<Job>> insert_job(Connection& db, const NewJob& job, int64_t now_ms);

std::unique_ptr<ApiKeyRepository> make_api_key_table(Database& db);
std::unique_ptr<IdempotencyRepository> make_idempotency_table(Database& db);
std::unique_ptr<ModerationLogRepository> make_moderation_log_table(Database& db);
std::unique_ptr<UserDataRepository> make_user_data_table(Database& db);
std::unique_ptr<TableAccess> make_table_access(Database& db);
std::unique_ptr<ReplicaRepository> make_replica_table(Database& db);
std::unique_ptr<JobRepository> make_job_table(Database& db);
std::unique_ptr<KnowledgeRepository> make_knowledge_table(Database& db);
std::unique_ptr<MemoryRepository> make_memory_table(Database& db);
std::unique_ptr<SummaryRepository> make_summary_table(Database& db);  // summary_table.cpp
// A memory read with memory_sql::kMemoryColumns (and its vector after them when asked), and a
// history entry read with kHistoryColumns (memory_table.cpp).
Memory read_memory(const Rows& rows, int r, bool with_vector);
MemoryHistoryEntry read_history(const Rows& rows, int r);

}  // namespace parley::store::postgres
