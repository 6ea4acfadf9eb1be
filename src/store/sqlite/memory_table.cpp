// Long-term memories on SQLite (store/memory.hpp). Every write runs on the write connection
// under its mutex, in one transaction, so the rules the header promises (one active memory per
// text and per slot, history with every change, the change log in commit order) hold without
// row locks.
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/memory.hpp"
#include "store/memory_apply.hpp"
#include "store/memory_sql.hpp"
#include "store/sqlite/database.hpp"

namespace parley::store::sqlite {
Memory read_memory(const Statement& row, bool with_vector) {
  Memory m;
  m.seq = row.column_int(0);
  m.id = row.column_text(1);
  m.tenant_id = row.column_text(2);
  m.user_id = row.column_text(3);
  m.assistant = row.column_text(4);
  m.session_id = row.column_text(5);
  m.text = row.column_text(6);
  m.kind = row.column_text(7);
  m.slot = row.column_text(8);
  m.importance = row.column_double(9);
  m.retention = row.column_text(10);
  m.status = row.column_text(11);
  m.superseded_by = row.column_optional_text(12);
  m.hash = row.column_text(13);
  m.source_json = row.column_text(14);
  m.metadata_json = row.column_text(15);
  m.embedder = row.column_text(16);
  m.created_at_ms = row.column_int(17);
  m.updated_at_ms = row.column_int(18);
  m.last_used_at_ms = row.column_optional_int(19);
  m.invalid_at_ms = row.column_optional_int(20);
  m.expires_at_ms = row.column_optional_int(21);
  if (with_vector) m.vector = decode_vector(row.column_text(memory_sql::kVectorColumn));
  return m;
}

MemoryHistoryEntry read_history(const Statement& row) {
  MemoryHistoryEntry h;
  h.id = row.column_text(0);
  h.memory_id = row.column_text(1);
  h.tenant_id = row.column_text(2);
  h.user_id = row.column_text(3);
  h.event = row.column_text(4);
  h.old_text = row.column_optional_text(5);
  h.new_text = row.column_optional_text(6);
  h.actor = row.column_text(7);
  h.reason = row.column_text(8);
  h.source_json = row.column_text(9);
  h.job_id = row.column_text(10);
  h.created_at_ms = row.column_int(11);
  return h;
}

namespace {

using namespace memory_sql;

// Reads every row a statement yields.
Result<std::vector<Memory>> read_all(Connection& db, Statement& stmt, bool with_vector,
                                     std::string_view what) {
  std::vector<Memory> out;
  int rc;
  while ((rc = stmt.step()) == SQLITE_ROW) out.push_back(read_memory(stmt, with_vector));
  if (rc != SQLITE_DONE) return db.last_error(what);
  return out;
}

// The writes of one transaction on the write connection: each keeps the history and the
// change log in step with the row it changes.
class Writer {
 public:
  Writer(Connection& db, const MemoryEdit& edit, int64_t now_ms)
      : db_(db), edit_(edit), now_(now_ms) {}

  Result<std::optional<Memory>> find(std::string_view id) {
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns + " FROM memories WHERE id = ?";
    auto stmt = db_.prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return std::optional<Memory>();
    if (rc != SQLITE_ROW) return db_.last_error("read memory");
    return std::optional<Memory>(read_memory(*stmt, false));
  }

  // The active memory with this text in this scope, if any.
  Result<std::optional<Memory>> active_with_hash(std::string_view tenant, std::string_view user,
                                                 std::string_view assistant,
                                                 std::string_view session, std::string_view hash) {
    static const std::string sql = std::string("SELECT ") + kMemoryColumns +
                                   " FROM memories WHERE tenant_id = ? AND user_id = ? AND "
                                   "assistant = ? AND session_id = ? AND hash = ? AND status = "
                                   "'active'";
    auto stmt = db_.prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, tenant).bind(2, user).bind(3, assistant).bind(4, session).bind(5, hash);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return std::optional<Memory>();
    if (rc != SQLITE_ROW) return db_.last_error("read memory");
    return std::optional<Memory>(read_memory(*stmt, false));
  }

  Result<std::vector<Memory>> active_in_slot(const Memory& scope, std::string_view slot) {
    static const std::string sql = std::string("SELECT ") + kMemoryColumns +
                                   " FROM memories WHERE tenant_id = ? AND user_id = ? AND slot "
                                   "= ? AND status = 'active' AND assistant = ? AND session_id = "
                                   "? ORDER BY seq";
    auto stmt = db_.prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, scope.tenant_id).bind(2, scope.user_id).bind(3, slot);
    stmt->bind(4, scope.assistant).bind(5, scope.session_id);
    return read_all(db_, *stmt, false, "read slot");
  }

  Result<void> log(const Memory& m, std::string_view op) {
    auto stmt = db_.prepare(
        "INSERT INTO memory_changes (tenant_id, op, memory_seq, user_id) VALUES (?, ?, ?, ?)");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, m.tenant_id).bind(2, op).bind(3, m.seq).bind(4, m.user_id);
    if (stmt->step() != SQLITE_DONE) return db_.last_error("log memory change");
    return success();
  }

  Result<void> record(const Memory& m, std::string_view event,
                      const std::optional<std::string>& old_text,
                      const std::optional<std::string>& new_text, std::string_view reason) {
    auto stmt = db_.prepare(
        "INSERT INTO memory_history (id, memory_id, tenant_id, user_id, event, old_text, "
        "new_text, actor, reason, source, job_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?)");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, new_resource_id("mh")).bind(2, m.id).bind(3, m.tenant_id).bind(4, m.user_id);
    stmt->bind(5, event).bind_optional(6, old_text).bind_optional(7, new_text);
    stmt->bind(8, edit_.actor).bind(9, reason.empty() ? std::string_view(edit_.reason) : reason);
    stmt->bind(10, edit_.source_json).bind(11, edit_.job_id).bind(12, now_);
    if (stmt->step() != SQLITE_DONE) return db_.last_error("record memory history");
    return success();
  }

  Result<Memory> retire(const Memory& m, const std::optional<std::string>& by,
                        std::string_view reason) {
    static const std::string sql =
        std::string(
            "UPDATE memories SET status = 'retired', superseded_by = ?, invalid_at = ?, "
            "updated_at = ? WHERE seq = ? RETURNING ") +
        kMemoryColumns;
    auto stmt = db_.prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind_optional(1, by).bind(2, now_).bind(3, now_).bind(4, m.seq);
    if (stmt->step() != SQLITE_ROW) return db_.last_error("retire memory");
    Memory retired = read_memory(*stmt, false);
    if (stmt->step() != SQLITE_DONE) return db_.last_error("retire memory");
    if (auto r = record(retired, "RETIRE", m.text, std::nullopt, reason); !r) {
      return std::move(r).error();
    }
    if (auto r = log(retired, "remove"); !r) return std::move(r).error();
    return retired;
  }

  Result<CreatedMemory> add(const NewMemory& in, std::string_view reason) {
    auto same = active_with_hash(in.tenant_id, in.user_id, in.assistant, in.session_id, in.hash);
    if (!same) return std::move(same).error();
    if (*same) return renew(std::move(**same), in.expires_at_ms);
    CreatedMemory out;
    const std::string id = new_resource_id("mem");
    if (!in.slot.empty()) {
      Memory scope;
      scope.tenant_id = in.tenant_id;
      scope.user_id = in.user_id;
      scope.assistant = in.assistant;
      scope.session_id = in.session_id;
      auto held = active_in_slot(scope, in.slot);
      if (!held) return std::move(held).error();
      for (const Memory& old : *held) {
        auto retired = retire(old, id, "replaced by a new value of its slot");
        if (!retired) return std::move(retired).error();
        out.retired = std::move(*retired);
      }
    }
    static const std::string sql =
        std::string(
            "INSERT INTO memories (id, tenant_id, user_id, assistant, session_id, text, kind, "
            "slot, importance, retention, status, hash, source, metadata, embedder, vector, "
            "created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', "
            "?, ?, ?, ?, ?, ?, ?, ?) RETURNING ") +
        kMemoryColumns;
    auto stmt = db_.prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, in.tenant_id).bind(3, in.user_id).bind(4, in.assistant);
    stmt->bind(5, in.session_id).bind(6, in.text).bind(7, in.kind).bind(8, in.slot);
    stmt->bind_double(9, in.importance).bind(10, in.retention).bind(11, in.hash);
    stmt->bind(12, in.source_json).bind(13, in.metadata_json).bind(14, in.embedder);
    if (in.vector.empty()) {
      stmt->bind_null(15);
    } else {
      stmt->bind_blob(15, encode_vector(in.vector));
    }
    stmt->bind(16, now_).bind(17, now_).bind_optional_int(18, in.expires_at_ms);
    if (stmt->step() != SQLITE_ROW) return db_.last_error("add memory");
    out.memory = read_memory(*stmt, false);
    if (stmt->step() != SQLITE_DONE) return db_.last_error("add memory");
    if (auto r = record(out.memory, "ADD", std::nullopt, out.memory.text, reason); !r) {
      return std::move(r).error();
    }
    if (auto r = log(out.memory, "put"); !r) return std::move(r).error();
    return out;
  }

  // The same text said again: the memory it already is, living at least as long as the new
  // statement asks (said again, it is still true).
  Result<CreatedMemory> renew(Memory m, const std::optional<int64_t>& expires_at_ms) {
    CreatedMemory out;
    out.created = false;
    const bool lengthen = m.expires_at_ms && (!expires_at_ms || *expires_at_ms > *m.expires_at_ms);
    if (lengthen) {
      auto stmt = db_.prepare("UPDATE memories SET expires_at = ? WHERE seq = ?");
      if (!stmt) return std::move(stmt).error();
      stmt->bind_optional_int(1, expires_at_ms).bind(2, m.seq);
      if (stmt->step() != SQLITE_DONE) return db_.last_error("renew memory");
      m.expires_at_ms = expires_at_ms;
      if (auto r = log(m, "put"); !r) return std::move(r).error();
    }
    out.memory = std::move(m);
    return out;
  }

  // Writes every field of `m` that may change (its vector only when `vector` is set).
  Result<Memory> rewrite(const Memory& m, const std::optional<std::vector<float>>& vector) {
    static const std::string sql =
        std::string(
            "UPDATE memories SET text = ?2, hash = ?3, kind = ?4, slot = ?5, importance = ?6, "
            "retention = ?7, expires_at = ?8, metadata = ?9, embedder = ?10, vector = CASE WHEN "
            "?11 THEN ?12 ELSE vector END, updated_at = ?13 WHERE seq = ?1 RETURNING ") +
        kMemoryColumns;
    auto stmt = db_.prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, m.seq).bind(2, m.text).bind(3, m.hash).bind(4, m.kind).bind(5, m.slot);
    stmt->bind_double(6, m.importance).bind(7, m.retention).bind_optional_int(8, m.expires_at_ms);
    stmt->bind(9, m.metadata_json).bind(10, m.embedder);
    stmt->bind(11, static_cast<int64_t>(vector.has_value()));
    if (vector && !vector->empty()) {
      stmt->bind_blob(12, encode_vector(*vector));
    } else {
      stmt->bind_null(12);
    }
    stmt->bind(13, now_);
    if (stmt->step() != SQLITE_ROW) return db_.last_error("update memory");
    Memory out = read_memory(*stmt, false);
    if (stmt->step() != SQLITE_DONE) return db_.last_error("update memory");
    return out;
  }

  // Applies a patch to an active memory: kConflict when its text becomes another's.
  Result<Memory> update(const Memory& current, const MemoryPatch& patch, std::string_view reason) {
    Memory next = memory_apply::patched(current, patch);
    if (next.hash != current.hash) {
      auto other = active_with_hash(next.tenant_id, next.user_id, next.assistant, next.session_id,
                                    next.hash);
      if (!other) return std::move(other).error();
      if (*other) return memory_exists((*other)->id);
    }
    if (!next.slot.empty() && next.slot != current.slot) {
      auto held = active_in_slot(next, next.slot);
      if (!held) return std::move(held).error();
      for (const Memory& old : *held) {
        if (old.seq == current.seq) continue;
        if (auto r = retire(old, current.id, "replaced by a new value of its slot"); !r) {
          return std::move(r).error();
        }
      }
    }
    auto written = rewrite(next, patch.vector);
    if (!written) return written;
    if (auto r = record(*written, "UPDATE", current.text, written->text, reason); !r) {
      return std::move(r).error();
    }
    if (auto r = log(*written, "put"); !r) return std::move(r).error();
    return written;
  }

  // Deletes the memory, blanks the texts of its history and records `event` (DELETE, EXPIRE).
  Result<void> erase(const Memory& m, std::string_view event, std::string_view reason) {
    auto del = db_.prepare("DELETE FROM memories WHERE seq = ?");
    if (!del) return std::move(del).error();
    del->bind(1, m.seq);
    if (del->step() != SQLITE_DONE) return db_.last_error("delete memory");
    auto blank = db_.prepare(
        "UPDATE memory_history SET old_text = NULL, new_text = NULL WHERE memory_id = ?");
    if (!blank) return std::move(blank).error();
    blank->bind(1, m.id);
    if (blank->step() != SQLITE_DONE) return db_.last_error("delete memory");
    if (auto r = record(m, event, std::nullopt, std::nullopt, reason); !r) return r;
    return log(m, "remove");
  }

  Result<bool> job_applied() {
    if (edit_.job_id.empty()) return false;
    auto stmt = db_.prepare("SELECT 1 FROM memory_history WHERE job_id = ? LIMIT 1");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, edit_.job_id);
    const int rc = stmt->step();
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) return db_.last_error("read memory history");
    return false;
  }

 private:
  Connection& db_;
  const MemoryEdit& edit_;
  int64_t now_;
};

class MemoryTable final : public MemoryRepository {
 public:
  explicit MemoryTable(Database& db) : db_(db) {}

  Result<CreatedMemory> create(const NewMemory& in, const MemoryEdit& edit,
                               int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    Writer w(*db_.writer, edit, now_ms);
    auto created = w.add(in, "");
    if (!created) return created;
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return created;
  }

  Result<Memory> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "memory_read");
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns + " FROM memories WHERE id = ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return memory_not_found(id);
    if (rc != SQLITE_ROW) return db->last_error("read memory");
    return read_memory(*stmt, false);
  }

  Result<MemoryPage> list(const MemoryQuery& q) override {
    QueryTimer timer(db_.options.metrics, "memory_list");
    std::optional<int64_t> before;
    if (q.cursor) {
      before = parse_seq_cursor(*q.cursor);
      if (!before) {
        return Error::invalid("cursor is not one this server issued", "invalid_cursor", "cursor");
      }
    }
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kMemoryColumns + " FROM memories " +
                                   kFilter + " AND seq < ?8 ORDER BY seq DESC LIMIT ?9";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    bind_filter(*stmt, q);
    stmt->bind(8, before.value_or(INT64_MAX)).bind(9, static_cast<int64_t>(q.limit) + 1);
    auto rows = read_all(*db, *stmt, false, "list memories");
    if (!rows) return std::move(rows).error();
    MemoryPage page;
    page.items = std::move(*rows);
    if (static_cast<int>(page.items.size()) > q.limit) {
      page.items.resize(static_cast<size_t>(q.limit));
      if (!page.items.empty()) page.next_cursor = std::to_string(page.items.back().seq);
    }
    return page;
  }

  Result<std::vector<MemoryHistoryEntry>> history(std::string_view memory_id) override {
    QueryTimer timer(db_.options.metrics, "memory_history");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kHistoryColumns +
                                   " FROM memory_history WHERE memory_id = ? ORDER BY seq";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, memory_id);
    std::vector<MemoryHistoryEntry> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_history(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("read memory history");
    return out;
  }

  Result<Memory> update(std::string_view id, const MemoryPatch& patch, const MemoryEdit& edit,
                        int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    Writer w(*db_.writer, edit, now_ms);
    auto current = w.find(id);
    if (!current) return std::move(current).error();
    if (!*current) return memory_not_found(id);
    if ((*current)->status != "active") return memory_not_active(id);
    auto updated = w.update(**current, patch, "");
    if (!updated) return updated;
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return updated;
  }

  Result<Memory> remove(std::string_view id, const MemoryEdit& edit, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    Writer w(*db_.writer, edit, now_ms);
    auto current = w.find(id);
    if (!current) return std::move(current).error();
    if (!*current) return memory_not_found(id);
    if (auto r = w.erase(**current, "DELETE", ""); !r) return std::move(r).error();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return std::move(**current);
  }

  Result<int64_t> remove_all(const MemoryQuery& q, const MemoryEdit& edit,
                             int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    MemoryQuery every = q;
    every.status = "all";
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns + " FROM memories " + kFilter + " ORDER BY seq";
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    bind_filter(*stmt, every);
    auto rows = read_all(*db_.writer, *stmt, false, "read memories");
    if (!rows) return std::move(rows).error();
    Writer w(*db_.writer, edit, now_ms);
    for (const Memory& m : *rows) {
      if (auto r = w.erase(m, "DELETE", ""); !r) return std::move(r).error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return static_cast<int64_t>(rows->size());
  }

  Result<AppliedDecisions> apply(std::string_view tenant_id, std::string_view user_id,
                                 const std::vector<MemoryDecision>& decisions,
                                 const MemoryEdit& edit, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    Writer w(*db_.writer, edit, now_ms);
    auto done = w.job_applied();
    if (!done) return std::move(done).error();
    AppliedDecisions out;
    if (*done) {
      out.replayed = true;
      return out;
    }
    for (const MemoryDecision& d : decisions) {
      auto applied = memory_apply::apply_decision(w, tenant_id, user_id, d, out);
      if (!applied) return std::move(applied).error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return out;
  }

  Result<std::vector<Memory>> live_by_seq(const std::vector<int64_t>& seqs,
                                          int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_recall");
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns +
        " FROM memories WHERE seq IN (SELECT value FROM json_each(?)) AND status = 'active' AND "
        "(expires_at IS NULL OR expires_at > ?)";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, json_integers(seqs)).bind(2, now_ms);
    return read_all(*db, *stmt, false, "read memories");
  }

  Result<void> mark_used(const std::vector<int64_t>& seqs, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto stmt = db_.writer->prepare(
        "UPDATE memories SET last_used_at = ? WHERE seq IN (SELECT value FROM json_each(?))");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, now_ms).bind(2, json_integers(seqs));
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("mark memories used");
    return success();
  }

  Result<std::vector<Memory>> user_memories(std::string_view tenant_id, std::string_view user_id,
                                            int limit, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_list");
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumnsWithVector +
        " FROM memories WHERE tenant_id = ? AND user_id = ? AND status = 'active' AND "
        "(expires_at IS NULL OR expires_at > ?) ORDER BY seq DESC LIMIT ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, tenant_id).bind(2, user_id).bind(3, now_ms).bind(4, static_cast<int64_t>(limit));
    return read_all(*db, *stmt, true, "read memories");
  }

  Result<int64_t> purge_expired(int64_t now_ms, int limit) override {
    QueryTimer timer(db_.options.metrics, "memory_purge");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns +
        " FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at "
        "LIMIT ?";
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, now_ms).bind(2, static_cast<int64_t>(limit));
    auto rows = read_all(*db_.writer, *stmt, false, "read expired memories");
    if (!rows) return std::move(rows).error();
    const MemoryEdit edit{"job", "expired", "[]", ""};
    Writer w(*db_.writer, edit, now_ms);
    for (const Memory& m : *rows) {
      if (auto r = w.erase(m, "EXPIRE", ""); !r) return std::move(r).error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return static_cast<int64_t>(rows->size());
  }

  Result<std::vector<MemoryChange>> changes_since(int64_t after_seq, int limit) override {
    QueryTimer timer(db_.options.metrics, "memory_changes");
    auto db = db_.readers.borrow();
    auto stmt = db->prepare(
        "SELECT seq, tenant_id, op, memory_seq, user_id FROM memory_changes WHERE seq > ? ORDER "
        "BY seq LIMIT ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, after_seq).bind(2, static_cast<int64_t>(limit));
    std::vector<MemoryChange> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      MemoryChange c;
      c.seq = stmt->column_int(0);
      c.tenant_id = stmt->column_text(1);
      c.op = memory_change_op_from(stmt->column_text(2));
      c.memory_seq = stmt->column_int(3);
      c.user_id = stmt->column_text(4);
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return db->last_error("read memory changes");
    return out;
  }

  Result<int64_t> last_change() override {
    auto db = db_.readers.borrow();
    auto stmt = db->prepare("SELECT COALESCE(max(seq), 0) FROM memory_changes");
    if (!stmt) return std::move(stmt).error();
    if (stmt->step() != SQLITE_ROW) return db->last_error("read memory changes");
    return stmt->column_int(0);
  }

  Result<std::vector<Memory>> by_seq(const std::vector<int64_t>& seqs) override {
    QueryTimer timer(db_.options.metrics, "memory_read");
    auto db = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumnsWithVector +
        " FROM memories WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, json_integers(seqs));
    return read_all(*db, *stmt, true, "read memories");
  }

  Result<std::vector<Memory>> active_after(int64_t after_seq, int limit) override {
    QueryTimer timer(db_.options.metrics, "memory_read");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kMemoryColumnsWithVector +
                                   " FROM memories WHERE seq > ? AND status = 'active' ORDER BY "
                                   "seq LIMIT ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, after_seq).bind(2, static_cast<int64_t>(limit));
    return read_all(*db, *stmt, true, "read memories");
  }

 private:
  // A MemoryQuery's selection: parameters 1 to 7.
  static constexpr const char* kFilter =
      "WHERE tenant_id = ?1 AND user_id = ?2 AND (?3 IS NULL OR assistant = ?3) AND (?4 IS NULL "
      "OR session_id = ?4) AND (?5 = '[]' OR kind IN (SELECT value FROM json_each(?5))) AND (?6 "
      "IS NULL OR retention = ?6) AND (?7 = 'all' OR status = ?7)";

  static void bind_filter(Statement& stmt, const MemoryQuery& q) {
    stmt.bind(1, q.tenant_id).bind(2, q.user_id).bind_optional(3, q.assistant);
    stmt.bind_optional(4, q.session_id).bind(5, json_strings(q.kinds));
    stmt.bind_optional(6, q.retention).bind(7, q.status);
  }

  Database& db_;
};

}  // namespace

std::unique_ptr<MemoryRepository> make_memory_table(Database& db) {
  return std::make_unique<MemoryTable>(db);
}

}  // namespace parley::store::sqlite
