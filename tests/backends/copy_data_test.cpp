// Moving an installation from SQLite to PostgreSQL (store/copy.hpp, `parley copy-data`): a
// populated SQLite database is copied into an empty PostgreSQL one and every row of every
// table is compared, value by value (NULLs, bytes, exact reals, order kept); the table list
// is checked against the tables both schemas really have; a destination that is not empty is
// refused; and the command prints each table's count and never the password.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include <sqlite3.h>

#include "store/copy.hpp"
#include "store/settings.hpp"
#include "store/tables.hpp"
#include "support/manual_clock.hpp"
#include "support/test_postgres.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
namespace store = parley::store;
using parley::testing::PostgresDatabase;
using parley::testing::TempDir;

std::unique_ptr<store::Storage> open_url(const std::string& url, parley::ManualClock& clock) {
  store::StorageSettings settings;
  settings.url = url;
  store::OpenOptions options;
  options.clock = &clock;
  auto opened = store::open(settings, options);
  if (!opened) {
    ADD_FAILURE() << url << ": " << opened.error().message;
    return nullptr;
  }
  return std::move(opened).value();
}

// Something in every table, with the values that are easy to lose on the way: NULLs, bytes
// that are not text, reals with no short decimal form, text in several scripts.
void populate(store::Storage& s, parley::ManualClock& clock) {
  for (int i = 0; i < 7; ++i) {
    store::NewSession n;
    n.tenant_id = i % 2 ? "acme" : "default";
    n.user_id = "user_" + std::to_string(i % 3);
    n.assistant = "default";
    if (i % 2) n.title = "Заголовок " + std::to_string(i) + " 🙂 'q' \\";
    n.metadata_json = R"({"n":)" + std::to_string(i) + "}";
    auto session = s.sessions().create(n);
    ASSERT_TRUE(session.ok()) << session.error().message;
    clock.advance(3ms);
    for (int t = 0; t < 3; ++t) {
      store::NewTurn turn;
      turn.session_id = session->id;
      turn.user_content = "question " + std::to_string(t);
      turn.request_id = "req";
      turn.model = "gpt-test";
      auto started = s.messages().begin_turn(turn);
      ASSERT_TRUE(started.ok()) << started.error().message;
      if (t == 2 && i == 0) continue;  // one reply left pending
      store::FinishedTurn f;
      f.assistant_message_id = started->assistant.id;
      f.content = "answer " + std::to_string(t);
      f.status = t == 1 ? "partial" : "complete";
      f.model = "gpt-test";
      f.provider = "openai";
      f.input_tokens = 10 + t;
      f.output_tokens = 20 + t;
      f.cost_usd = 0.1 + 0.2 * t + 1e-17 * i;  // no short decimal form
      if (t) f.latency_ms = 100 * t;
      f.finish_reason = "stop";
      store::UsageRecord u;
      u.at_ms = parley::to_unix_ms(clock.now());
      u.tenant_id = n.tenant_id;
      u.user_id = n.user_id;
      u.key_id = "key_x";
      u.session_id = session->id;
      u.source = "chat";
      u.provider = "openai";
      u.model = "gpt-test";
      u.cost_usd = f.cost_usd;
      u.status = "ok";
      f.usage = u;
      ASSERT_TRUE(s.messages().finish_turn(f).ok());
      clock.advance(1ms);
    }
  }
  store::ApiKey key;
  key.id = "key_copy1";
  key.scope = "user";
  key.user_id = "user_1";
  key.secret_hash = std::string(64, 'a');
  key.created_at_ms = 1;
  key.expires_at_ms = 99;
  ASSERT_TRUE(s.api_keys().create(key).ok());
  key.id = "key_copy2";
  key.scope = "service";
  key.expires_at_ms.reset();
  ASSERT_TRUE(s.api_keys().create(key).ok());
  store::IdempotencyRecord r;
  r.key = "k:1";
  r.fingerprint = "f";
  r.status = 200;
  r.content_type = "application/json";
  r.body = std::string("{\"a\":1}\0\x01\xff tail", 15);
  r.expires_at_ms = parley::to_unix_ms(clock.now()) + 3'600'000;
  ASSERT_TRUE(s.idempotency().put({r}).ok());
  store::ModerationLogEntry e;
  e.at_ms = 5;
  e.user_id = "user_0";
  e.stage = "input";
  e.action = "redact";
  e.source = "rules";
  ASSERT_TRUE(s.moderation_log().append({e, e}).ok());
  ASSERT_TRUE(s.replicas().heartbeat({"rep_copy", "host", 42, 1, 2}).ok());
  ASSERT_TRUE(s.jobs().enqueue({"usage_rollup", R"({"day":"2026-11-21"})", 0, 5, ""}, 3).ok());
  // Daily totals of every day so far (and the mark of how far they go).
  ASSERT_TRUE(s.usage().roll_up(parley::to_unix_ms(clock.now()) + 86'400'000).ok());
  // A knowledge base with a binary file and a document of two chunks (vectors as bytes).
  auto& kb = s.knowledge();
  const int64_t now = parley::to_unix_ms(clock.now());
  auto base = kb.create_base({"acme", "u1", "Docs", "", "parley-hashed-v1", 3, "{}", "{}"}, now);
  ASSERT_TRUE(base.ok());
  auto file = kb.put_file(
      {"acme", "u1", "a.pdf", "knowledge", "abc123", std::string("%PDF\x00\xff\x01", 7)}, now);
  ASSERT_TRUE(file.ok());
  auto doc = kb.add_document({base->id, "acme", file->id, "a.pdf", R"({"lang":"en"})"}, now);
  ASSERT_TRUE(doc.ok());
  store::ChunkCommit commit{doc->document.id, file->id, "pdf", 1, {}, ""};
  for (int i = 0; i < 2; ++i) {
    commit.chunks.push_back({i,
                             "chunk " + std::to_string(i),
                             "Intro",
                             1,
                             1,
                             i * 10,
                             i * 10 + 7,
                             2,
                             {0.25F, -1.5F, static_cast<float>(i)}});
  }
  ASSERT_TRUE(kb.commit_chunks(commit, now).ok());
  // Memories: one kept with a vector and an expiry, one retired by it (two history rows each).
  store::NewMemory memory;
  memory.tenant_id = "acme";
  memory.user_id = "u1";
  memory.text = "Lives in Paris";
  memory.slot = "location";
  memory.hash = "h1";
  memory.vector = {0.5F, -0.25F};
  ASSERT_TRUE(s.memories().create(memory, {.actor = "user"}, now).ok());
  memory.text = "Lives in Lisbon";
  memory.hash = "h2";
  memory.expires_at_ms = now + 1000;
  ASSERT_TRUE(s.memories().create(memory, {.actor = "user"}, now).ok());
  // A summary of the first two messages of the first session.
  store::SessionListQuery sessions;
  sessions.limit = 1;
  auto first = s.sessions().list(sessions);
  ASSERT_TRUE(first.ok() && !first->items.empty());
  auto said = s.summaries().messages_after(first->items.front().id, 0, 2);
  ASSERT_TRUE(said.ok() && said->size() == 2u);
  store::Summary summary;
  summary.session_id = first->items.front().id;
  summary.text = "- User: said 0";
  summary.first_message_id = said->front().id;
  summary.last_message_id = said->back().id;
  summary.through_seq = said->back().seq;
  summary.messages = 2;
  summary.tokens = 4;
  summary.method = "extractive";
  summary.created_at_ms = now;
  ASSERT_TRUE(s.summaries().add(summary).ok());
}

std::vector<store::Row> all_rows(store::Storage& s, const store::Table& table) {
  std::vector<store::Row> out;
  std::string after = table.before_first;
  for (;;) {
    auto page = s.table_access().read_rows(table, after, 4);
    if (!page) {
      ADD_FAILURE() << table.name << ": " << page.error().message;
      return out;
    }
    if (page->rows.empty()) return out;
    for (auto& row : page->rows) out.push_back(std::move(row));
    after = page->last;
  }
}

TEST(CopyData, EveryRowOfEveryTableArrivesInPostgres) {
  parley::ManualClock clock;
  TempDir dir("parley-copy");
  PostgresDatabase pg;
  ASSERT_FALSE(pg.url().empty());
  auto sqlite = open_url("sqlite://" + dir.path() + "/parley.db", clock);
  auto postgres = open_url(pg.url(), clock);
  ASSERT_TRUE(sqlite && postgres);
  populate(*sqlite, clock);

  std::vector<std::pair<std::string, int64_t>> progress;
  auto report = store::copy_data(
      *sqlite, *postgres, 5, [&](const std::string& t, int64_t n) { progress.emplace_back(t, n); });
  ASSERT_TRUE(report.ok()) << report.error().message;
  ASSERT_EQ(report->tables.size(), store::tables().size());
  EXPECT_FALSE(progress.empty());
  for (const auto& table : store::tables()) {
    SCOPED_TRACE(table.name);
    auto from = all_rows(*sqlite, table);
    auto to = all_rows(*postgres, table);
    EXPECT_FALSE(from.empty());
    EXPECT_EQ(from, to);
  }
  // 7 sessions, 21 turns of two rows, 20 usage rows (one reply left pending), 2 keys, 1 answer,
  // 2 moderation entries, 1 replica, 1 job.
  std::map<std::string, int64_t> counts;
  for (const auto& t : report->tables) counts[t.table] = t.rows;
  EXPECT_EQ(counts["sessions"], 7);
  EXPECT_EQ(counts["messages"], 42);
  EXPECT_EQ(counts["usage_records"], 20);
  EXPECT_EQ(counts["api_keys"], 2);
  EXPECT_EQ(counts["idempotency_keys"], 1);
  EXPECT_EQ(counts["moderation_log"], 2);
  EXPECT_EQ(counts["replicas"], 1);
  EXPECT_EQ(counts["jobs"], 1);
  EXPECT_EQ(counts["files"], 1);
  EXPECT_EQ(counts["file_contents"], 1);
  EXPECT_EQ(counts["knowledge_bases"], 1);
  EXPECT_EQ(counts["memories"], 2);
  EXPECT_EQ(counts["memory_history"], 3);
  EXPECT_EQ(counts["kb_documents"], 1);
  EXPECT_EQ(counts["kb_chunks"], 2);
  EXPECT_EQ(counts["usage_daily"], 6);  // one per tenant and user: one day, one model
  EXPECT_EQ(counts["usage_rollup"], 1);
  EXPECT_EQ(counts["session_summaries"], 1);
  EXPECT_EQ(report->total_rows(), 95);

  // Through the repositories too: same pages, same order, same bytes.
  store::SessionListQuery q;
  q.limit = 100;
  auto a = sqlite->sessions().list(q);
  // A summary covers the same messages in the copy, whatever their numbers there.
  for (const auto& session : a->items) {
    auto mine = sqlite->summaries().latest(session.id);
    auto theirs = postgres->summaries().latest(session.id);
    ASSERT_TRUE(mine.ok() && theirs.ok());
    ASSERT_EQ(mine->has_value(), theirs->has_value());
    if (!mine->has_value()) continue;
    EXPECT_EQ((*theirs)->text, (*mine)->text);
    auto after_mine = sqlite->summaries().messages_after(session.id, (*mine)->through_seq, 100);
    auto after_theirs =
        postgres->summaries().messages_after(session.id, (*theirs)->through_seq, 100);
    ASSERT_TRUE(after_mine.ok() && after_theirs.ok());
    ASSERT_EQ(after_mine->size(), after_theirs->size());
    ASSERT_FALSE(after_mine->empty());
    EXPECT_EQ(after_mine->front().id, after_theirs->front().id);
  }
  auto b = postgres->sessions().list(q);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->items.size(), b->items.size());
  for (size_t i = 0; i < a->items.size(); ++i) {
    EXPECT_EQ(a->items[i].id, b->items[i].id);
    EXPECT_EQ(a->items[i].title, b->items[i].title);
    EXPECT_EQ(a->items[i].updated_at_ms, b->items[i].updated_at_ms);
  }
  auto answer = postgres->idempotency().get("k:1");
  ASSERT_TRUE(answer.ok() && answer->has_value());
  EXPECT_EQ((*answer)->body, std::string("{\"a\":1}\0\x01\xff tail", 15));
  store::UsageQuery usage;
  auto spent_a = sqlite->usage().aggregate(usage);
  auto spent_b = postgres->usage().aggregate(usage);
  ASSERT_TRUE(spent_a.ok() && spent_b.ok());
  EXPECT_DOUBLE_EQ((*spent_a)[0].cost_usd, (*spent_b)[0].cost_usd);
  auto bases = postgres->knowledge().list_bases({std::nullopt, std::nullopt, 10, std::nullopt});
  ASSERT_TRUE(bases.ok());
  ASSERT_EQ(bases->items.size(), 1U);
  EXPECT_EQ(bases->items[0].owner_user_id, "u1");
}

TEST(CopyData, ADestinationThatIsNotEmptyIsRefused) {
  parley::ManualClock clock;
  TempDir dir("parley-copy");
  PostgresDatabase pg;
  ASSERT_FALSE(pg.url().empty());
  auto sqlite = open_url("sqlite://" + dir.path() + "/parley.db", clock);
  auto postgres = open_url(pg.url(), clock);
  ASSERT_TRUE(sqlite && postgres);
  populate(*sqlite, clock);
  ASSERT_TRUE(store::copy_data(*sqlite, *postgres, 1000).ok());
  auto again = store::copy_data(*sqlite, *postgres, 1000);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().reason, "destination_not_empty");
  EXPECT_EQ(pg.query("SELECT count(*) FROM sessions"), "7");  // nothing duplicated
}

// Every table a migration creates is one copy-data copies (a new table without a line in
// store/tables.cpp would be silently left behind).
TEST(CopyData, TheTableListIsEveryTableOfBothSchemas) {
  parley::ManualClock clock;
  TempDir dir("parley-copy");
  PostgresDatabase pg;
  ASSERT_FALSE(pg.url().empty());
  auto sqlite = open_url("sqlite://" + dir.path() + "/parley.db", clock);
  auto postgres = open_url(pg.url(), clock);
  ASSERT_TRUE(sqlite && postgres);
  std::set<std::string> listed;
  for (const auto& t : store::tables()) listed.insert(t.name);

  std::set<std::string> in_sqlite;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/parley.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                               "IN ('schema_migrations', 'sqlite_sequence', 'database_identity', "
                               "'kb_changes', 'memory_changes')",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    in_sqlite.insert(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_EQ(in_sqlite, listed);

  const std::string names = pg.query(
      "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
      "WHERE table_schema = 'public' AND table_name NOT IN ('schema_migrations', "
      "'database_identity', 'kb_changes', 'memory_changes')");
  std::set<std::string> in_postgres;
  size_t start = 0;
  while (start <= names.size()) {
    size_t comma = names.find(',', start);
    if (comma == std::string::npos) comma = names.size();
    in_postgres.insert(names.substr(start, comma - start));
    start = comma + 1;
  }
  EXPECT_EQ(in_postgres, listed);
}

std::string run(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  *status = ::pclose(pipe);
  return out;
}

TEST(CopyData, TheCommandReportsRowCountsAndHidesThePassword) {
  parley::ManualClock clock;
  TempDir dir("parley-copy");
  PostgresDatabase pg;
  ASSERT_FALSE(pg.url().empty());
  {
    auto sqlite = open_url("sqlite://" + dir.path() + "/parley.db", clock);
    ASSERT_TRUE(sqlite);
    populate(*sqlite, clock);
    sqlite->close();
  }
  // The test server trusts loopback, so the password is never checked, only carried.
  std::string to = pg.url();
  to.replace(to.find("postgres@"), 9, "postgres:canary-secret@");
  int status = -1;
  const std::string out = run(std::string(PARLEY_BINARY) + " copy-data --from sqlite://" +
                                  dir.path() + "/parley.db --to '" + to + "' 2>&1",
                              &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("sessions           7"), std::string::npos) << out;
  EXPECT_NE(out.find("messages           42"), std::string::npos) << out;
  EXPECT_NE(out.find("total              95"), std::string::npos) << out;
  EXPECT_EQ(out.find("canary-secret"), std::string::npos) << out;
  EXPECT_EQ(pg.query("SELECT count(*) FROM messages"), "42");

  const std::string missing = run(std::string(PARLEY_BINARY) + " copy-data --from sqlite://" +
                                      dir.path() + "/nothing.db --to '" + to + "' 2>&1",
                                  &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(missing.find("no database at"), std::string::npos) << missing;
}

}  // namespace
