// Where data lives: `data_dir` and `storage.*`, and the one factory that opens the store they
// name for every command (serve, worker, migrate, keys, copy-data). SQLite is the embedded
// default; the URL forms are "sqlite:relative/path.db" and "sqlite:///absolute/path.db",
// empty meaning <data_dir>/parley.db. PostgreSQL is "postgresql://USER:PASSWORD@HOST:PORT/DB"
// with any libpq parameter in the query (sslmode, connect_timeout, application_name, ...).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace parley::config {
class Schema;
}

namespace parley::obs {
class Metrics;
}

namespace parley::store {

struct StorageSettings {
  std::string data_dir = "./data";
  std::string url;  // empty = SQLite file <data_dir>/parley.db; its userinfo is secret
  std::chrono::milliseconds busy_timeout{5'000};
  int read_connections = 4;                             // SQLite
  int pool_size = 10;                                   // PostgreSQL connections per process
  std::chrono::milliseconds statement_timeout{30'000};  // PostgreSQL
  // A replica not heard from for this long is dead: its pending replies become interrupted.
  std::chrono::milliseconds replica_timeout{30'000};
};

enum class Backend { kSqlite, kPostgres };
Backend backend_of(const StorageSettings& settings);

void declare_settings(config::Schema& schema);

// The SQLite file the settings name, or nullopt when storage.url names another backend.
std::optional<std::string> sqlite_path(const StorageSettings& settings);

struct OpenOptions {
  bool migrate = true;  // bring the schema up to date on open
  int connections = 0;  // 0: storage.read_connections (SQLite) or storage.pool_size
  obs::Metrics* metrics = nullptr;
  const Clock* clock = &Clock::system();
};

// Opens the store the settings name, with the backend's own errors: a directory that cannot
// be created, a file that is not a database, a server that cannot be reached (named, without
// its password), a schema newer than this build.
Result<std::unique_ptr<Storage>> open(const StorageSettings& settings, const OpenOptions& options);

// `parley migrate`: creates the database if needed and applies pending migrations.
struct MigrationReport {
  std::string where;  // the database, credentials left out
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;
};
Result<MigrationReport> migrate(const StorageSettings& settings);

}  // namespace parley::store
