// SQLite storage: connection pools, the session repository, stats, and clean close.
#include "store/sqlite/sqlite_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/ids.hpp"
#include "obs/metrics.hpp"
#include "store/common.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/database.hpp"
#include "store/sqlite/migrations.hpp"

namespace parley::store::sqlite {

Session read_session(const Statement& row, int first) {
  Session s;
  s.id = row.column_text(first);
  s.user_id = row.column_text(first + 1);
  s.assistant = row.column_text(first + 2);
  s.title = row.column_optional_text(first + 3);
  s.metadata_json = row.column_text(first + 4);
  s.created_at_ms = row.column_int(first + 5);
  s.updated_at_ms = row.column_int(first + 6);
  s.tenant_id = row.column_text(first + 7);
  return s;
}

std::string json_integers(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "]";
}

Message read_message(const Statement& row, int first) {
  Message m;
  m.id = row.column_text(first);
  m.session_id = row.column_text(first + 1);
  m.role = row.column_text(first + 2);
  m.content = row.column_text(first + 3);
  m.tool_calls_json = row.column_text(first + 4);
  m.status = row.column_text(first + 5);
  m.model = row.column_text(first + 6);
  m.provider = row.column_text(first + 7);
  m.input_tokens = row.column_int(first + 8);
  m.output_tokens = row.column_int(first + 9);
  m.cost_usd = row.column_double(first + 10);
  m.latency_ms = row.column_optional_int(first + 11);
  m.ttft_ms = row.column_optional_int(first + 12);
  m.finish_reason = row.column_text(first + 13);
  m.request_id = row.column_text(first + 14);
  m.created_at_ms = row.column_int(first + 15);
  m.completed_at_ms = row.column_optional_int(first + 16);
  m.citations_json = row.column_text(first + 17);
  m.memories_json = row.column_text(first + 18);
  m.seq = row.column_int(first + 19);
  m.intent = row.column_text(first + 20);
  if (!row.column_is_null(first + 21)) m.intent_confidence = row.column_double(first + 21);
  return m;
}

namespace {

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

std::optional<int64_t> parse_cursor(const std::optional<std::string>& cursor) {
  if (!cursor) return std::nullopt;
  try {
    size_t used = 0;
    const int64_t value = std::stoll(*cursor, &used);
    if (used != cursor->size() || value <= 0) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

class SqliteStorage final : public Storage,
                            public SessionRepository,
                            public MessageRepository,
                            public UsageRepository {
 public:
  SqliteStorage(Options options, std::unique_ptr<Connection> writer) {
    db_.options = std::move(options);
    db_.writer = std::move(writer);
  }

  ~SqliteStorage() override { close(); }

  ReaderPool& readers() { return db_.readers; }

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
    auto db = db_.readers.borrow();
    auto stmt = db->prepare("SELECT 1");
    if (!stmt) return std::move(stmt).error();
    if (stmt->step() != SQLITE_ROW) return db->last_error("ping");
    return success();
  }

  Result<StorageStats> stats(bool integrity_check) override {
    QueryTimer timer(db_.options.metrics, "stats");
    StorageStats s;
    s.backend = "sqlite";
    s.location = db_.options.path;
    s.size_bytes = file_size(db_.options.path);
    s.wal_size_bytes = file_size(db_.options.path + "-wal");
    s.read_connections = db_.readers.size();
    auto db = db_.readers.borrow();
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
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return;
    db_.readers.clear();
    // Fold the WAL back into the main file so the database is one self-contained file.
    (void)db_.writer->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db_.writer.reset();
  }

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
    s.created_at_ms = s.updated_at_ms = to_unix_ms(db_.options.clock->now());
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto stmt = db_.writer->prepare(
        "INSERT INTO sessions (id, user_id, assistant, title, metadata, created_at, updated_at, "
        "tenant_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, s.id).bind(2, s.user_id).bind(3, s.assistant).bind_optional(4, s.title);
    stmt->bind(5, s.metadata_json).bind(6, s.created_at_ms).bind(7, s.updated_at_ms);
    stmt->bind(8, s.tenant_id);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("create session");
    // With synchronous=FULL the WAL is fsynced by this commit: durable when we return.
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return s;
  }

  Result<Session> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "session_get");
    auto db = db_.readers.borrow();
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
    QueryTimer timer(db_.options.metrics, "session_list");
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
    auto db = db_.readers.borrow();
    // One statement per combination of filters: prepare() caches by the text's address.
    static const std::string base =
        std::string("SELECT seq, ") + kSessionColumns + " FROM sessions WHERE seq < ?1";
    static const std::string order = " ORDER BY seq DESC LIMIT ?4";
    // SQLite's lower() folds ASCII only; a title search is a convenience, not an index.
    static const std::string titled = " AND instr(lower(title), lower(?5)) > 0";
    static const std::string variants[8] = {
        base + order,
        base + " AND tenant_id = ?2" + order,
        base + " AND user_id = ?3" + order,
        base + " AND tenant_id = ?2 AND user_id = ?3" + order,
        base + titled + order,
        base + " AND tenant_id = ?2" + titled + order,
        base + " AND user_id = ?3" + titled + order,
        base + " AND tenant_id = ?2 AND user_id = ?3" + titled + order};
    const int variant = (q.tenant_id ? 1 : 0) + (q.user_id ? 2 : 0) + (q.title_contains ? 4 : 0);
    auto stmt = db->prepare(variants[variant].c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, before);
    if (q.tenant_id) stmt->bind(2, *q.tenant_id);
    if (q.user_id) stmt->bind(3, *q.user_id);
    if (q.title_contains) stmt->bind(5, *q.title_contains);
    stmt->bind(4, static_cast<int64_t>(q.limit) + 1);
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
    QueryTimer timer(db_.options.metrics, "session_update");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    // COALESCE keeps a column when its parameter is NULL; ?2 says whether to touch the title
    // at all, since NULL is also a legal title (cleared).
    auto stmt = db_.writer->prepare(
        "UPDATE sessions SET "
        "  title = CASE WHEN ?2 THEN ?3 ELSE title END, "
        "  metadata = COALESCE(?4, metadata), "
        "  updated_at = ?5 "
        "WHERE id = ?1 "
        "RETURNING id, user_id, assistant, title, metadata, created_at, updated_at, tenant_id");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, static_cast<int64_t>(patch.title.has_value()));
    if (patch.title) {
      stmt->bind_optional(3, *patch.title);
    } else {
      stmt->bind_null(3);
    }
    stmt->bind_optional(4, patch.metadata_json).bind(5, to_unix_ms(db_.options.clock->now()));
    int rc = stmt->step();
    if (rc == SQLITE_ROW) {
      Session s = read_session(*stmt);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("update session");
      if (auto r = tx.commit(); !r) return std::move(r).error();
      return s;
    }
    if (rc == SQLITE_DONE) return not_found(id);
    return db_.writer->last_error("update session");
  }

  Result<void> remove(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "session_delete");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto stmt = db_.writer->prepare("DELETE FROM sessions WHERE id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("delete session");
    if (db_.writer->changes() == 0) return not_found(id);
    return tx.commit();
  }

  // --- MessageRepository ---------------------------------------------------------------

  // A regenerated turn, inside begin_turn's transaction: the user message it answers again
  // (the session's last, with no reply still being written). Its replies are marked
  // "replaced" when the new one is finished (finish_turn).
  Result<Message> replace_replies(const NewTurn& in) {
    static const std::string read = std::string("SELECT ") + kMessageReadColumns +
                                    " FROM messages WHERE id = ?1 AND session_id = ?2 AND "
                                    "role = 'user'";
    auto stmt = db_.writer->prepare(read.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, in.regenerate_of).bind(2, in.session_id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return regenerate_not_found(in.regenerate_of);
    if (rc != SQLITE_ROW) return db_.writer->last_error("regenerate");
    Message user = read_message(*stmt);
    auto later = db_.writer->prepare(
        "SELECT role = 'user', status = 'pending' FROM messages WHERE session_id = ?1 AND "
        "seq > ?2 AND (role = 'user' OR status = 'pending') LIMIT 1");
    if (!later) return std::move(later).error();
    later->bind(1, in.session_id).bind(2, user.seq);
    const int found = later->step();
    if (found == SQLITE_ROW) {
      return regenerate_conflict(later->column_int(0) != 0);
    }
    if (found != SQLITE_DONE) return db_.writer->last_error("regenerate");
    return user;
  }

  Result<StartedTurn> begin_turn(const NewTurn& in) override {
    QueryTimer timer(db_.options.metrics, "turn_begin");
    const int64_t now = to_unix_ms(db_.options.clock->now());
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
    // One millisecond later, so the two rows also sort by time as they do by sequence.
    turn.assistant.created_at_ms = now + 1;
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto touch = db_.writer->prepare(
        "UPDATE sessions SET updated_at = ?2 WHERE id = ?1 "
        "RETURNING id, user_id, assistant, title, metadata, created_at, updated_at, tenant_id");
    if (!touch) return std::move(touch).error();
    touch->bind(1, in.session_id).bind(2, now);
    int rc = touch->step();
    if (rc == SQLITE_DONE) {
      return Error::not_found("no session with id '" + in.session_id + "'", "session_not_found");
    }
    if (rc != SQLITE_ROW) return db_.writer->last_error("begin turn");
    turn.session = read_session(*touch);
    if (touch->step() != SQLITE_DONE) return db_.writer->last_error("begin turn");
    if (!in.regenerate_of.empty()) {
      auto replaced = replace_replies(in);
      if (!replaced) return std::move(replaced).error();
      turn.user = std::move(*replaced);
    }
    static const std::string insert = std::string("INSERT INTO messages (") + kMessageColumns +
                                      ", owner) VALUES (?, ?, ?, ?, NULL, ?, ?, NULL, 0, 0, 0, "
                                      "NULL, NULL, NULL, ?, ?, ?, ?)";
    for (const Message* m : {&turn.user, &turn.assistant}) {
      if (m == &turn.user && !in.regenerate_of.empty()) continue;  // it is already stored
      auto stmt = db_.writer->prepare(insert.c_str());
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, m->id).bind(2, m->session_id).bind(3, m->role).bind(4, m->content);
      stmt->bind(5, m->status).bind(6, m->model).bind(7, m->request_id).bind(8, m->created_at_ms);
      stmt->bind_optional_int(9, m->completed_at_ms);
      if (in.owner.empty()) {
        stmt->bind_null(10);
      } else {
        stmt->bind(10, in.owner);
      }
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("begin turn");
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return turn;
  }

  Result<Message> finish_turn(const FinishedTurn& in) override {
    QueryTimer timer(db_.options.metrics, "turn_finish");
    const int64_t now = to_unix_ms(db_.options.clock->now());
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    static const std::string update =
        std::string(
            "UPDATE messages SET content = ?2, tool_calls = ?3, status = ?4, model = ?5, "
            "provider = ?6, input_tokens = ?7, output_tokens = ?8, cost_usd = ?9, latency_ms = "
            "?10, "
            "ttft_ms = ?11, finish_reason = ?12, completed_at = ?13, citations = ?14, memories = "
            "?15 WHERE id = ?1 RETURNING ") +
        kMessageReadColumns;
    auto stmt = db_.writer->prepare(update.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, in.assistant_message_id).bind(2, in.content);
    if (in.tool_calls_json.empty()) {
      stmt->bind_null(3);
    } else {
      stmt->bind(3, in.tool_calls_json);
    }
    stmt->bind(4, in.status).bind(5, in.model).bind(6, in.provider).bind(7, in.input_tokens);
    stmt->bind(8, in.output_tokens)
        .bind_double(9, in.cost_usd)
        .bind_optional_int(10, in.latency_ms);
    stmt->bind_optional_int(11, in.ttft_ms).bind(12, in.finish_reason).bind(13, now);
    if (in.citations_json.empty()) {
      stmt->bind_null(14);
    } else {
      stmt->bind(14, in.citations_json);
    }
    if (in.memories_json.empty()) {
      stmt->bind_null(15);
    } else {
      stmt->bind(15, in.memories_json);
    }
    int rc = stmt->step();
    if (rc == SQLITE_DONE) {
      // The session was deleted while its reply was being generated.
      return Error::not_found("no message with id '" + in.assistant_message_id + "'",
                              "message_not_found");
    }
    if (rc != SQLITE_ROW) return db_.writer->last_error("finish turn");
    Message m = read_message(*stmt);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("finish turn");
    if (in.regenerated) {
      // The earlier replies to the message this one answered again.
      auto replaced = db_.writer->prepare(
          "UPDATE messages SET status = 'replaced' WHERE session_id = ?1 AND role = 'assistant' "
          "AND seq < ?2 AND seq > (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = "
          "?1 AND role = 'user' AND seq < ?2)");
      if (!replaced) return std::move(replaced).error();
      replaced->bind(1, m.session_id).bind(2, m.seq);
      if (replaced->step() != SQLITE_DONE) return db_.writer->last_error("finish turn");
    }
    if (in.usage) {
      if (auto r = insert_usage(*in.usage); !r) return std::move(r).error();
    }
    if (!in.memories_json.empty()) {
      // The memories the reply's prompt used were used now (their last_used_at), in the
      // reply's own transaction.
      auto used = db_.writer->prepare(
          "UPDATE memories SET last_used_at = ?1 WHERE id IN (SELECT json_extract(value, '$.id') "
          "FROM json_each(?2))");
      if (!used) return std::move(used).error();
      used->bind(1, now).bind(2, in.memories_json);
      if (used->step() != SQLITE_DONE) return db_.writer->last_error("finish turn");
    }
    if (!in.intent.empty() && !in.user_message_id.empty()) {
      auto intent = db_.writer->prepare(
          "UPDATE messages SET intent = ?2, intent_confidence = ?3 WHERE id = ?1");
      if (!intent) return std::move(intent).error();
      intent->bind(1, in.user_message_id).bind(2, in.intent);
      if (in.intent_confidence) {
        intent->bind_double(3, *in.intent_confidence);
      } else {
        intent->bind_null(3);
      }
      if (intent->step() != SQLITE_DONE) return db_.writer->last_error("finish turn");
    }
    for (const NewJob& job : in.follow_up_jobs) {
      if (auto r = insert_job(*db_.writer, job, now); !r) return std::move(r).error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return m;
  }

  Result<MessagePage> list(const MessageListQuery& q) override {
    QueryTimer timer(db_.options.metrics, "message_list");
    auto cursor = parse_cursor(q.cursor);
    if (q.cursor && !cursor) {
      return Error::invalid("cursor is not one this server issued", "invalid_cursor", "cursor");
    }
    auto db = db_.readers.borrow();
    // The session must exist (an empty list and a missing session are different answers).
    auto exists = db->prepare("SELECT 1 FROM sessions WHERE id = ?");
    if (!exists) return std::move(exists).error();
    exists->bind(1, q.session_id);
    int rc = exists->step();
    if (rc == SQLITE_DONE) {
      return Error::not_found("no session with id '" + q.session_id + "'", "session_not_found");
    }
    if (rc != SQLITE_ROW) return db->last_error("list messages");
    static const std::string oldest = std::string("SELECT seq, ") + kMessageReadColumns +
                                      " FROM messages WHERE session_id = ? AND seq > ? "
                                      "ORDER BY seq ASC LIMIT ?";
    static const std::string newest = std::string("SELECT seq, ") + kMessageReadColumns +
                                      " FROM messages WHERE session_id = ? AND seq < ? "
                                      "ORDER BY seq DESC LIMIT ?";
    auto stmt = db->prepare(q.newest_first ? newest.c_str() : oldest.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, q.session_id);
    stmt->bind(2, cursor.value_or(q.newest_first ? INT64_MAX : 0));
    stmt->bind(3, static_cast<int64_t>(q.limit) + 1);
    MessagePage page;
    int64_t last_seq = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      if (static_cast<int>(page.items.size()) == q.limit) {
        page.next_cursor = std::to_string(last_seq);
        break;
      }
      last_seq = stmt->column_int(0);
      page.items.push_back(read_message(*stmt, 1));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db->last_error("list messages");
    return page;
  }

  Result<std::vector<Message>> history(std::string_view session_id, int limit) override {
    QueryTimer timer(db_.options.metrics, "message_history");
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kMessageReadColumns +
        " FROM messages WHERE session_id = ? AND status NOT IN ('pending', 'replaced') "
        "AND (content != '' OR tool_calls IS NOT NULL) ORDER BY seq DESC LIMIT ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, session_id).bind(2, static_cast<int64_t>(limit));
    std::vector<Message> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_message(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("message history");
    std::reverse(out.begin(), out.end());
    return out;
  }

  Result<std::vector<Message>> by_ids(const std::vector<std::string>& ids) override {
    QueryTimer timer(db_.options.metrics, "message_read");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kMessageReadColumns +
                                   " FROM messages WHERE id IN (SELECT value FROM json_each(?))";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, json_strings(ids));
    std::vector<Message> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_message(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("read messages");
    return out;
  }

  // --- UsageRepository -----------------------------------------------------------------

  Result<void> record(const std::vector<UsageRecord>& records) override {
    if (records.empty()) return success();
    QueryTimer timer(db_.options.metrics, "usage_record");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    for (const auto& r : records) {
      if (auto w = insert_usage(r); !w) return w;
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
    auto db = db_.readers.borrow();
    // Whole days already rolled up are read from their daily totals, the rest from the
    // records (roll-ups never remove records, so a watermark read before a roll-up commits
    // only means reading more records).
    int64_t rolled_until = -1;
    {
      auto state = db->prepare("SELECT rolled_until FROM usage_rollup WHERE name = 'usage_daily'");
      if (!state) return std::move(state).error();
      const int rc = state->step();
      if (rc == SQLITE_ROW)
        rolled_until = state->column_int(0);
      else if (rc != SQLITE_DONE)
        return db->last_error("aggregate usage");
    }
    const RolledUpSpan span = rolled_up_span(q.from_ms, q.to_ms, rolled_until);
    std::string filters;
    if (q.tenant_id) filters += " AND tenant_id = ?7";
    if (q.user_id) filters += " AND user_id = ?8";
    select +=
        "COALESCE(SUM(requests), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), "
        "0), COALESCE(SUM(cost_usd), 0) FROM ";
    select += usage_report_source(span, filters, {"?1", "?2", "?3", "?4", "?5", "?6"});
    select += group_clause;
    select += group_clause.empty() ? "" : " ORDER BY " + group_clause.substr(10);
    // Not cached: the text varies with the grouping (prepare() caches by address).
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db->raw(), select.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return db->last_error("aggregate usage");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(raw, sqlite3_finalize);
    Statement stmt(raw);
    stmt.bind(1, q.from_ms).bind(2, q.to_ms);
    if (!span.empty()) {
      stmt.bind(3, span.from_ms).bind(4, span.until_ms);
      stmt.bind(5, span.from_day).bind(6, span.until_day);
    }
    if (q.tenant_id) stmt.bind(7, *q.tenant_id);
    if (q.user_id) stmt.bind(8, *q.user_id);
    std::vector<UsageRow> rows;
    int rc;
    const int n = static_cast<int>(groups.size());
    while ((rc = stmt.step()) == SQLITE_ROW) {
      UsageRow row;
      for (int i = 0; i < n; ++i)
        row.keys.emplace_back(groups[static_cast<size_t>(i)].first, stmt.column_text(i));
      row.requests = stmt.column_int(n);
      row.input_tokens = stmt.column_int(n + 1);
      row.output_tokens = stmt.column_int(n + 2);
      row.cost_usd = stmt.column_double(n + 3);
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) return db->last_error("aggregate usage");
    return rows;
  }

  Result<double> spent(std::string_view tenant_id, std::string_view user_id,
                       int64_t from_ms) override {
    QueryTimer timer(db_.options.metrics, "usage_spent");
    auto db = db_.readers.borrow();
    auto stmt = db->prepare(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_records "
        "WHERE tenant_id = ? AND user_id = ? AND at >= ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, tenant_id).bind(2, user_id).bind(3, from_ms);
    if (stmt->step() != SQLITE_ROW) return db->last_error("usage spent");
    return stmt->column_double(0);
  }

  Result<double> spent_by_key(std::string_view key_id, int64_t from_ms) override {
    QueryTimer timer(db_.options.metrics, "usage_spent");
    auto db = db_.readers.borrow();
    auto stmt = db->prepare(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_records WHERE key_id = ? AND at >= ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, key_id).bind(2, from_ms);
    if (stmt->step() != SQLITE_ROW) return db->last_error("usage spent");
    return stmt->column_double(0);
  }

  Result<UsageRollup> roll_up(int64_t until_ms) override {
    QueryTimer timer(db_.options.metrics, "usage_rollup");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    Connection& db = *db_.writer;
    UsageRollup out;
    {
      // Where the last roll-up stopped; the first starts at the day of the oldest record.
      auto state = db.prepare(
          "SELECT COALESCE((SELECT rolled_until FROM usage_rollup WHERE name = 'usage_daily'), "
          "(SELECT MIN(at) FROM usage_records), ?1)");
      if (!state) return std::move(state).error();
      state->bind(1, until_ms);
      if (state->step() != SQLITE_ROW) return db.last_error("roll up usage");
      out.from_ms = utc_midnight(state->column_int(0));
    }
    out.until_ms = std::max(out.from_ms, utc_midnight(until_ms));
    if (out.until_ms > out.from_ms) {
      auto fold = db.prepare(
          "INSERT INTO usage_daily (day, tenant_id, user_id, key_id, source, provider, model, "
          "requests, input_tokens, output_tokens, cost_usd) SELECT day, tenant_id, user_id, "
          "key_id, source, provider, model, SUM(requests), SUM(input_tokens), "
          "SUM(output_tokens), SUM(cost_usd) FROM usage_records WHERE at >= ?1 AND at < ?2 "
          "GROUP BY day, tenant_id, user_id, key_id, source, provider, model "
          "ON CONFLICT (day, tenant_id, user_id, key_id, source, provider, model) DO UPDATE SET "
          "requests = excluded.requests, input_tokens = "
          "excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = "
          "excluded.cost_usd");
      if (!fold) return std::move(fold).error();
      fold->bind(1, out.from_ms).bind(2, out.until_ms);
      if (fold->step() != SQLITE_DONE) return db.last_error("roll up usage");
      out.rows = db.changes();
    }
    auto mark = db.prepare(
        "INSERT INTO usage_rollup (name, rolled_until) VALUES ('usage_daily', ?1) "
        "ON CONFLICT (name) DO UPDATE SET rolled_until = excluded.rolled_until");
    if (!mark) return std::move(mark).error();
    mark->bind(1, out.until_ms);
    if (mark->step() != SQLITE_DONE) return db.last_error("roll up usage");
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return out;
  }

 private:
  // Inside a write transaction, with db_.write_mutex held.
  Result<void> insert_usage(const UsageRecord& r) {
    auto stmt = db_.writer->prepare(
        "INSERT INTO usage_records (at, day, user_id, session_id, source, provider, model, "
        "input_tokens, output_tokens, cost_usd, status, request_id, requests, tenant_id, key_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, r.at_ms).bind(2, utc_day(r.at_ms)).bind(3, r.user_id);
    if (r.session_id.empty()) {
      stmt->bind_null(4);
    } else {
      stmt->bind(4, r.session_id);
    }
    stmt->bind(5, r.source).bind(6, r.provider).bind(7, r.model).bind(8, r.input_tokens);
    stmt->bind(9, r.output_tokens).bind_double(10, r.cost_usd).bind(11, r.status);
    stmt->bind(12, r.request_id).bind(13, r.requests).bind(14, r.tenant_id).bind(15, r.key_id);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("record usage");
    return success();
  }

 public:
 private:
  static Error not_found(std::string_view id) {
    return Error::not_found("no session with id '" + std::string(id) + "'", "session_not_found");
  }

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
