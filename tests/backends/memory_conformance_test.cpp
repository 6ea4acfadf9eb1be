// Memory storage conformance (store/memory.hpp), typed over SQLite and PostgreSQL: memories
// with their history, the two rules the database keeps whatever an extractor proposes (one
// active memory per text, one per slot), expiry that counts before any purge, deletion that
// forgets texts, an extraction's decisions applied once, and the change log the recall index
// follows, in commit order under concurrent writers.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "backends.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"
#include "support/manual_clock.hpp"

namespace {

using parley::ErrorCode;
using parley::testing::BackendNames;
using parley::testing::FailsWith;
using parley::testing::PostgresBackend;
using parley::testing::SqliteBackend;
using namespace parley::store;

template <typename Backend>
class MemoryConformance : public ::testing::Test {
 public:
  void SetUp() override {
    store = parley::testing::open_test_store(backend.url(), clock);
    ASSERT_NE(store, nullptr);
  }
  void TearDown() override {
    if (store) store->close();
  }

  MemoryRepository& memories() { return store->memories(); }
  int64_t now() const { return clock.unix_ms(); }

  static NewMemory memory(const std::string& text, const std::string& user = "alice",
                          const std::string& tenant = "t1") {
    NewMemory m;
    m.tenant_id = tenant;
    m.user_id = user;
    m.text = text;
    m.kind = "fact";
    m.retention = "long";
    m.hash = "h:" + text;  // any stable key per text will do here
    m.source_json = R"(["msg_1"])";
    m.embedder = "parley-hashed-v1";
    m.vector = {0.5F, -0.25F, 1.0F};
    return m;
  }

  Memory add(const NewMemory& m, const std::string& actor = "user") {
    auto r = memories().create(m, MemoryEdit{.actor = actor}, now());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    EXPECT_TRUE(!r.ok() || r->created);
    return r.ok() ? r->memory : Memory{};
  }

  std::vector<Memory> active(const std::string& user = "alice", const std::string& tenant = "t1") {
    MemoryQuery q;
    q.tenant_id = tenant;
    q.user_id = user;
    q.limit = 1000;
    auto r = memories().list(q);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->items : std::vector<Memory>{};
  }

  std::vector<MemoryChange> changes(int64_t after = 0) {
    auto r = memories().changes_since(after, 100000);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : std::vector<MemoryChange>{};
  }

  std::vector<MemoryHistoryEntry> history(const std::string& id) {
    auto r = memories().history(id);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : std::vector<MemoryHistoryEntry>{};
  }

  Backend backend;
  parley::ManualClock clock;
  std::unique_ptr<Storage> store;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(MemoryConformance, Backends, BackendNames);

TYPED_TEST(MemoryConformance, AMemoryIsStoredWithItsOwnerAndAnAddInItsHistory) {
  NewMemory in = this->memory("Name is Ana");
  in.kind = "profile";
  in.slot = "name";
  in.importance = 0.9;
  in.retention = "permanent";
  in.assistant = "support";
  in.metadata_json = R"({"source":"api"})";
  const Memory m = this->add(in);
  EXPECT_EQ(m.id.rfind("mem_", 0), 0u);
  EXPECT_GT(m.seq, 0);
  auto got = this->memories().get(m.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->text, "Name is Ana");
  EXPECT_EQ(got->tenant_id, "t1");
  EXPECT_EQ(got->user_id, "alice");
  EXPECT_EQ(got->assistant, "support");
  EXPECT_EQ(got->session_id, "");
  EXPECT_EQ(got->kind, "profile");
  EXPECT_EQ(got->slot, "name");
  EXPECT_DOUBLE_EQ(got->importance, 0.9);
  EXPECT_EQ(got->retention, "permanent");
  EXPECT_EQ(got->status, "active");
  EXPECT_EQ(got->source_json, R"(["msg_1"])");
  EXPECT_EQ(got->metadata_json, R"({"source":"api"})");
  EXPECT_EQ(got->created_at_ms, this->now());
  EXPECT_FALSE(got->expires_at_ms.has_value());
  EXPECT_TRUE(got->vector.empty()) << "plain reads leave the vector out";
  auto with_vectors = this->memories().by_seq({m.seq});
  ASSERT_TRUE(with_vectors.ok());
  ASSERT_EQ(with_vectors->size(), 1u);
  EXPECT_EQ((*with_vectors)[0].vector, (std::vector<float>{0.5F, -0.25F, 1.0F}));

  auto h = this->history(m.id);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].event, "ADD");
  EXPECT_EQ(h[0].new_text, std::optional<std::string>("Name is Ana"));
  EXPECT_FALSE(h[0].old_text.has_value());
  EXPECT_EQ(h[0].actor, "user");
  EXPECT_TRUE(
      FailsWith(this->memories().get("mem_missing"), ErrorCode::kNotFound, "memory_not_found"));
}

TYPED_TEST(MemoryConformance, AReplyThatUsedMemoriesMarksThemUsedWithIt) {
  const Memory used = this->add(this->memory("Likes tea"));
  const Memory unused = this->add(this->memory("Has a dog"));
  auto session = this->store->sessions().create({"t1", "alice", "default", std::nullopt, "{}"});
  ASSERT_TRUE(session.ok()) << session.error().message;
  auto started = this->store->messages().begin_turn({session->id, "Tea?", "req", "m", "", ""});
  ASSERT_TRUE(started.ok()) << started.error().message;
  this->clock.advance(std::chrono::seconds(5));
  FinishedTurn done;
  done.assistant_message_id = started->assistant.id;
  done.content = "Green tea, then.";
  done.status = "complete";
  done.finish_reason = "stop";
  done.memories_json = R"([{"id":")" + used.id + R"(","text":"Likes tea","kind":"fact"}])";
  ASSERT_TRUE(this->store->messages().finish_turn(done).ok());
  auto a = this->memories().get(used.id);
  auto b = this->memories().get(unused.id);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->last_used_at_ms, std::optional<int64_t>(this->now()));
  EXPECT_EQ(b->last_used_at_ms, std::nullopt);
}

TYPED_TEST(MemoryConformance, TheSameTextSaidTenTimesIsOneMemory) {
  const Memory first = this->add(this->memory("Likes green tea"));
  for (int i = 0; i < 9; ++i) {
    auto again = this->memories().create(this->memory("Likes green tea"),
                                         MemoryEdit{.actor = "user"}, this->now());
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_FALSE(again->created);
    EXPECT_EQ(again->memory.id, first.id);
  }
  EXPECT_EQ(this->active().size(), 1u);
  EXPECT_EQ(this->history(first.id).size(), 1u);
  // Another user, another scope: separate memories.
  this->add(this->memory("Likes green tea", "bob"));
  NewMemory scoped = this->memory("Likes green tea");
  scoped.assistant = "barista";
  this->add(scoped);
  EXPECT_EQ(this->active().size(), 2u);
  EXPECT_EQ(this->active("bob").size(), 1u);
}

TYPED_TEST(MemoryConformance, ANewValueOfASlotRetiresTheOldOneAndKeepsIt) {
  NewMemory paris = this->memory("Lives in Paris");
  paris.slot = "location";
  const Memory old = this->add(paris);
  this->clock.advance(std::chrono::seconds(5));
  NewMemory lisbon = this->memory("Lives in Lisbon");
  lisbon.slot = "location";
  auto created =
      this->memories().create(lisbon, MemoryEdit{.actor = "extractor:rules"}, this->now());
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_TRUE(created->retired.has_value());
  EXPECT_EQ(created->retired->id, old.id);

  auto now_active = this->active();
  ASSERT_EQ(now_active.size(), 1u);
  EXPECT_EQ(now_active[0].text, "Lives in Lisbon");
  auto retired = this->memories().get(old.id);
  ASSERT_TRUE(retired.ok());
  EXPECT_EQ(retired->status, "retired");
  EXPECT_EQ(retired->superseded_by, std::optional<std::string>(created->memory.id));
  EXPECT_EQ(retired->invalid_at_ms, std::optional<int64_t>(this->now()));
  auto h = this->history(old.id);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].event, "RETIRE");
  EXPECT_EQ(h[1].old_text, std::optional<std::string>("Lives in Paris"));
  EXPECT_EQ(h[1].actor, "extractor:rules");
  // The retired memory is listed when asked for, and cannot be edited.
  MemoryQuery q;
  q.tenant_id = "t1";
  q.user_id = "alice";
  q.status = "retired";
  auto listed = this->memories().list(q);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].id, old.id);
  MemoryPatch patch;
  patch.importance = 1.0;
  EXPECT_TRUE(
      FailsWith(this->memories().update(old.id, patch, MemoryEdit{.actor = "user"}, this->now()),
                ErrorCode::kConflict, "memory_not_active"));
  // The log: the old one stopped being recallable, the new one is there.
  auto log = this->changes();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[1].op, MemoryChange::Op::kRemove);
  EXPECT_EQ(log[1].memory_seq, old.seq);
  EXPECT_EQ(log[2].op, MemoryChange::Op::kPut);
  EXPECT_EQ(log[2].memory_seq, created->memory.seq);
}

TYPED_TEST(MemoryConformance, AnUpdateKeepsTheOldTextInHistoryAndRefusesAnotherMemorysText) {
  const Memory tea = this->add(this->memory("Likes tea"));
  const Memory coffee = this->add(this->memory("Likes coffee"));
  this->clock.advance(std::chrono::seconds(1));
  MemoryPatch patch;
  patch.text = "Likes green tea";
  patch.hash = "h:Likes green tea";
  patch.vector = std::vector<float>{1.0F, 0.0F, 0.0F};
  patch.importance = 0.8;
  patch.expires_at_ms = this->now() + 60'000;
  auto updated = this->memories().update(
      tea.id, patch, MemoryEdit{.actor = "user", .reason = "corrected"}, this->now());
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->text, "Likes green tea");
  EXPECT_DOUBLE_EQ(updated->importance, 0.8);
  EXPECT_EQ(updated->updated_at_ms, this->now());
  EXPECT_EQ(updated->expires_at_ms, std::optional<int64_t>(this->now() + 60'000));
  EXPECT_EQ(this->memories().by_seq({tea.seq})->at(0).vector,
            (std::vector<float>{1.0F, 0.0F, 0.0F}));
  auto h = this->history(tea.id);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].event, "UPDATE");
  EXPECT_EQ(h[1].old_text, std::optional<std::string>("Likes tea"));
  EXPECT_EQ(h[1].new_text, std::optional<std::string>("Likes green tea"));
  EXPECT_EQ(h[1].reason, "corrected");

  // A patch without a vector keeps the vector.
  MemoryPatch kind_only;
  kind_only.kind = "preference";
  ASSERT_TRUE(
      this->memories().update(tea.id, kind_only, MemoryEdit{.actor = "user"}, this->now()).ok());
  EXPECT_EQ(this->memories().by_seq({tea.seq})->at(0).vector,
            (std::vector<float>{1.0F, 0.0F, 0.0F}));

  MemoryPatch clash;
  clash.text = "Likes coffee";
  clash.hash = "h:Likes coffee";
  auto refused = this->memories().update(tea.id, clash, MemoryEdit{.actor = "user"}, this->now());
  EXPECT_TRUE(FailsWith(refused, ErrorCode::kConflict, "memory_exists"));
  EXPECT_NE(refused.error().message.find(coffee.id), std::string::npos);
  EXPECT_TRUE(FailsWith(
      this->memories().update("mem_missing", patch, MemoryEdit{.actor = "user"}, this->now()),
      ErrorCode::kNotFound, "memory_not_found"));
}

TYPED_TEST(MemoryConformance, ADeletedMemoryIsGoneAndItsHistoryKeepsNoText) {
  const Memory m = this->add(this->memory("Password hint is blue"));
  MemoryPatch patch;
  patch.text = "Password hint is red";
  patch.hash = "h:Password hint is red";
  ASSERT_TRUE(this->memories().update(m.id, patch, MemoryEdit{.actor = "user"}, this->now()).ok());
  auto removed = this->memories().remove(
      m.id, MemoryEdit{.actor = "user", .reason = "asked to forget"}, this->now());
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(removed->text, "Password hint is red");
  EXPECT_TRUE(FailsWith(this->memories().get(m.id), ErrorCode::kNotFound));
  EXPECT_TRUE(this->active().empty());
  auto h = this->history(m.id);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[2].event, "DELETE");
  EXPECT_EQ(h[2].reason, "asked to forget");
  for (const auto& entry : h) {
    EXPECT_FALSE(entry.old_text.has_value()) << entry.event;
    EXPECT_FALSE(entry.new_text.has_value()) << entry.event;
  }
  EXPECT_TRUE(this->memories().by_seq({m.seq})->empty());
  EXPECT_EQ(this->changes().back().op, MemoryChange::Op::kRemove);
  EXPECT_TRUE(FailsWith(this->memories().remove(m.id, MemoryEdit{.actor = "user"}, this->now()),
                        ErrorCode::kNotFound));
  // The same text may be remembered again afterwards.
  this->add(this->memory("Password hint is red"));
}

TYPED_TEST(MemoryConformance, ListingNarrowsByScopeKindAndRetentionNewestFirstInPages) {
  for (int i = 0; i < 5; ++i) this->add(this->memory("fact " + std::to_string(i)));
  NewMemory pref = this->memory("Prefers short answers");
  pref.kind = "preference";
  pref.retention = "permanent";
  this->add(pref);
  NewMemory session = this->memory("Is choosing a laptop");
  session.kind = "event";
  session.retention = "session";
  session.session_id = "ses_1";
  this->add(session);
  this->add(this->memory("someone else's", "bob"));
  this->add(this->memory("another tenant's", "alice", "t2"));

  MemoryQuery q;
  q.tenant_id = "t1";
  q.user_id = "alice";
  q.limit = 3;
  auto first = this->memories().list(q);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->items.size(), 3u);
  EXPECT_EQ(first->items[0].text, "Is choosing a laptop");
  ASSERT_TRUE(first->next_cursor.has_value());
  std::vector<std::string> all;
  for (const auto& m : first->items) all.push_back(m.text);
  q.cursor = first->next_cursor;
  while (q.cursor) {
    auto page = this->memories().list(q);
    ASSERT_TRUE(page.ok());
    for (const auto& m : page->items) all.push_back(m.text);
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(all.size(), 7u);
  EXPECT_EQ(all.back(), "fact 0");

  MemoryQuery kinds;
  kinds.tenant_id = "t1";
  kinds.user_id = "alice";
  kinds.kinds = {"preference", "event"};
  EXPECT_EQ(this->memories().list(kinds)->items.size(), 2u);
  kinds.retention = "session";
  EXPECT_EQ(this->memories().list(kinds)->items.size(), 1u);
  MemoryQuery by_session;
  by_session.tenant_id = "t1";
  by_session.user_id = "alice";
  by_session.session_id = "ses_1";
  ASSERT_EQ(this->memories().list(by_session)->items.size(), 1u);
  MemoryQuery bad;
  bad.user_id = "alice";
  bad.cursor = "not-a-cursor";
  EXPECT_TRUE(FailsWith(this->memories().list(bad), ErrorCode::kInvalidArgument, "invalid_cursor"));

  // Deleting what a query selects leaves everything else.
  MemoryQuery facts;
  facts.tenant_id = "t1";
  facts.user_id = "alice";
  facts.kinds = {"fact"};
  auto removed = this->memories().remove_all(facts, MemoryEdit{.actor = "user"}, this->now());
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(*removed, 5);
  EXPECT_EQ(this->active().size(), 2u);
  EXPECT_EQ(this->active("bob").size(), 1u);
  EXPECT_EQ(this->active("alice", "t2").size(), 1u);
}

TYPED_TEST(MemoryConformance, AnExpiredMemoryIsNeverLiveAndThePurgeDeletesIt) {
  NewMemory brief = this->memory("Is at the airport");
  brief.retention = "session";
  brief.expires_at_ms = this->now() + 60'000;
  const Memory soon = this->add(brief);
  const Memory lasting = this->add(this->memory("Is vegetarian"));
  auto live = this->memories().live_by_seq({soon.seq, lasting.seq}, this->now());
  ASSERT_TRUE(live.ok()) << live.error().message;
  EXPECT_EQ(live->size(), 2u);

  this->clock.advance(std::chrono::seconds(60));
  // Expired: not live at once, though the purge has not run.
  live = this->memories().live_by_seq({soon.seq, lasting.seq}, this->now());
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ((*live)[0].id, lasting.id);
  auto mine = this->memories().user_memories("t1", "alice", 100, this->now());
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].vector.size(), 3u);

  const int64_t before = this->memories().last_change().value();
  auto purged = this->memories().purge_expired(this->now(), 100);
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ(*purged, 1);
  EXPECT_TRUE(FailsWith(this->memories().get(soon.id), ErrorCode::kNotFound));
  auto h = this->history(soon.id);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].event, "EXPIRE");
  EXPECT_FALSE(h[0].new_text.has_value());
  auto log = this->changes(before);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].op, MemoryChange::Op::kRemove);
  EXPECT_EQ(log[0].memory_seq, soon.seq);
  EXPECT_EQ(*this->memories().purge_expired(this->now(), 100), 0);
}

TYPED_TEST(MemoryConformance, SayingAnExpiringFactAgainMakesItLiveLonger) {
  NewMemory brief = this->memory("Is travelling this week");
  brief.expires_at_ms = this->now() + 1000;
  const Memory m = this->add(brief);
  brief.expires_at_ms = this->now() + 50'000;
  auto again = this->memories().create(brief, MemoryEdit{.actor = "user"}, this->now());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->memory.expires_at_ms, std::optional<int64_t>(this->now() + 50'000));
  this->clock.advance(std::chrono::seconds(2));
  EXPECT_EQ(this->memories().live_by_seq({m.seq}, this->now())->size(), 1u);
  EXPECT_EQ(this->changes().back().op, MemoryChange::Op::kPut);
}

TYPED_TEST(MemoryConformance, AnExtractionsDecisionsApplyTogetherAndOnlyOnce) {
  NewMemory city = this->memory("Lives in Paris");
  city.slot = "location";
  const Memory paris = this->add(city);
  const Memory tea = this->add(this->memory("Likes tea"));
  const Memory dog = this->add(this->memory("Has a dog"));
  const Memory theirs = this->add(this->memory("Likes jazz", "bob"));

  std::vector<MemoryDecision> decisions;
  MemoryDecision add_name;
  add_name.memory = this->memory("Name is Ana");
  add_name.memory.slot = "name";
  add_name.memory.tenant_id = "ignored";  // the owner is the one apply is called for
  decisions.push_back(add_name);
  MemoryDecision move;  // a new value of a slot: the old one is retired
  move.memory = this->memory("Lives in Lisbon");
  move.memory.slot = "location";
  decisions.push_back(move);
  MemoryDecision refine;
  refine.action = MemoryDecision::Action::kUpdate;
  refine.target_id = tea.id;
  refine.memory = this->memory("Likes green tea");
  refine.memory.importance = 0.7;
  decisions.push_back(refine);
  MemoryDecision gone;
  gone.action = MemoryDecision::Action::kDelete;
  gone.target_id = dog.id;
  decisions.push_back(gone);
  MemoryDecision foreign;  // another user's memory: skipped
  foreign.action = MemoryDecision::Action::kDelete;
  foreign.target_id = theirs.id;
  decisions.push_back(foreign);
  MemoryDecision repeat;  // already remembered
  repeat.memory = this->memory("Likes green tea");
  decisions.push_back(repeat);

  const MemoryEdit edit{"extractor:model", "", R"(["msg_9"])", "job_1"};
  auto applied = this->memories().apply("t1", "alice", decisions, edit, this->now());
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_FALSE(applied->replayed);
  std::map<std::string, std::vector<std::string>> events;
  for (const auto& r : applied->results) events[r.event].push_back(r.memory.text);
  EXPECT_EQ(events["ADD"], (std::vector<std::string>{"Name is Ana", "Lives in Lisbon"}));
  EXPECT_EQ(events["RETIRE"], (std::vector<std::string>{"Lives in Paris"}));
  EXPECT_EQ(events["UPDATE"], (std::vector<std::string>{"Likes green tea"}));
  EXPECT_EQ(events["DELETE"], (std::vector<std::string>{"Has a dog"}));
  EXPECT_EQ(events["NONE"], (std::vector<std::string>{"Likes green tea"}));
  for (const auto& r : applied->results) {
    if (r.event == "UPDATE") {
      EXPECT_EQ(r.previous_text, std::optional<std::string>("Likes tea"));
    }
  }
  std::set<std::string> texts;
  for (const auto& m : this->active()) {
    texts.insert(m.text);
    EXPECT_EQ(m.tenant_id, "t1");
  }
  EXPECT_EQ(texts, (std::set<std::string>{"Name is Ana", "Lives in Lisbon", "Likes green tea"}));
  EXPECT_EQ(this->active("bob").size(), 1u);
  EXPECT_EQ(this->memories().get(paris.id)->status, "retired");
  auto h = this->history(tea.id);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].job_id, "job_1");
  EXPECT_EQ(h[1].source_json, R"(["msg_9"])");
  EXPECT_EQ(h[1].actor, "extractor:model");

  // The job runs again (its worker died after applying): nothing changes.
  const int64_t log_end = this->memories().last_change().value();
  auto replay = this->memories().apply("t1", "alice", decisions, edit, this->now());
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_TRUE(replay->replayed);
  EXPECT_TRUE(replay->results.empty());
  EXPECT_EQ(this->memories().last_change().value(), log_end);
  EXPECT_EQ(this->active().size(), 3u);
}

TYPED_TEST(MemoryConformance, ConcurrentWritersLeaveOneMemoryPerTextAndALogInCommitOrder) {
  // Eight threads, each adding the same ten facts for one user and its own ten, while moving a
  // shared slot: one memory per text, one active per slot, and a log that replays to what the
  // table holds.
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto shared = this->memories().create(this->memory("shared " + std::to_string(i)),
                                              MemoryEdit{.actor = "user"}, this->now());
        EXPECT_TRUE(shared.ok()) << shared.error().message;
        auto own = this->memories().create(
            this->memory("own " + std::to_string(t) + "." + std::to_string(i)),
            MemoryEdit{.actor = "user"}, this->now());
        EXPECT_TRUE(own.ok()) << own.error().message;
        NewMemory where = this->memory("Lives in city " + std::to_string(t * 10 + i));
        where.slot = "location";
        auto moved = this->memories().create(where, MemoryEdit{.actor = "user"}, this->now());
        EXPECT_TRUE(moved.ok()) << moved.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto now_active = this->active();
  std::map<std::string, int> by_text;
  int located = 0;
  for (const auto& m : now_active) {
    ++by_text[m.text];
    if (m.slot == "location") ++located;
  }
  EXPECT_EQ(now_active.size(), 10u + 80u + 1u);
  for (const auto& [text, n] : by_text) EXPECT_EQ(n, 1) << text;
  EXPECT_EQ(located, 1);

  std::set<int64_t> live;
  for (const auto& c : this->changes()) {
    if (c.op == MemoryChange::Op::kPut) {
      live.insert(c.memory_seq);
    } else if (c.op == MemoryChange::Op::kRemove) {
      EXPECT_EQ(live.erase(c.memory_seq), 1u) << "removed before it was put";
    }
  }
  std::set<int64_t> stored;
  for (const auto& m : now_active) stored.insert(m.seq);
  EXPECT_EQ(live, stored);
  auto rebuilt = this->memories().active_after(0, 1000);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->size(), stored.size());
}

TYPED_TEST(MemoryConformance, AUsersExportHasEveryMemoryAndItsHistory) {
  NewMemory paris = this->memory("Lives in Paris");
  paris.slot = "location";
  this->add(paris);
  NewMemory lisbon = this->memory("Lives in Lisbon");
  lisbon.slot = "location";
  this->add(lisbon);
  const Memory gone = this->add(this->memory("Has a cat"));
  ASSERT_TRUE(this->memories().remove(gone.id, MemoryEdit{.actor = "user"}, this->now()).ok());
  this->add(this->memory("Lives in Oslo", "alice", "t2"));
  this->add(this->memory("Likes jazz", "bob"));

  auto one = this->store->user_data().export_user(std::string("t1"), "alice");
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ(one->memories.size(), 2u);
  EXPECT_EQ(one->memories[0].text, "Lives in Paris");
  EXPECT_EQ(one->memories[0].status, "retired");
  EXPECT_EQ(one->memories[1].text, "Lives in Lisbon");
  // ADD and RETIRE of Paris, ADD of Lisbon, ADD and DELETE of the cat (without its text).
  ASSERT_EQ(one->memory_history.size(), 5u);
  for (const auto& h : one->memory_history) {
    EXPECT_EQ(h.user_id, "alice");
    if (h.memory_id == gone.id) {
      EXPECT_FALSE(h.new_text.has_value());
    }
  }
  auto every = this->store->user_data().export_user(std::nullopt, "alice");
  ASSERT_TRUE(every.ok());
  EXPECT_EQ(every->memories.size(), 3u);
}

TYPED_TEST(MemoryConformance, ErasureTakesEveryMemoryAndItsHistoryAndTellsTheIndex) {
  NewMemory paris = this->memory("Lives in Paris");
  paris.slot = "location";
  this->add(paris);
  NewMemory lisbon = this->memory("Lives in Lisbon");
  lisbon.slot = "location";
  this->add(lisbon);
  this->add(this->memory("Lives in Oslo", "alice", "t2"));
  const Memory bobs = this->add(this->memory("Likes jazz", "bob"));
  const int64_t before = this->memories().last_change().value();

  auto erased = this->store->user_data().erase_user(std::string("t1"), "alice", this->now());
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  EXPECT_EQ(erased->memories, 2);
  EXPECT_EQ(erased->memory_history, 3);
  EXPECT_TRUE(this->active().empty());
  auto left = this->store->user_data().export_user(std::string("t1"), "alice");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->memories.empty());
  EXPECT_TRUE(left->memory_history.empty());
  EXPECT_EQ(this->active("alice", "t2").size(), 1u);
  EXPECT_EQ(this->active("bob").size(), 1u);
  EXPECT_EQ(this->history(bobs.id).size(), 1u);
  auto log = this->changes(before);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].op, MemoryChange::Op::kEraseUser);
  EXPECT_EQ(log[0].tenant_id, "t1");
  EXPECT_EQ(log[0].user_id, "alice");

  // Across tenants: one entry per tenant the user had memories in.
  this->add(this->memory("Is back", "alice", "t1"));
  const int64_t mid = this->memories().last_change().value();
  auto everywhere = this->store->user_data().erase_user(std::nullopt, "alice", this->now());
  ASSERT_TRUE(everywhere.ok());
  EXPECT_EQ(everywhere->memories, 2);
  std::set<std::string> tenants;
  for (const auto& c : this->changes(mid)) {
    EXPECT_EQ(c.op, MemoryChange::Op::kEraseUser);
    tenants.insert(c.tenant_id);
  }
  EXPECT_EQ(tenants, (std::set<std::string>{"t1", "t2"}));
}

}  // namespace
