// Storage interfaces. Handlers and the chat pipeline see only these; SQLite (store/sqlite/)
// and PostgreSQL (store/postgres/) implement them, and one conformance suite
// (tests/backends/storage_conformance_test.cpp) holds both to the same behaviour.
//
// Contract for every method of every interface here:
//  - Blocking. Call them from the blocking pool (core/blocking_pool.hpp), never from an I/O
//    thread.
//  - Thread-safe: any number of threads may call concurrently.
//  - A successful write is durable when the call returns (it survives kill -9 and power loss
//    as far as the disk honours fsync).
//  - Expected failures come back as Error values: kNotFound for a missing row, kUnavailable
//    when the database is busy past its timeout or unreachable, kInternal otherwise (the
//    message is safe to log; it carries no secrets).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "store/knowledge.hpp"
#include "store/memory.hpp"
#include "store/tables.hpp"

namespace parley::store {

// Every session belongs to a tenant and a user; keys and tokens only ever reach their own
// (api/ownership.hpp).
struct Session {
  std::string id;
  std::string tenant_id = "default";
  std::string user_id;
  std::string assistant;
  std::optional<std::string> title;
  std::string metadata_json = "{}";  // a JSON object, stored as text
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct NewSession {
  std::string tenant_id = "default";
  std::string user_id;
  std::string assistant;
  std::optional<std::string> title;
  std::string metadata_json = "{}";
};

// Only the fields that are set change. `title` set to nullopt-inside clears it.
struct SessionPatch {
  std::optional<std::optional<std::string>> title;
  std::optional<std::string> metadata_json;
};

struct SessionListQuery {
  std::optional<std::string> tenant_id;
  std::optional<std::string> user_id;
  // Only sessions whose title holds this text, ignoring case (a conversation list's search).
  std::optional<std::string> title_contains;
  int limit = 20;
  std::optional<std::string> cursor;  // from a previous page's next_cursor
};

struct SessionPage {
  std::vector<Session> items;  // newest first
  std::optional<std::string> next_cursor;
};

class SessionRepository {
 public:
  virtual ~SessionRepository() = default;
  virtual Result<Session> create(const NewSession& session) = 0;
  virtual Result<Session> get(std::string_view id) = 0;
  virtual Result<SessionPage> list(const SessionListQuery& query) = 0;
  virtual Result<Session> update(std::string_view id, const SessionPatch& patch) = 0;
  virtual Result<void> remove(std::string_view id) = 0;
};

// A chat message. The assistant's reply row is written when the turn starts (status
// "pending") and completed when the reply ends: "complete", or "partial" when it was cut short
// (finish_reason says why: cancelled, error, timeout, shutdown, interrupted).
struct Message {
  std::string id;
  std::string session_id;
  std::string role;  // "user", "assistant", "system", "tool"
  std::string content;
  std::string tool_calls_json;  // a JSON array, or empty
  std::string status;           // "complete", "partial", "pending"
  std::string model;
  std::string provider;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  std::optional<int64_t> latency_ms;
  std::optional<int64_t> ttft_ms;
  std::string finish_reason;
  std::string request_id;
  int64_t created_at_ms = 0;
  std::optional<int64_t> completed_at_ms;
  std::string citations_json;  // the knowledge-base passages a reply cited (JSON array), or empty
  std::string memories_json;   // the memories a reply's prompt used (JSON array), or empty
  int64_t seq = 0;             // its place in the database's order (summaries cover up to one)
  // A user's message: what it was classified as asking for (intent/), and how surely.
  std::string intent;
  std::optional<double> intent_confidence;
};

struct NewTurn {
  std::string session_id;
  std::string user_content;
  std::string request_id;
  std::string model;  // what the turn will ask for (route or model name)
  std::string owner;  // the replica running the turn (ReplicaRepository), for recovery
  // A regenerated reply: the id of the session's last user message, which is answered again
  // instead of a new one being stored (`user_content` is its text). The replies it had are
  // marked "replaced", leaving the history models see, when the new one is finished
  // (FinishedTurn::regenerated).
  std::string regenerate_of;
};

struct StartedTurn {
  Message user;
  Message assistant;  // pending
  Session session;    // with updated_at bumped
};

// One use of a model, for accounting (a chat turn's reply, or a call through the
// OpenAI-compatible API).
struct UsageRecord {
  int64_t at_ms = 0;
  std::string tenant_id = "default";
  std::string user_id;
  std::string key_id;      // the API key (or "jwt", "local") the call was made with
  std::string session_id;  // empty for API calls
  std::string source;      // "chat" or "api"
  std::string provider;
  std::string model;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  std::string status;      // "ok" or the error reason
  std::string request_id;  // of the first request when several are merged
  int64_t requests = 1;    // how many calls this record stands for (the API path merges)
};

// A durable background job (`parley worker`, jobs/ and the features that enqueue work): the
// database is the queue, so a job survives any process. At least once: a job taken by a worker
// that dies is taken again once its lock lapses, so handlers must be idempotent.
struct Job {
  std::string id;  // "job_..."
  std::string kind;
  std::string payload_json = "{}";
  std::string state;  // "queued", "running", "done" or "dead"
  int64_t attempts = 0;
  int64_t max_attempts = 5;
  int64_t run_at_ms = 0;  // not before
  std::optional<std::string> locked_by;
  std::optional<int64_t> locked_until_ms;
  std::string last_error;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> finished_at_ms;
  std::string result_json = "{}";  // what a finished job reports (e.g. rows erased)
  std::optional<std::string> unique_key;
};

struct NewJob {
  std::string kind;
  std::string payload_json = "{}";
  int64_t run_at_ms = 0;
  int64_t max_attempts = 5;
  // When set, at most one job with this key is queued or running at a time: enqueueing while
  // one is live adds nothing (the live job stands for both). Once it is done or dead the key is
  // free again.
  std::string unique_key;
};

// A job that carries an end user's own words (a Mem0 add's messages) has a unique key that
// starts with this prefix, so erasing the user deletes the job too, whatever its state
// (UserDataRepository::erase_user). With no tenant: the prefix of the user's jobs in every
// tenant. Lengths are spelled out, so no user's prefix is another's.
std::string user_job_key_prefix(const std::optional<std::string>& tenant_id,
                                std::string_view user_id);

// The end of a turn: the assistant row's final state and its usage.
struct FinishedTurn {
  std::string assistant_message_id;
  std::string content;
  std::string tool_calls_json;
  std::string status;  // "complete" or "partial"
  std::string model;
  std::string provider;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  std::optional<int64_t> latency_ms;
  std::optional<int64_t> ttft_ms;
  std::string finish_reason;
  std::string citations_json;        // a JSON array, or empty
  std::string memories_json;         // a JSON array, or empty
  std::optional<UsageRecord> usage;  // written in the same transaction
  // Work the stored reply leads to (remembering, summarising), queued in the same transaction:
  // it exists exactly when the reply does, and no crash in between can lose it.
  std::vector<NewJob> follow_up_jobs;
  // The user's message of the turn gets its intent (when it was classified).
  std::string user_message_id;
  std::string intent;
  std::optional<double> intent_confidence;
  // A regenerated reply (NewTurn::regenerate_of): once it has been written (any finish but an
  // error), the earlier replies to its message are marked "replaced" in the same transaction.
  // Until then they stay, so a regeneration that fails leaves the conversation as it was.
  bool regenerated = false;
};

struct MessageListQuery {
  std::string session_id;
  int limit = 50;
  std::optional<std::string> cursor;  // from a previous page's next_cursor
  bool newest_first = false;
};

struct MessagePage {
  std::vector<Message> items;
  std::optional<std::string> next_cursor;
};

class MessageRepository {
 public:
  virtual ~MessageRepository() = default;
  // Stores the user's message and a pending assistant row in one transaction (durable before
  // any provider is called). kNotFound when the session does not exist.
  virtual Result<StartedTurn> begin_turn(const NewTurn& turn) = 0;
  virtual Result<Message> finish_turn(const FinishedTurn& turn) = 0;
  virtual Result<MessagePage> list(const MessageListQuery& query) = 0;
  // The last `limit` messages of a session that a prompt may include (not pending, not
  // empty), oldest first.
  virtual Result<std::vector<Message>> history(std::string_view session_id, int limit) = 0;
  // The messages with these ids that exist, in no particular order.
  virtual Result<std::vector<Message>> by_ids(const std::vector<std::string>& ids) = 0;
};

// A session's rolling summary (summary/): what its older messages said, in fewer words, so
// that a long conversation still fits the model's context. Each covers the session's messages
// up to `through_seq` (the previous summary folded in); the newest is the one prompts use.
struct Summary {
  std::string id;  // "sum_..."
  std::string session_id;
  std::string text;
  std::string first_message_id;  // the session's first message it covers
  std::string last_message_id;   // and its last
  int64_t through_seq = 0;       // messages with seq <= this are covered
  int64_t messages = 0;          // how many messages it covers in all
  int64_t tokens = 0;            // its own length, estimated
  std::string method;            // "model" or "extractive"
  std::string model;             // the model that wrote it; empty when extractive
  int64_t created_at_ms = 0;
};

class SummaryRepository {
 public:
  virtual ~SummaryRepository() = default;
  // Stores a summary (its id is made here). kNotFound "session_not_found"; kConflict
  // "summary_stale" when one covering as much or more is already stored (a slower or retried
  // job's).
  virtual Result<Summary> add(const Summary& summary) = 0;
  // The newest, if any.
  Result<std::optional<Summary>> latest(std::string_view session_id);
  // Newest first.
  virtual Result<std::vector<Summary>> list(std::string_view session_id, int limit) = 0;
  // The session's messages after `after_seq` that a prompt's history would include, oldest
  // first, at most `limit`.
  virtual Result<std::vector<Message>> messages_after(std::string_view session_id,
                                                      int64_t after_seq, int limit) = 0;
};

// The processes serving from this database, so that what one leaves pending when it dies is
// finished (marked interrupted) by another, and never what a live one is still writing.
struct ReplicaInfo {
  std::string id;  // "rep_..."; the owner of the turns it runs
  std::string host;
  int64_t pid = 0;
  int64_t started_at_ms = 0;
  int64_t seen_at_ms = 0;  // its last heartbeat
};

class ReplicaRepository {
 public:
  virtual ~ReplicaRepository() = default;
  // Inserts the replica or updates its seen_at.
  virtual Result<void> heartbeat(const ReplicaInfo& replica) = 0;
  // A replica stopping cleanly (its turns are finished).
  virtual Result<void> remove(std::string_view id) = 0;
  virtual Result<std::vector<ReplicaInfo>> list() = 0;
  // Replies left pending by replicas other than `self` not seen since `stale_before_ms` (or
  // by no known replica) become partial, finish_reason "interrupted", completed now; those
  // replicas are forgotten. Returns how many replies changed.
  virtual Result<int64_t> interrupt_orphans(std::string_view self, int64_t stale_before_ms,
                                            int64_t now_ms) = 0;
};

struct UsageQuery {
  int64_t from_ms = 0;
  int64_t to_ms = INT64_MAX;
  std::optional<std::string> tenant_id;
  std::optional<std::string> user_id;
  // Any of "model", "provider", "user", "day", "source", "key", "tenant"; none: one total row.
  std::vector<std::string> group_by;
};

struct UsageRow {
  std::vector<std::pair<std::string, std::string>> keys;  // per group_by field
  int64_t requests = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
};

struct UsageRollup {
  int64_t from_ms = 0;   // the UTC midnight it started from
  int64_t until_ms = 0;  // the UTC midnight every day before which is now rolled up
  int64_t rows = 0;      // daily rows written
};

class UsageRepository {
 public:
  virtual ~UsageRepository() = default;
  // Writes many records in one transaction (the API path batches them).
  virtual Result<void> record(const std::vector<UsageRecord>& records) = 0;
  virtual Result<std::vector<UsageRow>> aggregate(const UsageQuery& query) = 0;
  // USD spent by a user of a tenant since `from_ms` (budgets).
  virtual Result<double> spent(std::string_view tenant_id, std::string_view user_id,
                               int64_t from_ms) = 0;
  // USD spent through one API key since `from_ms` (per-key budgets).
  virtual Result<double> spent_by_key(std::string_view key_id, int64_t from_ms) = 0;
  // Folds every whole UTC day before `until_ms` not yet rolled up into daily totals
  // (usage_daily), which aggregate() then reads for those days instead of the records. A
  // record written later for a day already rolled up would be missed by reports, so callers
  // leave a margin after midnight (the usage.rollup job). Idempotent; concurrent calls
  // serialize.
  virtual Result<UsageRollup> roll_up(int64_t until_ms) = 0;
};

// An API key as stored: never the secret, only its SHA-256 (auth/api_key.hpp says why a
// plain hash is right for 256-bit random secrets).
struct ApiKey {
  std::string id;  // "key_..."; also the public part of the token
  std::string name;
  std::string scope;  // "admin", "service" or "user"
  std::string tenant_id = "default";
  std::string user_id;             // for scope "user": the one user it acts as
  std::string secret_hash;         // lowercase hex SHA-256 of the secret part
  std::string limits_json = "{}";  // per-key overrides of the configured limits
  std::string created_by;          // the key id that created it, "cli" or "bootstrap"
  int64_t created_at_ms = 0;
  std::optional<int64_t> expires_at_ms;
  std::optional<int64_t> revoked_at_ms;
};

class ApiKeyRepository {
 public:
  virtual ~ApiKeyRepository() = default;
  // kConflict when the id exists.
  virtual Result<void> create(const ApiKey& key) = 0;
  virtual Result<ApiKey> get(std::string_view id) = 0;
  // Newest first; revoked keys included only when asked.
  virtual Result<std::vector<ApiKey>> list(const std::optional<std::string>& tenant_id,
                                           bool include_revoked) = 0;
  // Sets revoked_at (kept for audit); kNotFound when there is no such key. Revoking twice
  // keeps the first time.
  virtual Result<ApiKey> revoke(std::string_view id, int64_t at_ms) = 0;
};

// A stored response for an Idempotency-Key (idempotency/idempotency.hpp).
struct IdempotencyRecord {
  std::string key;                    // scoped: "<principal>:<client key>"
  std::string fingerprint;            // hex SHA-256 of method, path and body
  std::string tenant_id = "default";  // whose request it was: the body may hold their data
  std::string user_id;
  int status = 0;
  std::string content_type;
  std::string body;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
};

class IdempotencyRepository {
 public:
  virtual ~IdempotencyRepository() = default;
  // Inserts or replaces, in one transaction.
  virtual Result<void> put(const std::vector<IdempotencyRecord>& records) = 0;
  virtual Result<std::optional<IdempotencyRecord>> get(std::string_view key) = 0;
  // Every record not yet expired, without its body (loaded at startup).
  virtual Result<std::vector<IdempotencyRecord>> unexpired_keys(int64_t now_ms) = 0;
  virtual Result<int64_t> purge_expired(int64_t now_ms) = 0;
};

// One moderation decision (moderation/moderator.hpp). The text itself is never logged: only
// what was found, where, and what was done.
struct ModerationLogEntry {
  std::string id;  // "mod_..."
  int64_t at_ms = 0;
  std::string tenant_id = "default";
  std::string user_id;
  std::string session_id;
  std::string request_id;
  std::string stage;                 // "input" or "output"
  std::string action;                // "allow", "redact" or "block"
  std::string source;                // "rules" or the provider's name
  std::string findings_json = "[]";  // [{"category":..,"action":..,"count":..}]
};

struct ModerationLogQuery {
  std::optional<std::string> tenant_id;
  std::optional<std::string> user_id;
  std::optional<std::string> action;
  int64_t from_ms = 0;
  int limit = 50;
  std::optional<std::string> cursor;
};

struct ModerationLogPage {
  std::vector<ModerationLogEntry> items;  // newest first
  std::optional<std::string> next_cursor;
};

class ModerationLogRepository {
 public:
  virtual ~ModerationLogRepository() = default;
  virtual Result<void> append(const std::vector<ModerationLogEntry>& entries) = 0;
  virtual Result<ModerationLogPage> list(const ModerationLogQuery& query) = 0;
};

// Everything held about one user of a tenant (the right of access), and its erasure.
struct UserExport {
  std::vector<Session> sessions;
  std::vector<Message> messages;  // of those sessions, oldest first per session
  std::vector<UsageRecord> usage;
  std::vector<ModerationLogEntry> moderation;
  std::vector<ApiKey> keys;      // user-scoped keys bound to the user (hashes omitted on export)
  std::vector<Memory> memories;  // every status, oldest first, without vectors
  std::vector<MemoryHistoryEntry> memory_history;  // of those memories, oldest first
};

struct ErasureCounts {
  int64_t sessions = 0;
  int64_t messages = 0;
  int64_t usage_records = 0;
  int64_t moderation_logs = 0;
  int64_t idempotent_responses = 0;
  int64_t api_keys = 0;  // revoked, not deleted: a key's record stays for audit, its user goes
  int64_t memories = 0;
  int64_t memory_history = 0;
  int64_t jobs = 0;             // jobs that carried the user's words (user_job_key_prefix)
  int64_t knowledge_bases = 0;  // the user's own (owner_user_id), with their documents
  int64_t files = 0;            // the files the user uploaded, with documents made from them
};

class UserDataRepository {
 public:
  virtual ~UserDataRepository() = default;
  // A tenant of nullopt means every tenant (admins).
  virtual Result<UserExport> export_user(const std::optional<std::string>& tenant_id,
                                         std::string_view user_id) = 0;
  // Deletes sessions, messages, usage, moderation logs, stored idempotent responses, memories,
  // the jobs that carry the user's words, the user's own knowledge bases and the files the user
  // uploaded (with every document made from them, logged for the search indexes) in one
  // transaction; user keys are revoked and unbound from the user.
  virtual Result<ErasureCounts> erase_user(const std::optional<std::string>& tenant_id,
                                           std::string_view user_id, int64_t now_ms) = 0;
};

struct StorageStats {
  std::string backend;   // "sqlite" or "postgresql"
  std::string location;  // file path or redacted URL
  int64_t size_bytes = 0;
  int64_t wal_size_bytes = 0;
  int schema_version = 0;
  std::optional<std::string> integrity_check;  // "ok" or the first problems found
  int read_connections = 0;
};

class JobRepository {
 public:
  virtual ~JobRepository() = default;
  // The new job, or the live job holding `job.unique_key` (then nothing is added).
  virtual Result<Job> enqueue(const NewJob& job, int64_t now_ms) = 0;
  // Up to `limit` jobs that are due (queued with run_at <= now, or running with a lapsed lock),
  // each locked for `worker` until now + visibility_ms, its attempts counted. Replicas taking at
  // once never take the same job (FOR UPDATE SKIP LOCKED on PostgreSQL).
  virtual Result<std::vector<Job>> take(std::string_view worker, int limit, int64_t now_ms,
                                        int64_t visibility_ms) = 0;
  // kConflict "job_not_held" when the worker no longer holds the job (its lock lapsed).
  virtual Result<void> succeed(std::string_view id, std::string_view worker,
                               std::string_view result_json, int64_t now_ms) = 0;
  // Keeps the lock of a job still running until `until_ms` (a long job's worker renews it so
  // no other worker takes it meanwhile); kConflict "job_not_held" when the worker no longer
  // holds it.
  virtual Result<void> extend(std::string_view id, std::string_view worker, int64_t until_ms,
                              int64_t now_ms) = 0;
  // Queued again at `retry_at_ms`, or dead once its attempts reached max_attempts.
  virtual Result<Job> fail(std::string_view id, std::string_view worker, std::string_view error,
                           int64_t retry_at_ms, int64_t now_ms) = 0;
  virtual Result<Job> get(std::string_view id) = 0;  // kNotFound "job_not_found"
  // Newest first; every state when nullopt.
  virtual Result<std::vector<Job>> list(const std::optional<std::string>& state, int limit) = 0;
  // A dead job queued again with its attempts reset; kNotFound, or kConflict "job_not_dead", or
  // kConflict "job_key_taken" when another job with its unique key is live.
  virtual Result<Job> retry(std::string_view id, int64_t now_ms) = 0;
  // Deletes done jobs finished before `finished_before_ms` (dead ones stay until retried);
  // how many.
  virtual Result<int64_t> purge_done(int64_t finished_before_ms) = 0;
  // How many jobs are in each state (states with none are absent).
  virtual Result<std::vector<std::pair<std::string, int64_t>>> counts() = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual SessionRepository& sessions() = 0;
  virtual MessageRepository& messages() = 0;
  virtual UsageRepository& usage() = 0;
  virtual ApiKeyRepository& api_keys() = 0;
  virtual IdempotencyRepository& idempotency() = 0;
  virtual ModerationLogRepository& moderation_log() = 0;
  virtual UserDataRepository& user_data() = 0;
  virtual ReplicaRepository& replicas() = 0;
  virtual JobRepository& jobs() = 0;
  virtual KnowledgeRepository& knowledge() = 0;
  virtual MemoryRepository& memories() = 0;
  virtual SummaryRepository& summaries() = 0;
  // Whole tables as rows, for `parley copy-data`.
  virtual TableAccess& table_access() = 0;

  // A cheap round trip that proves the database answers (readiness).
  virtual Result<void> ping() = 0;
  // Sizes and versions; with `integrity_check` also a full consistency check (slow on big
  // databases: diagnostics only).
  virtual Result<StorageStats> stats(bool integrity_check) = 0;
  // Flushes and closes. Idempotent; no other call may run concurrently or after.
  virtual void close() = 0;
};

}  // namespace parley::store
