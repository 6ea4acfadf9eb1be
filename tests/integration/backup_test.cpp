// `parley backup` and `parley restore` on the SQLite database: a backup taken while sessions are
// being written is a consistent database holding every session acknowledged before it began
// (and none half-written); restore refuses a database a server is using, and into a stopped
// one puts the backup back so a server started on it serves exactly what was backed up.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "harness.hpp"

namespace {

using namespace parley_it;

int64_t count_sessions(const std::string& db_file) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return n;
}

TEST(Backup, AConsistentCopyUnderWriteLoadAndARestoreThatServesIt) {
  auto server = std::make_unique<ParleyProcess>();
  const std::string data_dir = server->data_dir();
  std::atomic<bool> writing{true};
  std::atomic<int64_t> acknowledged{0};
  std::thread writer([&] {
    while (writing) {
      auto r = http("POST", server->port(), "/api/v1/sessions", R"({"user_id":"w"})");
      if (r.status == 201) ++acknowledged;
    }
  });
  while (acknowledged < 50) std::this_thread::sleep_for(Millis{5});
  TempDir out("parley-backup");
  const std::string file = out.file("parley-backup.db");
  const int64_t before = acknowledged.load();
  auto backup = run_parley({"backup", "--data-dir", data_dir, "--to", file});
  const int64_t after = acknowledged.load();
  EXPECT_EQ(backup.exit_code(), 0) << backup.describe();
  EXPECT_NE(backup.out.find("schema version"), std::string::npos) << backup.describe();
  std::this_thread::sleep_for(Millis{100});
  writing = false;
  writer.join();

  const int64_t copied = count_sessions(file);
  EXPECT_GE(copied, before);
  EXPECT_LE(copied, after + 1);  // at most the one in flight when it began
  EXPECT_FALSE(file_exists(file + ".partial"));

  // Not over a database in use.
  auto busy = run_parley({"restore", "--data-dir", data_dir, "--from", file});
  EXPECT_NE(busy.exit_code(), 0);
  EXPECT_NE(busy.err.find("Stop the server"), std::string::npos) << busy.describe();

  ASSERT_TRUE(server->send_signal(SIGTERM));
  ASSERT_TRUE(server->wait_exit(Millis{10000}).has_value());
  server.reset();

  TempDir fresh("parley-restored");
  auto restored = run_parley({"restore", "--data-dir", fresh.path(), "--from", file});
  ASSERT_EQ(restored.exit_code(), 0) << restored.describe();
  ParleyProcess again({.existing_data_dir = fresh.path()});
  auto listed = http("GET", again.port(), "/api/v1/sessions?limit=100&user_id=w");
  ASSERT_EQ(listed.status, 200) << listed.describe();
  EXPECT_EQ(count_sessions(fresh.path() + "/parley.db"), copied);

  auto missing = run_parley({"backup", "--data-dir", fresh.path() + "/nowhere", "--to", file});
  EXPECT_NE(missing.exit_code(), 0);
  EXPECT_NE(missing.err.find("no database"), std::string::npos) << missing.describe();
}

}  // namespace
