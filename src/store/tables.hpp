// Every table of the schema as plain rows, for moving a whole installation between backends
// (`parley copy-data`, store/copy.hpp). Both backends have the same tables and columns (their
// migrations keep the same versions), so a row read from one can be written to the other.
//
// Three tables are deliberately absent: database_identity (each database has its own),
// kb_changes and memory_changes (the change logs of the search and recall indexes; a copy
// rebuilds its indexes instead).
//
// Adding a table in a migration means adding it here too, in an order where a table comes
// after the tables it references; a test compares this list with the tables the migrations
// create.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace parley::store {

enum class ColumnType { kText, kInteger, kReal, kBytes };

struct Column {
  const char* name;
  ColumnType type;
};

struct Table {
  const char* name;
  // The column rows are read in order of, and the value before the first row.
  const char* order_by;
  const char* before_first;
  std::vector<Column> columns;  // every column but the backend's own row sequence
};

// Parents before children (sessions before messages).
const std::vector<Table>& tables();

// One row, a value per column in Table::columns order: text as is, integers in decimal, reals
// in their shortest exact decimal form, bytes raw; nullopt is NULL.
using Row = std::vector<std::optional<std::string>>;

struct RowPage {
  std::vector<Row> rows;
  std::string last;  // the order_by value of the last row, to read on from
};

class TableAccess {
 public:
  virtual ~TableAccess() = default;
  // Up to `limit` rows whose order_by value comes after `after`, in that order.
  virtual Result<RowPage> read_rows(const Table& table, const std::string& after, int limit) = 0;
  // Inserts the rows in one transaction.
  virtual Result<void> write_rows(const Table& table, const std::vector<Row>& rows) = 0;
  virtual Result<int64_t> count_rows(const Table& table) = 0;
};

}  // namespace parley::store
