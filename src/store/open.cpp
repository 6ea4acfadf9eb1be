// The store factory (see settings.hpp): the one place that turns storage settings into an
// open backend, for every command.
#include "store/postgres/postgres_store.hpp"
#include "store/settings.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace parley::store {
namespace {

sqlite::Options sqlite_options(const std::string& path, const StorageSettings& settings) {
  sqlite::Options options;
  options.path = path;
  options.read_connections = settings.read_connections;
  options.busy_timeout_ms = static_cast<int>(settings.busy_timeout.count());
  return options;
}

postgres::Options postgres_options(const StorageSettings& settings) {
  postgres::Options options;
  options.url = settings.url;
  options.pool_size = settings.pool_size;
  options.pool_wait = settings.busy_timeout;
  options.connect.lock_timeout = settings.busy_timeout;
  options.connect.statement_timeout = settings.statement_timeout;
  return options;
}

}  // namespace

Backend backend_of(const StorageSettings& settings) {
  return sqlite_path(settings) ? Backend::kSqlite : Backend::kPostgres;
}

Result<std::unique_ptr<Storage>> open(const StorageSettings& settings, const OpenOptions& options) {
  if (auto path = sqlite_path(settings)) {
    auto sqlite = sqlite_options(*path, settings);
    sqlite.migrate = options.migrate;
    sqlite.metrics = options.metrics;
    sqlite.clock = options.clock;
    if (options.connections > 0) sqlite.read_connections = options.connections;
    return sqlite::open(sqlite);
  }
  auto postgres = postgres_options(settings);
  postgres.migrate = options.migrate;
  postgres.metrics = options.metrics;
  postgres.clock = options.clock;
  if (options.connections > 0) postgres.pool_size = options.connections;
  return postgres::open(postgres);
}

Result<MigrationReport> migrate(const StorageSettings& settings) {
  if (auto path = sqlite_path(settings)) {
    auto summary = sqlite::migrate_database(sqlite_options(*path, settings));
    if (!summary) return std::move(summary).error();
    return MigrationReport{*path, summary->from_version, summary->to_version,
                           std::move(summary->applied)};
  }
  auto summary = postgres::migrate_database(postgres_options(settings));
  if (!summary) return std::move(summary).error();
  return MigrationReport{postgres::describe(settings.url), summary->from_version,
                         summary->to_version, std::move(summary->applied)};
}

}  // namespace parley::store
