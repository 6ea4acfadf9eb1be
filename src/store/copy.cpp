#include "store/copy.hpp"

namespace parley::store {

int64_t CopyReport::total_rows() const {
  int64_t total = 0;
  for (const auto& t : tables) total += t.rows;
  return total;
}

Result<CopyReport> copy_data(Storage& from, Storage& to, int batch_rows,
                             const std::function<void(const std::string&, int64_t)>& progress) {
  for (const Table& table : tables()) {
    auto existing = to.table_access().count_rows(table);
    if (!existing) return std::move(existing).error();
    if (*existing > 0) {
      return Error::conflict("the destination already holds " + std::to_string(*existing) +
                                 " rows in " + table.name +
                                 "; copy-data copies into an empty database",
                             "destination_not_empty");
    }
  }
  CopyReport report;
  for (const Table& table : tables()) {
    TableCopied copied{table.name, 0};
    std::string after = table.before_first;
    for (;;) {
      auto page = from.table_access().read_rows(table, after, batch_rows);
      if (!page) return std::move(page).error();
      if (page->rows.empty()) break;
      if (auto written = to.table_access().write_rows(table, page->rows); !written) {
        Error e = std::move(written).error();
        e.message = std::string("writing ") + table.name + ": " + e.message;
        return e;
      }
      copied.rows += static_cast<int64_t>(page->rows.size());
      after = std::move(page->last);
      if (progress) progress(table.name, copied.rows);
    }
    auto source_rows = from.table_access().count_rows(table);
    if (!source_rows) return std::move(source_rows).error();
    auto destination_rows = to.table_access().count_rows(table);
    if (!destination_rows) return std::move(destination_rows).error();
    if (*source_rows != copied.rows || *destination_rows != copied.rows) {
      Error e = Error::internal(
          std::string(table.name) + ": the source holds " + std::to_string(*source_rows) +
          " rows, " + std::to_string(copied.rows) +
          " were copied and the destination "
          "holds " +
          std::to_string(*destination_rows) + "; was something writing to the source?");
      e.reason = "copy_incomplete";
      return e;
    }
    report.tables.push_back(std::move(copied));
  }
  return report;
}

}  // namespace parley::store
