// The store factory (see settings.hpp): the one place that turns storage settings into an
// open backend, for every command.
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

Error unsupported() {
  return Error::unavailable(
      "storage.url names a PostgreSQL database, and this build of Parley stores data in SQLite "
      "only; leave storage.url empty or use sqlite:PATH",
      "storage_unsupported");
}

}  // namespace

Result<std::unique_ptr<Storage>> open(const StorageSettings& settings, const OpenOptions& options) {
  auto path = sqlite_path(settings);
  if (!path) return unsupported();
  auto sqlite = sqlite_options(*path, settings);
  sqlite.migrate = options.migrate;
  sqlite.metrics = options.metrics;
  if (options.read_connections > 0) sqlite.read_connections = options.read_connections;
  return sqlite::open(sqlite);
}

Result<MigrationReport> migrate(const StorageSettings& settings) {
  auto path = sqlite_path(settings);
  if (!path) return unsupported();
  auto summary = sqlite::migrate_database(sqlite_options(*path, settings));
  if (!summary) return std::move(summary).error();
  return MigrationReport{*path, summary->from_version, summary->to_version,
                         std::move(summary->applied)};
}

}  // namespace parley::store
