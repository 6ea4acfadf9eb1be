// Versioned schema migrations for SQLite. Each migration runs once, in its own transaction,
// and is recorded in schema_migrations(version, name, applied_at). Versions only grow; a
// database from a newer Parley (higher version than we know) is refused rather than guessed at.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/sqlite/connection.hpp"

namespace parley::store::sqlite {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<Migration>& migrations();
int latest_schema_version();

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // "2 add_messages"
};

// Brings the database to the latest version. Safe to run concurrently from several processes:
// the BEGIN IMMEDIATE lock serializes them and each re-checks the version inside it.
Result<MigrationReport> migrate(Connection& db, int64_t now_ms);

// The version recorded in the database (0 when no migration ran yet).
Result<int> current_schema_version(Connection& db);

}  // namespace parley::store::sqlite
