// PostgreSQL storage: sessions, messages, usage, stats and opening (the access tables are in
// access_tables.cpp).
#include "store/postgres/postgres_store.hpp"

#include <algorithm>
#include <array>

#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/postgres/database.hpp"
#include "store/postgres/migrations.hpp"

namespace parley::store::postgres {

std::string integer_array(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

std::string prefixed(const char* columns, const char* prefix) {
  std::string out = prefix;
  for (const char* c = columns; *c; ++c) {
    out += *c;
    if (*c == ' ' && c > columns && c[-1] == ',') out += prefix;
  }
  return out;
}

Session read_session(const Rows& rows, int row, int first) {
  Session s;
  s.id = rows.text(row, first);
  s.user_id = rows.text(row, first + 1);
  s.assistant = rows.text(row, first + 2);
  s.title = rows.optional_text(row, first + 3);
  s.metadata_json = rows.text(row, first + 4);
  s.created_at_ms = rows.integer(row, first + 5);
  s.updated_at_ms = rows.integer(row, first + 6);
  s.tenant_id = rows.text(row, first + 7);
  return s;
}

Message read_message(const Rows& rows, int row, int first) {
  Message m;
  m.id = rows.text(row, first);
  m.session_id = rows.text(row, first + 1);
  m.role = rows.text(row, first + 2);
  m.content = rows.text(row, first + 3);
  m.tool_calls_json = rows.text(row, first + 4);
  m.status = rows.text(row, first + 5);
  m.model = rows.text(row, first + 6);
  m.provider = rows.text(row, first + 7);
  m.input_tokens = rows.integer(row, first + 8);
  m.output_tokens = rows.integer(row, first + 9);
  m.cost_usd = rows.number(row, first + 10);
  m.latency_ms = rows.optional_integer(row, first + 11);
  m.ttft_ms = rows.optional_integer(row, first + 12);
  m.finish_reason = rows.text(row, first + 13);
  m.request_id = rows.text(row, first + 14);
  m.created_at_ms = rows.integer(row, first + 15);
  m.completed_at_ms = rows.optional_integer(row, first + 16);
  m.citations_json = rows.text(row, first + 17);
  m.memories_json = rows.text(row, first + 18);
  m.seq = rows.integer(row, first + 19);
  m.intent = rows.text(row, first + 20);
  if (!rows.is_null(row, first + 21)) m.intent_confidence = rows.number(row, first + 21);
  return m;
}

UsageRecord read_usage(const Rows& rows, int row, int first) {
  UsageRecord r;
  r.at_ms = rows.integer(row, first);
  r.tenant_id = rows.text(row, first + 1);
  r.user_id = rows.text(row, first + 2);
  r.key_id = rows.text(row, first + 3);
  r.session_id = rows.text(row, first + 4);
  r.source = rows.text(row, first + 5);
  r.provider = rows.text(row, first + 6);
  r.model = rows.text(row, first + 7);
  r.input_tokens = rows.integer(row, first + 8);
  r.output_tokens = rows.integer(row, first + 9);
  r.cost_usd = rows.number(row, first + 10);
  r.status = rows.text(row, first + 11);
  r.request_id = rows.text(row, first + 12);
  r.requests = rows.integer(row, first + 13);
  return r;
}

namespace {

// `variant`: 1 a tenant, 2 a user, 4 a title search; their parameters follow $1 (the cursor)
// and $2 (the limit) in that order.
const std::string& session_select(int variant) {
  static const std::string base =
      std::string("SELECT seq, ") + kSessionColumns + " FROM sessions WHERE seq < $1";
  static const std::string order = " ORDER BY seq DESC LIMIT $2";
  // One text per combination of filters, so each keeps its own index-friendly plan.
  static const std::array<std::string, 8> variants = [] {
    std::array<std::string, 8> out;
    for (int v = 0; v < 8; ++v) {
      std::string sql = base;
      int next = 3;
      if (v & 1) sql += " AND tenant_id = $" + std::to_string(next++);
      if (v & 2) sql += " AND user_id = $" + std::to_string(next++);
      if (v & 4) sql += " AND strpos(lower(title), lower($" + std::to_string(next++) + ")) > 0";
      out[v] = sql + order;
    }
    return out;
  }();
  return variants[variant];
}

Result<void> insert_usage(Connection& db, const UsageRecord& r) {
  auto inserted = db.query(
      "INSERT INTO usage_records (at, day, user_id, session_id, source, provider, model, "
      "input_tokens, output_tokens, cost_usd, status, request_id, requests, tenant_id, key_id) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
      Params()
          .integer(r.at_ms)
          .text(utc_day(r.at_ms))
          .text(r.user_id)
          .text_or_null(r.session_id)
          .text(r.source)
          .text(r.provider)
          .text(r.model)
          .integer(r.input_tokens)
          .integer(r.output_tokens)
          .number(r.cost_usd)
          .text(r.status)
          .text(r.request_id)
          .integer(r.requests)
          .text(r.tenant_id)
          .text(r.key_id));
  if (!inserted) return std::move(inserted).error();
  return success();
}

class PostgresStorage final : public Storage,
                              public SessionRepository,
                              public MessageRepository,
                              public UsageRepository {
 public:
  explicit PostgresStorage(const Options& options) : db_(options) {}
  ~PostgresStorage() override { close(); }

  SessionRepository& sessions() override { return *this; }
  MessageRepository& messages() override { return *this; }
  UsageRepository& usage() override { return *this; }
  ApiKeyRepository& api_keys() override { return *api_keys_; }
  IdempotencyRepository& idempotency() override { return *idempotency_; }
  ModerationLogRepository& moderation_log() override { return *moderation_log_; }
  UserDataRepository& user_data() override { return *user_data_; }
  ReplicaRepository& replicas() override { return *replicas_; }
  JobRepository& jobs() override { return *jobs_; }
  KnowledgeRepository& knowledge() override { return *knowledge_; }
  MemoryRepository& memories() override { return *memories_; }
  SummaryRepository& summaries() override { return *summaries_; }
  TableAccess& table_access() override { return *table_access_; }

  Result<void> ping() override {
    QueryTimer timer(db_.options.metrics, "ping");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("SELECT 1");
    if (!rows) return std::move(rows).error();
    return success();
  }

  Result<StorageStats> stats(bool integrity_check) override {
    QueryTimer timer(db_.options.metrics, "stats");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    StorageStats s;
    s.backend = "postgresql";
    s.location = describe(db_.options.url);
    s.read_connections = db_.pool.size();
    auto size = db.query("SELECT pg_database_size(current_database())");
    if (!size) return std::move(size).error();
    s.size_bytes = size->integer(0, 0);
    auto version = current_schema_version(db);
    if (!version) return std::move(version).error();
    s.schema_version = *version;
    if (integrity_check) {
      // PostgreSQL checks pages as it reads them; the closest cheap check is that every table
      // of the schema (store/tables.hpp) is there.
      std::string missing;
      for (const Table& t : tables()) {
        auto found = db.query("SELECT to_regclass($1) IS NOT NULL", Params().text(t.name));
        if (!found) return std::move(found).error();
        if (!found->boolean(0, 0)) missing += (missing.empty() ? "" : ", ") + std::string(t.name);
      }
      s.integrity_check = missing.empty() ? "ok" : "tables missing: " + missing;
    }
    return s;
  }

  void close() override { db_.pool.close(); }

  // --- SessionRepository ---------------------------------------------------------------

  Result<Session> create(const NewSession& in) override {
    QueryTimer timer(db_.options.metrics, "session_create");
    Session s;
    s.id = new_resource_id("sess");
    s.tenant_id = in.tenant_id;
    s.user_id = in.user_id;
    s.assistant = in.assistant;
    s.title = in.title;
    s.metadata_json = in.metadata_json;
    s.created_at_ms = s.updated_at_ms = db_.now_ms();
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto inserted = (**lease).query(
        "INSERT INTO sessions (id, user_id, assistant, title, metadata, "
        "created_at, updated_at, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Params()
            .text(s.id)
            .text(s.user_id)
            .text(s.assistant)
            .optional_text(s.title)
            .text(s.metadata_json)
            .integer(s.created_at_ms)
            .integer(s.updated_at_ms)
            .text(s.tenant_id));
    if (!inserted) return std::move(inserted).error();
    return s;
  }

  Result<Session> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "session_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE id = $1";
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return session_not_found(id);
    return read_session(*rows, 0);
  }

  Result<SessionPage> list(const SessionListQuery& q) override {
    QueryTimer timer(db_.options.metrics, "session_list");
    auto cursor = parse_cursor(q.cursor);
    if (cursor.error) return *cursor.error;
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Params params;
    params.integer(cursor.after.value_or(INT64_MAX)).integer(q.limit + 1);
    if (q.tenant_id) params.text(*q.tenant_id);
    if (q.user_id) params.text(*q.user_id);
    if (q.title_contains) params.text(*q.title_contains);
    auto rows = (**lease).query(
        session_select((q.tenant_id ? 1 : 0) + (q.user_id ? 2 : 0) + (q.title_contains ? 4 : 0)),
        params);
    if (!rows) return std::move(rows).error();
    SessionPage page;
    const int n = std::min(rows->size(), q.limit);
    for (int i = 0; i < n; ++i) page.items.push_back(read_session(*rows, i, 1));
    if (rows->size() > q.limit && n > 0) page.next_cursor = rows->text(n - 1, 0);
    return page;
  }

  Result<Session> update(std::string_view id, const SessionPatch& patch) override {
    QueryTimer timer(db_.options.metrics, "session_update");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Params params;
    params.text(id).boolean(patch.title.has_value());
    if (patch.title) {
      params.optional_text(*patch.title);
    } else {
      params.null();
    }
    params.optional_text(patch.metadata_json).integer(db_.now_ms());
    static const std::string sql =
        std::string(
            "UPDATE sessions SET title = CASE WHEN $2::boolean THEN $3::text ELSE title END, "
            "metadata = COALESCE($4::text, metadata), updated_at = $5 WHERE id = $1 RETURNING ") +
        kSessionColumns;
    auto rows = (**lease).query(sql, params);
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return session_not_found(id);
    return read_session(*rows, 0);
  }

  Result<void> remove(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "session_delete");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("DELETE FROM sessions WHERE id = $1", Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 0) return session_not_found(id);
    return success();
  }

  // --- MessageRepository ---------------------------------------------------------------

  // A regenerated turn, inside begin_turn's transaction (which holds the session's row): the
  // user message it answers again (the session's last, with no reply still being written).
  // Its replies are marked "replaced" when the new one is finished (finish_turn).
  static Result<Message> replace_replies(Connection& db, const NewTurn& in) {
    static const std::string read = std::string("SELECT ") + kMessageReadColumns +
                                    " FROM messages WHERE id = $1 AND session_id = $2 AND "
                                    "role = 'user'";
    auto rows = db.query(read, Params().text(in.regenerate_of).text(in.session_id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return regenerate_not_found(in.regenerate_of);
    Message user = read_message(*rows, 0);
    auto later = db.query(
        "SELECT role = 'user' FROM messages WHERE session_id = $1 AND seq > $2 AND "
        "(role = 'user' OR status = 'pending') LIMIT 1",
        Params().text(in.session_id).integer(user.seq));
    if (!later) return std::move(later).error();
    if (!later->empty()) return regenerate_conflict(later->text(0, 0) == "t");
    return user;
  }

  Result<StartedTurn> begin_turn(const NewTurn& in) override {
    QueryTimer timer(db_.options.metrics, "turn_begin");
    const int64_t now = db_.now_ms();
    StartedTurn turn;
    turn.user.id = new_resource_id("msg");
    turn.user.session_id = in.session_id;
    turn.user.role = "user";
    turn.user.content = in.user_content;
    turn.user.status = "complete";
    turn.user.request_id = in.request_id;
    turn.user.created_at_ms = now;
    turn.user.completed_at_ms = now;
    turn.assistant.id = new_resource_id("msg");
    turn.assistant.session_id = in.session_id;
    turn.assistant.role = "assistant";
    turn.assistant.status = "pending";
    turn.assistant.model = in.model;
    turn.assistant.request_id = in.request_id;
    turn.assistant.created_at_ms = now + 1;  // sorts after the user's row by time too
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    static const std::string touch =
        std::string("UPDATE sessions SET updated_at = $2 WHERE id = $1 RETURNING ") +
        kSessionColumns;
    auto session = db.query(touch, Params().text(in.session_id).integer(now));
    if (!session) return std::move(session).error();
    if (session->empty()) return session_not_found(in.session_id);
    turn.session = read_session(*session, 0);
    if (!in.regenerate_of.empty()) {
      auto replaced = replace_replies(db, in);
      if (!replaced) return std::move(replaced).error();
      turn.user = std::move(*replaced);
      static const std::string insert_reply =
          std::string("INSERT INTO messages (") + kMessageColumns +
          ", owner) VALUES ($1, $2, $3, '', NULL, $4, $5, NULL, 0, 0, 0, NULL, NULL, NULL, $6, $7, "
          "NULL, $8)";
      auto inserted = db.query(insert_reply, Params()
                                                 .text(turn.assistant.id)
                                                 .text(in.session_id)
                                                 .text(turn.assistant.role)
                                                 .text(turn.assistant.status)
                                                 .text(turn.assistant.model)
                                                 .text(in.request_id)
                                                 .integer(turn.assistant.created_at_ms)
                                                 .text_or_null(in.owner));
      if (!inserted) return std::move(inserted).error();
      if (auto r = tx.commit(); !r) return std::move(r).error();
      return turn;
    }
    static const std::string insert =
        std::string("INSERT INTO messages (") + kMessageColumns +
        ", owner) VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL, 0, 0, 0, NULL, NULL, NULL, $7, $8, "
        "$9, $15), ($10, $2, $11, '', NULL, $12, $13, NULL, 0, 0, 0, NULL, NULL, NULL, $7, $14, "
        "NULL, $15)";
    auto inserted = db.query(insert, Params()
                                         .text(turn.user.id)
                                         .text(in.session_id)
                                         .text(turn.user.role)
                                         .text(turn.user.content)
                                         .text(turn.user.status)
                                         .text(turn.user.model)
                                         .text(in.request_id)
                                         .integer(turn.user.created_at_ms)
                                         .optional_integer(turn.user.completed_at_ms)
                                         .text(turn.assistant.id)
                                         .text(turn.assistant.role)
                                         .text(turn.assistant.status)
                                         .text(turn.assistant.model)
                                         .integer(turn.assistant.created_at_ms)
                                         .text_or_null(in.owner));
    if (!inserted) return std::move(inserted).error();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return turn;
  }

  Result<Message> finish_turn(const FinishedTurn& in) override {
    QueryTimer timer(db_.options.metrics, "turn_finish");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    static const std::string update =
        std::string(
            "UPDATE messages SET content = $2, tool_calls = $3, status = $4, model = $5, "
            "provider = $6, input_tokens = $7, output_tokens = $8, cost_usd = $9, "
            "latency_ms = $10, ttft_ms = $11, finish_reason = $12, completed_at = $13, "
            "citations = $14, memories = $15 WHERE id = $1 RETURNING ") +
        kMessageReadColumns;
    auto rows = db.query(update, Params()
                                     .text(in.assistant_message_id)
                                     .text(in.content)
                                     .text_or_null(in.tool_calls_json)
                                     .text(in.status)
                                     .text(in.model)
                                     .text(in.provider)
                                     .integer(in.input_tokens)
                                     .integer(in.output_tokens)
                                     .number(in.cost_usd)
                                     .optional_integer(in.latency_ms)
                                     .optional_integer(in.ttft_ms)
                                     .text(in.finish_reason)
                                     .integer(db_.now_ms())
                                     .text_or_null(in.citations_json)
                                     .text_or_null(in.memories_json));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) {
      // The session was deleted while its reply was being generated.
      return Error::not_found("no message with id '" + in.assistant_message_id + "'",
                              "message_not_found");
    }
    Message m = read_message(*rows, 0);
    if (in.regenerated) {
      // The earlier replies to the message this one answered again.
      auto replaced = db.query(
          "UPDATE messages SET status = 'replaced' WHERE session_id = $1 AND role = 'assistant' "
          "AND seq < $2 AND seq > (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = "
          "$1 AND role = 'user' AND seq < $2)",
          Params().text(m.session_id).integer(m.seq));
      if (!replaced) return std::move(replaced).error();
    }
    if (in.usage) {
      if (auto r = insert_usage(db, *in.usage); !r) return std::move(r).error();
    }
    if (!in.memories_json.empty()) {
      // The memories the reply's prompt used were used now (their last_used_at), in the
      // reply's own transaction.
      auto used = db.query(
          "UPDATE memories SET last_used_at = $1 WHERE id IN (SELECT "
          "jsonb_array_elements($2::jsonb)->>'id')",
          Params().integer(db_.now_ms()).text(in.memories_json));
      if (!used) return std::move(used).error();
    }
    if (!in.intent.empty() && !in.user_message_id.empty()) {
      Params intent;
      intent.text(in.user_message_id).text(in.intent);
      if (in.intent_confidence) {
        intent.number(*in.intent_confidence);
      } else {
        intent.null();
      }
      auto set =
          db.query("UPDATE messages SET intent = $2, intent_confidence = $3 WHERE id = $1", intent);
      if (!set) return std::move(set).error();
    }
    for (const NewJob& job : in.follow_up_jobs) {
      if (auto r = insert_job(db, job, db_.now_ms()); !r) return std::move(r).error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return m;
  }

  Result<MessagePage> list(const MessageListQuery& q) override {
    QueryTimer timer(db_.options.metrics, "message_list");
    auto cursor = parse_cursor(q.cursor);
    if (cursor.error) return *cursor.error;
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    // One snapshot: a session that exists with no messages, and one that does not exist, are
    // different answers.
    Transaction tx(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx.begun()) return tx.begun().error();
    auto exists = db.query("SELECT 1 FROM sessions WHERE id = $1", Params().text(q.session_id));
    if (!exists) return std::move(exists).error();
    if (exists->empty()) return session_not_found(q.session_id);
    static const std::string oldest = std::string("SELECT seq, ") + kMessageReadColumns +
                                      " FROM messages WHERE session_id = $1 AND seq > $2 "
                                      "ORDER BY seq ASC LIMIT $3";
    static const std::string newest = std::string("SELECT seq, ") + kMessageReadColumns +
                                      " FROM messages WHERE session_id = $1 AND seq < $2 "
                                      "ORDER BY seq DESC LIMIT $3";
    auto rows = db.query(q.newest_first ? newest : oldest,
                         Params()
                             .text(q.session_id)
                             .integer(cursor.after.value_or(q.newest_first ? INT64_MAX : 0))
                             .integer(q.limit + 1));
    if (!rows) return std::move(rows).error();
    (void)tx.commit();
    MessagePage page;
    const int n = std::min(rows->size(), q.limit);
    for (int i = 0; i < n; ++i) page.items.push_back(read_message(*rows, i, 1));
    if (rows->size() > q.limit && n > 0) page.next_cursor = rows->text(n - 1, 0);
    return page;
  }

  Result<std::vector<Message>> history(std::string_view session_id, int limit) override {
    QueryTimer timer(db_.options.metrics, "message_history");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kMessageReadColumns +
        " FROM messages WHERE session_id = $1 AND status NOT IN ('pending', 'replaced') "
        "AND (content != '' OR tool_calls IS NOT NULL) ORDER BY seq DESC LIMIT $2";
    auto rows = (**lease).query(sql, Params().text(session_id).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<Message> out;
    for (int i = rows->size() - 1; i >= 0; --i) out.push_back(read_message(*rows, i));
    return out;
  }
  Result<std::vector<Message>> by_ids(const std::vector<std::string>& ids) override {
    QueryTimer timer(db_.options.metrics, "message_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kMessageReadColumns +
        " FROM messages WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))";
    auto rows = (**lease).query(sql, Params().text(json_strings(ids)));
    if (!rows) return std::move(rows).error();
    std::vector<Message> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_message(*rows, i));
    return out;
  }

  // --- UsageRepository -----------------------------------------------------------------

  Result<void> record(const std::vector<UsageRecord>& records) override {
    if (records.empty()) return success();
    QueryTimer timer(db_.options.metrics, "usage_record");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    for (const auto& r : records) {
      if (auto w = insert_usage(db, r); !w) return w;
    }
    return tx.commit();
  }

  Result<std::vector<UsageRow>> aggregate(const UsageQuery& q) override {
    QueryTimer timer(db_.options.metrics, "usage_aggregate");
    auto grouped = usage_group_columns(q.group_by);
    if (!grouped) return std::move(grouped).error();
    const auto& groups = *grouped;
    std::string select = "SELECT ";
    std::string group_clause;
    for (const auto& [name, column] : groups) {
      select += column + ", ";
      group_clause += (group_clause.empty() ? " GROUP BY " : ", ") + column;
    }
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    // Whole days already rolled up are read from their daily totals, the rest from the
    // records (roll-ups never remove records, so a watermark read before a roll-up commits
    // only means reading more records).
    auto state = (**lease).query(
        "SELECT COALESCE((SELECT rolled_until FROM usage_rollup WHERE name = 'usage_daily'), -1)");
    if (!state) return std::move(state).error();
    const RolledUpSpan span = rolled_up_span(q.from_ms, q.to_ms, state->integer(0, 0));
    Params params;
    params.integer(q.from_ms).integer(q.to_ms);
    if (!span.empty()) {
      params.integer(span.from_ms).integer(span.until_ms).text(span.from_day).text(span.until_day);
    }
    std::string filters;
    if (q.tenant_id) {
      params.text(*q.tenant_id);
      filters += " AND tenant_id = $" + std::to_string(params.size());
    }
    if (q.user_id) {
      params.text(*q.user_id);
      filters += " AND user_id = $" + std::to_string(params.size());
    }
    select +=
        "COALESCE(SUM(requests), 0), COALESCE(SUM(input_tokens), 0), "
        "COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0) FROM ";
    select += usage_report_source(span, filters, {"$1", "$2", "$3", "$4", "$5", "$6"});
    select += group_clause;
    // Byte order, as SQLite's BINARY collation sorts, whatever the database's locale.
    if (!group_clause.empty()) {
      select += " ORDER BY ";
      for (size_t i = 0; i < groups.size(); ++i) {
        select += (i ? ", " : "") + groups[i].second + " COLLATE \"C\"";
      }
    }
    auto rows = (**lease).query(select, params);
    if (!rows) return std::move(rows).error();
    std::vector<UsageRow> out;
    const int n = static_cast<int>(groups.size());
    for (int i = 0; i < rows->size(); ++i) {
      UsageRow row;
      for (int g = 0; g < n; ++g)
        row.keys.emplace_back(groups[static_cast<size_t>(g)].first, rows->text(i, g));
      row.requests = rows->integer(i, n);
      row.input_tokens = rows->integer(i, n + 1);
      row.output_tokens = rows->integer(i, n + 2);
      row.cost_usd = rows->number(i, n + 3);
      out.push_back(std::move(row));
    }
    return out;
  }

  Result<double> spent(std::string_view tenant_id, std::string_view user_id,
                       int64_t from_ms) override {
    QueryTimer timer(db_.options.metrics, "usage_spent");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_records "
        "WHERE tenant_id = $1 AND user_id = $2 AND at >= $3",
        Params().text(tenant_id).text(user_id).integer(from_ms));
    if (!rows) return std::move(rows).error();
    return rows->number(0, 0);
  }

  Result<double> spent_by_key(std::string_view key_id, int64_t from_ms) override {
    QueryTimer timer(db_.options.metrics, "usage_spent");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_records WHERE key_id = $1 AND at >= $2",
        Params().text(key_id).integer(from_ms));
    if (!rows) return std::move(rows).error();
    return rows->number(0, 0);
  }

  Result<UsageRollup> roll_up(int64_t until_ms) override {
    QueryTimer timer(db_.options.metrics, "usage_rollup");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    // Concurrent roll-ups (several workers), and erasures, take turns.
    if (auto locked = db.query(kUsageDailyLock); !locked) return std::move(locked).error();
    auto made = db.query(
        "INSERT INTO usage_rollup (name, rolled_until) VALUES ('usage_daily', -1) "
        "ON CONFLICT (name) DO NOTHING");
    if (!made) return std::move(made).error();
    auto state = db.query("SELECT rolled_until FROM usage_rollup WHERE name = 'usage_daily'");
    if (!state) return std::move(state).error();
    int64_t from = state->integer(0, 0);
    if (from < 0) {
      // The first starts at the day of the oldest record.
      auto oldest =
          db.query("SELECT COALESCE(MIN(at), $1) FROM usage_records", Params().integer(until_ms));
      if (!oldest) return std::move(oldest).error();
      from = oldest->integer(0, 0);
    }
    UsageRollup out;
    out.from_ms = utc_midnight(from);
    out.until_ms = std::max(out.from_ms, utc_midnight(until_ms));
    if (out.until_ms > out.from_ms) {
      auto fold = db.query(
          "INSERT INTO usage_daily (day, tenant_id, user_id, key_id, source, provider, model, "
          "requests, input_tokens, output_tokens, cost_usd) SELECT day, tenant_id, user_id, "
          "key_id, source, provider, model, SUM(requests), SUM(input_tokens), "
          "SUM(output_tokens), SUM(cost_usd) FROM usage_records WHERE at >= $1 AND at < $2 "
          "GROUP BY day, tenant_id, user_id, key_id, source, provider, model "
          "ON CONFLICT (day, tenant_id, user_id, key_id, source, provider, model) DO UPDATE SET "
          "requests = excluded.requests, input_tokens = excluded.input_tokens, output_tokens = "
          "excluded.output_tokens, cost_usd = excluded.cost_usd",
          Params().integer(out.from_ms).integer(out.until_ms));
      if (!fold) return std::move(fold).error();
      out.rows = fold->affected();
    }
    auto mark = db.query("UPDATE usage_rollup SET rolled_until = $1 WHERE name = 'usage_daily'",
                         Params().integer(out.until_ms));
    if (!mark) return std::move(mark).error();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return out;
  }

 private:
  Database db_;
  std::unique_ptr<ApiKeyRepository> api_keys_ = make_api_key_table(db_);
  std::unique_ptr<IdempotencyRepository> idempotency_ = make_idempotency_table(db_);
  std::unique_ptr<ModerationLogRepository> moderation_log_ = make_moderation_log_table(db_);
  std::unique_ptr<UserDataRepository> user_data_ = make_user_data_table(db_);
  std::unique_ptr<ReplicaRepository> replicas_ = make_replica_table(db_);
  std::unique_ptr<JobRepository> jobs_ = make_job_table(db_);
  std::unique_ptr<KnowledgeRepository> knowledge_ = make_knowledge_table(db_);
  std::unique_ptr<MemoryRepository> memories_ = make_memory_table(db_);
  std::unique_ptr<SummaryRepository> summaries_ = make_summary_table(db_);
  std::unique_ptr<TableAccess> table_access_ = make_table_access(db_);
};

}  // namespace

Result<MigrationSummary> migrate_database(const Options& options) {
  auto conn = Connection::open(options.url, options.connect);
  if (!conn) return std::move(conn).error();
  auto report = migrate(**conn, to_unix_ms(options.clock->now()));
  if (!report) return std::move(report).error();
  return MigrationSummary{report->from_version, report->to_version, report->applied};
}

Result<std::unique_ptr<Storage>> open(const Options& options) {
  auto store = std::make_unique<PostgresStorage>(options);
  // A first connection proves the server answers (fail fast, naming it) and migrates; the
  // pool opens its own as calls need them.
  {
    auto conn = Connection::open(options.url, options.connect);
    if (!conn) return std::move(conn).error();
    if (options.migrate) {
      auto report = migrate(**conn, to_unix_ms(options.clock->now()));
      if (!report) return std::move(report).error();
    } else {
      auto version = current_schema_version(**conn);
      if (!version) return std::move(version).error();
      if (*version != latest_schema_version()) {
        return Error::unavailable(
            "database schema is at version " + std::to_string(*version) + ", this build needs " +
                std::to_string(latest_schema_version()) + "; run `parley migrate`",
            "schema_mismatch");
      }
    }
  }
  return std::unique_ptr<Storage>(std::move(store));
}

}  // namespace parley::store::postgres
