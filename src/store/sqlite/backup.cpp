// SQLite online backup and restore (see backup.hpp).
#include "store/sqlite/backup.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "store/sqlite/migrations.hpp"

namespace parley::store::sqlite {
namespace {

namespace fs = std::filesystem;

using Db = std::unique_ptr<sqlite3, int (*)(sqlite3*)>;

Result<Db> open_file(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw, sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    return Error::unavailable(
        "cannot open '" + path + "': " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)),
        "storage_unavailable");
  }
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

// Copies every page of `from` into `to` in one step (one read transaction on `from`).
Result<int64_t> copy_pages(sqlite3* from, sqlite3* to, const std::string& what) {
  sqlite3_backup* b = sqlite3_backup_init(to, "main", from, "main");
  if (!b) return Error::internal(what + ": " + sqlite3_errmsg(to));
  const int rc = sqlite3_backup_step(b, -1);
  const int64_t pages = sqlite3_backup_pagecount(b);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return Error::unavailable(what + ": " + sqlite3_errstr(rc), "storage_unavailable");
  }
  return pages;
}

// The schema version and integrity of a database file: a backup is checked before it is
// trusted, as a destination and as a source.
Result<int> check(sqlite3* db, const std::string& path) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &stmt, nullptr) != SQLITE_OK) {
    return Error::invalid("'" + path + "' is not a SQLite database: " + sqlite3_errmsg(db));
  }
  std::string verdict;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    verdict = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  if (verdict != "ok") {
    return Error::invalid("'" + path + "' fails its integrity check: " + verdict);
  }
  int version = 0;
  if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    return Error::invalid("'" + path + "' is not a Parley database (no schema_migrations)");
  }
  if (sqlite3_step(stmt) == SQLITE_ROW) version = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  if (version > latest_schema_version()) {
    return Error::invalid("'" + path + "' has schema version " + std::to_string(version) +
                          ", newer than this build of Parley (" +
                          std::to_string(latest_schema_version()) + ")");
  }
  return version;
}

Result<void> fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return Error::internal("cannot open '" + path + "' to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error::internal("cannot sync '" + path + "'");
  return success();
}

}  // namespace

Result<BackupReport> backup(const std::string& database, const std::string& destination) {
  if (!fs::exists(database)) return Error::invalid("no database at '" + database + "'");
  auto from = open_file(database, SQLITE_OPEN_READONLY);
  if (!from) return std::move(from).error();
  const std::string partial = destination + ".partial";
  std::error_code ignored;
  fs::remove(partial, ignored);
  BackupReport report;
  {
    auto to = open_file(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (!to) return std::move(to).error();
    auto pages = copy_pages(from->get(), to->get(), "backup of '" + database + "'");
    if (!pages) {
      fs::remove(partial, ignored);
      return std::move(pages).error();
    }
    report.pages = *pages;
    // The copy is a plain rollback-journal file: one self-contained file to move around.
    sqlite3_exec(to->get(), "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
    auto version = check(to->get(), partial);
    if (!version) {
      fs::remove(partial, ignored);
      return std::move(version).error();
    }
    report.schema_version = *version;
  }
  if (auto r = fsync_file(partial); !r) return std::move(r).error();
  std::error_code ec;
  fs::rename(partial, destination, ec);
  if (ec) return Error::internal("cannot move the backup into place: " + ec.message());
  report.bytes = static_cast<int64_t>(fs::file_size(destination, ignored));
  return report;
}

Result<BackupReport> restore(const std::string& backup_file, const std::string& database) {
  if (!fs::exists(backup_file)) return Error::invalid("no backup at '" + backup_file + "'");
  for (const char* suffix : {"-wal", "-shm"}) {
    if (fs::exists(database + suffix)) {
      return Error::conflict(
          "'" + database + suffix +
              "' exists: a server is using this database, or one stopped without closing it. "
              "Stop the server (or, after a crash, start and stop it once) and restore again",
          "database_in_use");
    }
  }
  auto from = open_file(backup_file, SQLITE_OPEN_READONLY);
  if (!from) return std::move(from).error();
  auto version = check(from->get(), backup_file);
  if (!version) return std::move(version).error();
  fs::path parent = fs::path(database).parent_path();
  std::error_code ignored;
  if (!parent.empty()) fs::create_directories(parent, ignored);
  auto to = open_file(database, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!to) return std::move(to).error();
  auto pages = copy_pages(from->get(), to->get(), "restore into '" + database + "'");
  if (!pages) return std::move(pages).error();
  BackupReport report;
  report.pages = *pages;
  report.schema_version = *version;
  report.bytes = static_cast<int64_t>(fs::file_size(database, ignored));
  return report;
}

}  // namespace parley::store::sqlite
