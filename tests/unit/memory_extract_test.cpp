// The `memory.extract` job (memory/extract.hpp) over a real SQLite store: a stored turn's
// explicit statements become memories with their retention and expiry, a new value of a slot
// replaces the old one, "forget" deletes what it names, a retry after the job applied changes
// nothing, a turn whose messages are gone is skipped, and the vectors come from the embedder.
#include "memory/extract.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "chat/assistants.hpp"
#include "core/blocking_pool.hpp"
#include "memory/jobs.hpp"
#include "memory/recall.hpp"
#include "memory/text.hpp"
#include "queue/worker.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/manual_clock.hpp"
#include "temp_dir.hpp"

namespace {

using namespace parley;
using nlohmann::json;

class MemoryExtractTest : public ::testing::Test {
 protected:
  MemoryExtractTest() {
    store::sqlite::Options options;
    options.path = dir_.path() + "/parley.db";
    options.clock = &clock_;
    auto opened = store::sqlite::open(options);
    if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
    storage_ = std::move(opened).value();
    auto session = storage_->sessions().create({"acme", "ana", "support", std::nullopt, "{}"});
    if (!session.ok()) throw std::runtime_error(session.error().message);
    session_id_ = session->id;
  }
  ~MemoryExtractTest() override { storage_->close(); }

  // A complete turn in which the user said `text`; the job that extracts from it.
  store::Job turn(const std::string& text) {
    auto started = storage_->messages().begin_turn({session_id_, text, "req", "m", "", ""});
    EXPECT_TRUE(started.ok()) << started.error().message;
    store::FinishedTurn done;
    done.assistant_message_id = started->assistant.id;
    done.content = "Noted.";
    done.status = "complete";
    done.finish_reason = "stop";
    EXPECT_TRUE(storage_->messages().finish_turn(done).ok());
    memory::ExtractRequest request{
        "acme", "ana", "support", session_id_, started->user.id, started->assistant.id};
    auto job = storage_->jobs().enqueue(memory::extract_job(request, 5), clock_.unix_ms());
    EXPECT_TRUE(job.ok()) << job.error().message;
    return *job;
  }

  json run(const store::Job& job) {
    auto answer = handler()(job);
    EXPECT_TRUE(answer.ok()) << answer.error().message;
    return answer.ok() ? *answer : json();
  }

  queue::Handler handler() {
    return memory::extract_handler(
        {*storage_, clock_, settings_, "test-embedder", embed_, complete_});
  }

  // A model that answers `reply` (or fails with `error`) and keeps what it was asked.
  void model_answers(std::string reply) {
    complete_ = [this, reply](const std::string& tenant,
                              std::vector<llm::Message> messages) -> Result<llm::ModelReply> {
      EXPECT_EQ(tenant, "acme");
      asked_.push_back(std::move(messages));
      if (model_error_) return *model_error_;
      return llm::ModelReply{reply, "fake", "fake-model"};
    };
  }

  std::vector<store::Memory> active(const std::string& status = "active") {
    store::MemoryQuery q;
    q.tenant_id = "acme";
    q.user_id = "ana";
    q.status = status;
    auto page = storage_->memories().list(q);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->items : std::vector<store::Memory>{};
  }

  parley::testing::TempDir dir_{"parley-memory-extract"};
  ManualClock clock_;
  std::unique_ptr<store::Storage> storage_;
  std::string session_id_;
  memory::MemorySettings settings_;
  llm::CompleteFn complete_;
  std::vector<std::vector<llm::Message>> asked_;
  std::optional<Error> model_error_;
  int embedded_ = 0;
  memory::EmbedFn embed_ =
      [this](const std::string& tenant,
             const std::vector<std::string>& texts) -> Result<std::vector<std::vector<float>>> {
    EXPECT_EQ(tenant, "acme");
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back({static_cast<float>(t.size()), 1.0F});
    embedded_ += static_cast<int>(texts.size());
    return out;
  };
};

TEST_F(MemoryExtractTest, ExplicitStatementsBecomeMemoriesWithRetentionAndVectors) {
  const store::Job job = turn("Hi! My name is Ana, and I'm allergic to peanuts.");
  EXPECT_EQ(job.unique_key,
            "memx:" + json::parse(job.payload_json)["reply_message_id"].get<std::string>());
  const json answer = run(job);
  EXPECT_EQ(answer["mode"], "rules");
  ASSERT_EQ(answer["results"].size(), 2u) << answer.dump();
  auto memories = active();
  ASSERT_EQ(memories.size(), 2u);
  std::map<std::string, store::Memory> by_text;
  for (const auto& m : memories) by_text[m.text] = m;
  ASSERT_TRUE(by_text.count("Name is Ana")) << memories[0].text << " / " << memories[1].text;
  ASSERT_TRUE(by_text.count("Is allergic to peanuts"));
  const store::Memory& name = by_text["Name is Ana"];
  EXPECT_EQ(name.slot, "name");
  EXPECT_EQ(name.retention, "permanent");
  EXPECT_FALSE(name.expires_at_ms.has_value());
  EXPECT_EQ(name.hash, memory::text_hash("name is ana"));
  EXPECT_EQ(name.session_id, "") << "a fact about the user holds in every session";
  EXPECT_EQ(name.embedder, "test-embedder");
  auto with_vector = storage_->memories().by_seq({name.seq});
  ASSERT_TRUE(with_vector.ok());
  EXPECT_EQ(with_vector->at(0).vector, (std::vector<float>{11.0F, 1.0F}));
  auto history = storage_->memories().history(name.id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ(history->at(0).actor, "extractor:rules");
  EXPECT_EQ(history->at(0).job_id, job.id);
}

TEST_F(MemoryExtractTest, TheSameFactTwiceIsOneMemoryAndANewValueReplacesTheOld) {
  run(turn("My name is Ana."));
  run(turn("my name is ana"));
  ASSERT_EQ(active().size(), 1u);
  run(turn("Actually, call me Bea."));
  auto memories = active();
  ASSERT_EQ(memories.size(), 1u);
  EXPECT_EQ(memories[0].text, "Name is Bea");
  const auto old = active("retired");
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].text, "Name is Ana");
}

TEST_F(MemoryExtractTest, ForgetDeletesWhatItNames) {
  run(turn("I live in Lisbon. I love jazz."));
  ASSERT_EQ(active().size(), 2u);
  const json answer = run(turn("Please forget that I live in Lisbon."));
  ASSERT_EQ(answer["results"].size(), 1u) << answer.dump();
  EXPECT_EQ(answer["results"][0]["event"], "DELETE");
  auto left = active();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].text, "Loves jazz");
}

TEST_F(MemoryExtractTest, ARetryAfterTheJobAppliedChangesNothing) {
  const store::Job job = turn("I work at Acme.");
  run(job);
  const int64_t log_end = storage_->memories().last_change().value();
  const json again = run(job);
  EXPECT_EQ(again["replayed"], true);
  EXPECT_EQ(storage_->memories().last_change().value(), log_end);
  EXPECT_EQ(active().size(), 1u);
}

TEST_F(MemoryExtractTest, NothingToRememberAndAGoneTurnChangeNothing) {
  const json small_talk = run(turn("What's the weather like today?"));
  EXPECT_EQ(small_talk["proposed"], 0);
  const store::Job job = turn("My name is Ana.");
  ASSERT_TRUE(storage_->sessions().remove(session_id_).ok());
  const json gone = run(job);
  EXPECT_TRUE(gone.contains("skipped")) << gone.dump();
  EXPECT_TRUE(active().empty());
  EXPECT_EQ(embedded_, 0);
}

TEST_F(MemoryExtractTest, RetentionSetsExpiryAndSessionMemoriesBelongToTheirSession) {
  settings_.default_retention = "short";
  run(turn("I prefer window seats."));
  auto memories = active();
  ASSERT_EQ(memories.size(), 1u);
  EXPECT_EQ(memories[0].retention, "short");
  ASSERT_TRUE(memories[0].expires_at_ms.has_value());
  EXPECT_EQ(*memories[0].expires_at_ms, clock_.unix_ms() + settings_.retention_short.count());

  memory::Proposal brief;
  brief.text = "Is at the airport";
  brief.retention = "session";
  const memory::ExtractRequest request{"acme", "ana", "support", "ses_1", "msg_1", "msg_2"};
  auto decisions = memory::decide({brief}, {}, request, settings_, 1000);
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].memory.session_id, "ses_1");
  EXPECT_EQ(decisions[0].memory.expires_at_ms, 1000 + settings_.retention_session.count());
  EXPECT_EQ(decisions[0].memory.source_json, R"(["msg_1"])");
}

TEST_F(MemoryExtractTest, AModelsProposalsAddRefineRetireAndDeleteWhatItWasShown) {
  run(turn("I like tea."));
  run(turn("I live in Paris."));
  run(turn("My dog's name is Rex."));
  ASSERT_EQ(active().size(), 3u);
  // The model sees the turn and the user's memories, numbered; it answers by those numbers.
  model_answers("ok");
  const store::Job probe = turn("Probe.");
  (void)handler()(probe);
  ASSERT_EQ(asked_.size(), 1u);
  const std::string shown = asked_[0].back().content;
  EXPECT_NE(shown.find("Probe."), std::string::npos) << shown;
  EXPECT_NE(shown.find("Likes tea"), std::string::npos) << shown;
  EXPECT_EQ(asked_[0].front().role, "system");
  // The numbers the model sees, as the prompt lists them ("N. [kind, slot] text").
  std::map<std::string, int> number;
  for (const char* text : {"Likes tea", "Lives in Paris", "Dog's name is Rex"}) {
    const size_t at = shown.find(text);
    ASSERT_NE(at, std::string::npos) << text;
    const size_t line = shown.rfind('\n', at) + 1;  // "N. [kind] text"
    number[text] = std::stoi(shown.substr(line));
  }

  const json proposals = {
      {"memories",
       {{{"event", "UPDATE"}, {"ref", number["Likes tea"]}, {"text", "Likes green tea"}},
        {{"event", "RETIRE"}, {"ref", number["Lives in Paris"]}},
        {{"event", "ADD"}, {"text", "Lives in Lisbon"}, {"slot", "location"}},
        {{"event", "DELETE"}, {"ref", number["Dog's name is Rex"]}},
        {{"event", "ADD"}, {"text", "Name is Ana"}, {"kind", "profile"}, {"slot", "name"}}}}};
  model_answers("```json\n" + proposals.dump() + "\n```");
  const json answer = run(turn("I moved to Lisbon, gave my dog away, and green tea is best."));
  EXPECT_EQ(answer["mode"], "model") << answer.dump();
  std::set<std::string> texts;
  for (const auto& m : active()) texts.insert(m.text);
  EXPECT_EQ(texts, (std::set<std::string>{"Likes green tea", "Lives in Lisbon", "Name is Ana"}));
  const auto old = active("retired");
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].text, "Lives in Paris");
  for (const auto& m : active()) {
    if (m.text != "Likes green tea") continue;
    auto history = storage_->memories().history(m.id);
    ASSERT_TRUE(history.ok());
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ(history->at(1).event, "UPDATE");
    EXPECT_EQ(history->at(1).actor, "extractor:model");
    EXPECT_EQ(history->at(1).old_text, std::optional<std::string>("Likes tea"));
  }
}

TEST_F(MemoryExtractTest, AnUnreadableModelAnswerIsRetriedOnceThenTheRulesExtract) {
  model_answers("I think the user is called Ana!");
  store::Job job = turn("My name is Ana.");
  job.attempts = 1;
  auto first = handler()(job);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().reason, "extraction_unparseable");
  EXPECT_TRUE(active().empty());
  job.attempts = 2;
  const json second = run(job);
  EXPECT_EQ(second["mode"], "rules");
  EXPECT_EQ(second["fallback"], "rules");
  ASSERT_EQ(active().size(), 1u);
  EXPECT_EQ(active()[0].text, "Name is Ana");
}

TEST_F(MemoryExtractTest, AModelThatIsDownFailsTheAttemptSoItIsRetried) {
  model_answers("{}");
  model_error_ = Error::unavailable("upstream is down", "upstream_unavailable");
  store::Job job = turn("My name is Ana.");
  job.attempts = 3;
  auto answer = handler()(job);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(active().empty());
}

TEST_F(MemoryExtractTest, AnExpiredMemoryIsNeverLiveAndTheExpireJobDeletesIt) {
  // "this week" kinds of fact: a session-retention memory lasts memory.retention_session.
  run(turn("My name is Ana."));
  store::NewMemory brief;
  brief.tenant_id = "acme";
  brief.user_id = "ana";
  brief.text = "Is in Rome this week";
  brief.kind = "event";
  brief.retention = "session";
  brief.hash = memory::text_hash(brief.text);
  brief.expires_at_ms = memory::expires_at(settings_, "session", clock_.unix_ms());
  ASSERT_TRUE(storage_->memories().create(brief, {.actor = "user"}, clock_.unix_ms()).ok());
  const auto expire = memory::expire_handler(storage_->memories(), clock_);
  auto nothing = expire(store::Job{});
  ASSERT_TRUE(nothing.ok()) << nothing.error().message;
  EXPECT_EQ((*nothing)["purged"], 0);
  EXPECT_EQ(active().size(), 2u);

  clock_.advance(settings_.retention_session + std::chrono::milliseconds(1));
  // Past its expiry it is not recalled, before any purge.
  auto live = storage_->memories().user_memories("acme", "ana", 100, clock_.unix_ms());
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ(live->front().text, "Name is Ana");
  auto purged = expire(store::Job{});
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ((*purged)["purged"], 1);
  auto all = active("all");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.front().text, "Name is Ana");
  auto again = expire(store::Job{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["purged"], 0);
}

// Recall's choice (memory/recall.hpp): within the budget, relevant ones first, standing
// instructions whatever the message, nothing below the similarity bar.
std::vector<store::Memory> memories_for_recall() {
  const std::vector<std::pair<std::string, std::string>> texts = {
      {"Name is Ana", "profile"},
      {"Always answers in French", "instruction"},
      {"Is allergic to peanuts", "fact"},
      {"Likes hiking in the mountains", "preference"},
      {"Has two cats", "fact"}};
  std::vector<store::Memory> out;
  for (size_t i = 0; i < texts.size(); ++i) {
    store::Memory m;
    m.id = "mem_" + std::to_string(i);
    m.text = texts[i].first;
    m.kind = texts[i].second;
    m.slot = m.kind == "profile" ? "name" : (m.kind == "instruction" ? "reply_language" : "");
    m.created_at_ms = m.updated_at_ms = 1'000;
    out.push_back(std::move(m));
  }
  return out;
}

TEST(MemoryRecall, ChoosesRelevantMemoriesWithinTheBudgetAndAlwaysTheStandingOnes) {
  const auto memories = memories_for_recall();
  std::vector<memory::RecallCandidate> candidates;
  for (const auto& m : memories) candidates.push_back({&m, -1});
  memory::ChooseOptions options;
  options.top_k = 8;
  options.max_tokens = 500;
  const auto chosen = memory::choose(candidates, "Which snacks without peanuts?", options, 2'000);
  std::set<std::string> texts;
  for (const auto& c : chosen) texts.insert(c.text);
  EXPECT_EQ(texts, (std::set<std::string>{"Name is Ana", "Always answers in French",
                                          "Is allergic to peanuts"}));
  // A budget that holds one memory keeps one; a top_k of 2 keeps two.
  options.max_tokens = 8;
  EXPECT_EQ(memory::choose(candidates, "Which snacks without peanuts?", options, 2'000).size(), 1u);
  options.max_tokens = 500;
  options.top_k = 2;
  EXPECT_EQ(memory::choose(candidates, "Which snacks without peanuts?", options, 2'000).size(), 2u);
  // An assistant that uses some kinds only gets those.
  options.top_k = 8;
  options.kinds = {"fact", "instruction"};
  texts.clear();
  for (const auto& c :
       memory::choose(candidates, "Which snacks without peanuts?", options, 2'000)) {
    texts.insert(c.text);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"Always answers in French", "Is allergic to peanuts"}));
  options.kinds.clear();
  // A search asks for relevance alone: nothing shares a word with this.
  options.top_k = 8;
  options.always_standing = false;
  EXPECT_TRUE(memory::choose(candidates, "quantum lattice", options, 2'000).empty());
}

TEST_F(MemoryExtractTest, AnAssistantWithRecallOffTakesNoMemories) {
  BlockingPool blocking(1);
  const auto stage = memory::recall_stage({*storage_, blocking, nullptr, "", clock_});
  chat::Assistant assistant;
  assistant.memory_top_k = 3;
  assistant.memory_max_tokens = 120;
  assistant.memory_min_similarity = 0.4;
  chat::Turn turn;
  turn.stored = std::make_unique<chat::StoredTurn>();
  turn.assistant = &assistant;
  EXPECT_TRUE(stage->applies(turn));
  assistant.memory_recall = false;
  EXPECT_FALSE(stage->applies(turn));
  // Stateless turns (the OpenAI-compatible proxy) recall nothing.
  turn.stored.reset();
  assistant.memory_recall = true;
  EXPECT_FALSE(stage->applies(turn));
  // The assistant's budget is what recall chooses within.
  const memory::ChooseOptions options = memory::recall_options(assistant);
  EXPECT_EQ(options.top_k, 3);
  EXPECT_EQ(options.max_tokens, 120);
  EXPECT_DOUBLE_EQ(options.min_similarity, 0.4);
}

}  // namespace
