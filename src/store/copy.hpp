// Moving a whole installation from one database to another (`parley copy-data`): the usual
// road is from the embedded SQLite file to PostgreSQL once one process is no longer enough.
// Every table (store/tables.hpp) is read in order and written in batches, parents before
// children, ids and timestamps kept; then each table's rows are counted on both sides.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/store.hpp"

namespace parley::store {

struct TableCopied {
  std::string table;
  int64_t rows = 0;  // read from the source, written to the destination, and counted there
};

struct CopyReport {
  std::vector<TableCopied> tables;
  int64_t total_rows() const;
};

// `to` must hold no rows (kConflict "destination_not_empty" otherwise: copying twice would
// duplicate everything). The source should have no writers meanwhile; a count that differs
// at the end is kInternal "copy_incomplete". `progress` hears each table's running count.
Result<CopyReport> copy_data(Storage& from, Storage& to, int batch_rows,
                             const std::function<void(const std::string&, int64_t)>& progress = {});

}  // namespace parley::store
