// Sessions' rolling summaries on PostgreSQL (store.hpp, SummaryRepository).
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/postgres/database.hpp"

namespace parley::store::postgres {
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

Summary read_summary(const Rows& rows, int r) {
  Summary s;
  s.id = rows.text(r, 0);
  s.session_id = rows.text(r, 1);
  s.text = rows.text(r, 2);
  s.first_message_id = rows.text(r, 3);
  s.last_message_id = rows.text(r, 4);
  s.through_seq = rows.integer(r, 5);
  s.messages = rows.integer(r, 6);
  s.tokens = rows.integer(r, 7);
  s.method = rows.text(r, 8);
  s.model = rows.text(r, 9);
  s.created_at_ms = rows.integer(r, 10);
  return s;
}

class SummaryTable final : public SummaryRepository {
 public:
  explicit SummaryTable(Database& db) : db_(db) {}

  Result<Summary> add(const Summary& in) override {
    QueryTimer timer(db_.options.metrics, "summary_write");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Summary s = in;
    s.id = new_resource_id("sum");
    // Only past what the newest summary covers, and only for a session that still exists.
    static const std::string sql =
        std::string("INSERT INTO session_summaries (") + kSummaryColumns +
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM "
        "sessions WHERE id = $2) AND NOT EXISTS (SELECT 1 FROM session_summaries s JOIN messages "
        "m ON m.id = s.last_message_id WHERE s.session_id = $2 AND m.seq >= $6)";
    auto rows = (**lease).query(sql, Params()
                                         .text(s.id)
                                         .text(s.session_id)
                                         .text(s.text)
                                         .text(s.first_message_id)
                                         .text(s.last_message_id)
                                         .integer(s.through_seq)
                                         .integer(s.messages)
                                         .integer(s.tokens)
                                         .text(s.method)
                                         .text(s.model)
                                         .integer(s.created_at_ms));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 1) return s;
    auto exists =
        (**lease).query("SELECT 1 FROM sessions WHERE id = $1", Params().text(s.session_id));
    if (!exists) return std::move(exists).error();
    if (exists->empty()) return session_not_found(s.session_id);
    return Error::conflict("a summary covering as much of the session is already stored",
                           "summary_stale");
  }

  Result<std::vector<Summary>> list(std::string_view session_id, int limit) override {
    QueryTimer timer(db_.options.metrics, "summary_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kSummaryReadColumns +
                                   " FROM session_summaries WHERE session_id = $1 ORDER BY "
                                   "seq DESC LIMIT $2";
    auto rows = (**lease).query(sql, Params().text(session_id).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<Summary> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) out.push_back(read_summary(*rows, r));
    return out;
  }

  Result<std::vector<Message>> messages_after(std::string_view session_id, int64_t after_seq,
                                              int limit) override {
    QueryTimer timer(db_.options.metrics, "message_history");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    // As MessageRepository::history reads them: not pending, not empty.
    static const std::string sql =
        std::string("SELECT ") + kMessageReadColumns +
        " FROM messages WHERE session_id = $1 AND seq > $2 AND status NOT IN ('pending', "
        "'replaced') "
        "AND (content <> '' OR tool_calls IS NOT NULL) ORDER BY seq LIMIT $3";
    auto rows = (**lease).query(sql, Params().text(session_id).integer(after_seq).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<Message> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) out.push_back(read_message(*rows, r, 0));
    return out;
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<SummaryRepository> make_summary_table(Database& db) {
  return std::make_unique<SummaryTable>(db);
}

}  // namespace parley::store::postgres
