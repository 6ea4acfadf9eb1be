// The SQLite implementation of store::Storage: one write connection (SQLite allows one writer
// at a time; writes take BEGIN IMMEDIATE so they never deadlock upgrading a read lock) and a
// small pool of read connections that run in parallel with it thanks to WAL mode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::store::sqlite {

struct Options {
  std::string path;  // the database file; its directory is created if missing
  int read_connections = 4;
  int busy_timeout_ms = 5000;
  bool migrate = true;              // bring the schema up to date on open
  obs::Metrics* metrics = nullptr;  // optional; not owned, must outlive the store
  const Clock* clock = &Clock::system();
};

// Opens the store. Fails with a clear message when the directory cannot be created or
// written, the file is not a database, or the schema is newer than this build knows.
Result<std::unique_ptr<Storage>> open(const Options& options);

// `parley migrate`: creates the database if needed and applies pending migrations.
struct MigrationSummary {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;
};
Result<MigrationSummary> migrate_database(const Options& options);

}  // namespace parley::store::sqlite
