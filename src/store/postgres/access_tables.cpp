// PostgreSQL tables of access control and privacy: API keys, stored idempotent responses, the
// moderation log, and a user's data as one export or one erasure (the contract is
// store/store.hpp; the SQLite twin is store/sqlite/access_tables.cpp).
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/knowledge_sql.hpp"
#include "store/memory_sql.hpp"
#include "store/postgres/database.hpp"

namespace parley::store::postgres {

ApiKey read_key(const Rows& rows, int row, int first) {
  ApiKey k;
  k.id = rows.text(row, first);
  k.name = rows.text(row, first + 1);
  k.scope = rows.text(row, first + 2);
  k.tenant_id = rows.text(row, first + 3);
  k.user_id = rows.text(row, first + 4);
  k.secret_hash = rows.text(row, first + 5);
  k.limits_json = rows.text(row, first + 6);
  k.created_by = rows.text(row, first + 7);
  k.created_at_ms = rows.integer(row, first + 8);
  k.expires_at_ms = rows.optional_integer(row, first + 9);
  k.revoked_at_ms = rows.optional_integer(row, first + 10);
  return k;
}

ModerationLogEntry read_moderation(const Rows& rows, int row, int first) {
  ModerationLogEntry e;
  e.id = rows.text(row, first);
  e.at_ms = rows.integer(row, first + 1);
  e.tenant_id = rows.text(row, first + 2);
  e.user_id = rows.text(row, first + 3);
  e.session_id = rows.text(row, first + 4);
  e.request_id = rows.text(row, first + 5);
  e.stage = rows.text(row, first + 6);
  e.action = rows.text(row, first + 7);
  e.source = rows.text(row, first + 8);
  e.findings_json = rows.text(row, first + 9);
  return e;
}

namespace {

// The user filter of export and erasure: every tenant ($1 only) or one ($1 and $2).
std::string where_user(const char* prefix, bool with_tenant) {
  std::string p = prefix;
  return " WHERE " + p + "user_id = $1" + (with_tenant ? " AND " + p + "tenant_id = $2" : "");
}

Params user_params(const std::optional<std::string>& tenant_id, std::string_view user_id) {
  Params p;
  p.text(user_id);
  if (tenant_id) p.text(*tenant_id);
  return p;
}

class ApiKeyTable final : public ApiKeyRepository {
 public:
  explicit ApiKeyTable(Database& db) : db_(db) {}

  Result<void> create(const ApiKey& k) override {
    QueryTimer timer(db_.options.metrics, "api_key_create");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("INSERT INTO api_keys (") + kKeyColumns +
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING";
    auto rows = (**lease).query(sql, Params()
                                         .text(k.id)
                                         .text(k.name)
                                         .text(k.scope)
                                         .text(k.tenant_id)
                                         .text(k.user_id)
                                         .text(k.secret_hash)
                                         .text(k.limits_json)
                                         .text(k.created_by)
                                         .integer(k.created_at_ms)
                                         .optional_integer(k.expires_at_ms)
                                         .optional_integer(k.revoked_at_ms));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 0) {
      return Error::conflict("an API key with id '" + k.id + "' exists", "key_exists");
    }
    return success();
  }

  Result<ApiKey> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "api_key_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE id = $1";
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return not_found(id);
    return read_key(*rows, 0);
  }

  Result<std::vector<ApiKey>> list(const std::optional<std::string>& tenant_id,
                                   bool include_revoked) override {
    QueryTimer timer(db_.options.metrics, "api_key_list");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kKeyColumns +
                                   " FROM api_keys WHERE ($1::text IS NULL OR tenant_id = $1) "
                                   "AND ($2::boolean OR revoked_at IS NULL) ORDER BY seq DESC";
    auto rows = (**lease).query(sql, Params().optional_text(tenant_id).boolean(include_revoked));
    if (!rows) return std::move(rows).error();
    std::vector<ApiKey> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_key(*rows, i));
    return out;
  }

  Result<ApiKey> revoke(std::string_view id, int64_t at_ms) override {
    QueryTimer timer(db_.options.metrics, "api_key_revoke");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 ") +
        "RETURNING " + kKeyColumns;
    auto rows = (**lease).query(sql, Params().text(id).integer(at_ms));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return not_found(id);
    return read_key(*rows, 0);
  }

 private:
  static Error not_found(std::string_view id) {
    return Error::not_found("no API key with id '" + std::string(id) + "'", "key_not_found");
  }
  Database& db_;
};

class IdempotencyTable final : public IdempotencyRepository {
 public:
  explicit IdempotencyTable(Database& db) : db_(db) {}

  Result<void> put(const std::vector<IdempotencyRecord>& records) override {
    if (records.empty()) return success();
    QueryTimer timer(db_.options.metrics, "idempotency_put");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    for (const auto& r : records) {
      auto rows = db.query(
          "INSERT INTO idempotency_keys (key, fingerprint, status, content_type, body, "
          "created_at, expires_at, tenant_id, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
          "$9) ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = "
          "EXCLUDED.status, content_type = EXCLUDED.content_type, body = EXCLUDED.body, "
          "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, tenant_id = "
          "EXCLUDED.tenant_id, user_id = EXCLUDED.user_id",
          Params()
              .text(r.key)
              .text(r.fingerprint)
              .integer(r.status)
              .text(r.content_type)
              .bytes(r.body)
              .integer(r.created_at_ms)
              .integer(r.expires_at_ms)
              .text(r.tenant_id)
              .text(r.user_id));
      if (!rows) return std::move(rows).error();
    }
    return tx.commit();
  }

  Result<std::optional<IdempotencyRecord>> get(std::string_view key) override {
    QueryTimer timer(db_.options.metrics, "idempotency_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT key, fingerprint, status, content_type, body, created_at, expires_at, "
        "tenant_id, user_id FROM idempotency_keys WHERE key = $1",
        Params().text(key));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return std::optional<IdempotencyRecord>();
    IdempotencyRecord r;
    r.key = rows->text(0, 0);
    r.fingerprint = rows->text(0, 1);
    r.status = static_cast<int>(rows->integer(0, 2));
    r.content_type = rows->text(0, 3);
    r.body = rows->bytes(0, 4);
    r.created_at_ms = rows->integer(0, 5);
    r.expires_at_ms = rows->integer(0, 6);
    r.tenant_id = rows->text(0, 7);
    r.user_id = rows->text(0, 8);
    return std::optional<IdempotencyRecord>(std::move(r));
  }

  Result<std::vector<IdempotencyRecord>> unexpired_keys(int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "idempotency_index");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT key, fingerprint, status, created_at, expires_at, tenant_id, user_id "
        "FROM idempotency_keys WHERE expires_at > $1",
        Params().integer(now_ms));
    if (!rows) return std::move(rows).error();
    std::vector<IdempotencyRecord> out;
    for (int i = 0; i < rows->size(); ++i) {
      IdempotencyRecord r;
      r.key = rows->text(i, 0);
      r.fingerprint = rows->text(i, 1);
      r.status = static_cast<int>(rows->integer(i, 2));
      r.created_at_ms = rows->integer(i, 3);
      r.expires_at_ms = rows->integer(i, 4);
      r.tenant_id = rows->text(i, 5);
      r.user_id = rows->text(i, 6);
      out.push_back(std::move(r));
    }
    return out;
  }

  Result<int64_t> purge_expired(int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "idempotency_purge");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("DELETE FROM idempotency_keys WHERE expires_at <= $1",
                                Params().integer(now_ms));
    if (!rows) return std::move(rows).error();
    return rows->affected();
  }

 private:
  Database& db_;
};

class ModerationLogTable final : public ModerationLogRepository {
 public:
  explicit ModerationLogTable(Database& db) : db_(db) {}

  Result<void> append(const std::vector<ModerationLogEntry>& entries) override {
    if (entries.empty()) return success();
    QueryTimer timer(db_.options.metrics, "moderation_append");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    static const std::string sql = std::string("INSERT INTO moderation_log (") +
                                   kModerationColumns +
                                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    for (const auto& e : entries) {
      auto rows = db.query(sql, Params()
                                    .text(e.id.empty() ? new_resource_id("mod") : e.id)
                                    .integer(e.at_ms)
                                    .text(e.tenant_id)
                                    .text(e.user_id)
                                    .text(e.session_id)
                                    .text(e.request_id)
                                    .text(e.stage)
                                    .text(e.action)
                                    .text(e.source)
                                    .text(e.findings_json));
      if (!rows) return std::move(rows).error();
    }
    return tx.commit();
  }

  Result<ModerationLogPage> list(const ModerationLogQuery& q) override {
    QueryTimer timer(db_.options.metrics, "moderation_list");
    auto cursor = parse_cursor(q.cursor);
    if (cursor.error) return *cursor.error;
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT seq, ") + kModerationColumns +
        " FROM moderation_log WHERE seq < $1 AND at >= $2 AND ($3::text IS NULL OR tenant_id = "
        "$3) AND ($4::text IS NULL OR user_id = $4) AND ($5::text IS NULL OR action = $5) "
        "ORDER BY seq DESC LIMIT $6";
    auto rows = (**lease).query(sql, Params()
                                         .integer(cursor.after.value_or(INT64_MAX))
                                         .integer(q.from_ms)
                                         .optional_text(q.tenant_id)
                                         .optional_text(q.user_id)
                                         .optional_text(q.action)
                                         .integer(q.limit + 1));
    if (!rows) return std::move(rows).error();
    ModerationLogPage page;
    const int n = std::min(rows->size(), q.limit);
    for (int i = 0; i < n; ++i) page.items.push_back(read_moderation(*rows, i, 1));
    if (rows->size() > q.limit && n > 0) page.next_cursor = rows->text(n - 1, 0);
    return page;
  }

 private:
  Database& db_;
};

class UserDataTable final : public UserDataRepository {
 public:
  explicit UserDataTable(Database& db) : db_(db) {}

  Result<UserExport> export_user(const std::optional<std::string>& tenant_id,
                                 std::string_view user_id) override {
    QueryTimer timer(db_.options.metrics, "user_export");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    // One snapshot: the export is one consistent picture.
    Transaction tx(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx.begun()) return tx.begun().error();
    const bool one = tenant_id.has_value();
    const Params params = user_params(tenant_id, user_id);
    UserExport out;
    static const std::string sessions[2] = {
        std::string("SELECT ") + kSessionColumns + " FROM sessions" + where_user("", false) +
            " ORDER BY seq",
        std::string("SELECT ") + kSessionColumns + " FROM sessions" + where_user("", true) +
            " ORDER BY seq"};
    auto rows = db.query(sessions[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) out.sessions.push_back(read_session(*rows, i));
    static const std::string messages[2] = {
        "SELECT " + prefixed(kMessageReadColumns, "m.") +
            " FROM messages m JOIN sessions s ON s.id = m.session_id" + where_user("s.", false) +
            " ORDER BY s.seq, m.seq",
        "SELECT " + prefixed(kMessageReadColumns, "m.") +
            " FROM messages m JOIN sessions s ON s.id = m.session_id" + where_user("s.", true) +
            " ORDER BY s.seq, m.seq"};
    rows = db.query(messages[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) out.messages.push_back(read_message(*rows, i));
    static const std::string usage[2] = {
        std::string("SELECT ") + kUsageColumns + " FROM usage_records" + where_user("", false) +
            " ORDER BY seq",
        std::string("SELECT ") + kUsageColumns + " FROM usage_records" + where_user("", true) +
            " ORDER BY seq"};
    rows = db.query(usage[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) out.usage.push_back(read_usage(*rows, i));
    static const std::string moderation[2] = {
        std::string("SELECT ") + kModerationColumns + " FROM moderation_log" +
            where_user("", false) + " ORDER BY seq",
        std::string("SELECT ") + kModerationColumns + " FROM moderation_log" +
            where_user("", true) + " ORDER BY seq"};
    rows = db.query(moderation[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) out.moderation.push_back(read_moderation(*rows, i));
    static const std::string keys[2] = {
        std::string("SELECT ") + kKeyColumns + " FROM api_keys" + where_user("", false) +
            " AND scope = 'user' ORDER BY seq",
        std::string("SELECT ") + kKeyColumns + " FROM api_keys" + where_user("", true) +
            " AND scope = 'user' ORDER BY seq"};
    rows = db.query(keys[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) {
      ApiKey k = read_key(*rows, i);
      k.secret_hash.clear();
      out.keys.push_back(std::move(k));
    }
    static const std::string memories[2] = {
        std::string("SELECT ") + memory_sql::kMemoryColumns + " FROM memories" +
            where_user("", false) + " ORDER BY seq",
        std::string("SELECT ") + memory_sql::kMemoryColumns + " FROM memories" +
            where_user("", true) + " ORDER BY seq"};
    rows = db.query(memories[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) out.memories.push_back(read_memory(*rows, i, false));
    static const std::string history[2] = {
        std::string("SELECT ") + memory_sql::kHistoryColumns + " FROM memory_history" +
            where_user("", false) + " ORDER BY seq",
        std::string("SELECT ") + memory_sql::kHistoryColumns + " FROM memory_history" +
            where_user("", true) + " ORDER BY seq"};
    rows = db.query(history[one], params);
    if (!rows) return std::move(rows).error();
    for (int i = 0; i < rows->size(); ++i) out.memory_history.push_back(read_history(*rows, i));
    (void)tx.commit();
    return out;
  }

  Result<ErasureCounts> erase_user(const std::optional<std::string>& tenant_id,
                                   std::string_view user_id, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "user_erase");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    // After any roll-up in progress, whose daily totals of the user's usage must go too.
    if (auto locked = db.query(kUsageDailyLock); !locked) return std::move(locked).error();
    const bool one = tenant_id.has_value();
    const Params params = user_params(tenant_id, user_id);
    ErasureCounts counts;
    // Messages go with their sessions (ON DELETE CASCADE); counted first.
    static const std::string messages[2] = {
        "SELECT count(*) FROM messages m JOIN sessions s ON s.id = m.session_id" +
            where_user("s.", false),
        "SELECT count(*) FROM messages m JOIN sessions s ON s.id = m.session_id" +
            where_user("s.", true)};
    auto rows = db.query(messages[one], params);
    if (!rows) return std::move(rows).error();
    counts.messages = rows->integer(0, 0);
    static const std::string deletes[4][2] = {
        {"DELETE FROM sessions" + where_user("", false),
         "DELETE FROM sessions" + where_user("", true)},
        {"DELETE FROM usage_records" + where_user("", false),
         "DELETE FROM usage_records" + where_user("", true)},
        {"DELETE FROM moderation_log" + where_user("", false),
         "DELETE FROM moderation_log" + where_user("", true)},
        {"DELETE FROM idempotency_keys" + where_user("", false),
         "DELETE FROM idempotency_keys" + where_user("", true)}};
    int64_t* targets[4] = {&counts.sessions, &counts.usage_records, &counts.moderation_logs,
                           &counts.idempotent_responses};
    for (int i = 0; i < 4; ++i) {
      rows = db.query(deletes[i][one], params);
      if (!rows) return std::move(rows).error();
      *targets[i] = rows->affected();
    }
    // Their daily totals go too (not counted: they are derived from the records).
    static const std::string daily[2] = {"DELETE FROM usage_daily" + where_user("", false),
                                         "DELETE FROM usage_daily" + where_user("", true)};
    rows = db.query(daily[one], params);
    if (!rows) return std::move(rows).error();
    // A key's row stays (who created what, when, stays auditable); the person is removed.
    static const std::string keys[2] = {
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2), user_id = '', "
        "name = '[erased]' WHERE scope = 'user' AND user_id = $1",
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3), user_id = '', "
        "name = '[erased]' WHERE scope = 'user' AND user_id = $1 AND tenant_id = $2"};
    Params key_params = user_params(tenant_id, user_id);
    key_params.integer(now_ms);
    rows = db.query(keys[one], key_params);
    if (!rows) return std::move(rows).error();
    counts.api_keys = rows->affected();
    // Memories and their history go, and the recall indexes are told to drop the user (one
    // entry per tenant the user had memories in; under the memory change log's lock, so that
    // log order stays commit order).
    if (auto locked = db.query(kMemoryChangeLogLock); !locked) return std::move(locked).error();
    static const std::string forget[2] = {
        "INSERT INTO memory_changes (tenant_id, op, user_id) SELECT DISTINCT tenant_id, "
        "'erase_user', user_id FROM memories" +
            where_user("", false),
        "INSERT INTO memory_changes (tenant_id, op, user_id) SELECT DISTINCT tenant_id, "
        "'erase_user', user_id FROM memories" +
            where_user("", true)};
    rows = db.query(forget[one], params);
    if (!rows) return std::move(rows).error();
    static const std::string forget_rows[2][2] = {
        {"DELETE FROM memories" + where_user("", false),
         "DELETE FROM memories" + where_user("", true)},
        {"DELETE FROM memory_history" + where_user("", false),
         "DELETE FROM memory_history" + where_user("", true)}};
    int64_t* forgotten[2] = {&counts.memories, &counts.memory_history};
    for (int i = 0; i < 2; ++i) {
      rows = db.query(forget_rows[i][one], params);
      if (!rows) return std::move(rows).error();
      *forgotten[i] = rows->affected();
    }
    // Jobs that carry the user's words (store.hpp, user_job_key_prefix), in any state.
    Params prefix;
    prefix.text(user_job_key_prefix(tenant_id, user_id));
    rows = db.query("DELETE FROM jobs WHERE starts_with(unique_key, $1)", prefix);
    if (!rows) return std::move(rows).error();
    counts.jobs = rows->affected();
    if (!user_id.empty()) {  // '' owns the tenants' shared bases
      if (auto r = erase_knowledge(db, tenant_id, user_id, counts); !r) return r.error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return counts;
  }

 private:
  // The user's own knowledge bases (dropped from the search indexes), the files the user
  // uploaded with every document made from them (their chunks logged as removed), and the
  // bytes no file holds any longer. Inside erase_user's transaction.
  static Result<void> erase_knowledge(Connection& db, const std::optional<std::string>& tenant_id,
                                      std::string_view user_id, ErasureCounts& counts) {
    static const std::vector<std::string> all =
        knowledge_sql::erase_user_sql(false, '$', kKnowledgeChangeLogLock);
    static const std::vector<std::string> one =
        knowledge_sql::erase_user_sql(true, '$', kKnowledgeChangeLogLock);
    for (const std::string& sql : tenant_id ? one : all) {
      // A statement naming the tenant ($2) names the user ($1) too.
      Params params;
      if (sql.find("$1") != std::string::npos) params.text(user_id);
      if (tenant_id && sql.find("$2") != std::string::npos) params.text(*tenant_id);
      auto rows = db.query(sql, params);
      if (!rows) return std::move(rows).error();
      if (sql.starts_with("DELETE FROM knowledge_bases")) counts.knowledge_bases = rows->affected();
      if (sql.starts_with("DELETE FROM files")) counts.files += rows->affected();
    }
    return success();
  }

  Database& db_;
};

class ReplicaTable final : public ReplicaRepository {
 public:
  explicit ReplicaTable(Database& db) : db_(db) {}

  Result<void> heartbeat(const ReplicaInfo& r) override {
    QueryTimer timer(db_.options.metrics, "replica_heartbeat");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "INSERT INTO replicas (id, host, pid, started_at, seen_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
        Params()
            .text(r.id)
            .text(r.host)
            .integer(r.pid)
            .integer(r.started_at_ms)
            .integer(r.seen_at_ms));
    if (!rows) return std::move(rows).error();
    return success();
  }

  Result<void> remove(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "replica_remove");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("DELETE FROM replicas WHERE id = $1", Params().text(id));
    if (!rows) return std::move(rows).error();
    return success();
  }

  Result<std::vector<ReplicaInfo>> list() override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT id, host, pid, started_at, seen_at FROM replicas ORDER BY started_at");
    if (!rows) return std::move(rows).error();
    std::vector<ReplicaInfo> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) {
      out.push_back({rows->text(i, 0), rows->text(i, 1), rows->integer(i, 2), rows->integer(i, 3),
                     rows->integer(i, 4)});
    }
    return out;
  }

  Result<int64_t> interrupt_orphans(std::string_view self, int64_t stale_before_ms,
                                    int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "message_recover");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    auto changed = db.query(
        "UPDATE messages SET status = 'partial', finish_reason = 'interrupted', completed_at = "
        "$3 WHERE status = 'pending' AND (owner IS NULL OR (owner <> $1 AND owner NOT IN "
        "(SELECT id FROM replicas WHERE seen_at >= $2)))",
        Params().text(self).integer(stale_before_ms).integer(now_ms));
    if (!changed) return std::move(changed).error();
    auto forgot = db.query("DELETE FROM replicas WHERE seen_at < $2 AND id <> $1",
                           Params().text(self).integer(stale_before_ms));
    if (!forgot) return std::move(forgot).error();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return changed->affected();
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<ReplicaRepository> make_replica_table(Database& db) {
  return std::make_unique<ReplicaTable>(db);
}

std::unique_ptr<ApiKeyRepository> make_api_key_table(Database& db) {
  return std::make_unique<ApiKeyTable>(db);
}
std::unique_ptr<IdempotencyRepository> make_idempotency_table(Database& db) {
  return std::make_unique<IdempotencyTable>(db);
}
std::unique_ptr<ModerationLogRepository> make_moderation_log_table(Database& db) {
  return std::make_unique<ModerationLogTable>(db);
}
std::unique_ptr<UserDataRepository> make_user_data_table(Database& db) {
  return std::make_unique<UserDataTable>(db);
}

}  // namespace parley::store::postgres
