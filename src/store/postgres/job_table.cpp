// The durable job queue on PostgreSQL (store.hpp, JobRepository): workers on any number of
// replicas take due jobs with FOR UPDATE SKIP LOCKED, so each job goes to one of them and
// none waits on another's rows.
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/postgres/database.hpp"

namespace parley::store::postgres {
namespace {

constexpr const char* kJobColumns =
    "id, kind, payload, state, attempts, max_attempts, run_at, locked_by, locked_until, "
    "last_error, created_at, updated_at, finished_at, result, unique_key";

Job read_job(const Rows& rows, int r) {
  Job j;
  j.id = rows.text(r, 0);
  j.kind = rows.text(r, 1);
  j.payload_json = rows.text(r, 2);
  j.state = rows.text(r, 3);
  j.attempts = rows.integer(r, 4);
  j.max_attempts = rows.integer(r, 5);
  j.run_at_ms = rows.integer(r, 6);
  j.locked_by = rows.optional_text(r, 7);
  j.locked_until_ms = rows.optional_integer(r, 8);
  j.last_error = rows.text(r, 9);
  j.created_at_ms = rows.integer(r, 10);
  j.updated_at_ms = rows.integer(r, 11);
  j.finished_at_ms = rows.optional_integer(r, 12);
  j.result_json = rows.text(r, 13);
  j.unique_key = rows.optional_text(r, 14);
  return j;
}

}  // namespace

Result<std::optional<Job>> insert_job(Connection& db, const NewJob& in, int64_t now_ms) {
  // The conflict target repeats the partial index's condition, which is how PostgreSQL picks it.
  static const std::string sql = std::string("INSERT INTO jobs (") + kJobColumns +
                                 ") VALUES ($1, $2, $3, 'queued', 0, $4, $5, NULL, NULL, '', "
                                 "$6, $6, NULL, '{}', $7) ON CONFLICT (unique_key) WHERE "
                                 "unique_key IS NOT NULL AND state IN ('queued', 'running') DO "
                                 "NOTHING RETURNING " +
                                 kJobColumns;
  auto rows = db.query(sql, Params()
                                .text(new_resource_id("job"))
                                .text(in.kind)
                                .text(in.payload_json)
                                .integer(in.max_attempts)
                                .integer(in.run_at_ms > 0 ? in.run_at_ms : now_ms)
                                .integer(now_ms)
                                .text_or_null(in.unique_key));
  if (!rows) return std::move(rows).error();
  if (rows->empty()) return std::optional<Job>();  // the key's job is live
  return std::optional<Job>(read_job(*rows, 0));
}

namespace {

class JobTable final : public JobRepository {
 public:
  explicit JobTable(Database& db) : db_(db) {}

  Result<Job> enqueue(const NewJob& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_enqueue");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string live = std::string("SELECT ") + kJobColumns +
                                    " FROM jobs WHERE unique_key = $1 AND state IN ('queued', "
                                    "'running')";
    // The live job may finish between the insert that met it and the read: then try again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto inserted = insert_job(**lease, in, now_ms);
      if (!inserted) return std::move(inserted).error();
      if (*inserted) return std::move(**inserted);
      auto rows = (**lease).query(live, Params().text(in.unique_key));
      if (!rows) return std::move(rows).error();
      if (!rows->empty()) return read_job(*rows, 0);
    }
    return Error::unavailable("job key '" + in.unique_key + "' kept changing hands; try again",
                              "storage_busy");
  }

  Result<std::vector<Job>> take(std::string_view worker, int limit, int64_t now_ms,
                                int64_t visibility_ms) override {
    QueryTimer timer(db_.options.metrics, "job_take");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, "
            "locked_until = $2, updated_at = $3 WHERE id IN (SELECT id FROM jobs WHERE "
            "(state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $3) "
            "ORDER BY run_at, created_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING ") +
        kJobColumns;
    auto rows = (**lease).query(
        sql, Params().text(worker).integer(now_ms + visibility_ms).integer(now_ms).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<Job> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_job(*rows, i));
    return out;
  }

  Result<void> succeed(std::string_view id, std::string_view worker, std::string_view result_json,
                       int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_finish");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, finished_at = $3, "
        "updated_at = $3, result = $4 WHERE id = $1 AND locked_by = $2 AND state = 'running'",
        Params().text(id).text(worker).integer(now_ms).text(result_json));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 0) return job_not_held(id);
    return success();
  }

  Result<void> extend(std::string_view id, std::string_view worker, int64_t until_ms,
                      int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_extend");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "UPDATE jobs SET locked_until = $3, updated_at = $4 WHERE id = $1 AND locked_by = $2 AND "
        "state = 'running'",
        Params().text(id).text(worker).integer(until_ms).integer(now_ms));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 0) return job_not_held(id);
    return success();
  }

  Result<Job> fail(std::string_view id, std::string_view worker, std::string_view error,
                   int64_t retry_at_ms, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_finish");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE "
            "'queued' END, run_at = $4, last_error = $3, locked_by = NULL, locked_until = NULL, "
            "updated_at = $5, finished_at = CASE WHEN attempts >= max_attempts THEN $5::bigint "
            "END WHERE id = $1 AND locked_by = $2 AND state = 'running' RETURNING ") +
        kJobColumns;
    auto rows = (**lease).query(
        sql, Params().text(id).text(worker).text(error).integer(retry_at_ms).integer(now_ms));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return job_not_held(id);
    return read_job(*rows, 0);
  }

  Result<Job> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "job_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1";
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->size() == 0) return job_not_found(id);
    return read_job(*rows, 0);
  }

  Result<std::vector<Job>> list(const std::optional<std::string>& state, int limit) override {
    QueryTimer timer(db_.options.metrics, "job_list");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kJobColumns +
                                   " FROM jobs WHERE ($1::text IS NULL OR state = $1) ORDER BY "
                                   "created_at DESC, id DESC LIMIT $2";
    auto rows = (**lease).query(sql, Params().optional_text(state).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<Job> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_job(*rows, i));
    return out;
  }

  Result<Job> retry(std::string_view id, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "job_retry");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, updated_at = $2, "
            "finished_at = NULL WHERE id = $1 AND state = 'dead' AND (unique_key IS NULL OR "
            "NOT EXISTS (SELECT 1 FROM jobs AS twin WHERE twin.unique_key = jobs.unique_key AND "
            "twin.state IN ('queued', 'running'))) RETURNING ") +
        kJobColumns;
    auto rows = (**lease).query(sql, Params().text(id).integer(now_ms));
    if (!rows && rows.error().code != ErrorCode::kConflict) return std::move(rows).error();
    if (rows && !rows->empty()) return read_job(*rows, 0);
    // No row: not dead, not there, or a live twin holds its key (seen, or inserted meanwhile,
    // which the unique index answers with a conflict).
    auto state =
        (**lease).query("SELECT state, unique_key FROM jobs WHERE id = $1", Params().text(id));
    if (!state) return std::move(state).error();
    if (state->empty()) return job_not_found(id);
    if (state->text(0, 0) == "dead") return job_key_taken(id, state->text(0, 1));
    return job_not_dead(id, state->text(0, 0));
  }

  Result<int64_t> purge_done(int64_t finished_before_ms) override {
    QueryTimer timer(db_.options.metrics, "job_purge");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("DELETE FROM jobs WHERE state = 'done' AND finished_at < $1",
                                Params().integer(finished_before_ms));
    if (!rows) return std::move(rows).error();
    return rows->affected();
  }

  Result<std::vector<std::pair<std::string, int64_t>>> counts() override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state");
    if (!rows) return std::move(rows).error();
    std::vector<std::pair<std::string, int64_t>> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.emplace_back(rows->text(i, 0), rows->integer(i, 1));
    return out;
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<JobRepository> make_job_table(Database& db) {
  return std::make_unique<JobTable>(db);
}

}  // namespace parley::store::postgres
