// The durable job queue on SQLite (store.hpp, JobRepository). One writer at a time, so taking
// jobs needs no row locks: the write transaction is the lock.
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/sqlite/database.hpp"

namespace parley::store::sqlite {
namespace {

constexpr const char* kJobColumns =
    "id, kind, payload, state, attempts, max_attempts, run_at, locked_by, locked_until, "
    "last_error, created_at, updated_at, finished_at, result, unique_key";

Job read_job(const Statement& row) {
  Job j;
  j.id = row.column_text(0);
  j.kind = row.column_text(1);
  j.payload_json = row.column_text(2);
  j.state = row.column_text(3);
  j.attempts = row.column_int(4);
  j.max_attempts = row.column_int(5);
  j.run_at_ms = row.column_int(6);
  j.locked_by = row.column_optional_text(7);
  j.locked_until_ms = row.column_optional_int(8);
  j.last_error = row.column_text(9);
  j.created_at_ms = row.column_int(10);
  j.updated_at_ms = row.column_int(11);
  j.finished_at_ms = row.column_optional_int(12);
  j.result_json = row.column_text(13);
  j.unique_key = row.column_optional_text(14);
  return j;
}

// The live job holding `key`, if any.
Result<std::optional<Job>> live_job(Connection& db, std::string_view key) {
  static const std::string sql = std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE unique_key = ? AND state IN ('queued', "
                                 "'running')";
  auto stmt = db.prepare(sql.c_str());
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, key);
  const int rc = stmt->step();
  if (rc == SQLITE_DONE) return std::optional<Job>();
  if (rc != SQLITE_ROW) return db.last_error("find live job");
  return std::optional<Job>(read_job(*stmt));
}

}  // namespace

Result<std::optional<Job>> insert_job(Connection& db, const NewJob& in, int64_t now_ms) {
  // The conflict target repeats the partial index's condition, which is how SQLite picks it.
  static const std::string sql = std::string("INSERT INTO jobs (") + kJobColumns +
                                 ") VALUES (?, ?, ?, 'queued', 0, ?, ?, NULL, NULL, '', ?, ?, "
                                 "NULL, '{}', ?) ON CONFLICT (unique_key) WHERE unique_key IS "
                                 "NOT NULL AND state IN ('queued', 'running') DO NOTHING "
                                 "RETURNING " +
                                 kJobColumns;
  auto stmt = db.prepare(sql.c_str());
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, new_resource_id("job")).bind(2, in.kind).bind(3, in.payload_json);
  stmt->bind(4, in.max_attempts).bind(5, in.run_at_ms > 0 ? in.run_at_ms : now_ms);
  stmt->bind(6, now_ms).bind(7, now_ms);
  if (in.unique_key.empty()) {
    stmt->bind_null(8);
  } else {
    stmt->bind(8, in.unique_key);
  }
  const int rc = stmt->step();
  if (rc == SQLITE_DONE) return std::optional<Job>();  // the key's job is live
  if (rc != SQLITE_ROW) return db.last_error("enqueue job");
  Job j = read_job(*stmt);
  if (stmt->step() != SQLITE_DONE) return db.last_error("enqueue job");
  return std::optional<Job>(std::move(j));
}

namespace {

class JobTable final : public JobRepository {
 public:
  explicit JobTable(Database& db) : db_(db) {}

  Result<Job> enqueue(const NewJob& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_enqueue");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto inserted = insert_job(*db_.writer, in, now_ms);
    if (!inserted) return std::move(inserted).error();
    if (*inserted) return std::move(**inserted);
    // Under the write lock nothing can finish the live job in between.
    auto live = live_job(*db_.writer, in.unique_key);
    if (!live) return std::move(live).error();
    if (!*live) return Error::internal("job key '" + in.unique_key + "' taken by no live job");
    return std::move(**live);
  }

  Result<std::vector<Job>> take(std::string_view worker, int limit, int64_t now_ms,
                                int64_t visibility_ms) override {
    QueryTimer timer(db_.options.metrics, "job_take");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    static const std::string sql =
        std::string(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = ?1, "
            "locked_until = ?2, updated_at = ?3 WHERE id IN (SELECT id FROM jobs WHERE "
            "(state = 'queued' AND run_at <= ?3) OR (state = 'running' AND locked_until < ?3) "
            "ORDER BY run_at, created_at LIMIT ?4) RETURNING ") +
        kJobColumns;
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, worker).bind(2, now_ms + visibility_ms).bind(3, now_ms);
    stmt->bind(4, static_cast<int64_t>(limit));
    std::vector<Job> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_job(*stmt));
    if (rc != SQLITE_DONE) return db_.writer->last_error("take jobs");
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return out;
  }

  Result<void> succeed(std::string_view id, std::string_view worker, std::string_view result_json,
                       int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_finish");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto stmt = db_.writer->prepare(
        "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, finished_at = ?3, "
        "updated_at = ?3, result = ?4 WHERE id = ?1 AND locked_by = ?2 AND state = 'running'");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, worker).bind(3, now_ms).bind(4, result_json);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("finish job");
    if (db_.writer->changes() == 0) return job_not_held(id);
    return success();
  }

  Result<void> extend(std::string_view id, std::string_view worker, int64_t until_ms,
                      int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_extend");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto stmt = db_.writer->prepare(
        "UPDATE jobs SET locked_until = ?3, updated_at = ?4 WHERE id = ?1 AND locked_by = ?2 AND "
        "state = 'running'");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, worker).bind(3, until_ms).bind(4, now_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("extend job");
    if (db_.writer->changes() == 0) return job_not_held(id);
    return success();
  }

  Result<Job> fail(std::string_view id, std::string_view worker, std::string_view error,
                   int64_t retry_at_ms, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_finish");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    static const std::string sql =
        std::string(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE "
            "'queued' END, run_at = ?4, last_error = ?3, locked_by = NULL, locked_until = NULL, "
            "updated_at = ?5, finished_at = CASE WHEN attempts >= max_attempts THEN ?5 END "
            "WHERE id = ?1 AND locked_by = ?2 AND state = 'running' RETURNING ") +
        kJobColumns;
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, worker).bind(3, error).bind(4, retry_at_ms).bind(5, now_ms);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return job_not_held(id);
    if (rc != SQLITE_ROW) return db_.writer->last_error("fail job");
    Job j = read_job(*stmt);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("fail job");
    return j;
  }

  Result<Job> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "job_get");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return job_not_found(id);
    if (rc != SQLITE_ROW) return db->last_error("get job");
    return read_job(*stmt);
  }

  Result<std::vector<Job>> list(const std::optional<std::string>& state, int limit) override {
    QueryTimer timer(db_.options.metrics, "job_list");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kJobColumns +
                                   " FROM jobs WHERE (?1 IS NULL OR state = ?1) ORDER BY "
                                   "created_at DESC, id DESC LIMIT ?2";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind_optional(1, state).bind(2, static_cast<int64_t>(limit));
    std::vector<Job> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_job(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("list jobs");
    return out;
  }

  Result<Job> retry(std::string_view id, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_retry");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    static const std::string sql =
        std::string(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?2, updated_at = ?2, "
            "finished_at = NULL WHERE id = ?1 AND state = 'dead' AND (unique_key IS NULL OR NOT "
            "EXISTS (SELECT 1 FROM jobs AS twin WHERE twin.unique_key = jobs.unique_key AND "
            "twin.state IN ('queued', 'running'))) RETURNING ") +
        kJobColumns;
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, now_ms);
    const int rc = stmt->step();
    if (rc == SQLITE_ROW) {
      Job j = read_job(*stmt);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("retry job");
      return j;
    }
    if (rc != SQLITE_DONE) return db_.writer->last_error("retry job");
    auto exists = db_.writer->prepare("SELECT state, unique_key FROM jobs WHERE id = ?");
    if (!exists) return std::move(exists).error();
    exists->bind(1, id);
    if (exists->step() != SQLITE_ROW) {
      return job_not_found(id);
    }
    std::string state = exists->column_text(0);
    if (state == "dead") return job_key_taken(id, exists->column_text(1));
    return job_not_dead(id, state);
  }

  Result<int64_t> purge_done(int64_t finished_before_ms) override {
    QueryTimer timer(db_.options.metrics, "job_purge");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto stmt = db_.writer->prepare("DELETE FROM jobs WHERE state = 'done' AND finished_at < ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, finished_before_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("purge jobs");
    return static_cast<int64_t>(db_.writer->changes());
  }

  Result<std::vector<std::pair<std::string, int64_t>>> counts() override {
    auto db = db_.readers.borrow();
    auto stmt = db->prepare("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state");
    if (!stmt) return std::move(stmt).error();
    std::vector<std::pair<std::string, int64_t>> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      out.emplace_back(stmt->column_text(0), stmt->column_int(1));
    }
    if (rc != SQLITE_DONE) return db->last_error("count jobs");
    return out;
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<JobRepository> make_job_table(Database& db) {
  return std::make_unique<JobTable>(db);
}

}  // namespace parley::store::sqlite
