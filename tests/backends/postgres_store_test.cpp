// What only the PostgreSQL backend has, against the real test server (tests/support/
// test_postgres.hpp): migrations recorded as on SQLite and safe when several processes start
// together (the advisory lock), a server that cannot be reached named without its password,
// statement timeouts, a pool that waits a bounded time and then says so, connections the
// server ended replaced without an error reaching the caller, and the libpq parameters of
// the URL taking effect.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "store/postgres/connection.hpp"
#include "store/postgres/migrations.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/settings.hpp"
#include "store/sqlite/migrations.hpp"
#include "support/manual_clock.hpp"
#include "support/test_postgres.hpp"

namespace {

namespace pg = parley::store::postgres;
using parley::ErrorCode;
using parley::testing::PostgresDatabase;
using namespace std::chrono_literals;

pg::Options options_for(const PostgresDatabase& db) {
  pg::Options o;
  o.url = db.url();
  o.pool_size = 4;
  return o;
}

TEST(PostgresStore, OpenMigratesAndRecordsEveryVersion) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  auto store = pg::open(options_for(db));
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(db.query("SELECT max(version) FROM schema_migrations"),
            std::to_string(pg::latest_schema_version()));
  EXPECT_EQ(db.query("SELECT count(*) FROM schema_migrations"),
            std::to_string(pg::migrations().size()));
  auto stats = (*store)->stats(true);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->backend, "postgresql");
  EXPECT_EQ(stats->schema_version, pg::latest_schema_version());
  EXPECT_EQ(stats->integrity_check, std::optional<std::string>("ok"));
  EXPECT_GT(stats->size_bytes, 0);
  EXPECT_EQ(stats->location.find("@"), std::string::npos);
}

TEST(PostgresStore, TheSameVersionsAndNamesAsSqlite) {
  // copy-data and schema_version mean the same thing on both backends only if they agree.
  const auto& postgres = pg::migrations();
  const auto& sqlite = parley::store::sqlite::migrations();
  ASSERT_EQ(postgres.size(), sqlite.size());
  for (size_t i = 0; i < postgres.size(); ++i) {
    EXPECT_EQ(postgres[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(postgres[i].version, sqlite[i].version);
    EXPECT_EQ(std::string(postgres[i].name), std::string(sqlite[i].name));
  }
}

TEST(PostgresStore, ManyProcessesMigratingAtOnceApplyEachMigrationOnce) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  constexpr int kReplicas = 6;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::atomic<int> applied{0};
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&] {
      auto summary = pg::migrate_database(options_for(db));
      if (summary.ok()) {
        ++ok;
        applied += static_cast<int>(summary->applied.size());
      } else {
        ADD_FAILURE() << summary.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kReplicas);
  EXPECT_EQ(applied.load(), pg::latest_schema_version());
  EXPECT_EQ(db.query("SELECT count(*) FROM schema_migrations"),
            std::to_string(pg::migrations().size()));
}

TEST(PostgresStore, ANewerSchemaIsRefused) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  ASSERT_TRUE(pg::migrate_database(options_for(db)).ok());
  db.query("INSERT INTO schema_migrations VALUES (999, 'from_the_future', 0)");
  auto store = pg::open(options_for(db));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().reason, "schema_too_new");
  EXPECT_NE(store.error().message.find("999"), std::string::npos);
}

TEST(PostgresStore, OpenWithoutMigrateOnAnEmptyDatabaseSaysToMigrate) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  auto o = options_for(db);
  o.migrate = false;
  auto store = pg::open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().reason, "schema_mismatch");
  EXPECT_NE(store.error().message.find("parley migrate"), std::string::npos);
}

TEST(PostgresStore, AnUnreachableServerIsNamedWithoutItsPassword) {
  pg::Options o;
  // A port nothing listens on (the discard port, closed on loopback), with a password.
  o.url = "postgresql://parley:hunter2-canary@127.0.0.1:9/parley?connect_timeout=2";
  auto store = pg::open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(store.error().reason, "storage_down");
  EXPECT_NE(store.error().message.find("127.0.0.1:9/parley"), std::string::npos)
      << store.error().message;
  EXPECT_EQ(store.error().message.find("hunter2-canary"), std::string::npos);
}

TEST(PostgresStore, AWrongPasswordIsNotRepeatedBack) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  // The test server trusts every local connection, so a missing database stands in for a
  // refused login: the message must still never carry the password.
  std::string url = db.url();
  url.replace(url.find("postgres@"), 9, "postgres:hunter2-canary@");
  url += "_missing";
  pg::Options o;
  o.url = url;
  auto store = pg::open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message.find("hunter2-canary"), std::string::npos)
      << store.error().message;
  EXPECT_NE(store.error().message.find("_missing"), std::string::npos) << store.error().message;
}

TEST(PostgresStore, UrlParametersReachTheServer) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  auto conn = pg::Connection::open(db.url() + "?application_name=parley-canary&sslmode=disable",
                                   pg::ConnectOptions{});
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  auto name = (*conn)->query("SELECT current_setting('application_name')");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->text(0, 0), "parley-canary");
  auto plain = pg::Connection::open(db.url(), pg::ConnectOptions{});
  ASSERT_TRUE(plain.ok());
  auto fallback = (*plain)->query("SELECT current_setting('application_name')");
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ(fallback->text(0, 0), "parley");
}

TEST(PostgresStore, ALongStatementIsCancelledAtTheTimeout) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  pg::ConnectOptions options;
  options.statement_timeout = 200ms;
  auto conn = pg::Connection::open(db.url(), options);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  auto slow = (*conn)->query("SELECT pg_sleep(5)");
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(slow.error().reason, "storage_timeout");
  EXPECT_FALSE((*conn)->broken());  // still usable
  EXPECT_TRUE((*conn)->query("SELECT 1").ok());
}

TEST(PostgresStore, ABusyPoolWaitsThenSaysSo) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  pg::Pool pool(db.url(), pg::ConnectOptions{}, 1, 100ms);
  auto first = pool.borrow();
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = pool.borrow();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().reason, "storage_busy");
  EXPECT_NE(second.error().message.find("storage.pool_size"), std::string::npos);
}

TEST(PostgresStore, AConnectionTheServerEndedIsReplaced) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  auto store = pg::open(options_for(db));
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_TRUE((*store)->ping().ok());
  // An administrator (or a server restart) ends every connection of ours.
  db.query(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
      "current_database() AND pid <> pg_backend_pid()");
  // Terminating is asynchronous; wait until those backends are gone, as after a restart.
  for (int i = 0; i < 100; ++i) {
    if (db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                 "pid <> pg_backend_pid()") == "0")
      break;
    std::this_thread::sleep_for(20ms);
  }
  // The pool notices the idle connection was closed and lends a new one instead.
  for (int i = 0; i < 3; ++i) {
    auto ping = (*store)->ping();
    EXPECT_TRUE(ping.ok()) << ping.error().message;
  }
}

TEST(PostgresStore, FactoryOpensPostgresFromTheUrl) {
  PostgresDatabase db;
  ASSERT_FALSE(db.url().empty());
  parley::store::StorageSettings settings;
  settings.url = db.url();
  EXPECT_EQ(parley::store::backend_of(settings), parley::store::Backend::kPostgres);
  auto report = parley::store::migrate(settings);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->to_version, pg::latest_schema_version());
  EXPECT_EQ(report->where.find("postgres@"), std::string::npos);
  parley::store::OpenOptions options;
  options.migrate = false;
  auto store = parley::store::open(settings, options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_TRUE((*store)->ping().ok());
}

}  // namespace
