// Storage interfaces. Handlers and the chat pipeline see only these; SQLite implements them
// now (store/sqlite/), PostgreSQL later, without a handler changing.
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

namespace parley::store {

struct Session {
  std::string id;
  std::string user_id;
  std::string assistant;
  std::optional<std::string> title;
  std::string metadata_json = "{}";  // a JSON object, stored as text
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct NewSession {
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
  std::optional<std::string> user_id;
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
};

struct NewTurn {
  std::string session_id;
  std::string user_content;
  std::string request_id;
  std::string model;  // what the turn will ask for (route or model name)
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
  std::string user_id;
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
  std::optional<UsageRecord> usage;  // written in the same transaction
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
  // At startup: replies left pending by a process that died become partial, "interrupted".
  virtual Result<int64_t> mark_interrupted() = 0;
};

struct UsageQuery {
  int64_t from_ms = 0;
  int64_t to_ms = INT64_MAX;
  std::optional<std::string> user_id;
  // Any of "model", "provider", "user", "day", "source"; none: one total row.
  std::vector<std::string> group_by;
};

struct UsageRow {
  std::vector<std::pair<std::string, std::string>> keys;  // per group_by field
  int64_t requests = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
};

class UsageRepository {
 public:
  virtual ~UsageRepository() = default;
  // Writes many records in one transaction (the API path batches them).
  virtual Result<void> record(const std::vector<UsageRecord>& records) = 0;
  virtual Result<std::vector<UsageRow>> aggregate(const UsageQuery& query) = 0;
  // USD spent by a user since `from_ms` (budgets).
  virtual Result<double> spent(std::string_view user_id, int64_t from_ms) = 0;
};

struct StorageStats {
  std::string backend;   // "sqlite"
  std::string location;  // file path or redacted URL
  int64_t size_bytes = 0;
  int64_t wal_size_bytes = 0;
  int schema_version = 0;
  std::optional<std::string> integrity_check;  // "ok" or the first problems found
  int read_connections = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual SessionRepository& sessions() = 0;
  virtual MessageRepository& messages() = 0;
  virtual UsageRepository& usage() = 0;

  // A cheap round trip that proves the database answers (readiness).
  virtual Result<void> ping() = 0;
  // Sizes and versions; with `integrity_check` also a full consistency check (slow on big
  // databases: diagnostics only).
  virtual Result<StorageStats> stats(bool integrity_check) = 0;
  // Flushes and closes. Idempotent; no other call may run concurrently or after.
  virtual void close() = 0;
};

}  // namespace parley::store
