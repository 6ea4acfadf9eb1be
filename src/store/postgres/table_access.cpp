// Whole PostgreSQL tables as rows (store/tables.hpp), for `parley copy-data`.
#include "store/postgres/database.hpp"

namespace parley::store::postgres {
namespace {

std::string column_list(const Table& table) {
  std::string out;
  for (const auto& c : table.columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

class PostgresTables final : public TableAccess {
 public:
  explicit PostgresTables(Database& db) : db_(db) {}

  Result<RowPage> read_rows(const Table& table, const std::string& after, int limit) override {
    QueryTimer timer(db_.options.metrics, "table_read");
    // Names come from the fixed table list, never from input. Text keys compare byte by byte
    // (COLLATE "C") so paging never depends on the database's locale.
    const bool text_key = std::string_view(table.order_by) != "seq";
    const std::string key = std::string(table.order_by) + (text_key ? " COLLATE \"C\"" : "");
    const std::string sql = std::string("SELECT ") + table.order_by + ", " + column_list(table) +
                            " FROM " + table.name + " WHERE " + key + " > $1 ORDER BY " + key +
                            " LIMIT $2";
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(sql, Params().text(after).integer(limit));
    if (!rows) return std::move(rows).error();
    RowPage page;
    for (int r = 0; r < rows->size(); ++r) {
      Row row;
      for (size_t i = 0; i < table.columns.size(); ++i) {
        const int col = static_cast<int>(i) + 1;
        if (rows->is_null(r, col)) {
          row.emplace_back(std::nullopt);
        } else if (table.columns[i].type == ColumnType::kBytes) {
          row.emplace_back(rows->bytes(r, col));
        } else {
          // Integers print in decimal, float8 in its shortest exact form: already Row's text.
          row.emplace_back(rows->text(r, col));
        }
      }
      page.last = rows->text(r, 0);
      page.rows.push_back(std::move(row));
    }
    return page;
  }

  Result<void> write_rows(const Table& table, const std::vector<Row>& rows) override {
    if (rows.empty()) return success();
    QueryTimer timer(db_.options.metrics, "table_write");
    std::string sql =
        std::string("INSERT INTO ") + table.name + " (" + column_list(table) + ") VALUES (";
    for (size_t i = 0; i < table.columns.size(); ++i) {
      sql += i ? ", $" : "$";
      sql += std::to_string(i + 1);
    }
    sql += ")";
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    for (const Row& row : rows) {
      Params params;
      for (size_t i = 0; i < table.columns.size(); ++i) {
        if (!row[i]) {
          params.null();
        } else if (table.columns[i].type == ColumnType::kBytes) {
          params.bytes(*row[i]);
        } else {
          params.text(*row[i]);
        }
      }
      auto inserted = db.query(sql, params);
      if (!inserted) return std::move(inserted).error();
    }
    return tx.commit();
  }

  Result<int64_t> count_rows(const Table& table) override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(std::string("SELECT count(*) FROM ") + table.name);
    if (!rows) return std::move(rows).error();
    return rows->integer(0, 0);
  }

 private:
  Database& db_;
};

}  // namespace

std::unique_ptr<TableAccess> make_table_access(Database& db) {
  return std::make_unique<PostgresTables>(db);
}

}  // namespace parley::store::postgres
