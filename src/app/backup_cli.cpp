// The `parley backup` and `parley restore` subcommands (see backup_cli.hpp).
#include "app/backup_cli.hpp"

#include <cstdio>

#include "store/settings.hpp"
#include "store/sqlite/backup.hpp"

namespace parley::app {
namespace {

int fail(const char* command, const std::string& message) {
  std::fprintf(stderr, "parley: %s: %s\n", command, message.c_str());
  return 1;
}

const char* kPostgres =
    "storage.url names PostgreSQL: back it up with pg_dump (logical) or pg_basebackup "
    "(physical, with WAL archiving for point-in-time recovery); see the README's Backups";

}  // namespace

int run_backup_command(const config::Settings& settings, const std::string& to) {
  auto path = store::sqlite_path(settings.get<store::StorageSettings>());
  if (!path) return fail("backup", kPostgres);
  auto report = store::sqlite::backup(*path, to);
  if (!report) return fail("backup", report.error().message);
  std::printf("backed up %s to %s: %lld bytes, schema version %d\n", path->c_str(), to.c_str(),
              static_cast<long long>(report->bytes), report->schema_version);
  return 0;
}

int run_restore_command(const config::Settings& settings, const std::string& from) {
  auto path = store::sqlite_path(settings.get<store::StorageSettings>());
  if (!path) return fail("restore", kPostgres);
  auto report = store::sqlite::restore(from, *path);
  if (!report) return fail("restore", report.error().message);
  std::printf("restored %s from %s: %lld bytes, schema version %d\n", path->c_str(), from.c_str(),
              static_cast<long long>(report->bytes), report->schema_version);
  return 0;
}

}  // namespace parley::app
