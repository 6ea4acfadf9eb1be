// The memory recall index (memory/recall_index.hpp) over a real SQLite store: built from the
// active memories, it follows the change log (additions, edits, deletions, retirements, an
// erased user), searches one user's memories only, within the assistant's and session's scope,
// of the kinds asked for, never an expired one; and the recall stage that uses it reaches a
// relevant memory older than the newest 2,000, which the database fallback never reads.
#include "memory/recall_index.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chat/assistants.hpp"
#include "core/blocking_pool.hpp"
#include "memory/recall.hpp"
#include "memory/text.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/manual_clock.hpp"
#include "temp_dir.hpp"

namespace {

using namespace parley;

class RecallIndexTest : public ::testing::Test {
 protected:
  RecallIndexTest() {
    store::sqlite::Options options;
    options.path = dir_.path() + "/parley.db";
    options.clock = &clock_;
    auto opened = store::sqlite::open(options);
    if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
    storage_ = std::move(opened).value();
  }
  ~RecallIndexTest() override {
    if (index_) index_->stop();
    storage_->close();
  }

  static store::NewMemory memory(const std::string& user, const std::string& text,
                                 const std::string& kind = "fact") {
    store::NewMemory m;
    m.tenant_id = "acme";
    m.user_id = user;
    m.text = text;
    m.kind = kind;
    m.hash = memory::text_hash(text);
    // A vector of the index's embedder: the text's length, then the same for every memory.
    m.embedder = "test-embedder";
    m.vector = {static_cast<float>(text.size()), 1.0f, 0.5f};
    return m;
  }

  store::Memory add(const store::NewMemory& m) {
    auto created = storage_->memories().create(m, {.actor = "user"}, clock_.unix_ms());
    EXPECT_TRUE(created.ok()) << created.error().message;
    return created->memory;
  }

  memory::RecallIndex& start_index() {
    index_ = std::make_unique<memory::RecallIndex>(
        storage_->memories(), memory::RecallIndexOptions{.embedder = "test-embedder",
                                                         .sync_interval = std::chrono::hours(1),
                                                         .build_in_background = false});
    auto started = index_->start();
    EXPECT_TRUE(started.ok()) << started.error().message;
    EXPECT_TRUE(index_->ready());
    return *index_;
  }

  std::set<std::string> found(const std::string& user, const std::string& text,
                              std::vector<std::string> kinds = {},
                              const std::string& assistant = "support",
                              const std::string& session = "ses_1") {
    memory::RecallSearch search;
    search.tenant_id = "acme";
    search.user_id = user;
    search.assistant = assistant;
    search.session_id = session;
    search.text = text;
    search.kinds = std::move(kinds);
    search.always_standing = false;
    search.now_ms = clock_.unix_ms();
    std::set<std::string> texts;
    std::vector<int64_t> seqs;
    for (const auto& hit : index_->search(search)) seqs.push_back(hit.seq);
    auto memories = storage_->memories().by_seq(seqs);
    EXPECT_TRUE(memories.ok());
    for (const auto& m : *memories) texts.insert(m.text);
    return texts;
  }

  parley::testing::TempDir dir_{"parley-recall-index"};
  ManualClock clock_;
  std::unique_ptr<store::Storage> storage_;
  std::unique_ptr<memory::RecallIndex> index_;
};

TEST(RecallWords, AreLowerCasedHashedSortedAndDistinctWithoutTheCommonest) {
  const auto words = memory::word_ids("Peanuts, PEANUTS and an ox! Walnuts");
  // "an" and "ox" are too short, "and" too common to tell texts apart.
  EXPECT_EQ(words, memory::word_ids("walnuts peanuts"));
  EXPECT_EQ(words.size(), 2u);
  EXPECT_TRUE(std::is_sorted(words.begin(), words.end()));
  const auto asked = memory::word_ids("any peanuts here");
  EXPECT_EQ(memory::shared_words(asked, words.data(), words.size()), 1u);
  EXPECT_TRUE(memory::word_ids("").empty());
}

TEST(RecallRank, RelevanceFirstThenImportanceThenRecency) {
  const int64_t day = 86'400'000;
  EXPECT_GT(memory::recall_rank(0.9, 0.1, 0, 0), memory::recall_rank(0.5, 0.9, 0, 0));
  EXPECT_GT(memory::recall_rank(0.5, 0.9, 0, 0), memory::recall_rank(0.5, 0.1, 0, 0));
  EXPECT_GT(memory::recall_rank(0.5, 0.5, 90 * day, 90 * day),
            memory::recall_rank(0.5, 0.5, 0, 90 * day));
}

TEST_F(RecallIndexTest, BuildsFromTheDatabaseAndSearchesOneUsersMemoriesOnly) {
  add(memory("ana", "Is allergic to peanuts"));
  add(memory("ana", "Lives in Lisbon"));
  add(memory("bob", "Is allergic to peanuts and shellfish"));
  start_index();
  // Caught up with the log as built: the first sync reads only what comes after.
  EXPECT_EQ(index_->applied_seq(), *storage_->memories().last_change());
  EXPECT_GT(index_->applied_seq(), 0);
  EXPECT_EQ(index_->memories(), 3u);
  EXPECT_EQ(index_->users(), 2u);
  EXPECT_EQ(found("ana", "any peanuts in this?"),
            (std::set<std::string>{"Is allergic to peanuts"}));
  EXPECT_EQ(found("bob", "any peanuts in this?"),
            (std::set<std::string>{"Is allergic to peanuts and shellfish"}));
  EXPECT_TRUE(found("carol", "any peanuts in this?").empty());
  EXPECT_TRUE(index_->has_vectors("acme", "ana"));
  EXPECT_FALSE(index_->has_vectors("acme", "carol"));
}

TEST_F(RecallIndexTest, FollowsAdditionsEditsDeletionsRetirementsAndErasure) {
  start_index();
  const auto lisbon = add(memory("ana", "Lives in Lisbon"));
  auto slot = memory("ana", "Name is Ana", "profile");
  slot.slot = "name";
  add(slot);
  add(memory("bob", "Lives in Lisbon too"));
  EXPECT_TRUE(found("ana", "weather in Lisbon").empty());  // not synced yet
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_EQ(found("ana", "weather in Lisbon"), (std::set<std::string>{"Lives in Lisbon"}));

  // An edit: the old words no longer find it, the new ones do.
  store::MemoryPatch patch;
  patch.text = "Lives in Porto";
  patch.hash = memory::text_hash("Lives in Porto");
  ASSERT_TRUE(
      storage_->memories().update(lisbon.id, patch, {.actor = "user"}, clock_.unix_ms()).ok());
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_TRUE(found("ana", "weather in Lisbon").empty());
  EXPECT_EQ(found("ana", "weather in Porto"), (std::set<std::string>{"Lives in Porto"}));

  // A new value of the slot retires the old memory.
  slot.text = "Name is Anabela";
  slot.hash = memory::text_hash(slot.text);
  add(slot);
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_EQ(found("ana", "what is my name"), (std::set<std::string>{"Name is Anabela"}));

  // A deletion.
  ASSERT_TRUE(storage_->memories().remove(lisbon.id, {.actor = "user"}, clock_.unix_ms()).ok());
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_TRUE(found("ana", "weather in Porto").empty());
  EXPECT_EQ(index_->memories(), 2u);

  // Erasing a user drops every memory of theirs, and nobody else's.
  ASSERT_TRUE(storage_->user_data().erase_user("acme", "ana", clock_.unix_ms()).ok());
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_TRUE(found("ana", "what is my name").empty());
  EXPECT_EQ(found("bob", "Lisbon"), (std::set<std::string>{"Lives in Lisbon too"}));
  EXPECT_EQ(index_->memories(), 1u);
  EXPECT_EQ(index_->applied_seq(), *storage_->memories().last_change());
}

TEST_F(RecallIndexTest, KeepsToScopeKindsAndExpiry) {
  auto everywhere = memory("ana", "Prefers tea in the morning", "preference");
  auto other_assistant = memory("ana", "Prefers green tea at work");
  other_assistant.assistant = "sales";
  auto this_session = memory("ana", "Wants tea for the meeting today", "event");
  this_session.session_id = "ses_1";
  auto other_session = memory("ana", "Wanted tea for the party", "event");
  other_session.session_id = "ses_2";
  auto expiring = memory("ana", "Has tea leaves until Friday");
  expiring.expires_at_ms = clock_.unix_ms() + 60'000;
  for (const auto& m : {everywhere, other_assistant, this_session, other_session, expiring}) {
    add(m);
  }
  start_index();
  EXPECT_EQ(found("ana", "tea"),
            (std::set<std::string>{"Prefers tea in the morning", "Wants tea for the meeting today",
                                   "Has tea leaves until Friday"}));
  EXPECT_EQ(
      found("ana", "tea", {"event", "preference"}),
      (std::set<std::string>{"Prefers tea in the morning", "Wants tea for the meeting today"}));
  EXPECT_EQ(found("ana", "tea", {}, "sales", "ses_2"),
            (std::set<std::string>{"Prefers tea in the morning", "Prefers green tea at work",
                                   "Wanted tea for the party", "Has tea leaves until Friday"}));
  // Expired, it is not found before the purge has run.
  clock_.advance(std::chrono::minutes(2));
  EXPECT_EQ(found("ana", "tea", {"fact"}), std::set<std::string>{});
}

TEST_F(RecallIndexTest, VectorsFindWhatSharesNoWordWithTheMessage) {
  // A memory without a vector first: the index learns the dimension from a later one.
  auto plain = memory("ana", "Keeps bees");
  plain.embedder.clear();
  plain.vector.clear();
  add(plain);
  start_index();
  EXPECT_FALSE(index_->has_vectors("acme", "ana"));
  auto bicycle = memory("ana", "Owns a red bicycle");
  bicycle.vector = {1, 0, 0};
  auto language = memory("ana", "Speaks Portuguese");
  language.vector = {0, 1, 0};
  auto stamps = memory("ana", "Collects stamps");
  stamps.vector = {0, 0, 1};
  auto elsewhere = memory("ana", "Reads poetry");
  elsewhere.embedder = "another-embedder";
  elsewhere.vector = {0, 1, 0};
  const store::Memory bicycle_kept = add(bicycle);
  const store::Memory language_kept = add(language);
  add(elsewhere);
  add(stamps);  // the last: it moves when the bicycle goes
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_TRUE(index_->has_vectors("acme", "ana"));

  const auto nearest = [&](std::vector<float> vector) {
    memory::RecallSearch search;
    search.tenant_id = "acme";
    search.user_id = "ana";
    search.vector = &vector;
    search.text = "xyz";
    search.now_ms = clock_.unix_ms();
    return index_->search(search);
  };
  auto hits = nearest({0.1f, 0.9f, 0});
  ASSERT_EQ(hits.size(), 1u);  // the others' cosines are under 0.25; another embedder's none
  EXPECT_EQ(hits[0].seq, language_kept.seq);
  EXPECT_NEAR(hits[0].similarity, 0.99, 0.01);

  // Deleting a memory moves the user's last one into its place, codes and all.
  const std::string bicycle_id = bicycle_kept.id;
  ASSERT_TRUE(storage_->memories().remove(bicycle_id, {.actor = "user"}, clock_.unix_ms()).ok());
  ASSERT_TRUE(index_->sync().ok());
  EXPECT_TRUE(nearest({1, 0, 0}).empty());
  hits = nearest({0, 0, 1});
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].similarity, 1.0, 1e-6);
  EXPECT_EQ(found("ana", "stamps"), (std::set<std::string>{"Collects stamps"}));
}

TEST_F(RecallIndexTest, ManyEditsOfOneMemoryLeaveTheOthersFound) {
  start_index();
  store::Memory steady;
  steady.seq = 1;
  steady.tenant_id = "acme";
  steady.user_id = "ana";
  steady.text = "Has a parrot called Rio";
  steady.kind = "fact";
  steady.status = "active";
  store::Memory edited = steady;
  edited.seq = 2;
  // Enough rewrites that the words no memory uses any more are compacted several times.
  for (int i = 0; i < 600; ++i) {
    edited.text = "Plans trip number " + std::to_string(i) + " somewhere warm";
    index_->put({edited});
    if (i == 0) index_->put({steady});
  }
  EXPECT_EQ(index_->memories(), 2u);
  memory::RecallSearch search;
  search.tenant_id = "acme";
  search.user_id = "ana";
  search.now_ms = clock_.unix_ms();
  search.always_standing = false;
  search.text = "parrot";
  auto hits = index_->search(search);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].seq, 1);
  search.text = "trip 599";
  hits = index_->search(search);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].seq, 2);
  search.text = "trip 598 parrot";  // 598 is gone; "trip" and "parrot" both a third
  EXPECT_EQ(index_->search(search).size(), 2u);
  search.text = "number 598";  // "number" alone: half the words
  hits = index_->search(search);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].seq, 2);
}

TEST_F(RecallIndexTest, TheRecallStageReachesAMemoryOlderThanTheNewest2000) {
  // The user's oldest memory is the one the message is about; 2,500 newer ones are not.
  const store::Memory peanuts = add(memory("ana", "Is allergic to peanuts"));
  std::vector<store::MemoryDecision> decisions;
  for (int i = 0; i < 2'500; ++i) {
    store::MemoryDecision d;
    d.memory = memory("ana", "Visited museum number " + std::to_string(i));
    decisions.push_back(std::move(d));
  }
  clock_.advance(std::chrono::seconds(1));
  ASSERT_TRUE(storage_->memories()
                  .apply("acme", "ana", decisions, {.actor = "user"}, clock_.unix_ms())
                  .ok());
  start_index();

  BlockingPool blocking(1);
  chat::Assistant assistant;
  assistant.name = "support";
  auto recall = [&](memory::RecallIndex* index) {
    const auto stage = memory::recall_stage({*storage_, blocking, nullptr, "", clock_, index});
    chat::Turn turn;
    turn.assistant = &assistant;
    turn.stored = std::make_unique<chat::StoredTurn>();
    turn.stored->started.session.tenant_id = "acme";
    turn.stored->started.session.user_id = "ana";
    turn.stored->started.session.id = "ses_1";
    turn.stored->content = "Any peanuts in here?";
    boost::asio::io_context io;
    std::exception_ptr error;
    std::optional<Result<chat::Flow>> flow;
    auto run = [&]() -> Task<void> { flow.emplace(co_await stage->run(turn)); };
    boost::asio::co_spawn(io, run(), [&](std::exception_ptr e) { error = e; });
    io.run();
    if (error) std::rethrow_exception(error);
    EXPECT_TRUE(flow && flow->ok());
    std::set<std::string> texts;
    for (const auto& m : turn.stored->memories) texts.insert(m.text);
    return texts;
  };
  EXPECT_EQ(recall(index_.get()), (std::set<std::string>{"Is allergic to peanuts"}));
  // Reading the newest 2,000 from the database (the fallback while the index is built) misses
  // it.
  EXPECT_TRUE(recall(nullptr).empty());

  // Deleted, it is not in the index's answer: the next recall follows the log first.
  ASSERT_TRUE(storage_->memories().remove(peanuts.id, {.actor = "user"}, clock_.unix_ms()).ok());
  memory::RecallSearch search;
  search.tenant_id = "acme";
  search.user_id = "ana";
  search.text = "peanuts";
  search.now_ms = clock_.unix_ms();
  ASSERT_EQ(index_->search(search).size(), 1u);
  EXPECT_TRUE(recall(index_.get()).empty());
  EXPECT_TRUE(index_->search(search).empty());
}

}  // namespace
