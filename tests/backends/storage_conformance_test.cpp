// Storage conformance: the contract of store/store.hpp, checked the same way on every backend.
//
// Handlers and the chat pipeline see only the interfaces of store.hpp, so a deployment can
// move from SQLite to PostgreSQL (or back, with copy-data) only if both backends give the same
// answers to the same calls: the same ids, orders, pages, filters, error codes and reasons,
// timestamps and sums. Each backend's own tests check what only it has; this suite is typed
// over the backends and runs every case against each of them, so a difference shows up as one
// test failing on one backend.
//
// Covered, per repository:
//  - sessions: ids, timestamps from the clock, get/update/remove and their kNotFound, list
//    order (newest first, by insertion), limit, cursors (pages without overlap or gaps, no
//    cursor after the last page, malformed cursors rejected), tenant and user filters;
//  - messages: begin_turn (user row complete, assistant row pending, session bumped),
//    finish_turn (the final row, usage written in the same call, a deleted session), list in
//    both orders with cursors, history (what a prompt may include);
//  - replicas: heartbeats, and the pending replies of dead replicas (only) interrupted;
//  - usage: record, aggregate (half-open time range, filters, every group_by field, the UTC
//    day, ordering, unknown fields rejected), spent and spent_by_key;
//  - API keys: create/get round trip, duplicates, list order and filters, revoke;
//  - idempotency: put (insert or replace), get, binary bodies, unexpired_keys, purge_expired;
//  - moderation log: generated ids, order, filters, cursors;
//  - user data: export (per tenant and across tenants) and erasure (counts, cascades, keys
//    revoked and unbound, other users and tenants untouched);
//  - ping and stats; concurrent writers; awkward text and large numbers.
//
// Time comes from a ManualClock, so every timestamp the store assigns is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends.hpp"
#include "store/common.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"
#include "support/manual_clock.hpp"
#include "support/test_postgres.hpp"
#include "temp_dir.hpp"

namespace {

using parley::ErrorCode;
using parley::testing::BackendNames;
using parley::testing::FailsWith;
using parley::testing::PostgresBackend;
using parley::testing::SqliteBackend;
using namespace parley::store;
using namespace std::chrono_literals;

std::string numbered(const std::string& prefix, int i) {
  // Built by appending: g++ 12 warns falsely about `literal + std::to_string(n)` at -O3.
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

std::vector<std::string> ids_of(const std::vector<Session>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.id);
  return out;
}

std::vector<std::string> ids_of(const std::vector<Message>& v) {
  std::vector<std::string> out;
  for (const auto& m : v) out.push_back(m.id);
  return out;
}

std::vector<std::string> ids_of(const std::vector<ModerationLogEntry>& v) {
  std::vector<std::string> out;
  for (const auto& e : v) out.push_back(e.id);
  return out;
}

std::vector<std::string> ids_of(const std::vector<ApiKey>& v) {
  std::vector<std::string> out;
  for (const auto& k : v) out.push_back(k.id);
  return out;
}

std::vector<std::string> contents_of(const std::vector<Message>& v) {
  std::vector<std::string> out;
  for (const auto& m : v) out.push_back(m.content);
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// ---------------------------------------------------------------------------------------------
// Fixture

// Members are public so that helpers outside the test bodies (UserDataWorld) can use them.
template <typename Backend>
class StorageConformance : public ::testing::Test {
 public:
  void SetUp() override {
    store = parley::testing::open_test_store(backend.url(), clock);
    ASSERT_NE(store, nullptr);
  }

  void TearDown() override {
    if (store) store->close();
  }

  int64_t now_ms() const { return clock.unix_ms(); }

  // Creates a session, failing the test (and returning an empty one) when it cannot.
  Session make_session(const std::string& tenant, const std::string& user,
                       std::optional<std::string> title = std::nullopt) {
    NewSession n;
    n.tenant_id = tenant;
    n.user_id = user;
    n.assistant = "default";
    n.title = std::move(title);
    auto r = store->sessions().create(n);
    if (!r.ok()) {
      ADD_FAILURE() << "create session: " << r.error().message;
      return {};
    }
    return r.value();
  }

  StartedTurn begin(const std::string& session_id, const std::string& content,
                    const std::string& request_id = "req_1", const std::string& owner = "") {
    NewTurn t;
    t.session_id = session_id;
    t.user_content = content;
    t.request_id = request_id;
    t.model = "gpt-test";
    t.owner = owner;
    auto r = store->messages().begin_turn(t);
    if (!r.ok()) {
      ADD_FAILURE() << "begin_turn: " << r.error().message;
      return {};
    }
    return r.value();
  }

  Message finish(const std::string& assistant_id, const std::string& content,
                 const std::string& status = "complete", bool regenerated = false) {
    FinishedTurn f;
    f.assistant_message_id = assistant_id;
    f.content = content;
    f.status = status;
    f.model = "gpt-test";
    f.provider = "openai";
    f.finish_reason = status == "complete" ? "stop" : "cancelled";
    f.regenerated = regenerated;
    auto r = store->messages().finish_turn(f);
    if (!r.ok()) {
      ADD_FAILURE() << "finish_turn: " << r.error().message;
      return {};
    }
    return r.value();
  }

  // A full turn: the user's message and a completed reply.
  void turn(const std::string& session_id, const std::string& question, const std::string& answer) {
    auto started = begin(session_id, question);
    finish(started.assistant.id, answer);
  }

  UsageRecord usage_record(int64_t at_ms, const std::string& tenant, const std::string& user,
                           const std::string& model, double cost) {
    UsageRecord u;
    u.at_ms = at_ms;
    u.tenant_id = tenant;
    u.user_id = user;
    u.key_id = "key_a";
    u.source = "api";
    u.provider = "openai";
    u.model = model;
    u.input_tokens = 10;
    u.output_tokens = 20;
    u.cost_usd = cost;
    u.status = "ok";
    u.request_id = "req_u";
    return u;
  }

  void record(const std::vector<UsageRecord>& records) {
    auto r = store->usage().record(records);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // The single row of an aggregate without group_by.
  UsageRow total(UsageQuery q) {
    q.group_by.clear();
    auto r = store->usage().aggregate(q);
    if (!r.ok()) {
      ADD_FAILURE() << "aggregate: " << r.error().message;
      return {};
    }
    if (r->size() != 1) {
      ADD_FAILURE() << "expected one total row, got " << r->size();
      return {};
    }
    return r->front();
  }

  ApiKey api_key(const std::string& id, const std::string& tenant, const std::string& user) {
    ApiKey k;
    k.id = id;
    k.name = "key ";
    k.name += id;
    k.scope = user.empty() ? "service" : "user";
    k.tenant_id = tenant;
    k.user_id = user;
    k.secret_hash = std::string(64, 'a');
    k.limits_json = "{\"rpm\":10}";
    k.created_by = "cli";
    k.created_at_ms = now_ms();
    return k;
  }

  IdempotencyRecord idem(const std::string& key, int64_t expires_at_ms,
                         const std::string& tenant = "default", const std::string& user = "u1") {
    IdempotencyRecord r;
    r.key = key;
    r.fingerprint = std::string(64, 'f');
    r.tenant_id = tenant;
    r.user_id = user;
    r.status = 200;
    r.content_type = "application/json";
    r.body = "{\"ok\":true}";
    r.created_at_ms = now_ms();
    r.expires_at_ms = expires_at_ms;
    return r;
  }

  ModerationLogEntry moderation(const std::string& tenant, const std::string& user,
                                const std::string& action) {
    ModerationLogEntry e;
    e.at_ms = now_ms();
    e.tenant_id = tenant;
    e.user_id = user;
    e.session_id = "sess_x";
    e.request_id = "req_m";
    e.stage = "input";
    e.action = action;
    e.source = "rules";
    e.findings_json = "[{\"category\":\"pii\",\"action\":\"";
    e.findings_json += action;
    e.findings_json += "\",\"count\":1}]";
    return e;
  }

  void append(const std::vector<ModerationLogEntry>& entries) {
    auto r = store->moderation_log().append(entries);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  Backend backend;
  parley::ManualClock clock;
  std::unique_ptr<Storage> store;  // last: closed and destroyed before the backend goes
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(StorageConformance, Backends, BackendNames);

// ---------------------------------------------------------------------------------------------
// Sessions

TYPED_TEST(StorageConformance, SessionCreateAssignsIdAndClockTimestamps) {
  const int64_t now = this->now_ms();
  NewSession n;
  n.tenant_id = "acme";
  n.user_id = "alice";
  n.assistant = "helper";
  n.title = "Plans";
  n.metadata_json = "{\"k\":\"v\"}";
  auto created = this->store->sessions().create(n);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(starts_with(created->id, "sess_")) << created->id;
  EXPECT_EQ(created->tenant_id, "acme");
  EXPECT_EQ(created->user_id, "alice");
  EXPECT_EQ(created->assistant, "helper");
  EXPECT_EQ(created->title, std::optional<std::string>("Plans"));
  EXPECT_EQ(created->metadata_json, "{\"k\":\"v\"}");
  EXPECT_EQ(created->created_at_ms, now);
  EXPECT_EQ(created->updated_at_ms, now);
}

TYPED_TEST(StorageConformance, SessionGetRoundTripsEveryField) {
  auto created = this->make_session("acme", "alice", "A title");
  this->clock.advance(5ms);
  auto got = this->store->sessions().get(created.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, created.id);
  EXPECT_EQ(got->tenant_id, "acme");
  EXPECT_EQ(got->user_id, "alice");
  EXPECT_EQ(got->assistant, "default");
  EXPECT_EQ(got->title, std::optional<std::string>("A title"));
  EXPECT_EQ(got->metadata_json, "{}");
  // Reading does not touch the timestamps.
  EXPECT_EQ(got->created_at_ms, created.created_at_ms);
  EXPECT_EQ(got->updated_at_ms, created.updated_at_ms);
}

TYPED_TEST(StorageConformance, SessionWithoutTitleReadsBackWithout) {
  auto created = this->make_session("default", "bob");
  auto got = this->store->sessions().get(created.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->title, std::nullopt);
}

TYPED_TEST(StorageConformance, SessionGetMissingIsNotFound) {
  EXPECT_TRUE(FailsWith(this->store->sessions().get("sess_missing"), ErrorCode::kNotFound,
                        "session_not_found"));
}

TYPED_TEST(StorageConformance, SessionListIsNewestFirst) {
  std::vector<std::string> created;
  for (int i = 0; i < 4; ++i) {
    created.push_back(this->make_session("default", "alice").id);
    this->clock.advance(1ms);
  }
  auto page = this->store->sessions().list({});
  ASSERT_TRUE(page.ok()) << page.error().message;
  std::reverse(created.begin(), created.end());
  EXPECT_EQ(ids_of(page->items), created);
  EXPECT_EQ(page->next_cursor, std::nullopt);
}

TYPED_TEST(StorageConformance, SessionListPagesWithoutOverlapOrGaps) {
  // Created in the same millisecond: the order must still be the order of insertion, since a
  // busy server creates many sessions per millisecond.
  std::vector<std::string> created;
  for (int i = 0; i < 7; ++i) created.push_back(this->make_session("default", "alice").id);
  std::reverse(created.begin(), created.end());

  std::vector<std::string> seen;
  std::vector<int> sizes;
  SessionListQuery q;
  q.limit = 3;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = this->store->sessions().list(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    sizes.push_back(static_cast<int>(page->items.size()));
    for (const auto& s : page->items) seen.push_back(s.id);
    if (!page->next_cursor) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(sizes, (std::vector<int>{3, 3, 1}));
  EXPECT_EQ(seen, created);
}

TYPED_TEST(StorageConformance, SessionListLastFullPageHasNoCursor) {
  // A cursor that leads to an empty page would cost clients a useless round trip.
  for (int i = 0; i < 6; ++i) this->make_session("default", "alice");
  SessionListQuery q;
  q.limit = 3;
  auto first = this->store->sessions().list(q);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(static_cast<int>(first->items.size()), 3);
  ASSERT_TRUE(first->next_cursor.has_value());
  q.cursor = first->next_cursor;
  auto second = this->store->sessions().list(q);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(static_cast<int>(second->items.size()), 3);
  EXPECT_EQ(second->next_cursor, std::nullopt);

  SessionListQuery exact;
  exact.limit = 6;
  auto all = this->store->sessions().list(exact);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(static_cast<int>(all->items.size()), 6);
  EXPECT_EQ(all->next_cursor, std::nullopt);
}

TYPED_TEST(StorageConformance, SessionListFiltersByTenantAndUser) {
  auto a1 = this->make_session("acme", "alice").id;
  auto a2 = this->make_session("acme", "bob").id;
  auto b1 = this->make_session("globex", "alice").id;
  auto a3 = this->make_session("acme", "alice").id;

  SessionListQuery by_tenant;
  by_tenant.tenant_id = "acme";
  auto tenant = this->store->sessions().list(by_tenant);
  ASSERT_TRUE(tenant.ok()) << tenant.error().message;
  EXPECT_EQ(ids_of(tenant->items), (std::vector<std::string>{a3, a2, a1}));

  SessionListQuery by_user;
  by_user.user_id = "alice";
  auto user = this->store->sessions().list(by_user);
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(ids_of(user->items), (std::vector<std::string>{a3, b1, a1}));

  SessionListQuery both;
  both.tenant_id = "acme";
  both.user_id = "alice";
  auto pair = this->store->sessions().list(both);
  ASSERT_TRUE(pair.ok()) << pair.error().message;
  EXPECT_EQ(ids_of(pair->items), (std::vector<std::string>{a3, a1}));

  SessionListQuery nobody;
  nobody.tenant_id = "initech";
  auto none = this->store->sessions().list(nobody);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->items.empty());
  EXPECT_EQ(none->next_cursor, std::nullopt);
}

TYPED_TEST(StorageConformance, SessionListSearchesTitlesIgnoringCase) {
  auto trip = this->make_session("acme", "alice", "Trip to Lisbon").id;
  this->make_session("acme", "alice", "Budget for March");
  auto other = this->make_session("acme", "bob", "lisbon notes").id;
  this->make_session("acme", "alice");  // no title: never matches
  auto old = this->make_session("acme", "alice", "LISBON, again").id;

  SessionListQuery q;
  q.title_contains = "lisbon";
  auto all = this->store->sessions().list(q);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(ids_of(all->items), (std::vector<std::string>{old, other, trip}));

  q.tenant_id = "acme";
  q.user_id = "alice";
  q.limit = 1;
  auto first = this->store->sessions().list(q);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(ids_of(first->items), (std::vector<std::string>{old}));
  ASSERT_TRUE(first->next_cursor.has_value());
  q.cursor = first->next_cursor;
  auto second = this->store->sessions().list(q);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(ids_of(second->items), (std::vector<std::string>{trip}));

  // Characters LIKE would treat as wildcards are plain text here.
  SessionListQuery wild;
  wild.title_contains = "%";
  auto none = this->store->sessions().list(wild);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->items.empty());
}

TYPED_TEST(StorageConformance, SessionListFilteredPagesStayFiltered) {
  // The cursor continues the filtered sequence: rows of other users are neither shown nor
  // counted against the limit.
  std::vector<std::string> alice;
  for (int i = 0; i < 5; ++i) {
    alice.push_back(this->make_session("default", "alice").id);
    this->make_session("default", "bob");
  }
  std::reverse(alice.begin(), alice.end());
  SessionListQuery q;
  q.user_id = "alice";
  q.limit = 2;
  std::vector<std::string> seen;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = this->store->sessions().list(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const auto& s : page->items) {
      EXPECT_EQ(s.user_id, "alice");
      seen.push_back(s.id);
    }
    if (!page->next_cursor) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(seen, alice);
}

TYPED_TEST(StorageConformance, SessionListRejectsMalformedCursors) {
  this->make_session("default", "alice");
  for (const char* cursor : {"abc", "0", "-5", "12x"}) {
    SessionListQuery q;
    q.cursor = cursor;
    EXPECT_TRUE(
        FailsWith(this->store->sessions().list(q), ErrorCode::kInvalidArgument, "invalid_cursor"))
        << "cursor " << cursor;
  }
}

TYPED_TEST(StorageConformance, SessionUpdateChangesOnlyGivenFields) {
  auto created = this->make_session("acme", "alice", "Old");
  this->clock.advance(250ms);

  SessionPatch metadata_only;
  metadata_only.metadata_json = "{\"pinned\":true}";
  auto updated = this->store->sessions().update(created.id, metadata_only);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->title, std::optional<std::string>("Old"));
  EXPECT_EQ(updated->metadata_json, "{\"pinned\":true}");
  EXPECT_EQ(updated->tenant_id, "acme");
  EXPECT_EQ(updated->user_id, "alice");
  EXPECT_EQ(updated->created_at_ms, created.created_at_ms);
  EXPECT_EQ(updated->updated_at_ms, this->now_ms());

  this->clock.advance(1s);
  SessionPatch title_only;
  title_only.title = std::optional<std::string>("New");
  auto retitled = this->store->sessions().update(created.id, title_only);
  ASSERT_TRUE(retitled.ok()) << retitled.error().message;
  EXPECT_EQ(retitled->title, std::optional<std::string>("New"));
  EXPECT_EQ(retitled->metadata_json, "{\"pinned\":true}");
  EXPECT_EQ(retitled->updated_at_ms, this->now_ms());

  // What update returned is what is stored.
  auto got = this->store->sessions().get(created.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->title, std::optional<std::string>("New"));
  EXPECT_EQ(got->metadata_json, "{\"pinned\":true}");
  EXPECT_EQ(got->updated_at_ms, this->now_ms());
  EXPECT_EQ(got->created_at_ms, created.created_at_ms);
}

TYPED_TEST(StorageConformance, SessionUpdateWithNullTitleClearsIt) {
  auto created = this->make_session("default", "alice", "Temporary");
  SessionPatch clear;
  clear.title = std::optional<std::string>(std::nullopt);
  auto updated = this->store->sessions().update(created.id, clear);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->title, std::nullopt);
  auto got = this->store->sessions().get(created.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->title, std::nullopt);
}

TYPED_TEST(StorageConformance, SessionUpdateMissingIsNotFound) {
  SessionPatch patch;
  patch.metadata_json = "{}";
  EXPECT_TRUE(
      FailsWith(this->store->sessions().update("sess_missing", patch), ErrorCode::kNotFound));
}

TYPED_TEST(StorageConformance, SessionRemoveDeletesAndSecondRemoveIsNotFound) {
  auto keep = this->make_session("default", "alice").id;
  auto gone = this->make_session("default", "alice").id;
  auto removed = this->store->sessions().remove(gone);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_TRUE(
      FailsWith(this->store->sessions().get(gone), ErrorCode::kNotFound, "session_not_found"));
  EXPECT_TRUE(FailsWith(this->store->sessions().remove(gone), ErrorCode::kNotFound));
  EXPECT_TRUE(this->store->sessions().get(keep).ok());
  auto page = this->store->sessions().list({});
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(ids_of(page->items), (std::vector<std::string>{keep}));
}

// ---------------------------------------------------------------------------------------------
// Messages

TYPED_TEST(StorageConformance, BeginTurnWritesUserRowAndPendingAssistantRow) {
  auto session = this->make_session("acme", "alice");
  this->clock.advance(3s);
  const int64_t now = this->now_ms();
  NewTurn t;
  t.session_id = session.id;
  t.user_content = "Hello?";
  t.request_id = "req_42";
  t.model = "fast";
  auto started = this->store->messages().begin_turn(t);
  ASSERT_TRUE(started.ok()) << started.error().message;

  const Message& user = started->user;
  EXPECT_TRUE(starts_with(user.id, "msg_")) << user.id;
  EXPECT_EQ(user.session_id, session.id);
  EXPECT_EQ(user.role, "user");
  EXPECT_EQ(user.content, "Hello?");
  EXPECT_EQ(user.status, "complete");
  EXPECT_EQ(user.request_id, "req_42");
  EXPECT_EQ(user.created_at_ms, now);
  EXPECT_EQ(user.completed_at_ms, std::optional<int64_t>(now));

  const Message& assistant = started->assistant;
  EXPECT_TRUE(starts_with(assistant.id, "msg_")) << assistant.id;
  EXPECT_NE(assistant.id, user.id);
  EXPECT_EQ(assistant.session_id, session.id);
  EXPECT_EQ(assistant.role, "assistant");
  EXPECT_EQ(assistant.content, "");
  EXPECT_EQ(assistant.status, "pending");
  EXPECT_EQ(assistant.model, "fast");
  EXPECT_EQ(assistant.request_id, "req_42");
  // One millisecond after the user's row, so time order and insertion order agree.
  EXPECT_EQ(assistant.created_at_ms, now + 1);
  EXPECT_EQ(assistant.completed_at_ms, std::nullopt);

  // Both rows are stored as returned.
  MessageListQuery q;
  q.session_id = session.id;
  auto listed = this->store->messages().list(q);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(static_cast<int>(listed->items.size()), 2);
  EXPECT_EQ(listed->items[0].id, user.id);
  EXPECT_EQ(listed->items[0].status, "complete");
  EXPECT_EQ(listed->items[1].id, assistant.id);
  EXPECT_EQ(listed->items[1].status, "pending");
  EXPECT_EQ(listed->items[1].model, "fast");
}

TYPED_TEST(StorageConformance, BeginTurnBumpsSessionUpdatedAt) {
  auto session = this->make_session("default", "alice");
  this->clock.advance(90s);
  auto started = this->begin(session.id, "hi");
  EXPECT_EQ(started.session.id, session.id);
  EXPECT_EQ(started.session.created_at_ms, session.created_at_ms);
  EXPECT_EQ(started.session.updated_at_ms, this->now_ms());
  auto got = this->store->sessions().get(session.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->updated_at_ms, this->now_ms());
}

TYPED_TEST(StorageConformance, BeginTurnForMissingSessionIsNotFound) {
  NewTurn t;
  t.session_id = "sess_missing";
  t.user_content = "hi";
  t.request_id = "req_1";
  t.model = "m";
  EXPECT_TRUE(
      FailsWith(this->store->messages().begin_turn(t), ErrorCode::kNotFound, "session_not_found"));
}

TYPED_TEST(StorageConformance, RegeneratingReplacesTheRepliesOfTheLastMessage) {
  auto session = this->make_session("acme", "alice");
  this->turn(session.id, "Hi", "Hello!");
  auto asked = this->begin(session.id, "Pick a colour");
  this->finish(asked.assistant.id, "Blue.");

  NewTurn again;
  again.session_id = session.id;
  again.user_content = "Pick a colour";
  again.request_id = "req_2";
  again.model = "gpt-test";
  again.regenerate_of = asked.user.id;
  auto started = this->store->messages().begin_turn(again);
  ASSERT_TRUE(started.ok()) << started.error().message;
  // The question is not stored twice: the turn answers the stored one.
  EXPECT_EQ(started->user.id, asked.user.id);
  EXPECT_EQ(started->user.content, "Pick a colour");
  EXPECT_EQ(started->assistant.status, "pending");

  MessageListQuery q;
  q.session_id = session.id;
  const auto statuses = [&] {
    std::vector<std::string> seen;
    auto list = this->store->messages().list(q);
    EXPECT_TRUE(list.ok()) << list.error().message;
    if (list.ok()) {
      for (const auto& m : list->items) seen.push_back(m.content + "/" + m.status);
    }
    return seen;
  };
  using Seen = std::vector<std::string>;
  // The earlier reply stands while the new one is written.
  EXPECT_EQ(statuses(), (Seen{"Hi/complete", "Hello!/complete", "Pick a colour/complete",
                              "Blue./complete", "/pending"}));

  // While the new reply is written, no other regeneration may start.
  again.request_id = "req_3";
  auto busy = this->store->messages().begin_turn(again);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, ErrorCode::kConflict);
  EXPECT_EQ(busy.error().reason, "turn_in_progress");

  // A regeneration that fails (closed without being marked regenerated) replaces nothing.
  this->finish(started->assistant.id, "", "partial");
  EXPECT_EQ(statuses(), (Seen{"Hi/complete", "Hello!/complete", "Pick a colour/complete",
                              "Blue./complete", "/partial"}));
  again.request_id = "req_4";
  started = this->store->messages().begin_turn(again);
  ASSERT_TRUE(started.ok()) << started.error().message;
  this->finish(started->assistant.id, "Green.", "complete", true);
  EXPECT_EQ(statuses(), (Seen{"Hi/complete", "Hello!/complete", "Pick a colour/complete",
                              "Blue./replaced", "/replaced", "Green./complete"}));
  // A later turn replaces nothing.
  this->turn(session.id, "Thanks", "You're welcome.");
  EXPECT_EQ(statuses().back(), "You're welcome./complete");
  auto list = this->store->messages().list(q);
  ASSERT_TRUE(list.ok());
  // A prompt's history leaves the replaced reply out.
  auto history = this->store->messages().history(session.id, 100);
  ASSERT_TRUE(history.ok()) << history.error().message;
  std::vector<std::string> prompt;
  for (const auto& m : *history) prompt.push_back(m.content);
  EXPECT_EQ(prompt, (std::vector<std::string>{"Hi", "Hello!", "Pick a colour", "Green.", "Thanks",
                                              "You're welcome."}));

  // Only the last question can be answered again, and only one of this session.
  auto earlier = list->items[2].id;
  again.regenerate_of = earlier;
  auto old = this->store->messages().begin_turn(again);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().reason, "not_last_message");
  again.regenerate_of = "msg_nope";
  auto missing = this->store->messages().begin_turn(again);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto elsewhere = this->make_session("acme", "alice");
  again.session_id = elsewhere.id;
  again.regenerate_of = asked.user.id;
  auto foreign = this->store->messages().begin_turn(again);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, ErrorCode::kNotFound);
}

TYPED_TEST(StorageConformance, FinishTurnReturnsTheFinalAssistantRow) {
  auto session = this->make_session("default", "alice");
  auto started = this->begin(session.id, "What is 2+2?", "req_7");
  this->clock.advance(1500ms);
  FinishedTurn f;
  f.assistant_message_id = started.assistant.id;
  f.content = "4";
  f.status = "complete";
  f.model = "gpt-4o-mini";
  f.provider = "openai";
  f.input_tokens = 12;
  f.output_tokens = 1;
  f.cost_usd = 0.000125;
  f.latency_ms = 1500;
  f.ttft_ms = 320;
  f.finish_reason = "stop";
  auto done = this->store->messages().finish_turn(f);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->id, started.assistant.id);
  EXPECT_EQ(done->session_id, session.id);
  EXPECT_EQ(done->role, "assistant");
  EXPECT_EQ(done->content, "4");
  EXPECT_EQ(done->tool_calls_json, "");
  EXPECT_EQ(done->status, "complete");
  EXPECT_EQ(done->model, "gpt-4o-mini");
  EXPECT_EQ(done->provider, "openai");
  EXPECT_EQ(done->input_tokens, 12);
  EXPECT_EQ(done->output_tokens, 1);
  EXPECT_DOUBLE_EQ(done->cost_usd, 0.000125);
  EXPECT_EQ(done->latency_ms, std::optional<int64_t>(1500));
  EXPECT_EQ(done->ttft_ms, std::optional<int64_t>(320));
  EXPECT_EQ(done->finish_reason, "stop");
  EXPECT_EQ(done->request_id, "req_7");
  // Created when the turn began; completed now.
  EXPECT_EQ(done->created_at_ms, started.assistant.created_at_ms);
  EXPECT_EQ(done->completed_at_ms, std::optional<int64_t>(this->now_ms()));

  MessageListQuery q;
  q.session_id = session.id;
  auto listed = this->store->messages().list(q);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(static_cast<int>(listed->items.size()), 2);
  const Message& stored = listed->items[1];
  EXPECT_EQ(stored.content, "4");
  EXPECT_EQ(stored.status, "complete");
  EXPECT_EQ(stored.provider, "openai");
  EXPECT_EQ(stored.latency_ms, std::optional<int64_t>(1500));
  EXPECT_EQ(stored.completed_at_ms, std::optional<int64_t>(this->now_ms()));
}

TYPED_TEST(StorageConformance, FinishTurnWithoutLatencyLeavesThemUnset) {
  auto session = this->make_session("default", "alice");
  auto started = this->begin(session.id, "hi");
  auto done = this->finish(started.assistant.id, "partial answer", "partial");
  EXPECT_EQ(done.status, "partial");
  EXPECT_EQ(done.finish_reason, "cancelled");
  EXPECT_EQ(done.latency_ms, std::nullopt);
  EXPECT_EQ(done.ttft_ms, std::nullopt);
  EXPECT_EQ(done.tool_calls_json, "");
}

TYPED_TEST(StorageConformance, FinishTurnKeepsToolCalls) {
  auto session = this->make_session("default", "alice");
  auto started = this->begin(session.id, "weather?");
  const std::string calls =
      "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\","
      "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]";
  FinishedTurn f;
  f.assistant_message_id = started.assistant.id;
  f.content = "";
  f.tool_calls_json = calls;
  f.status = "complete";
  f.model = "m";
  f.provider = "p";
  f.finish_reason = "tool_calls";
  auto done = this->store->messages().finish_turn(f);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->tool_calls_json, calls);
  MessageListQuery q;
  q.session_id = session.id;
  auto listed = this->store->messages().list(q);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(static_cast<int>(listed->items.size()), 2);
  EXPECT_EQ(listed->items[1].tool_calls_json, calls);
  EXPECT_EQ(listed->items[0].tool_calls_json, "");
}

TYPED_TEST(StorageConformance, FinishTurnWritesItsUsageInTheSameCall) {
  auto session = this->make_session("acme", "alice");
  auto started = this->begin(session.id, "hi");
  FinishedTurn f;
  f.assistant_message_id = started.assistant.id;
  f.content = "hello";
  f.status = "complete";
  f.model = "m1";
  f.provider = "p1";
  f.input_tokens = 5;
  f.output_tokens = 7;
  f.cost_usd = 0.25;
  f.finish_reason = "stop";
  UsageRecord u = this->usage_record(this->now_ms(), "acme", "alice", "m1", 0.25);
  u.session_id = session.id;
  u.source = "chat";
  u.input_tokens = 5;
  u.output_tokens = 7;
  f.usage = u;
  auto done = this->store->messages().finish_turn(f);
  ASSERT_TRUE(done.ok()) << done.error().message;

  UsageQuery q;
  q.tenant_id = "acme";
  auto row = this->total(q);
  EXPECT_EQ(row.requests, 1);
  EXPECT_EQ(row.input_tokens, 5);
  EXPECT_EQ(row.output_tokens, 7);
  EXPECT_NEAR(row.cost_usd, 0.25, 1e-9);
  auto spent = this->store->usage().spent("acme", "alice", 0);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_NEAR(*spent, 0.25, 1e-9);
}

TYPED_TEST(StorageConformance, FinishTurnOfDeletedSessionIsNotFound) {
  // The session can be deleted while its reply is still being generated.
  auto session = this->make_session("default", "alice");
  auto started = this->begin(session.id, "hi");
  auto removed = this->store->sessions().remove(session.id);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  FinishedTurn f;
  f.assistant_message_id = started.assistant.id;
  f.content = "too late";
  f.status = "complete";
  f.finish_reason = "stop";
  EXPECT_TRUE(
      FailsWith(this->store->messages().finish_turn(f), ErrorCode::kNotFound, "message_not_found"));
  // And the list of a deleted session is an error, not an empty page.
  MessageListQuery q;
  q.session_id = session.id;
  EXPECT_TRUE(FailsWith(this->store->messages().list(q), ErrorCode::kNotFound));
}

TYPED_TEST(StorageConformance, FinishTurnQueuesItsFollowUpJobsWithTheReply) {
  auto session = this->make_session("acme", "alice");
  auto& jobs = this->store->jobs();
  const int64_t now = this->now_ms();
  // A summary already planned for this session and not yet run.
  auto planned = jobs.enqueue({"session.summarize", R"({"n":1})", 0, 5, "sum:" + session.id}, now);
  ASSERT_TRUE(planned.ok()) << planned.error().message;

  auto started = this->begin(session.id, "my name is Ana");
  FinishedTurn f;
  f.assistant_message_id = started.assistant.id;
  f.content = "hello Ana";
  f.status = "complete";
  f.finish_reason = "stop";
  f.follow_up_jobs.push_back(
      {"memory.extract", R"({"reply":"x"})", 0, 5, "memx:" + f.assistant_message_id});
  f.follow_up_jobs.push_back({"session.summarize", R"({"n":2})", 0, 5, "sum:" + session.id});
  auto done = this->store->messages().finish_turn(f);
  ASSERT_TRUE(done.ok()) << done.error().message;

  auto queued = jobs.list(std::string("queued"), 10);
  ASSERT_TRUE(queued.ok()) << queued.error().message;
  std::map<std::string, std::vector<Job>> by_kind;
  for (const auto& j : *queued) by_kind[j.kind].push_back(j);
  ASSERT_EQ(by_kind["memory.extract"].size(), 1u);
  EXPECT_EQ(by_kind["memory.extract"][0].payload_json, R"({"reply":"x"})");
  EXPECT_EQ(by_kind["memory.extract"][0].unique_key, "memx:" + started.assistant.id);
  // The summary already planned stands for the new plan too.
  ASSERT_EQ(by_kind["session.summarize"].size(), 1u);
  EXPECT_EQ(by_kind["session.summarize"][0].id, planned->id);
  EXPECT_EQ(by_kind["session.summarize"][0].payload_json, R"({"n":1})");

  // A reply that cannot be stored queues nothing: its session was deleted meanwhile.
  auto other = this->make_session("acme", "alice");
  auto started2 = this->begin(other.id, "hi");
  ASSERT_TRUE(this->store->sessions().remove(other.id).ok());
  FinishedTurn lost = f;
  lost.assistant_message_id = started2.assistant.id;
  lost.follow_up_jobs = {{"memory.extract", "{}", 0, 5, "memx:" + started2.assistant.id}};
  EXPECT_TRUE(FailsWith(this->store->messages().finish_turn(lost), ErrorCode::kNotFound,
                        "message_not_found"));
  auto after = jobs.list(std::nullopt, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 2u);
  for (const auto& j : *after) EXPECT_NE(j.unique_key, "memx:" + started2.assistant.id);
}

TYPED_TEST(StorageConformance, MessageListIsOldestFirstByDefaultAndNewestFirstOnRequest) {
  auto session = this->make_session("default", "alice");
  this->turn(session.id, "q1", "a1");
  this->clock.advance(1s);
  this->turn(session.id, "q2", "a2");

  MessageListQuery q;
  q.session_id = session.id;
  auto oldest = this->store->messages().list(q);
  ASSERT_TRUE(oldest.ok()) << oldest.error().message;
  EXPECT_EQ(contents_of(oldest->items), (std::vector<std::string>{"q1", "a1", "q2", "a2"}));
  EXPECT_EQ(oldest->next_cursor, std::nullopt);

  q.newest_first = true;
  auto newest = this->store->messages().list(q);
  ASSERT_TRUE(newest.ok()) << newest.error().message;
  EXPECT_EQ(contents_of(newest->items), (std::vector<std::string>{"a2", "q2", "a1", "q1"}));
}

TYPED_TEST(StorageConformance, MessageListOfEmptySessionIsAnEmptyPage) {
  auto session = this->make_session("default", "alice");
  MessageListQuery q;
  q.session_id = session.id;
  auto page = this->store->messages().list(q);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_TRUE(page->items.empty());
  EXPECT_EQ(page->next_cursor, std::nullopt);
}

TYPED_TEST(StorageConformance, MessageListPagesInBothDirectionsWithoutOverlap) {
  // Turns begun in the same millisecond: pages follow insertion order, not timestamps (a
  // turn's user row can share a millisecond with the previous reply's row).
  auto session = this->make_session("default", "alice");
  auto other = this->make_session("default", "alice");
  std::vector<std::string> expected;
  for (int i = 0; i < 4; ++i) {
    auto started = this->begin(session.id, numbered("q", i));
    auto done = this->finish(started.assistant.id, numbered("a", i));
    expected.push_back(started.user.id);
    expected.push_back(done.id);
    this->turn(other.id, "noise", "noise");
  }

  for (bool newest_first : {false, true}) {
    MessageListQuery q;
    q.session_id = session.id;
    q.limit = 3;
    q.newest_first = newest_first;
    std::vector<std::string> seen;
    std::vector<int> sizes;
    for (int guard = 0; guard < 10; ++guard) {
      auto page = this->store->messages().list(q);
      ASSERT_TRUE(page.ok()) << page.error().message;
      sizes.push_back(static_cast<int>(page->items.size()));
      for (const auto& m : page->items) {
        EXPECT_EQ(m.session_id, session.id);
        seen.push_back(m.id);
      }
      if (!page->next_cursor) break;
      q.cursor = page->next_cursor;
    }
    std::vector<std::string> want = expected;
    if (newest_first) std::reverse(want.begin(), want.end());
    EXPECT_EQ(seen, want) << "newest_first " << newest_first;
    EXPECT_EQ(sizes, (std::vector<int>{3, 3, 2})) << "newest_first " << newest_first;
  }
}

TYPED_TEST(StorageConformance, MessageListLastFullPageHasNoCursor) {
  auto session = this->make_session("default", "alice");
  this->turn(session.id, "q1", "a1");
  this->turn(session.id, "q2", "a2");
  MessageListQuery q;
  q.session_id = session.id;
  q.limit = 2;
  auto first = this->store->messages().list(q);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(first->next_cursor.has_value());
  q.cursor = first->next_cursor;
  auto second = this->store->messages().list(q);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(contents_of(second->items), (std::vector<std::string>{"q2", "a2"}));
  EXPECT_EQ(second->next_cursor, std::nullopt);
}

TYPED_TEST(StorageConformance, MessageListOfMissingSessionIsNotFound) {
  MessageListQuery q;
  q.session_id = "sess_missing";
  EXPECT_TRUE(
      FailsWith(this->store->messages().list(q), ErrorCode::kNotFound, "session_not_found"));
}

TYPED_TEST(StorageConformance, MessageListRejectsMalformedCursors) {
  auto session = this->make_session("default", "alice");
  this->turn(session.id, "q", "a");
  for (const char* cursor : {"abc", "0", "-5", "12x"}) {
    MessageListQuery q;
    q.session_id = session.id;
    q.cursor = cursor;
    EXPECT_TRUE(
        FailsWith(this->store->messages().list(q), ErrorCode::kInvalidArgument, "invalid_cursor"))
        << "cursor " << cursor;
  }
}

TYPED_TEST(StorageConformance, HistoryIsTheLastMessagesOldestFirst) {
  auto session = this->make_session("default", "alice");
  for (int i = 0; i < 4; ++i) {
    this->turn(session.id, numbered("q", i), numbered("a", i));
    this->clock.advance(10ms);
  }
  auto last3 = this->store->messages().history(session.id, 3);
  ASSERT_TRUE(last3.ok()) << last3.error().message;
  EXPECT_EQ(contents_of(*last3), (std::vector<std::string>{"a2", "q3", "a3"}));
  auto all = this->store->messages().history(session.id, 100);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(static_cast<int>(all->size()), 8);
  EXPECT_EQ(all->front().content, "q0");
}

TYPED_TEST(StorageConformance, ASummaryCoversTheMessagesUpToItsLastAndOnlyMovesForward) {
  auto session = this->make_session("default", "alice");
  for (int i = 0; i < 4; ++i) this->turn(session.id, numbered("q", i), numbered("a", i));
  auto& summaries = this->store->summaries();
  auto none = summaries.latest(session.id);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  auto all = summaries.messages_after(session.id, 0, 100);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(contents_of(*all),
            (std::vector<std::string>{"q0", "a0", "q1", "a1", "q2", "a2", "q3", "a3"}));
  for (size_t i = 1; i < all->size(); ++i) EXPECT_GT((*all)[i].seq, (*all)[i - 1].seq);
  // History reads the same numbers.
  auto history = this->store->messages().history(session.id, 100);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().seq, all->back().seq);

  Summary s;
  s.session_id = session.id;
  s.text = "- User: q0";
  s.first_message_id = (*all)[0].id;
  s.last_message_id = (*all)[3].id;
  s.through_seq = (*all)[3].seq;
  s.messages = 4;
  s.tokens = 3;
  s.method = "extractive";
  s.created_at_ms = this->now_ms();
  auto first = summaries.add(s);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->id.rfind("sum_", 0), 0u);
  auto latest = summaries.latest(session.id);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->id, first->id);
  EXPECT_EQ((*latest)->text, "- User: q0");
  EXPECT_EQ((*latest)->through_seq, (*all)[3].seq);
  EXPECT_EQ((*latest)->messages, 4);
  EXPECT_EQ((*latest)->method, "extractive");
  auto rest = summaries.messages_after(session.id, (*latest)->through_seq, 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(contents_of(*rest), (std::vector<std::string>{"q2", "a2", "q3", "a3"}));
  EXPECT_EQ(contents_of(*summaries.messages_after(session.id, 0, 3)),
            (std::vector<std::string>{"q0", "a0", "q1"}));

  // Covering no more than the newest is stale (a slower or retried job's).
  EXPECT_TRUE(FailsWith(summaries.add(s), ErrorCode::kConflict));
  s.last_message_id = (*all)[1].id;
  s.through_seq = (*all)[1].seq;
  EXPECT_TRUE(FailsWith(summaries.add(s), ErrorCode::kConflict));
  s.last_message_id = (*all)[5].id;
  s.through_seq = (*all)[5].seq;
  s.text = "- User: q0\n- User: q2";
  s.messages = 6;
  s.method = "model";
  s.model = "gpt-test";
  auto second = summaries.add(s);
  ASSERT_TRUE(second.ok()) << second.error().message;
  auto listed = summaries.list(session.id, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, second->id);
  EXPECT_EQ((*listed)[0].model, "gpt-test");
  EXPECT_EQ((*listed)[1].id, first->id);

  // A session that is gone has no summaries, and gets none.
  ASSERT_TRUE(this->store->sessions().remove(session.id).ok());
  EXPECT_TRUE(summaries.list(session.id, 10)->empty());
  s.through_seq += 10;
  EXPECT_TRUE(FailsWith(summaries.add(s), ErrorCode::kNotFound));
}

TYPED_TEST(StorageConformance, HistorySkipsPendingAndEmptyRows) {
  // A prompt must not include a reply still being written, nor an empty reply (one that
  // failed before any text), but a reply made only of tool calls is part of the conversation.
  auto session = this->make_session("default", "alice");
  this->turn(session.id, "q0", "a0");
  auto failed = this->begin(session.id, "q1");
  this->finish(failed.assistant.id, "", "partial");
  auto tools = this->begin(session.id, "q2");
  FinishedTurn f;
  f.assistant_message_id = tools.assistant.id;
  f.content = "";
  f.tool_calls_json = "[{\"id\":\"call_1\"}]";
  f.status = "complete";
  f.finish_reason = "tool_calls";
  ASSERT_TRUE(this->store->messages().finish_turn(f).ok());
  auto pending = this->begin(session.id, "q3");

  auto history = this->store->messages().history(session.id, 50);
  ASSERT_TRUE(history.ok()) << history.error().message;
  std::vector<std::string> ids = ids_of(*history);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), failed.assistant.id), 0);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), pending.assistant.id), 0);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tools.assistant.id), 1);
  EXPECT_EQ(contents_of(*history), (std::vector<std::string>{"q0", "a0", "q1", "q2", "", "q3"}));
  for (const auto& m : *history) EXPECT_NE(m.status, "pending");
}

// A reply left pending is finished by another replica only when its own is dead: silent past
// the cut-off, or unknown (rows from before owners were recorded). Never this replica's.
TYPED_TEST(StorageConformance, OnlyTheRepliesOfDeadReplicasAreInterrupted) {
  const int64_t now = this->now_ms();
  auto& replicas = this->store->replicas();
  ASSERT_TRUE(replicas.heartbeat({"rep_live", "host-a", 11, now - 90'000, now - 1'000}).ok());
  ASSERT_TRUE(replicas.heartbeat({"rep_dead", "host-b", 12, now - 90'000, now - 60'000}).ok());
  // A heartbeat updates seen_at only.
  ASSERT_TRUE(replicas.heartbeat({"rep_live", "host-a", 11, now - 90'000, now}).ok());
  auto s1 = this->make_session("default", "alice");
  auto live = this->begin(s1.id, "q1", "r1", "rep_live");
  auto dead = this->begin(s1.id, "q2", "r2", "rep_dead");
  auto self = this->begin(s1.id, "q3", "r3", "rep_self");
  auto unowned = this->begin(s1.id, "q4", "r4");
  auto done = this->begin(s1.id, "q5", "r5", "rep_dead");
  this->finish(done.assistant.id, "answered");

  auto marked = replicas.interrupt_orphans("rep_self", now - 30'000, now);
  ASSERT_TRUE(marked.ok()) << marked.error().message;
  EXPECT_EQ(*marked, 2);
  MessageListQuery q;
  q.session_id = s1.id;
  q.limit = 100;
  auto listed = this->store->messages().list(q);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  std::map<std::string, Message> by_id;
  for (const auto& m : listed->items) by_id[m.id] = m;
  EXPECT_EQ(by_id[live.assistant.id].status, "pending");
  EXPECT_EQ(by_id[self.assistant.id].status, "pending");
  EXPECT_EQ(by_id[dead.assistant.id].status, "partial");
  EXPECT_EQ(by_id[dead.assistant.id].finish_reason, "interrupted");
  EXPECT_EQ(by_id[dead.assistant.id].completed_at_ms, std::optional<int64_t>(now));
  EXPECT_EQ(by_id[unowned.assistant.id].status, "partial");
  EXPECT_EQ(by_id[done.assistant.id].status, "complete");  // finished replies are untouched

  // The dead replica is forgotten; the live one stays.
  auto known = replicas.list();
  ASSERT_TRUE(known.ok()) << known.error().message;
  ASSERT_EQ(static_cast<int>(known->size()), 1);
  EXPECT_EQ((*known)[0].id, "rep_live");
  EXPECT_EQ((*known)[0].host, "host-a");
  EXPECT_EQ((*known)[0].pid, 11);
  EXPECT_EQ((*known)[0].started_at_ms, now - 90'000);
  EXPECT_EQ((*known)[0].seen_at_ms, now);
  auto again = replicas.interrupt_orphans("rep_self", now - 30'000, now);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);

  // A replica that stopped cleanly is gone from the table: what it left is an orphan.
  ASSERT_TRUE(replicas.remove("rep_live").ok());
  auto after = replicas.interrupt_orphans("rep_self", now - 30'000, now);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, 1);
}

// ---------------------------------------------------------------------------------------------
// The durable job queue

TYPED_TEST(StorageConformance, DueJobsAreTakenOnceAndFinishedByTheirHolder) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  auto a = jobs.enqueue({"usage_rollup", R"({"day":"2026-11-21"})", 0, 5, ""}, now);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->id.rfind("job_", 0), 0u);
  EXPECT_EQ(a->state, "queued");
  EXPECT_EQ(a->run_at_ms, now);
  ASSERT_TRUE(jobs.enqueue({"user_erasure", "{}", 0, 5, ""}, now).ok());
  ASSERT_TRUE(jobs.enqueue({"later", "{}", now + 60'000, 5, ""}, now).ok());

  auto taken = jobs.take("worker-1", 10, now, 30'000);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  ASSERT_EQ(static_cast<int>(taken->size()), 2);  // the third is not due
  for (const auto& j : *taken) {
    EXPECT_EQ(j.state, "running");
    EXPECT_EQ(j.attempts, 1);
    EXPECT_EQ(j.locked_by, std::optional<std::string>("worker-1"));
    EXPECT_EQ(j.locked_until_ms, std::optional<int64_t>(now + 30'000));
  }
  auto none = jobs.take("worker-2", 10, now, 30'000);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  const auto& first = (*taken)[0];
  auto wrong = jobs.succeed(first.id, "worker-2", "{}", now);
  EXPECT_TRUE(FailsWith(wrong, ErrorCode::kConflict, "job_not_held"));
  ASSERT_TRUE(jobs.succeed(first.id, "worker-1", R"({"rows":3})", now + 5).ok());
  auto counts = jobs.counts();
  ASSERT_TRUE(counts.ok());
  std::map<std::string, int64_t> by_state(counts->begin(), counts->end());
  EXPECT_EQ(by_state["done"], 1);
  EXPECT_EQ(by_state["running"], 1);
  EXPECT_EQ(by_state["queued"], 1);
  auto done = jobs.list(std::string("done"), 10);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(static_cast<int>(done->size()), 1);
  EXPECT_EQ((*done)[0].finished_at_ms, std::optional<int64_t>(now + 5));
  EXPECT_FALSE((*done)[0].locked_by.has_value());
  EXPECT_EQ((*done)[0].result_json, R"({"rows":3})");
}

TYPED_TEST(StorageConformance, AJobIsReadByItsId) {
  const int64_t now = this->now_ms();
  auto made = this->store->jobs().enqueue({"user.erase", R"({"user_id":"alice"})", 0, 3, ""}, now);
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto got = this->store->jobs().get(made->id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->kind, "user.erase");
  EXPECT_EQ(got->payload_json, R"({"user_id":"alice"})");
  EXPECT_EQ(got->state, "queued");
  EXPECT_EQ(got->max_attempts, 3);
  EXPECT_EQ(got->result_json, "{}");
  EXPECT_TRUE(FailsWith(this->store->jobs().get("job_missing"), ErrorCode::kNotFound));
}

TYPED_TEST(StorageConformance, DoneJobsArePurgedOnceOldAndDeadOnesStay) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  ASSERT_TRUE(jobs.enqueue({"old", "{}", 0, 1, ""}, now).ok());
  ASSERT_TRUE(jobs.enqueue({"dies", "{}", 0, 1, ""}, now).ok());
  auto taken = jobs.take("w", 2, now, 60'000);
  ASSERT_TRUE(taken.ok() && taken->size() == 2u);
  for (const auto& j : *taken) {
    if (j.kind == "old") {
      ASSERT_TRUE(jobs.succeed(j.id, "w", "{}", now + 10).ok());
    } else {
      ASSERT_TRUE(jobs.fail(j.id, "w", "boom", now, now + 10).ok());
    }
  }
  ASSERT_TRUE(jobs.enqueue({"recent", "{}", 0, 1, ""}, now + 1000).ok());
  auto recent = jobs.take("w", 1, now + 1000, 60'000);
  ASSERT_TRUE(recent.ok() && recent->size() == 1u);
  ASSERT_TRUE(jobs.succeed(recent->front().id, "w", "{}", now + 1000).ok());

  auto purged = jobs.purge_done(now + 500);
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ(*purged, 1);
  auto left = jobs.list(std::nullopt, 10);
  ASSERT_TRUE(left.ok());
  std::set<std::string> kinds;
  for (const auto& j : *left) kinds.insert(j.kind);
  EXPECT_EQ(kinds, (std::set<std::string>{"dies", "recent"}));
}

TYPED_TEST(StorageConformance, AJobWhoseWorkerDiedIsTakenAgainOnceItsLockLapses) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  ASSERT_TRUE(jobs.enqueue({"k", "{}", 0, 5, ""}, now).ok());
  auto first = jobs.take("dead-worker", 1, now, 1000);
  ASSERT_TRUE(first.ok() && first->size() == 1u);
  auto early = jobs.take("worker-2", 1, now + 1000, 1000);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty());
  auto again = jobs.take("worker-2", 1, now + 1001, 1000);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(static_cast<int>(again->size()), 1);
  EXPECT_EQ((*again)[0].attempts, 2);
  EXPECT_TRUE(FailsWith(jobs.succeed((*first)[0].id, "dead-worker", "{}", now + 1002),
                        ErrorCode::kConflict, "job_not_held"));
  EXPECT_TRUE(jobs.succeed((*again)[0].id, "worker-2", "{}", now + 1002).ok());
}

TYPED_TEST(StorageConformance, AHolderExtendsItsLockAndNoOtherWorkerTakesTheJobMeanwhile) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  ASSERT_TRUE(jobs.enqueue({"k", "{}", 0, 5, ""}, now).ok());
  auto taken = jobs.take("worker-1", 1, now, 1000);
  ASSERT_TRUE(taken.ok() && taken->size() == 1u);
  const std::string id = (*taken)[0].id;
  ASSERT_TRUE(jobs.extend(id, "worker-1", now + 5000, now + 900).ok());
  auto meanwhile = jobs.take("worker-2", 1, now + 4000, 1000);
  ASSERT_TRUE(meanwhile.ok());
  EXPECT_TRUE(meanwhile->empty()) << "taken while its lock was extended";
  EXPECT_EQ(jobs.get(id)->locked_until_ms, std::optional<int64_t>(now + 5000));
  // Only the holder may extend it; once it lapsed and another took it, the first is refused.
  EXPECT_TRUE(FailsWith(jobs.extend(id, "worker-2", now + 9000, now + 4000), ErrorCode::kConflict,
                        "job_not_held"));
  auto later = jobs.take("worker-2", 1, now + 5001, 1000);
  ASSERT_TRUE(later.ok() && later->size() == 1u);
  EXPECT_TRUE(FailsWith(jobs.extend(id, "worker-1", now + 9000, now + 5002), ErrorCode::kConflict,
                        "job_not_held"));
  EXPECT_TRUE(jobs.succeed(id, "worker-2", "{}", now + 5003).ok());
  EXPECT_TRUE(FailsWith(jobs.extend(id, "worker-2", now + 9000, now + 5004), ErrorCode::kConflict,
                        "job_not_held"));
}

TYPED_TEST(StorageConformance, FailedJobsRetryWithBackOffThenDieAndCanBeRetried) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  auto job = jobs.enqueue({"k", "{}", 0, 2, ""}, now);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(jobs.take("w", 1, now, 1000)->size(), 1u);
  auto failed = jobs.fail(job->id, "w", "upstream said 503", now + 500, now);
  ASSERT_TRUE(failed.ok()) << failed.error().message;
  EXPECT_EQ(failed->state, "queued");
  EXPECT_EQ(failed->run_at_ms, now + 500);
  EXPECT_EQ(failed->last_error, "upstream said 503");
  EXPECT_TRUE(jobs.take("w", 1, now + 499, 1000)->empty());  // backing off
  ASSERT_EQ(jobs.take("w", 1, now + 500, 1000)->size(), 1u);
  auto dead = jobs.fail(job->id, "w", "still 503", now + 2000, now + 600);
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(dead->state, "dead");
  EXPECT_EQ(dead->attempts, 2);
  EXPECT_EQ(dead->finished_at_ms, std::optional<int64_t>(now + 600));
  EXPECT_TRUE(jobs.take("w", 1, now + 5000, 1000)->empty());  // the dead are not taken
  auto listed = jobs.list(std::string("dead"), 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(static_cast<int>(listed->size()), 1);
  EXPECT_EQ((*listed)[0].last_error, "still 503");

  auto retried = jobs.retry(job->id, now + 700);
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(retried->state, "queued");
  EXPECT_EQ(retried->attempts, 0);
  EXPECT_FALSE(retried->finished_at_ms.has_value());
  EXPECT_TRUE(FailsWith(jobs.retry(job->id, now + 700), ErrorCode::kConflict, "job_not_dead"));
  EXPECT_TRUE(FailsWith(jobs.retry("job_missing", now), ErrorCode::kNotFound, "job_not_found"));
  ASSERT_EQ(jobs.take("w", 1, now + 700, 1000)->size(), 1u);
}

TYPED_TEST(StorageConformance, AUniqueKeyHoldsOneLiveJobAndIsFreeAgainOnceItEnds) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  auto first = jobs.enqueue({"session.summarize", R"({"v":1})", 0, 1, "sum:s1"}, now);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->unique_key, std::optional<std::string>("sum:s1"));
  // Queued: the same key gives the same job back, and adds nothing.
  auto again = jobs.enqueue({"session.summarize", R"({"v":2})", 0, 1, "sum:s1"}, now + 1);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->payload_json, R"({"v":1})");
  // Another key, and no key at all, are separate jobs.
  auto other = jobs.enqueue({"session.summarize", "{}", 0, 1, "sum:s2"}, now);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->id, first->id);
  auto plain1 = jobs.enqueue({"k", "{}", 0, 1, ""}, now);
  auto plain2 = jobs.enqueue({"k", "{}", 0, 1, ""}, now);
  ASSERT_TRUE(plain1.ok() && plain2.ok());
  EXPECT_NE(plain1->id, plain2->id);
  EXPECT_FALSE(plain1->unique_key.has_value());

  // Running: still the live job.
  auto taken = jobs.take("w", 10, now + 2, 60'000);
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->size(), 4u);
  auto while_running = jobs.enqueue({"session.summarize", "{}", 0, 1, "sum:s1"}, now + 3);
  ASSERT_TRUE(while_running.ok());
  EXPECT_EQ(while_running->id, first->id);
  EXPECT_EQ(while_running->state, "running");

  // Done: the key is free, and a new job is made.
  ASSERT_TRUE(jobs.succeed(first->id, "w", "{}", now + 4).ok());
  auto after_done = jobs.enqueue({"session.summarize", "{}", 0, 1, "sum:s1"}, now + 5);
  ASSERT_TRUE(after_done.ok());
  EXPECT_NE(after_done->id, first->id);
  EXPECT_EQ(after_done->state, "queued");

  // Dead: the key is free; the dead job cannot be retried while a job with its key is live.
  auto died = jobs.fail(other->id, "w", "boom", now + 6, now + 6);
  ASSERT_TRUE(died.ok());
  ASSERT_EQ(died->state, "dead");
  auto replacement = jobs.enqueue({"session.summarize", "{}", 0, 1, "sum:s2"}, now + 7);
  ASSERT_TRUE(replacement.ok());
  EXPECT_NE(replacement->id, other->id);
  EXPECT_TRUE(FailsWith(jobs.retry(other->id, now + 8), ErrorCode::kConflict, "job_key_taken"));
  auto replacement_taken = jobs.take("w", 10, now + 8, 60'000);
  ASSERT_TRUE(replacement_taken.ok());
  ASSERT_TRUE(jobs.succeed(replacement->id, "w", "{}", now + 9).ok());
  auto retried = jobs.retry(other->id, now + 10);
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(retried->state, "queued");
}

TYPED_TEST(StorageConformance, ConcurrentWorkersNeverTakeTheSameJob) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(jobs.enqueue({"k", "{}", 0, 5, ""}, now).ok());
  std::mutex mutex;
  std::vector<std::string> seen;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      std::string name = "worker-";
      name += std::to_string(w);
      for (;;) {
        auto batch = jobs.take(name, 5, now, 60'000);
        if (!batch.ok()) {
          ADD_FAILURE() << batch.error().message;
          return;
        }
        if (batch->empty()) return;
        std::lock_guard lock(mutex);
        for (const auto& j : *batch) seen.push_back(j.id);
      }
    });
  }
  for (auto& t : workers) t.join();
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(static_cast<int>(seen.size()), kJobs);
  EXPECT_EQ(static_cast<int>(unique.size()), kJobs);
}

// ---------------------------------------------------------------------------------------------
// Usage

TYPED_TEST(StorageConformance, UsageTotalOfNothingIsOneRowOfZeros) {
  auto rows = this->store->usage().aggregate({});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(static_cast<int>(rows->size()), 1);
  const UsageRow& row = rows->front();
  EXPECT_TRUE(row.keys.empty());
  EXPECT_EQ(row.requests, 0);
  EXPECT_EQ(row.input_tokens, 0);
  EXPECT_EQ(row.output_tokens, 0);
  EXPECT_EQ(row.cost_usd, 0.0);
}

TYPED_TEST(StorageConformance, UsageTotalSumsRequestsTokensAndCost) {
  const int64_t t = this->now_ms();
  auto a = this->usage_record(t, "default", "alice", "m1", 0.1);
  auto b = this->usage_record(t + 1, "default", "bob", "m2", 0.2);
  b.requests = 5;  // a merged record of the API path stands for five calls
  b.input_tokens = 100;
  b.output_tokens = 200;
  this->record({a, b});
  auto row = this->total({});
  EXPECT_EQ(row.requests, 6);
  EXPECT_EQ(row.input_tokens, 110);
  EXPECT_EQ(row.output_tokens, 220);
  EXPECT_NEAR(row.cost_usd, 0.3, 1e-9);
}

TYPED_TEST(StorageConformance, UsageTimeRangeIncludesFromAndExcludesTo) {
  const int64_t t = this->now_ms();
  this->record({this->usage_record(t - 1, "default", "u", "m", 1.0),
                this->usage_record(t, "default", "u", "m", 2.0),
                this->usage_record(t + 999, "default", "u", "m", 4.0),
                this->usage_record(t + 1000, "default", "u", "m", 8.0)});
  UsageQuery q;
  q.from_ms = t;
  q.to_ms = t + 1000;
  auto row = this->total(q);
  EXPECT_EQ(row.requests, 2);
  EXPECT_NEAR(row.cost_usd, 6.0, 1e-9);

  UsageQuery from_only;
  from_only.from_ms = t;
  EXPECT_NEAR(this->total(from_only).cost_usd, 14.0, 1e-9);
  EXPECT_NEAR(this->total({}).cost_usd, 15.0, 1e-9);
}

TYPED_TEST(StorageConformance, UsageFiltersByTenantAndUser) {
  const int64_t t = this->now_ms();
  this->record({this->usage_record(t, "acme", "alice", "m", 1.0),
                this->usage_record(t, "acme", "bob", "m", 2.0),
                this->usage_record(t, "globex", "alice", "m", 4.0)});
  UsageQuery tenant;
  tenant.tenant_id = "acme";
  EXPECT_NEAR(this->total(tenant).cost_usd, 3.0, 1e-9);
  UsageQuery user;
  user.user_id = "alice";
  EXPECT_NEAR(this->total(user).cost_usd, 5.0, 1e-9);
  UsageQuery both;
  both.tenant_id = "acme";
  both.user_id = "alice";
  auto row = this->total(both);
  EXPECT_EQ(row.requests, 1);
  EXPECT_NEAR(row.cost_usd, 1.0, 1e-9);
  UsageQuery nobody;
  nobody.tenant_id = "initech";
  auto empty = this->total(nobody);
  EXPECT_EQ(empty.requests, 0);
  EXPECT_EQ(empty.cost_usd, 0.0);
}

TYPED_TEST(StorageConformance, UsageGroupByModelIsOrderedByModel) {
  const int64_t t = this->now_ms();
  this->record({this->usage_record(t, "default", "u", "zeta", 1.0),
                this->usage_record(t, "default", "u", "alpha", 2.0),
                this->usage_record(t, "default", "u", "mid", 4.0),
                this->usage_record(t, "default", "u", "alpha", 8.0)});
  UsageQuery q;
  q.group_by = {"model"};
  auto rows = this->store->usage().aggregate(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(static_cast<int>(rows->size()), 3);
  using Keys = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ((*rows)[0].keys, (Keys{{"model", "alpha"}}));
  EXPECT_EQ((*rows)[0].requests, 2);
  EXPECT_EQ((*rows)[0].input_tokens, 20);
  EXPECT_EQ((*rows)[0].output_tokens, 40);
  EXPECT_NEAR((*rows)[0].cost_usd, 10.0, 1e-9);
  EXPECT_EQ((*rows)[1].keys, (Keys{{"model", "mid"}}));
  EXPECT_NEAR((*rows)[1].cost_usd, 4.0, 1e-9);
  EXPECT_EQ((*rows)[2].keys, (Keys{{"model", "zeta"}}));
  EXPECT_NEAR((*rows)[2].cost_usd, 1.0, 1e-9);
}

TYPED_TEST(StorageConformance, UsageGroupsByEveryDimension) {
  // Two records that differ in every dimension: each group_by field splits them in two rows
  // named by that field, in ascending order of the value.
  UsageRecord a = this->usage_record(this->now_ms(), "t_a", "u_a", "m_a", 1.0);
  a.provider = "p_a";
  a.source = "api";
  a.key_id = "key_a";
  UsageRecord b = this->usage_record(this->now_ms(), "t_b", "u_b", "m_b", 2.0);
  b.provider = "p_b";
  b.source = "chat";
  b.key_id = "key_b";
  this->record({b, a});
  const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> fields = {
      {"model", {"m_a", "m_b"}},   {"provider", {"p_a", "p_b"}}, {"user", {"u_a", "u_b"}},
      {"source", {"api", "chat"}}, {"key", {"key_a", "key_b"}},  {"tenant", {"t_a", "t_b"}},
  };
  for (const auto& [field, values] : fields) {
    UsageQuery q;
    q.group_by = {field};
    auto rows = this->store->usage().aggregate(q);
    ASSERT_TRUE(rows.ok()) << field << ": " << rows.error().message;
    ASSERT_EQ(static_cast<int>(rows->size()), 2) << field;
    ASSERT_EQ(static_cast<int>((*rows)[0].keys.size()), 1) << field;
    EXPECT_EQ((*rows)[0].keys[0].first, field);
    EXPECT_EQ((*rows)[0].keys[0].second, values.first) << field;
    EXPECT_NEAR((*rows)[0].cost_usd, 1.0, 1e-9) << field;
    ASSERT_EQ(static_cast<int>((*rows)[1].keys.size()), 1) << field;
    EXPECT_EQ((*rows)[1].keys[0].first, field);
    EXPECT_EQ((*rows)[1].keys[0].second, values.second) << field;
    EXPECT_NEAR((*rows)[1].cost_usd, 2.0, 1e-9) << field;
  }
}

TYPED_TEST(StorageConformance, UsageGroupByDayIsTheUtcDate) {
  // The clock starts at 2026-11-22T10:00:00Z: midnight UTC is 14 hours later. Budgets reset
  // at midnight UTC, whatever the database server's time zone is.
  const int64_t start = parley::ManualClock::kDefaultStartMs;
  const int64_t midnight = start + 14LL * 3600 * 1000;
  this->record({this->usage_record(start, "default", "u", "m", 1.0),
                this->usage_record(midnight - 1, "default", "u", "m", 2.0),
                this->usage_record(midnight, "default", "u", "m", 4.0)});
  UsageQuery q;
  q.group_by = {"day"};
  auto rows = this->store->usage().aggregate(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(static_cast<int>(rows->size()), 2);
  using Keys = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ((*rows)[0].keys, (Keys{{"day", "2026-11-22"}}));
  EXPECT_EQ((*rows)[0].requests, 2);
  EXPECT_NEAR((*rows)[0].cost_usd, 3.0, 1e-9);
  EXPECT_EQ((*rows)[1].keys, (Keys{{"day", "2026-11-23"}}));
  EXPECT_EQ((*rows)[1].requests, 1);
  EXPECT_NEAR((*rows)[1].cost_usd, 4.0, 1e-9);
}

TYPED_TEST(StorageConformance, UsageGroupByTwoFieldsOrdersByBothInTurn) {
  const int64_t t = this->now_ms();
  this->record({this->usage_record(t, "default", "bob", "m2", 1.0),
                this->usage_record(t, "default", "alice", "m2", 2.0),
                this->usage_record(t, "default", "bob", "m1", 4.0),
                this->usage_record(t, "default", "alice", "m1", 8.0),
                this->usage_record(t, "default", "alice", "m1", 16.0)});
  UsageQuery q;
  q.group_by = {"user", "model"};
  auto rows = this->store->usage().aggregate(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(static_cast<int>(rows->size()), 4);
  using Keys = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ((*rows)[0].keys, (Keys{{"user", "alice"}, {"model", "m1"}}));
  EXPECT_NEAR((*rows)[0].cost_usd, 24.0, 1e-9);
  EXPECT_EQ((*rows)[0].requests, 2);
  EXPECT_EQ((*rows)[1].keys, (Keys{{"user", "alice"}, {"model", "m2"}}));
  EXPECT_NEAR((*rows)[1].cost_usd, 2.0, 1e-9);
  EXPECT_EQ((*rows)[2].keys, (Keys{{"user", "bob"}, {"model", "m1"}}));
  EXPECT_NEAR((*rows)[2].cost_usd, 4.0, 1e-9);
  EXPECT_EQ((*rows)[3].keys, (Keys{{"user", "bob"}, {"model", "m2"}}));
  EXPECT_NEAR((*rows)[3].cost_usd, 1.0, 1e-9);
}

TYPED_TEST(StorageConformance, UsageUnknownGroupIsInvalid) {
  // A group name reaches SQL text on some backends: only the known names may pass.
  for (const char* field : {"color", "model; DROP TABLE usage_records", ""}) {
    UsageQuery q;
    q.group_by = {field};
    EXPECT_TRUE(
        FailsWith(this->store->usage().aggregate(q), ErrorCode::kInvalidArgument, "invalid_field"))
        << "group_by '" << field << "'";
  }
}

TYPED_TEST(StorageConformance, UsageSpentSumsCostOfOneUserOfOneTenantSince) {
  const int64_t t = this->now_ms();
  this->record({this->usage_record(t - 1, "acme", "alice", "m", 100.0),
                this->usage_record(t, "acme", "alice", "m", 0.5),
                this->usage_record(t + 10, "acme", "alice", "m", 0.25),
                this->usage_record(t + 10, "acme", "bob", "m", 7.0),
                this->usage_record(t + 10, "globex", "alice", "m", 9.0)});
  auto spent = this->store->usage().spent("acme", "alice", t);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_NEAR(*spent, 0.75, 1e-9);
  auto nothing = this->store->usage().spent("acme", "carol", 0);
  ASSERT_TRUE(nothing.ok()) << nothing.error().message;
  EXPECT_EQ(*nothing, 0.0);
}

TYPED_TEST(StorageConformance, UsageSpentByKeySumsCostOfOneKeySince) {
  const int64_t t = this->now_ms();
  auto a = this->usage_record(t - 1, "acme", "alice", "m", 100.0);
  auto b = this->usage_record(t, "acme", "alice", "m", 1.5);
  auto c = this->usage_record(t + 1, "globex", "bob", "m", 2.5);
  auto d = this->usage_record(t + 1, "acme", "alice", "m", 50.0);
  d.key_id = "key_other";
  this->record({a, b, c, d});
  auto spent = this->store->usage().spent_by_key("key_a", t);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_NEAR(*spent, 4.0, 1e-9);
  auto none = this->store->usage().spent_by_key("key_none", 0);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(*none, 0.0);
}

// Every query over usage answers the same before and after the days it covers are rolled up:
// whole days come from the daily totals, partial days and days not rolled up from the records.
TYPED_TEST(StorageConformance, UsageRolledUpIntoDaysAnswersEveryQueryAsTheRecordsDid) {
  const int64_t start = parley::ManualClock::kDefaultStartMs;  // 2026-11-22T10:00:00Z
  const int64_t midnight = utc_midnight(start) + kDayMs;       // 2026-11-23T00:00:00Z
  std::vector<UsageRecord> records;
  const char* const models[] = {"m1", "m2"};
  const char* const users[] = {"alice", "bob"};
  for (int day = -2; day <= 1; ++day) {
    for (int i = 0; i < 6; ++i) {
      auto r = this->usage_record(midnight + day * kDayMs + i * 3'600'000 + 17,
                                  i % 3 ? "acme" : "globex", users[i % 2], models[(i / 2) % 2],
                                  0.001 * (i + 1));
      r.key_id = i % 2 ? "key_a" : "key_b";
      r.source = i < 3 ? "api" : "chat";
      r.input_tokens = 10 + i;
      r.requests = 1 + i % 2;
      records.push_back(r);
    }
  }
  this->record(records);
  std::vector<UsageQuery> queries;
  const std::vector<std::vector<std::string>> groupings = {
      {}, {"day"}, {"model"}, {"user", "day"}, {"tenant", "key", "source", "provider"}};
  const std::vector<std::pair<int64_t, int64_t>> ranges = {
      {0, INT64_MAX},
      {midnight - kDayMs, midnight},                  // one whole day
      {midnight - kDayMs - 5, midnight + 7'200'000},  // partial days on both ends
      {midnight - 2 * kDayMs + 3'600'000, midnight + kDayMs}};
  for (const auto& g : groupings) {
    for (const auto& [from, to] : ranges) {
      UsageQuery q;
      q.from_ms = from;
      q.to_ms = to;
      q.group_by = g;
      queries.push_back(q);
      q.tenant_id = "acme";
      queries.push_back(q);
      q.user_id = "bob";
      queries.push_back(q);
    }
  }
  auto answer_all = [&] {
    std::vector<std::vector<UsageRow>> out;
    for (const auto& q : queries) {
      auto rows = this->store->usage().aggregate(q);
      EXPECT_TRUE(rows.ok()) << rows.error().message;
      out.push_back(rows.ok() ? *rows : std::vector<UsageRow>{});
    }
    return out;
  };
  const auto before = answer_all();

  // Every day before the last one: three whole days.
  auto rolled = this->store->usage().roll_up(midnight + kDayMs - 1);
  ASSERT_TRUE(rolled.ok()) << rolled.error().message;
  EXPECT_EQ(rolled->from_ms, midnight - 2 * kDayMs);
  EXPECT_EQ(rolled->until_ms, midnight);
  EXPECT_GT(rolled->rows, 0);
  // Nothing more to do until another day ends; a second call changes nothing.
  auto again = this->store->usage().roll_up(midnight + kDayMs - 1);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->from_ms, midnight);
  EXPECT_EQ(again->rows, 0);

  const auto after = answer_all();
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    ASSERT_EQ(before[i].size(), after[i].size()) << "query " << i;
    for (size_t r = 0; r < before[i].size(); ++r) {
      EXPECT_EQ(before[i][r].keys, after[i][r].keys) << "query " << i;
      EXPECT_EQ(before[i][r].requests, after[i][r].requests) << "query " << i;
      EXPECT_EQ(before[i][r].input_tokens, after[i][r].input_tokens) << "query " << i;
      EXPECT_EQ(before[i][r].output_tokens, after[i][r].output_tokens) << "query " << i;
      EXPECT_NEAR(before[i][r].cost_usd, after[i][r].cost_usd, 1e-9) << "query " << i;
    }
  }

  // Reports for rolled-up days read the daily totals: proven by a record that arrives late
  // for a rolled-up day, which they no longer see, while the budgets' raw sums do.
  this->record({this->usage_record(midnight - kDayMs + 5, "acme", "alice", "m1", 100.0)});
  UsageQuery day_before;
  day_before.from_ms = midnight - kDayMs;
  day_before.to_ms = midnight;
  day_before.user_id = "alice";
  day_before.tenant_id = "acme";
  UsageQuery whole = day_before;
  whole.group_by.clear();
  EXPECT_LT(this->total(whole).cost_usd, 100.0);
  auto spent = this->store->usage().spent("acme", "alice", midnight - kDayMs);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_GT(*spent, 100.0);
}

TYPED_TEST(StorageConformance, UsageRollUpOfAnEmptyTableMarksTheDaysDone) {
  const int64_t now = this->now_ms();
  auto rolled = this->store->usage().roll_up(now);
  ASSERT_TRUE(rolled.ok()) << rolled.error().message;
  EXPECT_EQ(rolled->rows, 0);
  EXPECT_EQ(rolled->until_ms, utc_midnight(now));
  this->record({this->usage_record(now, "default", "u", "m", 1.0)});
  UsageQuery q;
  EXPECT_NEAR(this->total(q).cost_usd, 1.0, 1e-9);
}

TYPED_TEST(StorageConformance, ErasingAUserRemovesTheirDailyTotals) {
  const int64_t start = parley::ManualClock::kDefaultStartMs;
  this->record({this->usage_record(start, "acme", "alice", "m", 1.0),
                this->usage_record(start, "acme", "bob", "m", 2.0)});
  ASSERT_TRUE(this->store->usage().roll_up(start + 2 * kDayMs).ok());
  ASSERT_TRUE(this->store->user_data().erase_user(std::string("acme"), "alice", start).ok());
  UsageQuery q;
  q.group_by = {"user"};
  auto rows = this->store->usage().aggregate(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(static_cast<int>(rows->size()), 1);
  EXPECT_EQ(rows->front().keys[0].second, "bob");
}

TYPED_TEST(StorageConformance, UsageKeepsLargeCountsAndSmallCostsExact) {
  // Token counters are int64 end to end (no float column on the way), and many small costs
  // add up without drifting.
  const int64_t big = (int64_t{1} << 53) - 1;
  auto a = this->usage_record(this->now_ms(), "default", "u", "m", 0.000001);
  a.input_tokens = big;
  a.output_tokens = big - 7;
  a.requests = 3;
  this->record({a});
  std::vector<UsageRecord> many;
  for (int i = 0; i < 999; ++i) {
    auto r = this->usage_record(this->now_ms(), "default", "v", "m", 0.000001);
    r.input_tokens = 0;
    r.output_tokens = 0;
    many.push_back(r);
  }
  this->record(many);
  UsageQuery q;
  q.user_id = "u";
  auto row = this->total(q);
  EXPECT_EQ(row.input_tokens, big);
  EXPECT_EQ(row.output_tokens, big - 7);
  EXPECT_EQ(row.requests, 3);
  auto all = this->total({});
  EXPECT_EQ(all.requests, 1002);
  EXPECT_NEAR(all.cost_usd, 0.001, 1e-9);
  auto spent = this->store->usage().spent("default", "v", 0);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_NEAR(*spent, 0.000999, 1e-9);
}

// ---------------------------------------------------------------------------------------------
// API keys

TYPED_TEST(StorageConformance, ApiKeyCreateThenGetRoundTripsEveryField) {
  ApiKey k = this->api_key("key_alpha", "acme", "alice");
  k.expires_at_ms = this->now_ms() + 86'400'000;
  auto created = this->store->api_keys().create(k);
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto got = this->store->api_keys().get("key_alpha");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, "key_alpha");
  EXPECT_EQ(got->name, k.name);
  EXPECT_EQ(got->scope, "user");
  EXPECT_EQ(got->tenant_id, "acme");
  EXPECT_EQ(got->user_id, "alice");
  EXPECT_EQ(got->secret_hash, k.secret_hash);
  EXPECT_EQ(got->limits_json, "{\"rpm\":10}");
  EXPECT_EQ(got->created_by, "cli");
  EXPECT_EQ(got->created_at_ms, k.created_at_ms);
  EXPECT_EQ(got->expires_at_ms, k.expires_at_ms);
  EXPECT_EQ(got->revoked_at_ms, std::nullopt);

  ApiKey service = this->api_key("key_service", "acme", "");
  ASSERT_TRUE(this->store->api_keys().create(service).ok());
  auto got_service = this->store->api_keys().get("key_service");
  ASSERT_TRUE(got_service.ok()) << got_service.error().message;
  EXPECT_EQ(got_service->scope, "service");
  EXPECT_EQ(got_service->user_id, "");
  EXPECT_EQ(got_service->expires_at_ms, std::nullopt);
}

TYPED_TEST(StorageConformance, ApiKeyDuplicateIdIsConflictAndKeepsTheFirst) {
  ApiKey first = this->api_key("key_dup", "acme", "alice");
  ASSERT_TRUE(this->store->api_keys().create(first).ok());
  ApiKey second = this->api_key("key_dup", "globex", "bob");
  second.secret_hash = std::string(64, 'b');
  EXPECT_TRUE(
      FailsWith(this->store->api_keys().create(second), ErrorCode::kConflict, "key_exists"));
  auto got = this->store->api_keys().get("key_dup");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->tenant_id, "acme");
  EXPECT_EQ(got->secret_hash, first.secret_hash);
}

TYPED_TEST(StorageConformance, ApiKeyGetMissingIsNotFound) {
  EXPECT_TRUE(
      FailsWith(this->store->api_keys().get("key_missing"), ErrorCode::kNotFound, "key_not_found"));
}

TYPED_TEST(StorageConformance, ApiKeyListIsNewestFirstAndFiltersByTenant) {
  for (const auto& [id, tenant] : std::vector<std::pair<std::string, std::string>>{
           {"key_1", "acme"}, {"key_2", "globex"}, {"key_3", "acme"}, {"key_4", "acme"}}) {
    ASSERT_TRUE(this->store->api_keys().create(this->api_key(id, tenant, "")).ok()) << id;
    this->clock.advance(1ms);
  }
  auto all = this->store->api_keys().list(std::nullopt, false);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(ids_of(*all), (std::vector<std::string>{"key_4", "key_3", "key_2", "key_1"}));
  auto acme = this->store->api_keys().list(std::string("acme"), false);
  ASSERT_TRUE(acme.ok()) << acme.error().message;
  EXPECT_EQ(ids_of(*acme), (std::vector<std::string>{"key_4", "key_3", "key_1"}));
  auto none = this->store->api_keys().list(std::string("initech"), true);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TYPED_TEST(StorageConformance, ApiKeyListShowsRevokedKeysOnlyWhenAsked) {
  for (const char* id : {"key_1", "key_2", "key_3"}) {
    ASSERT_TRUE(this->store->api_keys().create(this->api_key(id, "acme", "")).ok()) << id;
  }
  ASSERT_TRUE(this->store->api_keys().revoke("key_2", this->now_ms()).ok());
  auto active = this->store->api_keys().list(std::string("acme"), false);
  ASSERT_TRUE(active.ok()) << active.error().message;
  EXPECT_EQ(ids_of(*active), (std::vector<std::string>{"key_3", "key_1"}));
  auto everything = this->store->api_keys().list(std::string("acme"), true);
  ASSERT_TRUE(everything.ok()) << everything.error().message;
  EXPECT_EQ(ids_of(*everything), (std::vector<std::string>{"key_3", "key_2", "key_1"}));
  EXPECT_EQ((*everything)[1].revoked_at_ms, std::optional<int64_t>(this->now_ms()));
}

TYPED_TEST(StorageConformance, ApiKeyRevokeKeepsTheFirstTime) {
  // The first revocation is the one an audit needs; a second one must not move it.
  ASSERT_TRUE(this->store->api_keys().create(this->api_key("key_r", "acme", "alice")).ok());
  const int64_t first_time = this->now_ms() + 1000;
  auto revoked = this->store->api_keys().revoke("key_r", first_time);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_EQ(revoked->id, "key_r");
  EXPECT_EQ(revoked->revoked_at_ms, std::optional<int64_t>(first_time));
  auto again = this->store->api_keys().revoke("key_r", first_time + 5000);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->revoked_at_ms, std::optional<int64_t>(first_time));
  auto got = this->store->api_keys().get("key_r");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->revoked_at_ms, std::optional<int64_t>(first_time));
  // The rest of the record stays for audit.
  EXPECT_EQ(got->user_id, "alice");
  EXPECT_EQ(got->secret_hash, std::string(64, 'a'));
}

TYPED_TEST(StorageConformance, ApiKeyRevokeMissingIsNotFound) {
  EXPECT_TRUE(FailsWith(this->store->api_keys().revoke("key_missing", this->now_ms()),
                        ErrorCode::kNotFound));
}

// ---------------------------------------------------------------------------------------------
// Idempotency

TYPED_TEST(StorageConformance, IdempotencyPutThenGetRoundTripsBinaryBodies) {
  // Response bodies are bytes: NUL, high bytes and quotes must come back unchanged.
  const std::string body("a\x00\x01\xff\"'", 7);
  auto r = this->idem("principal:client-1", this->now_ms() + 60'000);
  r.body = body;
  r.status = 201;
  r.content_type = "application/octet-stream";
  auto other = this->idem("principal:client-2", this->now_ms() + 60'000);
  ASSERT_TRUE(this->store->idempotency().put({r, other}).ok());

  auto got = this->store->idempotency().get("principal:client-1");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  const IdempotencyRecord& stored = **got;
  EXPECT_EQ(stored.key, "principal:client-1");
  EXPECT_EQ(stored.fingerprint, r.fingerprint);
  EXPECT_EQ(stored.status, 201);
  EXPECT_EQ(stored.content_type, "application/octet-stream");
  EXPECT_EQ(static_cast<int>(stored.body.size()), 7);
  EXPECT_EQ(stored.body, body);
  EXPECT_EQ(stored.created_at_ms, r.created_at_ms);
  EXPECT_EQ(stored.expires_at_ms, r.expires_at_ms);

  auto second = this->store->idempotency().get("principal:client-2");
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->body, "{\"ok\":true}");
}

TYPED_TEST(StorageConformance, IdempotencyGetAbsentIsNullopt) {
  // Absence is an ordinary answer here (the first request with a key), not an error.
  auto got = this->store->idempotency().get("principal:never");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->has_value());
}

TYPED_TEST(StorageConformance, IdempotencyPutReplacesTheRecord) {
  auto first = this->idem("p:k", this->now_ms() + 1000);
  first.body = "first";
  ASSERT_TRUE(this->store->idempotency().put({first}).ok());
  this->clock.advance(10s);
  auto second = this->idem("p:k", this->now_ms() + 5000);
  second.body = "second";
  second.status = 409;
  second.fingerprint = std::string(64, '0');
  ASSERT_TRUE(this->store->idempotency().put({second}).ok());
  auto got = this->store->idempotency().get("p:k");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->body, "second");
  EXPECT_EQ((*got)->status, 409);
  EXPECT_EQ((*got)->fingerprint, std::string(64, '0'));
  EXPECT_EQ((*got)->created_at_ms, second.created_at_ms);
  EXPECT_EQ((*got)->expires_at_ms, second.expires_at_ms);
  auto keys = this->store->idempotency().unexpired_keys(this->now_ms());
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(static_cast<int>(keys->size()), 1);
}

TYPED_TEST(StorageConformance, IdempotencyUnexpiredKeysCarryTheirOwnerAndSkipExpired) {
  const int64_t now = this->now_ms();
  ASSERT_TRUE(this->store->idempotency()
                  .put({this->idem("p:live", now + 1, "acme", "alice"),
                        this->idem("p:due", now, "acme", "bob"),
                        this->idem("p:old", now - 1000, "globex", "carol")})
                  .ok());
  auto keys = this->store->idempotency().unexpired_keys(now);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  ASSERT_EQ(static_cast<int>(keys->size()), 1);
  const IdempotencyRecord& live = keys->front();
  EXPECT_EQ(live.key, "p:live");
  EXPECT_EQ(live.fingerprint, std::string(64, 'f'));
  EXPECT_EQ(live.tenant_id, "acme");
  EXPECT_EQ(live.user_id, "alice");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.created_at_ms, now);
  EXPECT_EQ(live.expires_at_ms, now + 1);
  // Loaded at startup for every key: without the bodies, which can be large.
  EXPECT_EQ(live.body, "");

  auto earlier = this->store->idempotency().unexpired_keys(now - 1000);
  ASSERT_TRUE(earlier.ok()) << earlier.error().message;
  std::set<std::string> names;
  for (const auto& k : *earlier) names.insert(k.key);
  EXPECT_EQ(names, (std::set<std::string>{"p:live", "p:due"}));
}

TYPED_TEST(StorageConformance, IdempotencyPurgeRemovesWhatHasExpiredAndCountsIt) {
  const int64_t now = this->now_ms();
  ASSERT_TRUE(this->store->idempotency()
                  .put({this->idem("p:a", now - 5), this->idem("p:b", now),
                        this->idem("p:c", now + 1), this->idem("p:d", now + 60'000)})
                  .ok());
  auto purged = this->store->idempotency().purge_expired(now);
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ(*purged, 2);
  for (const char* gone : {"p:a", "p:b"}) {
    auto got = this->store->idempotency().get(gone);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_FALSE(got->has_value()) << gone;
  }
  for (const char* kept : {"p:c", "p:d"}) {
    auto got = this->store->idempotency().get(kept);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_TRUE(got->has_value()) << kept;
  }
  auto again = this->store->idempotency().purge_expired(now);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, 0);
}

// ---------------------------------------------------------------------------------------------
// Moderation log

TYPED_TEST(StorageConformance, ModerationAppendAssignsIdsAndKeepsGivenOnes) {
  auto generated = this->moderation("acme", "alice", "block");
  auto named = this->moderation("acme", "alice", "redact");
  named.id = "mod_given";
  this->append({generated, named});
  auto page = this->store->moderation_log().list({});
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(static_cast<int>(page->items.size()), 2);
  EXPECT_EQ(page->items[0].id, "mod_given");
  EXPECT_TRUE(starts_with(page->items[1].id, "mod_")) << page->items[1].id;
  EXPECT_GT(page->items[1].id.size(), std::string("mod_").size());
}

TYPED_TEST(StorageConformance, ModerationListIsNewestFirstAndRoundTripsEveryField) {
  auto first = this->moderation("acme", "alice", "allow");
  this->append({first});
  this->clock.advance(1s);
  auto second = this->moderation("globex", "bob", "block");
  second.stage = "output";
  second.source = "openai";
  second.session_id = "sess_2";
  second.request_id = "req_2";
  this->append({second});
  auto page = this->store->moderation_log().list({});
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(static_cast<int>(page->items.size()), 2);
  EXPECT_EQ(page->next_cursor, std::nullopt);
  const ModerationLogEntry& e = page->items[0];
  EXPECT_EQ(e.at_ms, second.at_ms);
  EXPECT_EQ(e.tenant_id, "globex");
  EXPECT_EQ(e.user_id, "bob");
  EXPECT_EQ(e.session_id, "sess_2");
  EXPECT_EQ(e.request_id, "req_2");
  EXPECT_EQ(e.stage, "output");
  EXPECT_EQ(e.action, "block");
  EXPECT_EQ(e.source, "openai");
  EXPECT_EQ(e.findings_json, second.findings_json);
  EXPECT_EQ(page->items[1].at_ms, first.at_ms);
  EXPECT_EQ(page->items[1].action, "allow");
}

TYPED_TEST(StorageConformance, ModerationListFiltersByTenantUserActionAndTime) {
  const int64_t t0 = this->now_ms();
  this->append({this->moderation("acme", "alice", "block")});
  this->clock.advance(1s);
  const int64_t t1 = this->now_ms();
  this->append(
      {this->moderation("acme", "bob", "redact"), this->moderation("globex", "alice", "block")});
  this->clock.advance(1s);
  this->append({this->moderation("acme", "alice", "allow")});

  auto count = [&](ModerationLogQuery q) {
    auto page = this->store->moderation_log().list(q);
    EXPECT_TRUE(page.ok()) << page.error().message;
    return page.ok() ? static_cast<int>(page->items.size()) : -1;
  };
  ModerationLogQuery tenant;
  tenant.tenant_id = "acme";
  EXPECT_EQ(count(tenant), 3);
  ModerationLogQuery user;
  user.user_id = "alice";
  EXPECT_EQ(count(user), 3);
  ModerationLogQuery action;
  action.action = "block";
  EXPECT_EQ(count(action), 2);
  ModerationLogQuery from;
  from.from_ms = t1;  // inclusive
  EXPECT_EQ(count(from), 3);
  ModerationLogQuery all_from_start;
  all_from_start.from_ms = t0;
  EXPECT_EQ(count(all_from_start), 4);
  ModerationLogQuery combined;
  combined.tenant_id = "acme";
  combined.user_id = "alice";
  combined.action = "block";
  auto page = this->store->moderation_log().list(combined);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(static_cast<int>(page->items.size()), 1);
  EXPECT_EQ(page->items[0].at_ms, t0);
}

TYPED_TEST(StorageConformance, ModerationListPagesWithoutOverlap) {
  std::vector<ModerationLogEntry> entries;
  for (int i = 0; i < 7; ++i) {
    auto e = this->moderation("acme", "alice", "block");
    e.id = numbered("mod_", i);
    entries.push_back(e);
  }
  this->append(entries);
  this->append({this->moderation("globex", "alice", "block")});  // filtered out below
  ModerationLogQuery q;
  q.tenant_id = "acme";
  q.limit = 3;
  std::vector<std::string> seen;
  std::vector<int> sizes;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = this->store->moderation_log().list(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    sizes.push_back(static_cast<int>(page->items.size()));
    for (const auto& e : ids_of(page->items)) seen.push_back(e);
    if (!page->next_cursor) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(sizes, (std::vector<int>{3, 3, 1}));
  EXPECT_EQ(seen, (std::vector<std::string>{"mod_6", "mod_5", "mod_4", "mod_3", "mod_2", "mod_1",
                                            "mod_0"}));
}

TYPED_TEST(StorageConformance, ModerationListRejectsMalformedCursors) {
  this->append({this->moderation("acme", "alice", "block")});
  for (const char* cursor : {"abc", "0", "-5", "12x"}) {
    ModerationLogQuery q;
    q.cursor = cursor;
    EXPECT_TRUE(FailsWith(this->store->moderation_log().list(q), ErrorCode::kInvalidArgument,
                          "invalid_cursor"))
        << "cursor " << cursor;
  }
}

// ---------------------------------------------------------------------------------------------
// User data: export and erasure

// The data of one user across two tenants, and of a neighbour who must never be touched.
template <typename Fixture>
struct UserDataWorld {
  Session alice_acme_1;
  Session alice_acme_2;
  Session alice_globex;
  Session bob_acme;

  void build(Fixture& f) {
    alice_acme_1 = f.make_session("acme", "alice", "first");
    f.turn(alice_acme_1.id, "q1", "a1");
    f.clock.advance(1s);
    alice_acme_2 = f.make_session("acme", "alice", "second");
    f.turn(alice_acme_2.id, "q2", "a2");
    f.turn(alice_acme_2.id, "q3", "a3");
    alice_globex = f.make_session("globex", "alice");
    f.turn(alice_globex.id, "g1", "g2");
    bob_acme = f.make_session("acme", "bob");
    f.turn(bob_acme.id, "b1", "b2");

    const int64_t t = f.now_ms();
    f.record({f.usage_record(t, "acme", "alice", "m", 1.0),
              f.usage_record(t, "acme", "alice", "m", 2.0),
              f.usage_record(t, "globex", "alice", "m", 4.0),
              f.usage_record(t, "acme", "bob", "m", 8.0)});
    f.append({f.moderation("acme", "alice", "block"), f.moderation("globex", "alice", "redact"),
              f.moderation("acme", "bob", "block")});
    const int64_t expires = t + 60'000;
    auto put = f.store->idempotency().put(
        {f.idem("alice:1", expires, "acme", "alice"), f.idem("alice:2", expires, "acme", "alice"),
         f.idem("alice:3", expires, "globex", "alice"), f.idem("bob:1", expires, "acme", "bob")});
    EXPECT_TRUE(put.ok()) << put.error().message;
    for (const auto& k :
         {f.api_key("key_alice", "acme", "alice"), f.api_key("key_alice_g", "globex", "alice"),
          f.api_key("key_bob", "acme", "bob"), f.api_key("key_svc", "acme", "")}) {
      auto created = f.store->api_keys().create(k);
      EXPECT_TRUE(created.ok()) << created.error().message;
    }
  }
};

TYPED_TEST(StorageConformance, ExportUserOfOneTenantHasEverythingOfTheUserThere) {
  UserDataWorld<TestFixture> world;
  world.build(*this);
  auto exported = this->store->user_data().export_user(std::string("acme"), "alice");
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_EQ(ids_of(exported->sessions),
            (std::vector<std::string>{world.alice_acme_1.id, world.alice_acme_2.id}));
  // Oldest first per session, sessions in the order above.
  EXPECT_EQ(contents_of(exported->messages),
            (std::vector<std::string>{"q1", "a1", "q2", "a2", "q3", "a3"}));
  ASSERT_EQ(static_cast<int>(exported->usage.size()), 2);
  double cost = 0;
  for (const auto& u : exported->usage) {
    EXPECT_EQ(u.tenant_id, "acme");
    EXPECT_EQ(u.user_id, "alice");
    cost += u.cost_usd;
  }
  EXPECT_NEAR(cost, 3.0, 1e-9);
  ASSERT_EQ(static_cast<int>(exported->moderation.size()), 1);
  EXPECT_EQ(exported->moderation[0].tenant_id, "acme");
  EXPECT_EQ(exported->moderation[0].action, "block");
  ASSERT_EQ(static_cast<int>(exported->keys.size()), 1);
  EXPECT_EQ(exported->keys[0].id, "key_alice");
  EXPECT_EQ(exported->keys[0].user_id, "alice");
  // A hash of a secret is still a credential check: it never leaves in an export.
  EXPECT_EQ(exported->keys[0].secret_hash, "");
}

TYPED_TEST(StorageConformance, ExportUserOfEveryTenantSpansTenants) {
  UserDataWorld<TestFixture> world;
  world.build(*this);
  auto exported = this->store->user_data().export_user(std::nullopt, "alice");
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  std::set<std::string> sessions;
  for (const auto& s : exported->sessions) sessions.insert(s.id);
  EXPECT_EQ(sessions, (std::set<std::string>{world.alice_acme_1.id, world.alice_acme_2.id,
                                             world.alice_globex.id}));
  EXPECT_EQ(static_cast<int>(exported->messages.size()), 8);
  EXPECT_EQ(static_cast<int>(exported->usage.size()), 3);
  EXPECT_EQ(static_cast<int>(exported->moderation.size()), 2);
  std::set<std::string> keys;
  for (const auto& k : exported->keys) {
    keys.insert(k.id);
    EXPECT_EQ(k.secret_hash, "");
  }
  EXPECT_EQ(keys, (std::set<std::string>{"key_alice", "key_alice_g"}));
  for (const auto& m : exported->messages) {
    EXPECT_NE(m.session_id, world.bob_acme.id);
  }
}

TYPED_TEST(StorageConformance, ExportOfUnknownUserIsEmpty) {
  auto exported = this->store->user_data().export_user(std::nullopt, "nobody");
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_TRUE(exported->sessions.empty());
  EXPECT_TRUE(exported->messages.empty());
  EXPECT_TRUE(exported->usage.empty());
  EXPECT_TRUE(exported->moderation.empty());
  EXPECT_TRUE(exported->keys.empty());
}

TYPED_TEST(StorageConformance, EraseUserOfOneTenantCountsAndRemovesEverything) {
  UserDataWorld<TestFixture> world;
  world.build(*this);
  this->clock.advance(1h);
  const int64_t erased_at = this->now_ms();
  auto counts = this->store->user_data().erase_user(std::string("acme"), "alice", erased_at);
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(counts->sessions, 2);
  EXPECT_EQ(counts->messages, 6);
  EXPECT_EQ(counts->usage_records, 2);
  EXPECT_EQ(counts->moderation_logs, 1);
  EXPECT_EQ(counts->idempotent_responses, 2);
  EXPECT_EQ(counts->api_keys, 1);

  // Sessions and (by cascade) their messages are gone.
  EXPECT_TRUE(FailsWith(this->store->sessions().get(world.alice_acme_1.id), ErrorCode::kNotFound));
  MessageListQuery q;
  q.session_id = world.alice_acme_2.id;
  EXPECT_TRUE(FailsWith(this->store->messages().list(q), ErrorCode::kNotFound));
  auto left = this->store->user_data().export_user(std::string("acme"), "alice");
  ASSERT_TRUE(left.ok()) << left.error().message;
  EXPECT_TRUE(left->sessions.empty());
  EXPECT_TRUE(left->messages.empty());
  EXPECT_TRUE(left->usage.empty());
  EXPECT_TRUE(left->moderation.empty());
  EXPECT_TRUE(left->keys.empty());
  auto spent = this->store->usage().spent("acme", "alice", 0);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_EQ(*spent, 0.0);
  for (const char* key : {"alice:1", "alice:2"}) {
    auto got = this->store->idempotency().get(key);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_FALSE(got->has_value()) << key;
  }

  // The key stays for audit, revoked, with the person removed from it.
  auto key = this->store->api_keys().get("key_alice");
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->user_id, "");
  EXPECT_EQ(key->name, "[erased]");
  EXPECT_EQ(key->revoked_at_ms, std::optional<int64_t>(erased_at));
}

TYPED_TEST(StorageConformance, EraseUserLeavesOtherUsersAndOtherTenantsUntouched) {
  UserDataWorld<TestFixture> world;
  world.build(*this);
  auto counts = this->store->user_data().erase_user(std::string("acme"), "alice", this->now_ms());
  ASSERT_TRUE(counts.ok()) << counts.error().message;

  // Bob, in the same tenant.
  auto bob = this->store->user_data().export_user(std::string("acme"), "bob");
  ASSERT_TRUE(bob.ok()) << bob.error().message;
  EXPECT_EQ(static_cast<int>(bob->sessions.size()), 1);
  EXPECT_EQ(contents_of(bob->messages), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(static_cast<int>(bob->usage.size()), 1);
  EXPECT_EQ(static_cast<int>(bob->moderation.size()), 1);
  ASSERT_EQ(static_cast<int>(bob->keys.size()), 1);
  auto bob_key = this->store->api_keys().get("key_bob");
  ASSERT_TRUE(bob_key.ok()) << bob_key.error().message;
  EXPECT_EQ(bob_key->revoked_at_ms, std::nullopt);
  EXPECT_EQ(bob_key->user_id, "bob");
  auto bob_idem = this->store->idempotency().get("bob:1");
  ASSERT_TRUE(bob_idem.ok()) << bob_idem.error().message;
  EXPECT_TRUE(bob_idem->has_value());

  // The same user id in another tenant is another person's data as far as acme is concerned.
  auto globex = this->store->user_data().export_user(std::string("globex"), "alice");
  ASSERT_TRUE(globex.ok()) << globex.error().message;
  EXPECT_EQ(ids_of(globex->sessions), (std::vector<std::string>{world.alice_globex.id}));
  EXPECT_EQ(static_cast<int>(globex->messages.size()), 2);
  EXPECT_EQ(static_cast<int>(globex->usage.size()), 1);
  EXPECT_EQ(static_cast<int>(globex->moderation.size()), 1);
  ASSERT_EQ(static_cast<int>(globex->keys.size()), 1);
  auto globex_key = this->store->api_keys().get("key_alice_g");
  ASSERT_TRUE(globex_key.ok()) << globex_key.error().message;
  EXPECT_EQ(globex_key->revoked_at_ms, std::nullopt);
  auto globex_idem = this->store->idempotency().get("alice:3");
  ASSERT_TRUE(globex_idem.ok()) << globex_idem.error().message;
  EXPECT_TRUE(globex_idem->has_value());

  // Keys that are not bound to a user are not the user's.
  auto service = this->store->api_keys().get("key_svc");
  ASSERT_TRUE(service.ok()) << service.error().message;
  EXPECT_EQ(service->revoked_at_ms, std::nullopt);
  UsageQuery everyone;
  EXPECT_NEAR(this->total(everyone).cost_usd, 12.0, 1e-9);
}

TYPED_TEST(StorageConformance, EraseUserOfEveryTenantRemovesAllOfTheUser) {
  UserDataWorld<TestFixture> world;
  world.build(*this);
  // A key revoked before the erasure keeps its first revocation time.
  const int64_t revoked_at = this->now_ms() - 1000;
  ASSERT_TRUE(this->store->api_keys().revoke("key_alice_g", revoked_at).ok());
  auto counts = this->store->user_data().erase_user(std::nullopt, "alice", this->now_ms());
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(counts->sessions, 3);
  EXPECT_EQ(counts->messages, 8);
  EXPECT_EQ(counts->usage_records, 3);
  EXPECT_EQ(counts->moderation_logs, 2);
  EXPECT_EQ(counts->idempotent_responses, 3);
  EXPECT_EQ(counts->api_keys, 2);
  auto globex_key = this->store->api_keys().get("key_alice_g");
  ASSERT_TRUE(globex_key.ok()) << globex_key.error().message;
  EXPECT_EQ(globex_key->revoked_at_ms, std::optional<int64_t>(revoked_at));
  EXPECT_EQ(globex_key->user_id, "");
  EXPECT_EQ(globex_key->name, "[erased]");
  auto left = this->store->user_data().export_user(std::nullopt, "alice");
  ASSERT_TRUE(left.ok()) << left.error().message;
  EXPECT_TRUE(left->sessions.empty());
  EXPECT_TRUE(left->usage.empty());
  EXPECT_TRUE(left->keys.empty());
  // Bob is still whole.
  auto bob = this->store->user_data().export_user(std::nullopt, "bob");
  ASSERT_TRUE(bob.ok()) << bob.error().message;
  EXPECT_EQ(static_cast<int>(bob->messages.size()), 2);

  // Erasing again finds nothing more (keys already unbound are not counted twice).
  auto again = this->store->user_data().erase_user(std::nullopt, "alice", this->now_ms());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->sessions, 0);
  EXPECT_EQ(again->messages, 0);
  EXPECT_EQ(again->api_keys, 0);
}

TYPED_TEST(StorageConformance, EraseUserDeletesTheJobsThatCarryTheirWords) {
  const int64_t now = this->now_ms();
  auto& jobs = this->store->jobs();
  const auto key = [](const std::optional<std::string>& tenant, const std::string& user,
                      const std::string& rest) { return user_job_key_prefix(tenant, user) + rest; };
  // Alice's in two tenants (one already done), Bob's, an Alice whose id merely starts the
  // same, and a job keyed by nobody.
  auto acme = jobs.enqueue({"memory.extract", "{}", 0, 3, key("acme", "alice", "a")}, now);
  auto globex = jobs.enqueue({"memory.extract", "{}", 0, 3, key("globex", "alice", "b")}, now);
  auto bob = jobs.enqueue({"memory.extract", "{}", 0, 3, key("acme", "bob", "c")}, now);
  auto alicia = jobs.enqueue({"memory.extract", "{}", 0, 3, key("acme", "alice:x", "d")}, now);
  auto plain = jobs.enqueue({"memory.extract", "{}", 0, 3, "memx:msg_1"}, now);
  for (auto* made : {&acme, &globex, &bob, &alicia, &plain}) {
    ASSERT_TRUE(made->ok()) << made->error().message;
  }
  auto taken = jobs.take("w", 10, now, 60'000);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  ASSERT_TRUE(jobs.succeed((*acme).id, "w", "{}", now).ok());

  auto counts = this->store->user_data().erase_user(std::string("acme"), "alice", now);
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(counts->jobs, 1);
  EXPECT_TRUE(FailsWith(jobs.get((*acme).id), ErrorCode::kNotFound));
  for (auto* kept : {&globex, &bob, &alicia, &plain}) EXPECT_TRUE(jobs.get((**kept).id).ok());

  auto everywhere = this->store->user_data().erase_user(std::nullopt, "alice", now);
  ASSERT_TRUE(everywhere.ok()) << everywhere.error().message;
  EXPECT_EQ(everywhere->jobs, 1);
  EXPECT_TRUE(FailsWith(jobs.get((*globex).id), ErrorCode::kNotFound));
  for (auto* kept : {&bob, &alicia, &plain}) EXPECT_TRUE(jobs.get((**kept).id).ok());
}

// ---------------------------------------------------------------------------------------------
// The store as a whole

TYPED_TEST(StorageConformance, PingAnswers) {
  auto pong = this->store->ping();
  EXPECT_TRUE(pong.ok()) << pong.error().message;
}

TYPED_TEST(StorageConformance, StatsNameTheBackendAndSchemaVersion) {
  auto stats = this->store->stats(false);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->backend, TypeParam::kName);
  EXPECT_GE(stats->schema_version, 3);
  EXPECT_FALSE(stats->location.empty());
  auto checked = this->store->stats(true);
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(checked->backend, TypeParam::kName);
  EXPECT_EQ(checked->schema_version, stats->schema_version);
  EXPECT_EQ(checked->integrity_check, std::optional<std::string>("ok"));
}

TYPED_TEST(StorageConformance, WritesSurviveCloseAndReopen) {
  // Durable when the call returns: a new store on the same database sees everything.
  auto session = this->make_session("acme", "alice", "kept");
  this->turn(session.id, "q", "a");
  this->record({this->usage_record(this->now_ms(), "acme", "alice", "m", 0.5)});
  this->store->close();
  this->store->close();  // closing is idempotent
  this->store.reset();

  StorageSettings settings;
  settings.url = this->backend.url();
  OpenOptions options;
  options.clock = &this->clock;
  auto reopened = parley::store::open(settings, options);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  this->store = std::move(reopened).value();
  auto got = this->store->sessions().get(session.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->title, std::optional<std::string>("kept"));
  auto history = this->store->messages().history(session.id, 10);
  ASSERT_TRUE(history.ok()) << history.error().message;
  EXPECT_EQ(contents_of(*history), (std::vector<std::string>{"q", "a"}));
  auto spent = this->store->usage().spent("acme", "alice", 0);
  ASSERT_TRUE(spent.ok()) << spent.error().message;
  EXPECT_NEAR(*spent, 0.5, 1e-9);
}

TYPED_TEST(StorageConformance, ConcurrentWritersAllSucceedWithExactTotals) {
  // Every method is thread-safe: writers from the blocking pool must neither fail nor lose a
  // row when they overlap.
  constexpr int kThreads = 8;
  constexpr int kPerThread = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &failures] {
      const std::string user = numbered("user_", t);
      for (int i = 0; i < kPerThread; ++i) {
        NewSession n;
        n.tenant_id = "acme";
        n.user_id = user;
        auto created = this->store->sessions().create(n);
        if (!created.ok()) {
          ++failures;
          ADD_FAILURE() << "create: " << created.error().message;
          continue;
        }
        NewTurn turn;
        turn.session_id = created->id;
        turn.user_content = "hello";
        turn.request_id = numbered("req_", i);
        turn.model = "m";
        auto started = this->store->messages().begin_turn(turn);
        if (!started.ok()) {
          ++failures;
          ADD_FAILURE() << "begin_turn: " << started.error().message;
          continue;
        }
        UsageRecord u;
        u.at_ms = this->now_ms();
        u.tenant_id = "acme";
        u.user_id = user;
        u.key_id = "key_c";
        u.source = "chat";
        u.model = "m";
        u.input_tokens = 3;
        u.output_tokens = 4;
        u.cost_usd = 0.01;
        u.status = "ok";
        auto recorded = this->store->usage().record({u});
        if (!recorded.ok()) {
          ++failures;
          ADD_FAILURE() << "record: " << recorded.error().message;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  SessionListQuery q;
  q.tenant_id = "acme";
  q.limit = 1000;
  auto page = this->store->sessions().list(q);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(static_cast<int>(page->items.size()), kThreads * kPerThread);
  std::set<std::string> unique_ids;
  for (const auto& s : page->items) unique_ids.insert(s.id);
  EXPECT_EQ(static_cast<int>(unique_ids.size()), kThreads * kPerThread);

  auto row = this->total({});
  EXPECT_EQ(row.requests, kThreads * kPerThread);
  EXPECT_EQ(row.input_tokens, 3 * kThreads * kPerThread);
  EXPECT_EQ(row.output_tokens, 4 * kThreads * kPerThread);
  EXPECT_NEAR(row.cost_usd, 0.01 * kThreads * kPerThread, 1e-9);
  auto one = this->store->usage().spent("acme", "user_3", 0);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_NEAR(*one, 0.01 * kPerThread, 1e-9);

  auto pending = this->store->replicas().interrupt_orphans("rep_other", INT64_MAX, 0);
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(*pending, kThreads * kPerThread);
}

// Text that has broken stores before: multibyte UTF-8 (2, 3 and 4 bytes, joiners), quotes of
// every kind, backslashes that an escaping layer could eat, SQL and LIKE metacharacters.
std::vector<std::string> awkward_texts() {
  return {
      "Grüße aus Köln — naïve café",
      "東京 中文 日本語 한국어 العربية עברית",
      "emoji 😀 👍🏽 👩‍💻 🇳🇴",
      "quotes \" ' ` “curly” ‘single’ «guillemets»",
      "backslashes \\ \\\\ \\n \\u0000 \\x00 end\\",
      "sql '; DROP TABLE sessions; -- % _ $1 ?1 :name",
      "lines\nand\r\nbreaks\tand\ttabs",
      " leading and trailing spaces ",
  };
}

TYPED_TEST(StorageConformance, AwkwardTextRoundTripsInMessages) {
  auto session = this->make_session("default", "alice");
  std::vector<std::string> expected;
  for (const auto& text : awkward_texts()) {
    auto started = this->begin(session.id, text);
    EXPECT_EQ(started.user.content, text);
    auto done = this->finish(started.assistant.id, text);
    EXPECT_EQ(done.content, text);
    expected.push_back(text);
    expected.push_back(text);
  }
  MessageListQuery q;
  q.session_id = session.id;
  q.limit = 100;
  auto listed = this->store->messages().list(q);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(contents_of(listed->items), expected);
  auto history = this->store->messages().history(session.id, 100);
  ASSERT_TRUE(history.ok()) << history.error().message;
  EXPECT_EQ(contents_of(*history), expected);
}

TYPED_TEST(StorageConformance, AwkwardTextRoundTripsInSessionTitleAndMetadata) {
  for (const auto& text : awkward_texts()) {
    // Metadata is a JSON object stored as text: the same bytes must come back, not a
    // re-serialised equivalent.
    std::string metadata = "{\"note\": \"";
    for (char c : text) {
      if (c == '"' || c == '\\') metadata += '\\';
      if (c == '\n') {
        metadata += "\\n";
      } else if (c == '\r') {
        metadata += "\\r";
      } else if (c == '\t') {
        metadata += "\\t";
      } else {
        metadata += c;
      }
    }
    metadata += "\",  \"n\":1}";
    NewSession n;
    n.user_id = text;
    n.title = text;
    n.metadata_json = metadata;
    auto created = this->store->sessions().create(n);
    ASSERT_TRUE(created.ok()) << created.error().message;
    auto got = this->store->sessions().get(created->id);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->title, std::optional<std::string>(text));
    EXPECT_EQ(got->metadata_json, metadata);
    EXPECT_EQ(got->user_id, text);
    // A user id full of metacharacters still filters exactly.
    SessionListQuery q;
    q.user_id = text;
    auto page = this->store->sessions().list(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    EXPECT_EQ(ids_of(page->items), (std::vector<std::string>{created->id})) << text;
  }
}

TYPED_TEST(StorageConformance, OneMegabyteTextRoundTrips) {
  // Long replies and pasted documents: no truncation at a column or parameter limit.
  std::string big;
  big.reserve(1 << 20);
  const std::string pattern = "0123456789abcdef ü 😀\n";
  while (big.size() + pattern.size() <= (1u << 20)) big += pattern;
  while (big.size() < (1u << 20)) big += 'x';
  ASSERT_EQ(static_cast<int>(big.size()), 1 << 20);

  std::string metadata = "{\"blob\":\"";
  for (char c : big) metadata += c == '\n' ? ' ' : c;
  metadata += "\"}";
  NewSession n;
  n.user_id = "alice";
  n.title = big;
  n.metadata_json = metadata;
  auto created = this->store->sessions().create(n);
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto got = this->store->sessions().get(created->id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->title == big) << "title differs";
  EXPECT_TRUE(got->metadata_json == metadata)
      << "metadata of " << got->metadata_json.size() << " bytes differs";

  auto started = this->begin(created->id, big);
  auto done = this->finish(started.assistant.id, big);
  EXPECT_TRUE(done.content == big) << "reply of " << done.content.size() << " bytes differs";
  auto history = this->store->messages().history(created->id, 10);
  ASSERT_TRUE(history.ok()) << history.error().message;
  ASSERT_EQ(static_cast<int>(history->size()), 2);
  // Compared without EXPECT_EQ: a failure would print two megabytes.
  EXPECT_TRUE((*history)[0].content == big);
  EXPECT_TRUE((*history)[1].content == big);
}

TYPED_TEST(StorageConformance, LargeIntegersRoundTripInMessages) {
  // Token counts and latencies near 2^53 (the largest integers a double holds exactly) pass
  // through without a float on the way.
  const int64_t big = (int64_t{1} << 53) + 1;
  auto session = this->make_session("default", "alice");
  auto started = this->begin(session.id, "count");
  FinishedTurn f;
  f.assistant_message_id = started.assistant.id;
  f.content = "many";
  f.status = "complete";
  f.input_tokens = big;
  f.output_tokens = big + 2;
  f.latency_ms = big + 4;
  f.ttft_ms = big - 2;
  f.cost_usd = 1234567.000001;
  f.finish_reason = "stop";
  auto done = this->store->messages().finish_turn(f);
  ASSERT_TRUE(done.ok()) << done.error().message;
  MessageListQuery q;
  q.session_id = session.id;
  auto listed = this->store->messages().list(q);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(static_cast<int>(listed->items.size()), 2);
  const Message& m = listed->items[1];
  EXPECT_EQ(m.input_tokens, big);
  EXPECT_EQ(m.output_tokens, big + 2);
  EXPECT_EQ(m.latency_ms, std::optional<int64_t>(big + 4));
  EXPECT_EQ(m.ttft_ms, std::optional<int64_t>(big - 2));
  EXPECT_NEAR(m.cost_usd, 1234567.000001, 1e-9);
}

}  // namespace
