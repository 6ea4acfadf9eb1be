// Whole SQLite tables as rows (store/tables.hpp), for `parley copy-data`.
#include <charconv>

#include "store/sqlite/database.hpp"

namespace parley::store::sqlite {
namespace {

std::string column_list(const Table& table) {
  std::string out;
  for (const auto& c : table.columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

std::string real_text(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, static_cast<size_t>(end - buf));
}

class SqliteTables final : public TableAccess {
 public:
  explicit SqliteTables(Database& db) : db_(db) {}

  Result<RowPage> read_rows(const Table& table, const std::string& after, int limit) override {
    QueryTimer timer(db_.options.metrics, "table_read");
    // Names come from the fixed table list, never from input.
    const std::string sql = std::string("SELECT ") + table.order_by + ", " + column_list(table) +
                            " FROM " + table.name + " WHERE " + table.order_by + " > ? ORDER BY " +
                            table.order_by + " LIMIT ?";
    auto db = db_.readers.borrow();
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db->raw(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return db->last_error("read table");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(raw, sqlite3_finalize);
    Statement stmt(raw);
    if (std::string_view(table.order_by) == "seq") {
      int64_t seq = 0;
      std::from_chars(after.data(), after.data() + after.size(), seq);
      stmt.bind(1, seq);
    } else {
      stmt.bind(1, after);
    }
    stmt.bind(2, static_cast<int64_t>(limit));
    RowPage page;
    int rc;
    while ((rc = stmt.step()) == SQLITE_ROW) {
      Row row;
      for (size_t i = 0; i < table.columns.size(); ++i) {
        const int col = static_cast<int>(i) + 1;
        if (stmt.column_is_null(col)) {
          row.emplace_back(std::nullopt);
        } else if (table.columns[i].type == ColumnType::kInteger) {
          row.emplace_back(std::to_string(stmt.column_int(col)));
        } else if (table.columns[i].type == ColumnType::kReal) {
          row.emplace_back(real_text(stmt.column_double(col)));
        } else {
          row.emplace_back(stmt.column_text(col));
        }
      }
      page.last = stmt.column_text(0);
      page.rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) return db->last_error("read table");
    return page;
  }

  Result<void> write_rows(const Table& table, const std::vector<Row>& rows) override {
    if (rows.empty()) return success();
    QueryTimer timer(db_.options.metrics, "table_write");
    std::string sql =
        std::string("INSERT INTO ") + table.name + " (" + column_list(table) + ") VALUES (";
    for (size_t i = 0; i < table.columns.size(); ++i) sql += i ? ", ?" : "?";
    sql += ")";
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return Error::unavailable("storage is closed", "storage_closed");
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.writer->raw(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return db_.writer->last_error("write table");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(raw, sqlite3_finalize);
    for (const Row& row : rows) {
      Statement stmt(raw);  // resets the statement for the next row when it goes
      for (size_t i = 0; i < table.columns.size(); ++i) {
        const int index = static_cast<int>(i) + 1;
        const auto& value = row[i];
        if (!value) {
          stmt.bind_null(index);
          continue;
        }
        switch (table.columns[i].type) {
          case ColumnType::kInteger: {
            int64_t n = 0;
            std::from_chars(value->data(), value->data() + value->size(), n);
            stmt.bind(index, n);
            break;
          }
          case ColumnType::kReal:
            stmt.bind_double(index, std::strtod(value->c_str(), nullptr));
            break;
          case ColumnType::kBytes:
            stmt.bind_blob(index, *value);
            break;
          case ColumnType::kText:
            stmt.bind(index, std::string_view(*value));
            break;
        }
      }
      if (stmt.step() != SQLITE_DONE) return db_.writer->last_error("write table");
    }
    return tx.commit();
  }

  Result<int64_t> count_rows(const Table& table) override {
    auto db = db_.readers.borrow();
    const std::string sql = std::string("SELECT count(*) FROM ") + table.name;
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db->raw(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return db->last_error("count table");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(raw, sqlite3_finalize);
    Statement stmt(raw);
    if (stmt.step() != SQLITE_ROW) return db->last_error("count table");
    return stmt.column_int(0);
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<TableAccess> make_table_access(Database& db) {
  return std::make_unique<SqliteTables>(db);
}

}  // namespace parley::store::sqlite
