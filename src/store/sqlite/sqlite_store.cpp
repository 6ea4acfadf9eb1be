// SQLite storage: connection pools, the session repository, stats, and clean close.
#include "store/sqlite/sqlite_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/ids.hpp"
#include "obs/metrics.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/migrations.hpp"

namespace parley::store::sqlite {
namespace {

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// Times one storage call into parley_storage_query_duration_seconds.
class QueryTimer {
 public:
  QueryTimer(obs::Metrics* metrics, const char* operation)
      : metrics_(metrics), operation_(operation), start_(std::chrono::steady_clock::now()) {}
  ~QueryTimer() {
    if (!metrics_) return;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->observe_storage_query(operation_, elapsed.count());
  }
  QueryTimer(const QueryTimer&) = delete;
  QueryTimer& operator=(const QueryTimer&) = delete;

 private:
  obs::Metrics* metrics_;
  const char* operation_;
  std::chrono::steady_clock::time_point start_;
};

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

constexpr const char* kSessionColumns =
    "id, user_id, assistant, title, metadata, created_at, updated_at";

// Reads kSessionColumns starting at column `first`.
Session read_session(const Statement& row, int first = 0) {
  Session s;
  s.id = row.column_text(first);
  s.user_id = row.column_text(first + 1);
  s.assistant = row.column_text(first + 2);
  s.title = row.column_optional_text(first + 3);
  s.metadata_json = row.column_text(first + 4);
  s.created_at_ms = row.column_int(first + 5);
  s.updated_at_ms = row.column_int(first + 6);
  return s;
}

class SqliteStorage final : public Storage, public SessionRepository {
 public:
  SqliteStorage(Options options, std::unique_ptr<Connection> writer)
      : options_(std::move(options)), writer_(std::move(writer)) {}

  ~SqliteStorage() override { close(); }

  ReaderPool& readers() { return readers_; }

  SessionRepository& sessions() override { return *this; }

  Result<void> ping() override {
    QueryTimer timer(options_.metrics, "ping");
    auto db = readers_.borrow();
    auto stmt = db->prepare("SELECT 1");
    if (!stmt) return std::move(stmt).error();
    if (stmt->step() != SQLITE_ROW) return db->last_error("ping");
    return success();
  }

  Result<StorageStats> stats(bool integrity_check) override {
    QueryTimer timer(options_.metrics, "stats");
    StorageStats s;
    s.backend = "sqlite";
    s.location = options_.path;
    s.size_bytes = file_size(options_.path);
    s.wal_size_bytes = file_size(options_.path + "-wal");
    s.read_connections = readers_.size();
    auto db = readers_.borrow();
    auto version = current_schema_version(*db);
    if (!version) return std::move(version).error();
    s.schema_version = *version;
    if (integrity_check) {
      auto stmt = db->prepare("PRAGMA integrity_check(10)");
      if (!stmt) return std::move(stmt).error();
      std::string result;
      while (stmt->step() == SQLITE_ROW) {
        if (!result.empty()) result += "; ";
        result += stmt->column_text(0);
      }
      s.integrity_check = result;
    }
    return s;
  }

  void close() override {
    std::lock_guard lock(write_mutex_);
    if (!writer_) return;
    readers_.clear();
    // Fold the WAL back into the main file so the database is one self-contained file.
    (void)writer_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    writer_.reset();
  }

  // --- SessionRepository ---------------------------------------------------------------

  Result<Session> create(const NewSession& in) override {
    QueryTimer timer(options_.metrics, "session_create");
    Session s;
    s.id = new_resource_id("sess");
    s.user_id = in.user_id;
    s.assistant = in.assistant;
    s.title = in.title;
    s.metadata_json = in.metadata_json;
    s.created_at_ms = s.updated_at_ms = to_unix_ms(options_.clock->now());
    std::lock_guard lock(write_mutex_);
    if (!writer_) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*writer_);
    if (!tx.begun()) return tx.begun().error();
    auto stmt = writer_->prepare(
        "INSERT INTO sessions (id, user_id, assistant, title, metadata, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, s.id).bind(2, s.user_id).bind(3, s.assistant).bind_optional(4, s.title);
    stmt->bind(5, s.metadata_json).bind(6, s.created_at_ms).bind(7, s.updated_at_ms);
    if (stmt->step() != SQLITE_DONE) return writer_->last_error("create session");
    // With synchronous=FULL the WAL is fsynced by this commit: durable when we return.
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return s;
  }

  Result<Session> get(std::string_view id) override {
    QueryTimer timer(options_.metrics, "session_get");
    auto db = readers_.borrow();
    static const std::string sql =
        std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE id = ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    int rc = stmt->step();
    if (rc == SQLITE_ROW) return read_session(*stmt);
    if (rc == SQLITE_DONE) return not_found(id);
    return db->last_error("get session");
  }

  Result<SessionPage> list(const SessionListQuery& q) override {
    QueryTimer timer(options_.metrics, "session_list");
    int64_t before = INT64_MAX;
    if (q.cursor) {
      try {
        size_t used = 0;
        before = std::stoll(*q.cursor, &used);
        if (used != q.cursor->size() || before <= 0) throw std::invalid_argument("cursor");
      } catch (const std::exception&) {
        return Error::invalid("cursor is not one this server issued", "invalid_cursor", "cursor");
      }
    }
    auto db = readers_.borrow();
    static const std::string by_user = std::string("SELECT seq, ") + kSessionColumns +
                                       " FROM sessions WHERE user_id = ? AND seq < ? "
                                       "ORDER BY seq DESC LIMIT ?";
    static const std::string all = std::string("SELECT seq, ") + kSessionColumns +
                                   " FROM sessions WHERE seq < ? ORDER BY seq DESC LIMIT ?";
    auto stmt = db->prepare(q.user_id ? by_user.c_str() : all.c_str());
    if (!stmt) return std::move(stmt).error();
    int i = 1;
    if (q.user_id) stmt->bind(i++, *q.user_id);
    stmt->bind(i, before);
    stmt->bind(i + 1, static_cast<int64_t>(q.limit) + 1);
    SessionPage page;
    int64_t last_seq = 0;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      if (static_cast<int>(page.items.size()) == q.limit) {
        page.next_cursor = std::to_string(last_seq);
        break;
      }
      last_seq = stmt->column_int(0);
      page.items.push_back(read_session(*stmt, 1));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db->last_error("list sessions");
    return page;
  }

  Result<Session> update(std::string_view id, const SessionPatch& patch) override {
    QueryTimer timer(options_.metrics, "session_update");
    std::lock_guard lock(write_mutex_);
    if (!writer_) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*writer_);
    if (!tx.begun()) return tx.begun().error();
    // COALESCE keeps a column when its parameter is NULL; ?2 says whether to touch the title
    // at all, since NULL is also a legal title (cleared).
    auto stmt = writer_->prepare(
        "UPDATE sessions SET "
        "  title = CASE WHEN ?2 THEN ?3 ELSE title END, "
        "  metadata = COALESCE(?4, metadata), "
        "  updated_at = ?5 "
        "WHERE id = ?1 "
        "RETURNING id, user_id, assistant, title, metadata, created_at, updated_at");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, static_cast<int64_t>(patch.title.has_value()));
    if (patch.title) {
      stmt->bind_optional(3, *patch.title);
    } else {
      stmt->bind_null(3);
    }
    stmt->bind_optional(4, patch.metadata_json).bind(5, to_unix_ms(options_.clock->now()));
    int rc = stmt->step();
    if (rc == SQLITE_ROW) {
      Session s = read_session(*stmt);
      if (stmt->step() != SQLITE_DONE) return writer_->last_error("update session");
      if (auto r = tx.commit(); !r) return std::move(r).error();
      return s;
    }
    if (rc == SQLITE_DONE) return not_found(id);
    return writer_->last_error("update session");
  }

  Result<void> remove(std::string_view id) override {
    QueryTimer timer(options_.metrics, "session_delete");
    std::lock_guard lock(write_mutex_);
    if (!writer_) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*writer_);
    if (!tx.begun()) return tx.begun().error();
    auto stmt = writer_->prepare("DELETE FROM sessions WHERE id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    if (stmt->step() != SQLITE_DONE) return writer_->last_error("delete session");
    if (writer_->changes() == 0) return not_found(id);
    return tx.commit();
  }

 private:
  static Error not_found(std::string_view id) {
    return Error::not_found("no session with id '" + std::string(id) + "'", "session_not_found");
  }

  Options options_;
  std::mutex write_mutex_;
  std::unique_ptr<Connection> writer_;
  ReaderPool readers_;
};

}  // namespace

namespace {

// Creates the directory and opens the write connection, failing with the reason a person
// can act on (directory not creatable or writable, file not a database).
Result<std::unique_ptr<Connection>> open_writer(const Options& options) {
  namespace fs = std::filesystem;
  fs::path path(options.path);
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return Error::unavailable(
          "cannot create data directory '" + path.parent_path().string() + "': " + ec.message(),
          "storage_unavailable");
    }
    if (::access(path.parent_path().c_str(), W_OK) != 0) {
      return Error::unavailable(
          "data directory '" + path.parent_path().string() + "' is not writable",
          "storage_unavailable");
    }
  }
  auto writer = Connection::open(options.path, /*create=*/true, options.busy_timeout_ms);
  if (!writer) return std::move(writer).error();
  // Fail early on a file that is not a database (sqlite opens lazily).
  if (auto r = (*writer)->exec("SELECT count(*) FROM sqlite_master"); !r) {
    return Error::unavailable(
        "'" + options.path + "' is not a usable SQLite database: " + r.error().message,
        "storage_unavailable");
  }
  return writer;
}

}  // namespace

Result<MigrationSummary> migrate_database(const Options& options) {
  auto writer = open_writer(options);
  if (!writer) return std::move(writer).error();
  auto report = migrate(**writer, to_unix_ms(options.clock->now()));
  if (!report) return std::move(report).error();
  (void)(*writer)->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return MigrationSummary{report->from_version, report->to_version, report->applied};
}

Result<std::unique_ptr<Storage>> open(const Options& options) {
  auto writer = open_writer(options);
  if (!writer) return std::move(writer).error();
  if (options.migrate) {
    auto report = migrate(**writer, to_unix_ms(options.clock->now()));
    if (!report) return std::move(report).error();
  } else {
    auto version = current_schema_version(**writer);
    if (!version) return std::move(version).error();
    if (*version != latest_schema_version()) {
      return Error::unavailable(
          "database schema is at version " + std::to_string(*version) + ", this build needs " +
              std::to_string(latest_schema_version()) + "; run `parley migrate`",
          "schema_mismatch");
    }
  }
  auto store = std::make_unique<SqliteStorage>(options, std::move(*writer));
  for (int i = 0; i < std::max(1, options.read_connections); ++i) {
    auto reader = Connection::open(options.path, /*create=*/false, options.busy_timeout_ms);
    if (!reader) return std::move(reader).error();
    store->readers().add(std::move(*reader));
  }
  return std::unique_ptr<Storage>(std::move(store));
}

}  // namespace parley::store::sqlite
