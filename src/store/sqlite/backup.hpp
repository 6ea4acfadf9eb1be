// Online backup and restore of the SQLite database (`parley backup`, `parley restore`).
//
// backup copies the live database with SQLite's backup API in one read transaction: a
// consistent snapshot, taken while the server keeps writing (WAL readers never block the
// writer). It is written beside the destination and renamed into place once complete and
// fsynced, so a crash never leaves half a backup under the destination's name.
//
// restore puts a backup in place of the database. It needs the server stopped: while one runs
// (or after one crashed, until it has started again) the database has a -wal or -shm file
// beside it, and restore refuses.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace parley::store::sqlite {

struct BackupReport {
  int64_t bytes = 0;
  int64_t pages = 0;
  int schema_version = 0;
};

Result<BackupReport> backup(const std::string& database, const std::string& destination);
Result<BackupReport> restore(const std::string& backup_file, const std::string& database);

}  // namespace parley::store::sqlite
