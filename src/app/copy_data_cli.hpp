// `parley copy-data --from URL --to URL`: a whole installation from one database to another
// (store/copy.hpp), typically the SQLite file to PostgreSQL. The destination is migrated to
// this build's schema first; the source must already be at it (`parley migrate` on it first).
#pragma once

#include <string>

namespace parley::app {

struct CopyDataCommand {
  std::string from;
  std::string to;
  int batch_rows = 1000;
};

// Prints progress and row counts; returns the exit code.
int run_copy_data_command(const CopyDataCommand& command);

}  // namespace parley::app
