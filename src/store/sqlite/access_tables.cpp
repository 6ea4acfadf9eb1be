// SQLite tables of access control and privacy: API keys, stored idempotent responses, the
// moderation log, and a user's data as one export or one erasure. They share the connections
// of sqlite_store.cpp (database.hpp) and keep its contract: blocking, thread-safe, a write is
// durable when the call returns.
#include <algorithm>
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "store/knowledge_sql.hpp"
#include "store/memory_sql.hpp"
#include "store/sqlite/database.hpp"

namespace parley::store::sqlite {
namespace {

Error closed() { return Error::unavailable("storage is closed", "storage_closed"); }

constexpr const char* kKeyColumns =
    "id, name, scope, tenant_id, user_id, secret_hash, limits, created_by, created_at, "
    "expires_at, revoked_at";

ApiKey read_key(const Statement& row, int first = 0) {
  ApiKey k;
  k.id = row.column_text(first);
  k.name = row.column_text(first + 1);
  k.scope = row.column_text(first + 2);
  k.tenant_id = row.column_text(first + 3);
  k.user_id = row.column_text(first + 4);
  k.secret_hash = row.column_text(first + 5);
  k.limits_json = row.column_text(first + 6);
  k.created_by = row.column_text(first + 7);
  k.created_at_ms = row.column_int(first + 8);
  k.expires_at_ms = row.column_optional_int(first + 9);
  k.revoked_at_ms = row.column_optional_int(first + 10);
  return k;
}

class ApiKeyTable final : public ApiKeyRepository {
 public:
  explicit ApiKeyTable(Database& db) : db_(db) {}

  Result<void> create(const ApiKey& k) override {
    QueryTimer timer(db_.options.metrics, "api_key_create");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    static const std::string sql =
        std::string("INSERT INTO api_keys (") + kKeyColumns +
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING";
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, k.id).bind(2, k.name).bind(3, k.scope).bind(4, k.tenant_id).bind(5, k.user_id);
    stmt->bind(6, k.secret_hash).bind(7, k.limits_json).bind(8, k.created_by);
    stmt->bind(9, k.created_at_ms).bind_optional_int(10, k.expires_at_ms);
    stmt->bind_optional_int(11, k.revoked_at_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("create api key");
    if (db_.writer->changes() == 0) {
      return Error::conflict("an API key with id '" + k.id + "' exists", "key_exists");
    }
    return tx.commit();
  }

  Result<ApiKey> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "api_key_get");
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE id = ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_ROW) return read_key(*stmt);
    if (rc == SQLITE_DONE) return not_found(id);
    return db->last_error("get api key");
  }

  Result<std::vector<ApiKey>> list(const std::optional<std::string>& tenant_id,
                                   bool include_revoked) override {
    QueryTimer timer(db_.options.metrics, "api_key_list");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kKeyColumns +
                                   " FROM api_keys WHERE (?1 IS NULL OR tenant_id = ?1) "
                                   "AND (?2 OR revoked_at IS NULL) ORDER BY seq DESC";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind_optional(1, tenant_id).bind(2, static_cast<int64_t>(include_revoked));
    std::vector<ApiKey> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_key(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("list api keys");
    return out;
  }

  Result<ApiKey> revoke(std::string_view id, int64_t at_ms) override {
    QueryTimer timer(db_.options.metrics, "api_key_revoke");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    static const std::string sql =
        std::string("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 ") +
        "RETURNING " + kKeyColumns;
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, at_ms);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return not_found(id);
    if (rc != SQLITE_ROW) return db_.writer->last_error("revoke api key");
    ApiKey k = read_key(*stmt);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("revoke api key");
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return k;
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
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    for (const auto& r : records) {
      auto stmt = db_.writer->prepare(
          "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, status, content_type, body, "
          "created_at, expires_at, tenant_id, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, r.key).bind(2, r.fingerprint).bind(3, static_cast<int64_t>(r.status));
      stmt->bind(4, r.content_type).bind(5, r.body).bind(6, r.created_at_ms);
      stmt->bind(7, r.expires_at_ms).bind(8, r.tenant_id).bind(9, r.user_id);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("store idempotent response");
    }
    return tx.commit();
  }

  Result<std::optional<IdempotencyRecord>> get(std::string_view key) override {
    QueryTimer timer(db_.options.metrics, "idempotency_get");
    auto db = db_.readers.borrow();
    auto stmt = db->prepare(
        "SELECT key, fingerprint, status, content_type, body, created_at, expires_at, "
        "tenant_id, user_id FROM idempotency_keys WHERE key = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, key);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return std::optional<IdempotencyRecord>();
    if (rc != SQLITE_ROW) return db->last_error("read idempotent response");
    IdempotencyRecord r;
    r.key = stmt->column_text(0);
    r.fingerprint = stmt->column_text(1);
    r.status = static_cast<int>(stmt->column_int(2));
    r.content_type = stmt->column_text(3);
    r.body = stmt->column_text(4);
    r.created_at_ms = stmt->column_int(5);
    r.expires_at_ms = stmt->column_int(6);
    r.tenant_id = stmt->column_text(7);
    r.user_id = stmt->column_text(8);
    return std::optional<IdempotencyRecord>(std::move(r));
  }

  Result<std::vector<IdempotencyRecord>> unexpired_keys(int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "idempotency_index");
    auto db = db_.readers.borrow();
    auto stmt = db->prepare(
        "SELECT key, fingerprint, status, created_at, expires_at, tenant_id, user_id "
        "FROM idempotency_keys WHERE expires_at > ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, now_ms);
    std::vector<IdempotencyRecord> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      IdempotencyRecord r;
      r.key = stmt->column_text(0);
      r.fingerprint = stmt->column_text(1);
      r.status = static_cast<int>(stmt->column_int(2));
      r.created_at_ms = stmt->column_int(3);
      r.expires_at_ms = stmt->column_int(4);
      // Whose answer it is: erasure (forget_user) finds keys loaded at startup too.
      r.tenant_id = stmt->column_text(5);
      r.user_id = stmt->column_text(6);
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return db->last_error("index idempotency keys");
    return out;
  }

  Result<int64_t> purge_expired(int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "idempotency_purge");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto stmt = db_.writer->prepare("DELETE FROM idempotency_keys WHERE expires_at <= ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, now_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("purge idempotency keys");
    const int64_t removed = db_.writer->changes();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return removed;
  }

 private:
  Database& db_;
};

constexpr const char* kModerationColumns =
    "id, at, tenant_id, user_id, session_id, request_id, stage, action, source, findings";

ModerationLogEntry read_moderation(const Statement& row, int first = 0) {
  ModerationLogEntry e;
  e.id = row.column_text(first);
  e.at_ms = row.column_int(first + 1);
  e.tenant_id = row.column_text(first + 2);
  e.user_id = row.column_text(first + 3);
  e.session_id = row.column_text(first + 4);
  e.request_id = row.column_text(first + 5);
  e.stage = row.column_text(first + 6);
  e.action = row.column_text(first + 7);
  e.source = row.column_text(first + 8);
  e.findings_json = row.column_text(first + 9);
  return e;
}

class ModerationLogTable final : public ModerationLogRepository {
 public:
  explicit ModerationLogTable(Database& db) : db_(db) {}

  Result<void> append(const std::vector<ModerationLogEntry>& entries) override {
    if (entries.empty()) return success();
    QueryTimer timer(db_.options.metrics, "moderation_append");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    static const std::string sql = std::string("INSERT INTO moderation_log (") +
                                   kModerationColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    for (const auto& e : entries) {
      auto stmt = db_.writer->prepare(sql.c_str());
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, e.id.empty() ? new_resource_id("mod") : e.id).bind(2, e.at_ms);
      stmt->bind(3, e.tenant_id).bind(4, e.user_id).bind(5, e.session_id).bind(6, e.request_id);
      stmt->bind(7, e.stage).bind(8, e.action).bind(9, e.source).bind(10, e.findings_json);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("log moderation");
    }
    return tx.commit();
  }

  Result<ModerationLogPage> list(const ModerationLogQuery& q) override {
    QueryTimer timer(db_.options.metrics, "moderation_list");
    int64_t before = INT64_MAX;
    if (q.cursor) {
      char* end = nullptr;
      before = std::strtoll(q.cursor->c_str(), &end, 10);
      if (end != q.cursor->c_str() + q.cursor->size() || before <= 0) {
        return Error::invalid("cursor is not one this server issued", "invalid_cursor", "cursor");
      }
    }
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT seq, ") + kModerationColumns +
        " FROM moderation_log WHERE seq < ?1 AND at >= ?2 AND (?3 IS NULL OR tenant_id = ?3) "
        "AND (?4 IS NULL OR user_id = ?4) AND (?5 IS NULL OR action = ?5) "
        "ORDER BY seq DESC LIMIT ?6";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, before).bind(2, q.from_ms).bind_optional(3, q.tenant_id);
    stmt->bind_optional(4, q.user_id).bind_optional(5, q.action);
    stmt->bind(6, static_cast<int64_t>(q.limit) + 1);
    ModerationLogPage page;
    int64_t last_seq = 0;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      if (static_cast<int>(page.items.size()) == q.limit) {
        page.next_cursor = std::to_string(last_seq);
        break;
      }
      last_seq = stmt->column_int(0);
      page.items.push_back(read_moderation(*stmt, 1));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db->last_error("list moderation log");
    return page;
  }

 private:
  Database& db_;
};

// Statement variants with and without a tenant (admins act across tenants): prepare() caches
// by the text's address, so each variant is its own static string.
const char* pick(bool with_tenant, const std::string& all, const std::string& one) {
  return with_tenant ? one.c_str() : all.c_str();
}

class UserDataTable final : public UserDataRepository {
 public:
  explicit UserDataTable(Database& db) : db_(db) {}

  Result<UserExport> export_user(const std::optional<std::string>& tenant_id,
                                 std::string_view user_id) override {
    QueryTimer timer(db_.options.metrics, "user_export");
    UserExport out;
    auto db = db_.readers.borrow();
    // One read transaction: the export is one consistent picture.
    if (auto r = db->exec("BEGIN"); !r) return std::move(r).error();
    struct EndRead {
      Connection& c;
      ~EndRead() { (void)c.exec("COMMIT"); }
    } end_read{*db};
    static const std::string sessions_all =
        std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE user_id = ?1 ORDER BY seq";
    static const std::string sessions_one =
        std::string("SELECT ") + kSessionColumns +
        " FROM sessions WHERE user_id = ?1 AND tenant_id = ?2 ORDER BY seq";
    {
      auto stmt = db->prepare(pick(tenant_id.has_value(), sessions_all, sessions_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) out.sessions.push_back(read_session(*stmt));
      if (rc != SQLITE_DONE) return db->last_error("export sessions");
    }
    static const std::string messages = std::string("SELECT ") + kMessageReadColumns +
                                        " FROM messages WHERE session_id = ? ORDER BY seq";
    for (const auto& s : out.sessions) {
      auto stmt = db->prepare(messages.c_str());
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, s.id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) out.messages.push_back(read_message(*stmt));
      if (rc != SQLITE_DONE) return db->last_error("export messages");
    }
    static const std::string usage_all =
        "SELECT at, tenant_id, user_id, key_id, session_id, source, provider, model, "
        "input_tokens, output_tokens, cost_usd, status, request_id, requests FROM usage_records "
        "WHERE user_id = ?1 ORDER BY seq";
    static const std::string usage_one =
        "SELECT at, tenant_id, user_id, key_id, session_id, source, provider, model, "
        "input_tokens, output_tokens, cost_usd, status, request_id, requests FROM usage_records "
        "WHERE user_id = ?1 AND tenant_id = ?2 ORDER BY seq";
    {
      auto stmt = db->prepare(pick(tenant_id.has_value(), usage_all, usage_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) {
        UsageRecord r;
        r.at_ms = stmt->column_int(0);
        r.tenant_id = stmt->column_text(1);
        r.user_id = stmt->column_text(2);
        r.key_id = stmt->column_text(3);
        r.session_id = stmt->column_text(4);
        r.source = stmt->column_text(5);
        r.provider = stmt->column_text(6);
        r.model = stmt->column_text(7);
        r.input_tokens = stmt->column_int(8);
        r.output_tokens = stmt->column_int(9);
        r.cost_usd = stmt->column_double(10);
        r.status = stmt->column_text(11);
        r.request_id = stmt->column_text(12);
        r.requests = stmt->column_int(13);
        out.usage.push_back(std::move(r));
      }
      if (rc != SQLITE_DONE) return db->last_error("export usage");
    }
    static const std::string moderation_all =
        std::string("SELECT ") + kModerationColumns +
        " FROM moderation_log WHERE user_id = ?1 ORDER BY seq";
    static const std::string moderation_one =
        std::string("SELECT ") + kModerationColumns +
        " FROM moderation_log WHERE user_id = ?1 AND tenant_id = ?2 ORDER BY seq";
    {
      auto stmt = db->prepare(pick(tenant_id.has_value(), moderation_all, moderation_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) out.moderation.push_back(read_moderation(*stmt));
      if (rc != SQLITE_DONE) return db->last_error("export moderation log");
    }
    static const std::string keys_all = std::string("SELECT ") + kKeyColumns +
                                        " FROM api_keys WHERE scope = 'user' AND user_id = ?1 "
                                        "ORDER BY seq";
    static const std::string keys_one =
        std::string("SELECT ") + kKeyColumns +
        " FROM api_keys WHERE scope = 'user' AND user_id = ?1 AND tenant_id = ?2 ORDER BY seq";
    {
      auto stmt = db->prepare(pick(tenant_id.has_value(), keys_all, keys_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) {
        ApiKey k = read_key(*stmt);
        k.secret_hash.clear();
        out.keys.push_back(std::move(k));
      }
      if (rc != SQLITE_DONE) return db->last_error("export api keys");
    }
    static const std::string memories_all = std::string("SELECT ") + memory_sql::kMemoryColumns +
                                            " FROM memories WHERE user_id = ?1 ORDER BY seq";
    static const std::string memories_one =
        std::string("SELECT ") + memory_sql::kMemoryColumns +
        " FROM memories WHERE user_id = ?1 AND tenant_id = ?2 ORDER BY seq";
    {
      auto stmt = db->prepare(pick(tenant_id.has_value(), memories_all, memories_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) out.memories.push_back(read_memory(*stmt, false));
      if (rc != SQLITE_DONE) return db->last_error("export memories");
    }
    static const std::string history_all = std::string("SELECT ") + memory_sql::kHistoryColumns +
                                           " FROM memory_history WHERE user_id = ?1 ORDER BY seq";
    static const std::string history_one =
        std::string("SELECT ") + memory_sql::kHistoryColumns +
        " FROM memory_history WHERE user_id = ?1 AND tenant_id = ?2 ORDER BY seq";
    {
      auto stmt = db->prepare(pick(tenant_id.has_value(), history_all, history_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      int rc;
      while ((rc = stmt->step()) == SQLITE_ROW) out.memory_history.push_back(read_history(*stmt));
      if (rc != SQLITE_DONE) return db->last_error("export memory history");
    }
    return out;
  }

  Result<ErasureCounts> erase_user(const std::optional<std::string>& tenant_id,
                                   std::string_view user_id, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "user_erase");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    ErasureCounts counts;
    // Messages go with their sessions (ON DELETE CASCADE); counted first.
    static const std::string messages_all =
        "SELECT COUNT(*) FROM messages WHERE session_id IN "
        "(SELECT id FROM sessions WHERE user_id = ?1)";
    static const std::string messages_one =
        "SELECT COUNT(*) FROM messages WHERE session_id IN "
        "(SELECT id FROM sessions WHERE user_id = ?1 AND tenant_id = ?2)";
    static const std::string sessions_all = "DELETE FROM sessions WHERE user_id = ?1";
    static const std::string sessions_one =
        "DELETE FROM sessions WHERE user_id = ?1 AND tenant_id = ?2";
    static const std::string usage_all = "DELETE FROM usage_records WHERE user_id = ?1";
    static const std::string usage_one =
        "DELETE FROM usage_records WHERE user_id = ?1 AND tenant_id = ?2";
    // Their daily totals go too (not counted: they are derived from the records).
    static const std::string daily_all = "DELETE FROM usage_daily WHERE user_id = ?1";
    static const std::string daily_one =
        "DELETE FROM usage_daily WHERE user_id = ?1 AND tenant_id = ?2";
    int64_t daily_rows = 0;
    static const std::string moderation_all = "DELETE FROM moderation_log WHERE user_id = ?1";
    static const std::string moderation_one =
        "DELETE FROM moderation_log WHERE user_id = ?1 AND tenant_id = ?2";
    static const std::string idempotency_all = "DELETE FROM idempotency_keys WHERE user_id = ?1";
    static const std::string idempotency_one =
        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND tenant_id = ?2";
    // A key's row stays (who created what, when, stays auditable); the person is removed.
    static const std::string keys_all =
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3), user_id = '', "
        "name = '[erased]' WHERE scope = 'user' AND user_id = ?1";
    static const std::string keys_one =
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3), user_id = '', "
        "name = '[erased]' WHERE scope = 'user' AND user_id = ?1 AND tenant_id = ?2";
    // Memories and their history go, and the recall indexes are told to drop the user (one
    // entry per tenant the user had memories in).
    static const std::string forget_all =
        "INSERT INTO memory_changes (tenant_id, op, user_id) SELECT DISTINCT tenant_id, "
        "'erase_user', user_id FROM memories WHERE user_id = ?1";
    static const std::string forget_one =
        "INSERT INTO memory_changes (tenant_id, op, user_id) SELECT DISTINCT tenant_id, "
        "'erase_user', user_id FROM memories WHERE user_id = ?1 AND tenant_id = ?2";
    int64_t forgotten = 0;
    static const std::string memories_all = "DELETE FROM memories WHERE user_id = ?1";
    static const std::string memories_one =
        "DELETE FROM memories WHERE user_id = ?1 AND tenant_id = ?2";
    static const std::string history_all = "DELETE FROM memory_history WHERE user_id = ?1";
    static const std::string history_one =
        "DELETE FROM memory_history WHERE user_id = ?1 AND tenant_id = ?2";
    {
      auto stmt = db_.writer->prepare(pick(tenant_id.has_value(), messages_all, messages_one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      if (stmt->step() != SQLITE_ROW) return db_.writer->last_error("erase user");
      counts.messages = stmt->column_int(0);
    }
    struct Step {
      const std::string& all;
      const std::string& one;
      int64_t* count;
    };
    for (const Step& step :
         {Step{sessions_all, sessions_one, &counts.sessions},
          Step{usage_all, usage_one, &counts.usage_records},
          Step{daily_all, daily_one, &daily_rows},
          Step{moderation_all, moderation_one, &counts.moderation_logs},
          Step{idempotency_all, idempotency_one, &counts.idempotent_responses},
          Step{keys_all, keys_one, &counts.api_keys}, Step{forget_all, forget_one, &forgotten},
          Step{memories_all, memories_one, &counts.memories},
          Step{history_all, history_one, &counts.memory_history}}) {
      auto stmt = db_.writer->prepare(pick(tenant_id.has_value(), step.all, step.one));
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      if (&step.all == &keys_all) stmt->bind(3, now_ms);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("erase user");
      *step.count = db_.writer->changes();
    }
    {
      // Jobs that carry the user's words (store.hpp, user_job_key_prefix), in any state.
      auto stmt = db_.writer->prepare(
          "DELETE FROM jobs WHERE unique_key IS NOT NULL AND "
          "substr(unique_key, 1, length(?1)) = ?1");
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, user_job_key_prefix(tenant_id, user_id));
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("erase user");
      counts.jobs = db_.writer->changes();
    }
    if (!user_id.empty()) {  // '' owns the tenants' shared bases
      if (auto r = erase_knowledge_locked(tenant_id, user_id, counts); !r) return r.error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return counts;
  }

 private:
  // The user's own knowledge bases (dropped from the search indexes), the files the user
  // uploaded with every document made from them (their chunks logged as removed), and the
  // bytes no file holds any longer. With the write lock held, inside erase_user's transaction.
  Result<void> erase_knowledge_locked(const std::optional<std::string>& tenant_id,
                                      std::string_view user_id, ErasureCounts& counts) {
    // Static: statements are cached by the address of their text.
    static const std::vector<std::string> all = knowledge_sql::erase_user_sql(false, '?', nullptr);
    static const std::vector<std::string> one = knowledge_sql::erase_user_sql(true, '?', nullptr);
    for (const std::string& sql : tenant_id ? one : all) {
      auto stmt = db_.writer->prepare(sql.c_str());
      if (!stmt) return std::move(stmt).error();
      if (sql.find("?1") != std::string::npos) stmt->bind(1, user_id);
      if (tenant_id) stmt->bind(2, *tenant_id);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("erase user's knowledge");
      if (sql.starts_with("DELETE FROM knowledge_bases")) {
        counts.knowledge_bases = db_.writer->changes();
      }
      if (sql.starts_with("DELETE FROM files")) counts.files += db_.writer->changes();
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
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    auto stmt = db_.writer->prepare(
        "INSERT INTO replicas (id, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, r.id).bind(2, r.host).bind(3, r.pid).bind(4, r.started_at_ms);
    stmt->bind(5, r.seen_at_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("replica heartbeat");
    return success();
  }

  Result<void> remove(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "replica_remove");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    auto stmt = db_.writer->prepare("DELETE FROM replicas WHERE id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("remove replica");
    return success();
  }

  Result<std::vector<ReplicaInfo>> list() override {
    auto db = db_.readers.borrow();
    auto stmt =
        db->prepare("SELECT id, host, pid, started_at, seen_at FROM replicas ORDER BY started_at");
    if (!stmt) return std::move(stmt).error();
    std::vector<ReplicaInfo> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      out.push_back({stmt->column_text(0), stmt->column_text(1), stmt->column_int(2),
                     stmt->column_int(3), stmt->column_int(4)});
    }
    if (rc != SQLITE_DONE) return db->last_error("list replicas");
    return out;
  }

  Result<int64_t> interrupt_orphans(std::string_view self, int64_t stale_before_ms,
                                    int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "message_recover");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto stmt = db_.writer->prepare(
        "UPDATE messages SET status = 'partial', finish_reason = 'interrupted', completed_at = ?3 "
        "WHERE status = 'pending' AND (owner IS NULL OR (owner != ?1 AND owner NOT IN "
        "(SELECT id FROM replicas WHERE seen_at >= ?2)))");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, self).bind(2, stale_before_ms).bind(3, now_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("recover messages");
    const int64_t changed = db_.writer->changes();
    auto forget = db_.writer->prepare("DELETE FROM replicas WHERE seen_at < ?2 AND id != ?1");
    if (!forget) return std::move(forget).error();
    forget->bind(1, self).bind(2, stale_before_ms);
    if (forget->step() != SQLITE_DONE) return db_.writer->last_error("forget replicas");
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return changed;
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

}  // namespace parley::store::sqlite
