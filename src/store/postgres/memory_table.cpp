// Long-term memories on PostgreSQL (store/memory.hpp).
//
// Two advisory locks keep the header's rules with many replicas writing at once:
// - a lock per user, taken first by every transaction that changes a user's memories, so the
//   "one active memory per text and per slot" checks and the writes after them cannot
//   interleave with another writer's for the same user;
// - the change log's lock, taken just before the first log write, so that log order is commit
//   order (as for kb_changes: store/postgres/knowledge_table.cpp).
// Every transaction takes them in that order (user locks in sorted order when there are
// several), so they cannot deadlock.
#include <algorithm>
#include <set>

#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/memory.hpp"
#include "store/memory_apply.hpp"
#include "store/memory_sql.hpp"
#include "store/postgres/database.hpp"

namespace parley::store::postgres {
Memory read_memory(const Rows& rows, int r, bool with_vector) {
  Memory m;
  m.seq = rows.integer(r, 0);
  m.id = rows.text(r, 1);
  m.tenant_id = rows.text(r, 2);
  m.user_id = rows.text(r, 3);
  m.assistant = rows.text(r, 4);
  m.session_id = rows.text(r, 5);
  m.text = rows.text(r, 6);
  m.kind = rows.text(r, 7);
  m.slot = rows.text(r, 8);
  m.importance = rows.number(r, 9);
  m.retention = rows.text(r, 10);
  m.status = rows.text(r, 11);
  m.superseded_by = rows.optional_text(r, 12);
  m.hash = rows.text(r, 13);
  m.source_json = rows.text(r, 14);
  m.metadata_json = rows.text(r, 15);
  m.embedder = rows.text(r, 16);
  m.created_at_ms = rows.integer(r, 17);
  m.updated_at_ms = rows.integer(r, 18);
  m.last_used_at_ms = rows.optional_integer(r, 19);
  m.invalid_at_ms = rows.optional_integer(r, 20);
  m.expires_at_ms = rows.optional_integer(r, 21);
  if (with_vector) m.vector = decode_vector(rows.bytes(r, memory_sql::kVectorColumn));
  return m;
}

std::vector<Memory> read_all(const Rows& rows, bool with_vector) {
  std::vector<Memory> out;
  out.reserve(static_cast<size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) out.push_back(read_memory(rows, i, with_vector));
  return out;
}

MemoryHistoryEntry read_history(const Rows& rows, int r) {
  MemoryHistoryEntry h;
  h.id = rows.text(r, 0);
  h.memory_id = rows.text(r, 1);
  h.tenant_id = rows.text(r, 2);
  h.user_id = rows.text(r, 3);
  h.event = rows.text(r, 4);
  h.old_text = rows.optional_text(r, 5);
  h.new_text = rows.optional_text(r, 6);
  h.actor = rows.text(r, 7);
  h.reason = rows.text(r, 8);
  h.source_json = rows.text(r, 9);
  h.job_id = rows.text(r, 10);
  h.created_at_ms = rows.integer(r, 11);
  return h;
}

namespace {

using namespace memory_sql;

// A MemoryQuery's selection: parameters 1 to 7.
constexpr const char* kFilter =
    "WHERE tenant_id = $1 AND user_id = $2 AND ($3::text IS NULL OR assistant = $3) AND "
    "($4::text IS NULL OR session_id = $4) AND ($5::text = '[]' OR kind IN (SELECT "
    "jsonb_array_elements_text($5::jsonb))) AND ($6::text IS NULL OR retention = $6) AND "
    "($7::text = 'all' OR status = $7)";

Params filter_params(const MemoryQuery& q) {
  Params p;
  p.text(q.tenant_id).text(q.user_id).optional_text(q.assistant).optional_text(q.session_id);
  p.text(json_strings(q.kinds)).optional_text(q.retention).text(q.status);
  return p;
}

// The writes of one transaction: each keeps the history and the change log in step with the
// row it changes.
class Writer {
 public:
  Writer(Connection& db, const MemoryEdit& edit, int64_t now_ms)
      : db_(db), edit_(edit), now_(now_ms) {}

  // Serialises this transaction with every other writer of the user's memories.
  Result<void> lock_user(std::string_view tenant, std::string_view user) {
    std::string key = std::string(tenant) + '\x1f' + std::string(user);
    auto r =
        db_.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7261))", Params().text(key));
    if (!r) return std::move(r).error();
    return success();
  }

  Result<std::optional<Memory>> find(std::string_view id) {
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns + " FROM memories WHERE id = $1";
    auto rows = db_.query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return std::optional<Memory>();
    return std::optional<Memory>(read_memory(*rows, 0, false));
  }

  Result<std::optional<Memory>> active_with_hash(std::string_view tenant, std::string_view user,
                                                 std::string_view assistant,
                                                 std::string_view session, std::string_view hash) {
    static const std::string sql = std::string("SELECT ") + kMemoryColumns +
                                   " FROM memories WHERE tenant_id = $1 AND user_id = $2 AND "
                                   "assistant = $3 AND session_id = $4 AND hash = $5 AND status "
                                   "= 'active'";
    auto rows =
        db_.query(sql, Params().text(tenant).text(user).text(assistant).text(session).text(hash));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return std::optional<Memory>();
    return std::optional<Memory>(read_memory(*rows, 0, false));
  }

  Result<std::vector<Memory>> active_in_slot(const Memory& scope, std::string_view slot) {
    static const std::string sql = std::string("SELECT ") + kMemoryColumns +
                                   " FROM memories WHERE tenant_id = $1 AND user_id = $2 AND "
                                   "slot = $3 AND status = 'active' AND assistant = $4 AND "
                                   "session_id = $5 ORDER BY seq";
    auto rows = db_.query(sql, Params()
                                   .text(scope.tenant_id)
                                   .text(scope.user_id)
                                   .text(slot)
                                   .text(scope.assistant)
                                   .text(scope.session_id));
    if (!rows) return std::move(rows).error();
    return read_all(*rows, false);
  }

  Result<void> log(const Memory& m, std::string_view op) {
    if (!log_locked_) {
      if (auto r = db_.exec(kMemoryChangeLogLock); !r) return r;
      log_locked_ = true;
    }
    auto r = db_.query(
        "INSERT INTO memory_changes (tenant_id, op, memory_seq, user_id) VALUES ($1, $2, $3, $4)",
        Params().text(m.tenant_id).text(op).integer(m.seq).text(m.user_id));
    if (!r) return std::move(r).error();
    return success();
  }

  Result<void> record(const Memory& m, std::string_view event,
                      const std::optional<std::string>& old_text,
                      const std::optional<std::string>& new_text, std::string_view reason) {
    auto r = db_.query(
        "INSERT INTO memory_history (id, memory_id, tenant_id, user_id, event, old_text, "
        "new_text, actor, reason, source, job_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, "
        "$7, $8, $9, $10, $11, $12)",
        Params()
            .text(new_resource_id("mh"))
            .text(m.id)
            .text(m.tenant_id)
            .text(m.user_id)
            .text(event)
            .optional_text(old_text)
            .optional_text(new_text)
            .text(edit_.actor)
            .text(reason.empty() ? std::string_view(edit_.reason) : reason)
            .text(edit_.source_json)
            .text(edit_.job_id)
            .integer(now_));
    if (!r) return std::move(r).error();
    return success();
  }

  Result<Memory> retire(const Memory& m, const std::optional<std::string>& by,
                        std::string_view reason) {
    static const std::string sql =
        std::string(
            "UPDATE memories SET status = 'retired', superseded_by = $1, invalid_at = $2, "
            "updated_at = $2 WHERE seq = $3 RETURNING ") +
        kMemoryColumns;
    auto rows = db_.query(sql, Params().optional_text(by).integer(now_).integer(m.seq));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return memory_not_found(m.id);
    Memory retired = read_memory(*rows, 0, false);
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
            "created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
            "$10, 'active', $11, $12, $13, $14, $15, $16, $16, $17) RETURNING ") +
        kMemoryColumns;
    Params p;
    p.text(id).text(in.tenant_id).text(in.user_id).text(in.assistant).text(in.session_id);
    p.text(in.text).text(in.kind).text(in.slot).number(in.importance).text(in.retention);
    p.text(in.hash).text(in.source_json).text(in.metadata_json).text(in.embedder);
    if (in.vector.empty()) {
      p.null();
    } else {
      p.bytes(encode_vector(in.vector));
    }
    p.integer(now_).optional_integer(in.expires_at_ms);
    auto rows = db_.query(sql, p);
    if (!rows) return std::move(rows).error();
    out.memory = read_memory(*rows, 0, false);
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
      auto r = db_.query("UPDATE memories SET expires_at = $1 WHERE seq = $2",
                         Params().optional_integer(expires_at_ms).integer(m.seq));
      if (!r) return std::move(r).error();
      m.expires_at_ms = expires_at_ms;
      if (auto logged = log(m, "put"); !logged) return std::move(logged).error();
    }
    out.memory = std::move(m);
    return out;
  }

  Result<Memory> rewrite(const Memory& m, const std::optional<std::vector<float>>& vector) {
    static const std::string sql =
        std::string(
            "UPDATE memories SET text = $2, hash = $3, kind = $4, slot = $5, importance = $6, "
            "retention = $7, expires_at = $8, metadata = $9, embedder = $10, vector = CASE WHEN "
            "$11::boolean THEN $12::bytea ELSE vector END, updated_at = $13 WHERE seq = $1 "
            "RETURNING ") +
        kMemoryColumns;
    Params p;
    p.integer(m.seq).text(m.text).text(m.hash).text(m.kind).text(m.slot).number(m.importance);
    p.text(m.retention).optional_integer(m.expires_at_ms).text(m.metadata_json).text(m.embedder);
    p.boolean(vector.has_value());
    if (vector && !vector->empty()) {
      p.bytes(encode_vector(*vector));
    } else {
      p.null();
    }
    p.integer(now_);
    auto rows = db_.query(sql, p);
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return memory_not_found(m.id);
    return read_memory(*rows, 0, false);
  }

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

  Result<void> erase(const Memory& m, std::string_view event, std::string_view reason) {
    if (auto r = db_.query("DELETE FROM memories WHERE seq = $1", Params().integer(m.seq)); !r) {
      return std::move(r).error();
    }
    if (auto r = db_.query(
            "UPDATE memory_history SET old_text = NULL, new_text = NULL WHERE memory_id = $1",
            Params().text(m.id));
        !r) {
      return std::move(r).error();
    }
    if (auto r = record(m, event, std::nullopt, std::nullopt, reason); !r) return r;
    return log(m, "remove");
  }

  Result<bool> job_applied() {
    if (edit_.job_id.empty()) return false;
    auto rows = db_.query("SELECT 1 FROM memory_history WHERE job_id = $1 LIMIT 1",
                          Params().text(edit_.job_id));
    if (!rows) return std::move(rows).error();
    return !rows->empty();
  }

 private:
  Connection& db_;
  const MemoryEdit& edit_;
  int64_t now_;
  bool log_locked_ = false;
};

class MemoryTable final : public MemoryRepository {
 public:
  explicit MemoryTable(Database& db) : db_(db) {}

  Result<CreatedMemory> create(const NewMemory& in, const MemoryEdit& edit,
                               int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Transaction tx(**lease);
    if (!tx.begun()) return tx.begun().error();
    Writer w(**lease, edit, now_ms);
    if (auto r = w.lock_user(in.tenant_id, in.user_id); !r) return std::move(r).error();
    auto created = w.add(in, "");
    if (!created) return created;
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return created;
  }

  Result<Memory> get(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "memory_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns + " FROM memories WHERE id = $1";
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return memory_not_found(id);
    return read_memory(*rows, 0, false);
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
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kMemoryColumns + " FROM memories " +
                                   kFilter + " AND seq < $8 ORDER BY seq DESC LIMIT $9";
    Params p = filter_params(q);
    p.integer(before.value_or(INT64_MAX)).integer(static_cast<int64_t>(q.limit) + 1);
    auto rows = (**lease).query(sql, p);
    if (!rows) return std::move(rows).error();
    MemoryPage page;
    page.items = read_all(*rows, false);
    if (static_cast<int>(page.items.size()) > q.limit) {
      page.items.resize(static_cast<size_t>(q.limit));
      if (!page.items.empty()) page.next_cursor = std::to_string(page.items.back().seq);
    }
    return page;
  }

  Result<std::vector<MemoryHistoryEntry>> history(std::string_view memory_id) override {
    QueryTimer timer(db_.options.metrics, "memory_history");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kHistoryColumns +
                                   " FROM memory_history WHERE memory_id = $1 ORDER BY seq";
    auto rows = (**lease).query(sql, Params().text(memory_id));
    if (!rows) return std::move(rows).error();
    std::vector<MemoryHistoryEntry> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_history(*rows, i));
    return out;
  }

  Result<Memory> update(std::string_view id, const MemoryPatch& patch, const MemoryEdit& edit,
                        int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Transaction tx(**lease);
    if (!tx.begun()) return tx.begun().error();
    Writer w(**lease, edit, now_ms);
    auto current = locked_find(w, id);
    if (!current) return std::move(current).error();
    if ((*current).status != "active") return memory_not_active(id);
    auto updated = w.update(*current, patch, "");
    if (!updated) return updated;
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return updated;
  }

  Result<Memory> remove(std::string_view id, const MemoryEdit& edit, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Transaction tx(**lease);
    if (!tx.begun()) return tx.begun().error();
    Writer w(**lease, edit, now_ms);
    auto current = locked_find(w, id);
    if (!current) return std::move(current).error();
    if (auto r = w.erase(*current, "DELETE", ""); !r) return std::move(r).error();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return current;
  }

  Result<int64_t> remove_all(const MemoryQuery& q, const MemoryEdit& edit,
                             int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Transaction tx(**lease);
    if (!tx.begun()) return tx.begun().error();
    Writer w(**lease, edit, now_ms);
    if (auto r = w.lock_user(q.tenant_id, q.user_id); !r) return std::move(r).error();
    MemoryQuery every = q;
    every.status = "all";
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumns + " FROM memories " + kFilter + " ORDER BY seq";
    auto rows = (**lease).query(sql, filter_params(every));
    if (!rows) return std::move(rows).error();
    const std::vector<Memory> doomed = read_all(*rows, false);
    for (const Memory& m : doomed) {
      if (auto r = w.erase(m, "DELETE", ""); !r) return std::move(r).error();
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return static_cast<int64_t>(doomed.size());
  }

  Result<AppliedDecisions> apply(std::string_view tenant_id, std::string_view user_id,
                                 const std::vector<MemoryDecision>& decisions,
                                 const MemoryEdit& edit, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Transaction tx(**lease);
    if (!tx.begun()) return tx.begun().error();
    Writer w(**lease, edit, now_ms);
    if (auto r = w.lock_user(tenant_id, user_id); !r) return std::move(r).error();
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
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kMemoryColumns +
                                   " FROM memories WHERE seq = ANY($1::bigint[]) AND status = "
                                   "'active' AND (expires_at IS NULL OR expires_at > $2)";
    auto rows = (**lease).query(sql, Params().text(integer_array(seqs)).integer(now_ms));
    if (!rows) return std::move(rows).error();
    return read_all(*rows, false);
  }

  Result<void> mark_used(const std::vector<int64_t>& seqs, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows =
        (**lease).query("UPDATE memories SET last_used_at = $1 WHERE seq = ANY($2::bigint[])",
                        Params().integer(now_ms).text(integer_array(seqs)));
    if (!rows) return std::move(rows).error();
    return success();
  }

  Result<std::vector<Memory>> user_memories(std::string_view tenant_id, std::string_view user_id,
                                            int limit, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "memory_list");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kMemoryColumnsWithVector +
        " FROM memories WHERE tenant_id = $1 AND user_id = $2 AND status = 'active' AND "
        "(expires_at IS NULL OR expires_at > $3) ORDER BY seq DESC LIMIT $4";
    auto rows =
        (**lease).query(sql, Params().text(tenant_id).text(user_id).integer(now_ms).integer(limit));
    if (!rows) return std::move(rows).error();
    return read_all(*rows, true);
  }

  Result<int64_t> purge_expired(int64_t now_ms, int limit) override {
    QueryTimer timer(db_.options.metrics, "memory_purge");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    static const std::string sql = std::string("SELECT ") + kMemoryColumns +
                                   " FROM memories WHERE expires_at IS NOT NULL AND expires_at "
                                   "<= $1 ORDER BY expires_at LIMIT $2";
    auto found = db.query(sql, Params().integer(now_ms).integer(limit));
    if (!found) return std::move(found).error();
    const std::vector<Memory> due = read_all(*found, false);
    if (due.empty()) return 0;
    const MemoryEdit edit{"job", "expired", "[]", ""};
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    Writer w(db, edit, now_ms);
    std::set<std::pair<std::string, std::string>> users;
    for (const Memory& m : due) users.emplace(m.tenant_id, m.user_id);
    for (const auto& [tenant, user] : users) {
      if (auto r = w.lock_user(tenant, user); !r) return std::move(r).error();
    }
    int64_t purged = 0;
    for (const Memory& m : due) {
      // Read again under the user's lock: it may have been deleted or renewed meanwhile.
      auto now = w.find(m.id);
      if (!now) return std::move(now).error();
      if (!*now || !(*now)->expires_at_ms || *(*now)->expires_at_ms > now_ms) continue;
      if (auto r = w.erase(**now, "EXPIRE", ""); !r) return std::move(r).error();
      ++purged;
    }
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return purged;
  }

  Result<std::vector<MemoryChange>> changes_since(int64_t after_seq, int limit) override {
    QueryTimer timer(db_.options.metrics, "memory_changes");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT seq, tenant_id, op, memory_seq, user_id FROM memory_changes WHERE seq > $1 ORDER "
        "BY seq LIMIT $2",
        Params().integer(after_seq).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<MemoryChange> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) {
      MemoryChange c;
      c.seq = rows->integer(i, 0);
      c.tenant_id = rows->text(i, 1);
      c.op = memory_change_op_from(rows->text(i, 2));
      c.memory_seq = rows->integer(i, 3);
      c.user_id = rows->text(i, 4);
      out.push_back(std::move(c));
    }
    return out;
  }

  Result<int64_t> last_change() override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("SELECT COALESCE(max(seq), 0) FROM memory_changes");
    if (!rows) return std::move(rows).error();
    return rows->integer(0, 0);
  }

  Result<std::vector<Memory>> by_seq(const std::vector<int64_t>& seqs) override {
    QueryTimer timer(db_.options.metrics, "memory_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kMemoryColumnsWithVector +
                                   " FROM memories WHERE seq = ANY($1::bigint[]) ORDER BY seq";
    auto rows = (**lease).query(sql, Params().text(integer_array(seqs)));
    if (!rows) return std::move(rows).error();
    return read_all(*rows, true);
  }

  Result<std::vector<Memory>> active_after(int64_t after_seq, int limit) override {
    QueryTimer timer(db_.options.metrics, "memory_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kMemoryColumnsWithVector +
                                   " FROM memories WHERE seq > $1 AND status = 'active' ORDER BY "
                                   "seq LIMIT $2";
    auto rows = (**lease).query(sql, Params().integer(after_seq).integer(limit));
    if (!rows) return std::move(rows).error();
    return read_all(*rows, true);
  }

 private:
  // The memory, read again once its user's lock is held (it may change while we wait).
  static Result<Memory> locked_find(Writer& w, std::string_view id) {
    auto first = w.find(id);
    if (!first) return std::move(first).error();
    if (!*first) return memory_not_found(id);
    if (auto r = w.lock_user((*first)->tenant_id, (*first)->user_id); !r) {
      return std::move(r).error();
    }
    auto current = w.find(id);
    if (!current) return std::move(current).error();
    if (!*current) return memory_not_found(id);
    return std::move(**current);
  }

  Database& db_;
};

}  // namespace

std::unique_ptr<MemoryRepository> make_memory_table(Database& db) {
  return std::make_unique<MemoryTable>(db);
}

}  // namespace parley::store::postgres
