// Versioned schema migrations for PostgreSQL: the same versions and names as SQLite's
// (store/sqlite/migrations.cpp), each in the dialect of its backend, so `schema_version`
// means the same thing on both and `parley copy-data` can move rows between them.
//
// Safe when several replicas start at once: the whole run holds a session-level advisory
// lock, so one replica migrates while the others wait and then find nothing left to do.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/postgres/connection.hpp"

namespace parley::store::postgres {

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
  std::vector<std::string> applied;  // "2 create_messages_and_usage"
};

Result<MigrationReport> migrate(Connection& conn, int64_t now_ms);

// The version recorded in the database (0 when no migration ran yet).
Result<int> current_schema_version(Connection& conn);

}  // namespace parley::store::postgres
