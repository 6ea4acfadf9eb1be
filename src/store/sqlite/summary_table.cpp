// Sessions' rolling summaries on SQLite (store.hpp, SummaryRepository).
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/sqlite/database.hpp"

namespace parley::store::sqlite {
namespace {

constexpr const char* kSummaryColumns =
    "id, session_id, text, first_message_id, last_message_id, through_seq, messages, tokens, "
    "method, model, created_at";
// What a summary covers is read through its last message's seq in this database (a copy made
// by `parley copy-data` numbers rows afresh); the stored number is what the writing database
// said.
constexpr const char* kSummaryReadColumns =
    "id, session_id, text, first_message_id, last_message_id, COALESCE((SELECT m.seq FROM "
    "messages m WHERE m.id = last_message_id), through_seq), messages, tokens, method, model, "
    "created_at";

Summary read_summary(const Statement& row) {
  Summary s;
  s.id = row.column_text(0);
  s.session_id = row.column_text(1);
  s.text = row.column_text(2);
  s.first_message_id = row.column_text(3);
  s.last_message_id = row.column_text(4);
  s.through_seq = row.column_int(5);
  s.messages = row.column_int(6);
  s.tokens = row.column_int(7);
  s.method = row.column_text(8);
  s.model = row.column_text(9);
  s.created_at_ms = row.column_int(10);
  return s;
}

class SummaryTable final : public SummaryRepository {
 public:
  explicit SummaryTable(Database& db) : db_(db) {}

  Result<Summary> add(const Summary& in) override {
    QueryTimer timer(db_.options.metrics, "summary_write");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    Summary s = in;
    s.id = new_resource_id("sum");
    // Only past what the newest summary covers, and only for a session that still exists.
    static const std::string sql =
        std::string("INSERT INTO session_summaries (") + kSummaryColumns +
        ") SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE EXISTS (SELECT 1 FROM "
        "sessions WHERE id = ?2) AND NOT EXISTS (SELECT 1 FROM session_summaries s JOIN messages "
        "m ON m.id = s.last_message_id WHERE s.session_id = ?2 AND m.seq >= ?6)";
    auto stmt = db_.writer->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, s.id).bind(2, s.session_id).bind(3, s.text).bind(4, s.first_message_id);
    stmt->bind(5, s.last_message_id).bind(6, s.through_seq).bind(7, s.messages).bind(8, s.tokens);
    stmt->bind(9, s.method).bind(10, s.model).bind(11, s.created_at_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("add summary");
    if (db_.writer->changes() == 1) return s;
    auto exists = db_.writer->prepare("SELECT 1 FROM sessions WHERE id = ?");
    if (!exists) return std::move(exists).error();
    exists->bind(1, s.session_id);
    if (exists->step() != SQLITE_ROW) return session_not_found(s.session_id);
    return Error::conflict("a summary covering as much of the session is already stored",
                           "summary_stale");
  }

  Result<std::vector<Summary>> list(std::string_view session_id, int limit) override {
    QueryTimer timer(db_.options.metrics, "summary_read");
    auto db = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kSummaryReadColumns +
                                   " FROM session_summaries WHERE session_id = ? ORDER BY "
                                   "seq DESC LIMIT ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, session_id).bind(2, static_cast<int64_t>(limit));
    std::vector<Summary> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_summary(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("read summaries");
    return out;
  }

  Result<std::vector<Message>> messages_after(std::string_view session_id, int64_t after_seq,
                                              int limit) override {
    QueryTimer timer(db_.options.metrics, "message_history");
    auto db = db_.readers.borrow();
    // As MessageRepository::history reads them: not pending, not empty.
    static const std::string sql =
        std::string("SELECT ") + kMessageReadColumns +
        " FROM messages WHERE session_id = ? AND seq > ? AND status NOT IN ('pending', 'replaced') "
        "AND (content != '' OR tool_calls IS NOT NULL) ORDER BY seq LIMIT ?";
    auto stmt = db->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, session_id).bind(2, after_seq).bind(3, static_cast<int64_t>(limit));
    std::vector<Message> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_message(*stmt));
    if (rc != SQLITE_DONE) return db->last_error("read messages");
    return out;
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<SummaryRepository> make_summary_table(Database& db) {
  return std::make_unique<SummaryTable>(db);
}

}  // namespace parley::store::sqlite
