// SQLite storage (store/sqlite/sqlite_store.hpp, migrations.hpp, connection.hpp) against real
// database files in fresh temporary directories. Covers: open creating missing directories and
// migrating to the latest schema; re-opening being idempotent (one schema_migrations row per
// migration, data kept); migrate_database reporting what it applied; the sessions repository
// (create/get with ids "sess_" + 26 base32 characters, text stored verbatim, list newest first
// with cursor pages that continue without overlap or gaps, filtering by user, invalid cursors
// as kInvalidArgument, update touching only the given fields with an explicit null clearing
// the title, remove then kNotFound); stats with integrity_check "ok"; refusal, with a clear
// message, of a database whose schema is newer than this build, of a file that is not a
// database (left untouched), and of a data directory below a regular file; storage timings
// reaching the metrics; and concurrent creates from several threads all succeeding.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "obs/metrics.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "support/manual_clock.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

// "prefix" + number, built by appending: g++ 12 -O3 reports a false -Wrestrict for
// `"literal" + std::to_string(n)`.
std::string numbered(const char* prefix, int n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}
namespace sq = parley::store::sqlite;
using parley::ErrorCode;
using parley::store::NewSession;
using parley::store::Session;
using parley::store::SessionListQuery;
using parley::store::SessionPatch;
using parley::store::Storage;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

using parley::testing::TempDir;
using namespace std::chrono_literals;

// Direct SQLite access, independent of the code under test.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

int64_t raw_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    ADD_FAILURE() << "cannot open " << path;
    return -1;
  }
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  } else {
    ADD_FAILURE() << "query failed: " << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  sq::Options options(const std::string& relative = "data/parley.db") {
    sq::Options o;
    o.path = dir.path() + "/" + relative;
    o.read_connections = 3;
    o.busy_timeout_ms = 5000;
    o.clock = &clock;
    return o;
  }

  std::unique_ptr<Storage> open_ok(const sq::Options& o) {
    auto r = sq::open(o);
    if (!r.ok()) {
      ADD_FAILURE() << "open failed: " << r.error().message;
      return nullptr;
    }
    return std::move(r).value();
  }

  Session create(Storage& s, const std::string& user,
                 std::optional<std::string> title = std::nullopt,
                 const std::string& metadata = "{}") {
    NewSession n;
    n.user_id = user;
    n.assistant = "asst_default";
    n.title = std::move(title);
    n.metadata_json = metadata;
    auto r = s.sessions().create(n);
    if (!r.ok()) {
      ADD_FAILURE() << "create failed: " << r.error().message;
      return {};
    }
    clock.advance(10ms);
    return std::move(r).value();
  }

  TempDir dir;
  // Moved by hand, so timestamps are exact.
  parley::ManualClock clock;
};

// --- Opening and migrations -------------------------------------------------------------

TEST_F(SqliteStoreTest, OpenCreatesTheDirectoryAndMigrates) {
  auto o = options("nested/deeper/parley.db");
  ASSERT_FALSE(fs::exists(dir.path() + "/nested"));
  auto store = open_ok(o);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::is_directory(dir.path() + "/nested/deeper"));
  EXPECT_TRUE(fs::is_regular_file(o.path));

  auto stats = store->stats(false);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->backend, "sqlite");
  EXPECT_EQ(stats->location, o.path);
  EXPECT_EQ(stats->schema_version, sq::latest_schema_version());
  EXPECT_GE(sq::latest_schema_version(), 1);
  EXPECT_EQ(stats->read_connections, 3);
  EXPECT_FALSE(stats->integrity_check.has_value());
  EXPECT_TRUE(store->ping().ok());
  store->close();

  EXPECT_EQ(raw_int(o.path, "SELECT MAX(version) FROM schema_migrations"),
            sq::latest_schema_version());
  EXPECT_EQ(
      raw_int(o.path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='sessions'"),
      1);
}

TEST_F(SqliteStoreTest, ReopenIsIdempotentAndKeepsData) {
  auto o = options();
  std::string id;
  {
    auto store = open_ok(o);
    ASSERT_NE(store, nullptr);
    id = create(*store, "user_1", "kept").id;
    store->close();
    store->close();  // idempotent
  }
  for (int i = 0; i < 2; ++i) {
    auto store = open_ok(o);
    ASSERT_NE(store, nullptr);
    auto got = store->sessions().get(id);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->title, std::optional<std::string>("kept"));
    auto stats = store->stats(false);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->schema_version, sq::latest_schema_version());
  }
  EXPECT_EQ(raw_int(o.path, "SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(sq::migrations().size()));
  EXPECT_EQ(raw_int(o.path, "SELECT count(*) FROM sessions"), 1);
}

TEST_F(SqliteStoreTest, MigrateDatabaseReportsWhatItApplied) {
  auto o = options();
  auto first = sq::migrate_database(o);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->from_version, 0);
  EXPECT_EQ(first->to_version, sq::latest_schema_version());
  ASSERT_EQ(first->applied.size(), sq::migrations().size());
  EXPECT_EQ(first->applied.front(), "1 create_sessions");

  auto second = sq::migrate_database(o);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->from_version, sq::latest_schema_version());
  EXPECT_EQ(second->to_version, sq::latest_schema_version());
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(raw_int(o.path, "SELECT applied_at FROM schema_migrations WHERE version = 1"),
            clock.unix_ms());
}

TEST_F(SqliteStoreTest, MigrationVersionsAreIncreasing) {
  const auto& all = sq::migrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i) + 1);
    EXPECT_NE(std::string(all[i].name), "");
  }
  EXPECT_EQ(sq::latest_schema_version(), all.back().version);
}

TEST_F(SqliteStoreTest, SchemaVersionOfAFreshDatabaseIsZero) {
  // migrations.hpp: "The version recorded in the database (0 when no migration ran yet)."
  auto conn = sq::Connection::open(dir.path() + "/fresh.db", true, 1000);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  auto version = sq::current_schema_version(**conn);
  ASSERT_TRUE(version.ok()) << version.error().message;
  EXPECT_EQ(*version, 0);
}

TEST_F(SqliteStoreTest, OpenWithoutMigrateOnAFreshDatabaseSaysToMigrate) {
  auto o = options();
  o.migrate = false;
  auto r = sq::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("parley migrate"));
}

TEST_F(SqliteStoreTest, OpenWithoutMigrateOnACurrentDatabaseWorks) {
  auto o = options();
  ASSERT_TRUE(sq::migrate_database(o).ok());
  o.migrate = false;
  auto store = open_ok(o);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->ping().ok());
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefusedWithAClearMessage) {
  auto o = options();
  {
    auto store = open_ok(o);
    ASSERT_NE(store, nullptr);
    store->close();
  }
  const int future = sq::latest_schema_version() + 1;
  raw_exec(o.path, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
                       std::to_string(future) + ", 'from_the_future', 0)");
  auto r = sq::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "schema_too_new");
  EXPECT_THAT(r.error().message, HasSubstr("newer"));
  EXPECT_THAT(r.error().message, HasSubstr(std::to_string(future)));
  EXPECT_THAT(r.error().message, HasSubstr("upgrade Parley"));
  // Nothing was changed by the refused open.
  EXPECT_EQ(raw_int(o.path, "SELECT MAX(version) FROM schema_migrations"), future);

  auto m = sq::migrate_database(o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().reason, "schema_too_new");
}

TEST_F(SqliteStoreTest, NonDatabaseFileIsRefusedAndLeftAlone) {
  auto o = options("notes.db");
  std::string content;
  for (int i = 0; i < 64; ++i) content += "this is a text file, not an SQLite database. ";
  {
    std::ofstream out(o.path, std::ios::binary);
    out << content;
  }
  auto r = sq::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, MatchesRegex(".*not a (usable SQLite )?database.*"));
  EXPECT_EQ(read_file(o.path), content);
  EXPECT_FALSE(fs::exists(o.path + "-wal"));
}

TEST_F(SqliteStoreTest, DataDirectoryBelowARegularFileFails) {
  {
    std::ofstream out(dir.path() + "/blocker");
    out << "a file, not a directory";
  }
  auto o = options("blocker/sub/parley.db");
  auto r = sq::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().message, HasSubstr("cannot create data directory"));
  EXPECT_THAT(r.error().message, HasSubstr(dir.path() + "/blocker/sub"));
}

TEST_F(SqliteStoreTest, UnwritableDataDirectoryFails) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write to any directory";
  const std::string locked = dir.path() + "/locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  auto r = sq::open(options("locked/parley.db"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("not writable"));
}

// --- Sessions ---------------------------------------------------------------------------

TEST_F(SqliteStoreTest, CreateAndGet) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  NewSession n;
  n.user_id = "user_42";
  n.assistant = "asst_helper";
  n.title = "First chat";
  n.metadata_json = R"({"topic":"x"})";
  const int64_t t0 = clock.unix_ms();
  auto created = store->sessions().create(n);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_THAT(created->id, MatchesRegex("sess_[0-9a-hjkmnp-tv-z]{26}"));
  EXPECT_EQ(created->created_at_ms, t0);
  EXPECT_EQ(created->updated_at_ms, t0);

  auto got = store->sessions().get(created->id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, created->id);
  EXPECT_EQ(got->user_id, "user_42");
  EXPECT_EQ(got->assistant, "asst_helper");
  EXPECT_EQ(got->title, std::optional<std::string>("First chat"));
  EXPECT_EQ(got->metadata_json, R"({"topic":"x"})");
  EXPECT_EQ(got->created_at_ms, t0);

  auto untitled = create(*store, "user_42");
  auto got_untitled = store->sessions().get(untitled.id);
  ASSERT_TRUE(got_untitled.ok());
  EXPECT_FALSE(got_untitled->title.has_value());
  EXPECT_NE(untitled.id, created->id);
}

TEST_F(SqliteStoreTest, TextIsStoredVerbatim) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  const std::string title =
      "'); DROP TABLE sessions; -- \xe2\x82\xac \"q\" " + std::string("nul\0inside", 10);
  auto s = create(*store, "o'brien", title, R"({"k":"v'"})");
  auto got = store->sessions().get(s.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->title, std::optional<std::string>(title));
  EXPECT_EQ(got->user_id, "o'brien");
  EXPECT_EQ(got->metadata_json, R"({"k":"v'"})");
  EXPECT_EQ(raw_int(options().path, "SELECT count(*) FROM sessions"), 1);
}

TEST_F(SqliteStoreTest, GetMissingIsNotFound) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  auto r = store->sessions().get("sess_doesnotexist");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().reason, "session_not_found");
  EXPECT_THAT(r.error().message, HasSubstr("sess_doesnotexist"));
}

TEST_F(SqliteStoreTest, ListPagesNewestFirstWithoutOverlap) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(create(*store, "user_1", numbered("t", i)).id);
  const std::vector<std::string> newest_first(ids.rbegin(), ids.rend());

  std::vector<std::string> seen;
  SessionListQuery q;
  q.limit = 3;
  std::vector<size_t> page_sizes;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = store->sessions().list(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    page_sizes.push_back(page->items.size());
    for (const auto& s : page->items) seen.push_back(s.id);
    if (!page->next_cursor) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{3, 3, 1}));
  EXPECT_EQ(seen, newest_first);
}

TEST_F(SqliteStoreTest, LastFullPageHasNoCursor) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 4; ++i) create(*store, "u");
  SessionListQuery q;
  q.limit = 2;
  auto first = store->sessions().list(q);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->items.size(), 2u);
  ASSERT_TRUE(first->next_cursor.has_value());
  q.cursor = first->next_cursor;
  auto second = store->sessions().list(q);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->items.size(), 2u);
  EXPECT_FALSE(second->next_cursor.has_value());

  SessionListQuery all;
  all.limit = 4;
  auto exact = store->sessions().list(all);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->items.size(), 4u);
  EXPECT_FALSE(exact->next_cursor.has_value());
}

TEST_F(SqliteStoreTest, ListFiltersByUser) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  std::vector<std::string> alice;
  for (int i = 0; i < 5; ++i) {
    alice.push_back(create(*store, "alice").id);
    create(*store, "bob");
  }
  SessionListQuery q;
  q.user_id = "alice";
  q.limit = 2;
  std::vector<std::string> seen;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = store->sessions().list(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const auto& s : page->items) {
      EXPECT_EQ(s.user_id, "alice");
      seen.push_back(s.id);
    }
    if (!page->next_cursor) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(seen, std::vector<std::string>(alice.rbegin(), alice.rend()));

  SessionListQuery nobody;
  nobody.user_id = "carol";
  auto empty = store->sessions().list(nobody);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->items.empty());
  EXPECT_FALSE(empty->next_cursor.has_value());
}

TEST_F(SqliteStoreTest, ListReturnsFullRows) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  auto s = create(*store, "u1", "title", R"({"a":1})");
  auto page = store->sessions().list(SessionListQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  const auto& item = page->items[0];
  EXPECT_EQ(item.id, s.id);
  EXPECT_EQ(item.user_id, "u1");
  EXPECT_EQ(item.assistant, "asst_default");
  EXPECT_EQ(item.title, std::optional<std::string>("title"));
  EXPECT_EQ(item.metadata_json, R"({"a":1})");
  EXPECT_EQ(item.created_at_ms, s.created_at_ms);
  EXPECT_EQ(item.updated_at_ms, s.updated_at_ms);
}

TEST_F(SqliteStoreTest, InvalidCursorIsInvalidArgument) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  create(*store, "u");
  for (const char* cursor : {"abc", "", "-5", "0", "12abc", "3.5", "99999999999999999999999"}) {
    SessionListQuery q;
    q.cursor = cursor;
    auto r = store->sessions().list(q);
    ASSERT_FALSE(r.ok()) << "cursor '" << cursor << "'";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << cursor;
    EXPECT_EQ(r.error().reason, "invalid_cursor") << cursor;
    EXPECT_EQ(r.error().param, "cursor") << cursor;
  }
}

TEST_F(SqliteStoreTest, UpdateChangesOnlyTheGivenFields) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  auto s = create(*store, "u", "original", R"({"v":1})");

  clock.advance(1000ms);
  SessionPatch retitle;
  retitle.title = std::optional<std::string>("renamed");
  auto r1 = store->sessions().update(s.id, retitle);
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(r1->title, std::optional<std::string>("renamed"));
  EXPECT_EQ(r1->metadata_json, R"({"v":1})");
  EXPECT_EQ(r1->created_at_ms, s.created_at_ms);
  EXPECT_EQ(r1->updated_at_ms, clock.unix_ms());
  EXPECT_GT(r1->updated_at_ms, s.updated_at_ms);

  // Metadata only: the title is left as it is.
  clock.advance(1000ms);
  SessionPatch meta;
  meta.metadata_json = R"({"v":2})";
  auto r2 = store->sessions().update(s.id, meta);
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(r2->title, std::optional<std::string>("renamed"));
  EXPECT_EQ(r2->metadata_json, R"({"v":2})");
  EXPECT_EQ(r2->updated_at_ms, clock.unix_ms());

  // An explicit null clears the title.
  SessionPatch clear;
  clear.title = std::optional<std::string>(std::nullopt);
  auto r3 = store->sessions().update(s.id, clear);
  ASSERT_TRUE(r3.ok()) << r3.error().message;
  EXPECT_FALSE(r3->title.has_value());
  EXPECT_EQ(r3->metadata_json, R"({"v":2})");

  // What get() sees matches what update() returned.
  auto got = store->sessions().get(s.id);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->title.has_value());
  EXPECT_EQ(got->metadata_json, R"({"v":2})");
  EXPECT_EQ(got->updated_at_ms, r3->updated_at_ms);

  // An empty patch changes nothing but the timestamp.
  clock.advance(5ms);
  auto r4 = store->sessions().update(s.id, SessionPatch{});
  ASSERT_TRUE(r4.ok());
  EXPECT_FALSE(r4->title.has_value());
  EXPECT_EQ(r4->metadata_json, R"({"v":2})");
  EXPECT_EQ(r4->user_id, "u");
}

TEST_F(SqliteStoreTest, UpdateAffectsOnlyThatSession) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  auto a = create(*store, "u", "a");
  auto b = create(*store, "u", "b");
  SessionPatch p;
  p.title = std::optional<std::string>("a2");
  ASSERT_TRUE(store->sessions().update(a.id, p).ok());
  auto got_b = store->sessions().get(b.id);
  ASSERT_TRUE(got_b.ok());
  EXPECT_EQ(got_b->title, std::optional<std::string>("b"));
}

TEST_F(SqliteStoreTest, UpdateMissingIsNotFound) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  SessionPatch p;
  p.title = std::optional<std::string>("x");
  auto r = store->sessions().update("sess_missing", p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().reason, "session_not_found");
}

TEST_F(SqliteStoreTest, RemoveThenNotFound) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  auto keep = create(*store, "u");
  auto gone = create(*store, "u");
  auto removed = store->sessions().remove(gone.id);
  ASSERT_TRUE(removed.ok()) << removed.error().message;

  auto get = store->sessions().get(gone.id);
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, ErrorCode::kNotFound);

  auto again = store->sessions().remove(gone.id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(again.error().reason, "session_not_found");

  SessionPatch p;
  p.title = std::optional<std::string>("x");
  auto update = store->sessions().update(gone.id, p);
  ASSERT_FALSE(update.ok());
  EXPECT_EQ(update.error().code, ErrorCode::kNotFound);

  auto page = store->sessions().list(SessionListQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, keep.id);
}

TEST_F(SqliteStoreTest, StatsWithIntegrityCheck) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) create(*store, "u", "t");
  auto stats = store->stats(true);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->integrity_check, std::optional<std::string>("ok"));
  EXPECT_GT(stats->size_bytes + stats->wal_size_bytes, 0);
  EXPECT_EQ(stats->schema_version, sq::latest_schema_version());
}

TEST_F(SqliteStoreTest, CloseFoldsTheWalIntoTheMainFile) {
  auto o = options();
  auto store = open_ok(o);
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 20; ++i) create(*store, "u", std::string(200, 'x'));
  store->close();
  store.reset();
  std::error_code ec;
  auto wal = fs::file_size(o.path + "-wal", ec);
  EXPECT_TRUE(ec || wal == 0) << "WAL still holds " << wal << " bytes";
  EXPECT_EQ(raw_int(o.path, "SELECT count(*) FROM sessions"), 20);
}

TEST_F(SqliteStoreTest, StorageCallsAreTimedInMetrics) {
  parley::obs::Metrics metrics(parley::obs::BuildInfo{"v", "c", "g++", "Debug"});
  auto o = options();
  o.metrics = &metrics;
  auto store = open_ok(o);
  ASSERT_NE(store, nullptr);
  auto s = create(*store, "u");
  ASSERT_TRUE(store->sessions().get(s.id).ok());
  ASSERT_TRUE(store->sessions().get(s.id).ok());
  auto text = metrics.serialize();
  EXPECT_THAT(
      text,
      HasSubstr("parley_storage_query_duration_seconds_count{operation=\"session_create\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("parley_storage_query_duration_seconds_count{operation=\"session_get\"} 2\n"));
}

TEST_F(SqliteStoreTest, ConcurrentCreatesAllSucceed) {
  auto store = open_ok(options());
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Built in one go: assigning a literal to n.assistant here trips a g++ 12 -Wrestrict
        // false positive.
        const NewSession n{std::string("default"), numbered("user_", t), std::string("a"),
                           std::nullopt, std::string("{}")};
        auto r = store->sessions().create(n);
        if (!r.ok()) {
          ++failures;
          continue;
        }
        ids[static_cast<size_t>(t)].push_back(r->id);
        // Reads run alongside the writes.
        if (!store->sessions().get(r->id).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  std::set<std::string> unique;
  for (const auto& v : ids) unique.insert(v.begin(), v.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));

  SessionListQuery q;
  q.limit = 1000;
  auto page = store->sessions().list(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), static_cast<size_t>(kThreads * kPerThread));

  SessionListQuery one_user;
  one_user.user_id = "user_3";
  one_user.limit = 1000;
  auto mine = store->sessions().list(one_user);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->items.size(), static_cast<size_t>(kPerThread));
  auto stats = store->stats(true);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->integrity_check, std::optional<std::string>("ok"));
}

}  // namespace
