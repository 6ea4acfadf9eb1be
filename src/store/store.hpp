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

  // A cheap round trip that proves the database answers (readiness).
  virtual Result<void> ping() = 0;
  // Sizes and versions; with `integrity_check` also a full consistency check (slow on big
  // databases: diagnostics only).
  virtual Result<StorageStats> stats(bool integrity_check) = 0;
  // Flushes and closes. Idempotent; no other call may run concurrently or after.
  virtual void close() = 0;
};

}  // namespace parley::store
