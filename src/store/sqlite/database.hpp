// What every SQLite table implementation shares: the write connection behind its mutex, the
// pool of read connections, write transactions, and the timing of each call. Private to
// store/sqlite/; the repositories in sqlite_store.cpp and access_tables.cpp build on it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "obs/metrics.hpp"
#include "store/common.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace parley::store::sqlite {

// Read connections, lent one at a time.
class ReaderPool {
 public:
  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ~Lease() { pool_.give_back(std::move(conn_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    ReaderPool& pool_;
    std::unique_ptr<Connection> conn_;
  };

  void add(std::unique_ptr<Connection> conn) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(conn));
    ++size_;
  }
  Lease borrow() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !free_.empty(); });
    auto conn = std::move(free_.back());
    free_.pop_back();
    return Lease(*this, std::move(conn));
  }
  int size() const { return size_; }
  void clear() {
    std::lock_guard lock(mutex_);
    free_.clear();
  }

 private:
  void give_back(std::unique_ptr<Connection> conn) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(std::move(conn));
    }
    available_.notify_one();
  }
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> free_;
  int size_ = 0;
};

// A write transaction on the write connection: BEGIN IMMEDIATE takes the write lock up front,
// so a writer never fails half-way trying to upgrade a read lock. Rolls back unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(Connection& db) : db_(db) { begun_ = db_.exec("BEGIN IMMEDIATE"); }
  ~WriteTransaction() {
    if (begun_ && !committed_) (void)db_.exec("ROLLBACK");
  }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  const Result<void>& begun() const { return begun_; }
  Result<void> commit() {
    auto r = db_.exec("COMMIT");
    committed_ = r.ok();
    return r;
  }

 private:
  Connection& db_;
  Result<void> begun_;
  bool committed_ = false;
};

// The connections of one database file. The writer is used only with `write_mutex` held;
// it is null once the store is closed.
struct Database {
  Options options;
  std::mutex write_mutex;
  std::unique_ptr<Connection> writer;
  ReaderPool readers;
};

// The columns of a session and of a message, in the order the readers expect them.
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
// "[1,2,3]": seqs for `IN (SELECT value FROM json_each(?))`.
std::string json_integers(const std::vector<int64_t>& values);

// Read those columns starting at column `first`.
Session read_session(const Statement& row, int first = 0);
Message read_message(const Statement& row, int first = 0);

// Inserts a job with the write connection (inside the caller's transaction, if any); nullopt
// when a live job already holds `job.unique_key`, so nothing was added (job_table.cpp).
Result<std::optional<Job>> insert_job(Connection& db, const NewJob& job, int64_t now_ms);

// The repositories kept in access_tables.cpp, each over the shared connections.
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
Memory read_memory(const Statement& row, bool with_vector);
MemoryHistoryEntry read_history(const Statement& row);

}  // namespace parley::store::sqlite
