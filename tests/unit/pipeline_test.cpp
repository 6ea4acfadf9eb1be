// The chat pipeline (chat/pipeline.hpp, chat/stages.hpp) run in process, with no HTTP server of
// Parley's own: a real SQLite store in a temporary directory, a BlockingPool, an io_context
// driving the coroutines from the test's thread, an HttpClient on it, the fake upstream as the
// OpenAI-compatible provider behind a one-route Gateway, an Accountant, the Assistants,
// Admission, a disabled Moderator and a ManualClock, composed the way app/ composes them.
// Covers: a stored turn that completes (reply stored complete, usage row written, the built-in
// stages in their order); a stateless turn (no message stored, usage queued to the accountant
// and written on flush); a transfer the HTTP client refuses to start (a line break in a
// configured header), which ends the reply partial/error, never reaches the upstream and opens
// the target's circuit; a custom stage that answers the turn (no provider call, the finishing
// stages still store the answer); and a custom stage that fails after the input is recorded
// (the error returned, the pending reply closed partial/error).
#include <gtest/gtest.h>

#include <sqlite3.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "chat/assistants.hpp"
#include "chat/pipeline.hpp"
#include "chat/stages.hpp"
#include "core/blocking_pool.hpp"
#include "http/client.hpp"
#include "limits/admission.hpp"
#include "limits/budget.hpp"
#include "limits/limiter.hpp"
#include "llm/accounting.hpp"
#include "llm/gateway.hpp"
#include "llm/openai/openai_provider.hpp"
#include "llm/pricing.hpp"
#include "memory/follow_ups.hpp"
#include "moderation/moderator.hpp"
#include "moderation/rules.hpp"
#include "run_on.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "support/fake_upstream.hpp"
#include "support/manual_clock.hpp"
#include "temp_dir.hpp"

namespace {

namespace asio = boost::asio;
namespace chat = parley::chat;
namespace limits = parley::limits;
namespace llm = parley::llm;
namespace memory = parley::memory;
namespace moderation = parley::moderation;
namespace store = parley::store;
using namespace std::chrono_literals;
using parley::Error;
using parley::ErrorCode;
using parley::Result;
using parley::Task;
using parley::testing::FakeReply;
using parley::testing::FakeUpstream;
using parley::testing::TempDir;

using parley::testing::run_on;

// A stage owned elsewhere, run through this wrapper so the test can tell which stages a turn
// went through.
class Recorded final : public chat::Stage {
 public:
  Recorded(chat::Stage& inner, std::vector<std::string>& ran) : inner_(inner), ran_(ran) {}
  const char* name() const override { return inner_.name(); }
  bool applies(const chat::Turn& turn) const override { return inner_.applies(turn); }
  bool finishing() const override { return inner_.finishing(); }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    ran_.emplace_back(inner_.name());
    return inner_.run(turn);
  }

 private:
  chat::Stage& inner_;
  std::vector<std::string>& ran_;
};

// Answers the turn itself, as a cache hit or a canned answer would.
class Answering final : public chat::Stage {
 public:
  const char* name() const override { return "cache"; }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    turn.generation.completion.content = "cached";
    turn.generation.completion.finish_reason = llm::finish::kStop;
    co_return chat::Flow::kAnswered;
  }
};

// Fails the turn, as a stage whose own backend is down would.
class Failing final : public chat::Stage {
 public:
  const char* name() const override { return "failing"; }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    co_return Error::unavailable("the stage's backend is down", "backend_unavailable");
  }
};

const std::vector<std::string>& builtin_stage_names() {
  static const std::vector<std::string> names = {
      "resolve",    "admit",    "moderate",        "open_session", "record_input", "build_prompt",
      "plan_route", "generate", "moderate_output", "account",      "persist"};
  return names;
}

// --- How each component is built: one small function each, so that a change of a
// constructor touches one place. --------------------------------------------------------

std::unique_ptr<store::Storage> open_storage(const TempDir& dir, const parley::Clock& clock) {
  store::sqlite::Options options;
  options.path = dir.path() + "/parley.db";
  options.read_connections = 2;
  options.clock = &clock;
  auto opened = store::sqlite::open(options);
  if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
  return std::move(opened).value();
}

// The fake upstream as an OpenAI-compatible provider named "fake", serving "gpt-fake".
llm::ProviderSettings provider_settings(const FakeUpstream& upstream) {
  llm::ProviderSettings settings;
  settings.name = "fake";
  settings.type = "openai";
  settings.base_url = upstream.base_url() + "/v1";
  settings.api_key = "sk-test";
  settings.models = {"gpt-fake"};
  settings.default_model = "gpt-fake";
  return settings;
}

// No retries and a breaker that opens on the first failure, so one failed turn shows in it.
llm::GatewayOptions gateway_options(const parley::Clock& clock) {
  llm::GatewayOptions options;
  options.max_retries = 0;
  options.backoff_base = 1ms;
  options.backoff_max = 5ms;
  options.breaker_failures = 1;
  options.breaker_cooldown = 30s;
  options.limits.first_token_timeout = 5s;
  options.limits.stall_timeout = 5s;
  options.limits.total_timeout = 10s;
  options.clock = &clock;
  return options;
}

// One provider on the fake upstream, and the route "main" (the default) to it.
std::unique_ptr<llm::Gateway> make_gateway(llm::ProviderSettings settings,
                                           llm::GatewayOptions options,
                                           parley::http::HttpClient& client,
                                           llm::Accountant& accountant) {
  std::vector<std::unique_ptr<llm::Provider>> providers;
  providers.push_back(llm::make_openai_provider(std::move(settings), client));
  llm::Provider* provider = providers.front().get();
  std::map<std::string, llm::Route> routes;
  routes["main"] = llm::Route{"main", {{provider, "gpt-fake"}}};
  return std::make_unique<llm::Gateway>(std::move(providers), std::move(routes), "main", options,
                                        accountant.observer());
}

// The built-in table only: "gpt-fake" is unknown to it (cost 0, the default context window).
llm::ModelTable make_model_table() { return llm::ModelTable(); }

// Only the built-in "default" assistant, whose model is the default route.
chat::Assistants make_assistants() { return chat::Assistants(chat::ChatSettings{}); }

// No rules: checks nothing and logs nothing.
moderation::RuleSet no_rules() {
  auto rules = moderation::RuleSet::compile(moderation::Policy{});
  if (!rules.ok()) throw std::runtime_error("empty policy refused: " + rules.error().message);
  return std::move(rules).value();
}

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() : storage_(open_storage(dir_, clock_)), client_(context_) {}

  ~PipelineTest() override {
    pipeline_.reset();
    builtins_.reset();
    deps_.reset();
    accountant_.stop();
    moderator_.stop();
    blocking_.join();
    storage_->close();
  }

  // The gateway on `settings`, and the pipeline as the app composes it (add_builtin_stages),
  // each stage wrapped to note when it runs; `extra`, when given, goes just before the stage
  // named `before`. Call once per test.
  void compose(llm::ProviderSettings settings, std::unique_ptr<chat::Stage> extra = nullptr,
               std::string_view before = "") {
    gateway_ = make_gateway(std::move(settings), gateway_options(clock_), client_, accountant_);
    deps_ = make_deps();
    builtins_ = std::make_unique<chat::Pipeline>(*deps_);
    chat::stages::add_builtin_stages(*builtins_, *deps_);
    extra_ = std::move(extra);
    pipeline_ = std::make_unique<chat::Pipeline>(*deps_);
    for (const auto& stage : builtins_->stages()) {
      if (extra_ && before == stage->name()) {
        pipeline_->add(std::make_unique<Recorded>(*extra_, ran_));
      }
      pipeline_->add(std::make_unique<Recorded>(*stage, ran_));
    }
  }
  void compose() { compose(provider_settings(upstream_)); }

  // What the stages get, as app/ hands it to them (no metrics; the server never drains).
  std::unique_ptr<chat::ChatDeps> make_deps() {
    return std::unique_ptr<chat::ChatDeps>(
        new chat::ChatDeps{*storage_, blocking_, *gateway_, accountant_, assistants_, admission_,
                           moderator_, clock_, nullptr, 8192, [] { return false; }, "rep_test"});
  }

  static limits::Actor alice() {
    limits::Actor actor;
    actor.user_id = "alice";
    actor.key_id = "key_test";
    return actor;
  }

  store::Session new_session() {
    store::NewSession in;
    in.user_id = "alice";
    in.assistant = "default";
    auto session = storage_->sessions().create(in);
    if (!session.ok()) throw std::runtime_error("session: " + session.error().message);
    return std::move(session).value();
  }

  chat::Turn stored_turn(const store::Session& session, const std::string& content) {
    chat::Turn turn;
    turn.stored = std::make_unique<chat::StoredTurn>();
    turn.actor = alice();
    turn.request_id = "req_stored";
    turn.stored->session = session;
    turn.stored->content = content;
    return turn;
  }

  Result<void> run(chat::Turn& turn) {
    llm::Cancellation cancel;
    turn.cancel = &cancel;
    auto result = run_on(context_, pipeline_->run(turn));
    turn.cancel = nullptr;
    return result;
  }

  std::vector<store::Message> messages(const std::string& session_id) {
    store::MessageListQuery query;
    query.session_id = session_id;
    auto page = storage_->messages().list(query);
    if (!page.ok()) {
      ADD_FAILURE() << page.error().message;
      return {};
    }
    return page->items;
  }

  // Requests recorded in the usage table, per source ("chat", "api").
  std::map<std::string, int64_t> usage_by_source() {
    store::UsageQuery query;
    query.group_by = {"source"};
    auto rows = storage_->usage().aggregate(query);
    std::map<std::string, int64_t> out;
    if (!rows.ok()) {
      ADD_FAILURE() << rows.error().message;
      return out;
    }
    for (const auto& row : *rows) {
      if (!row.keys.empty()) out[row.keys.front().second] += row.requests;
    }
    return out;
  }

  // Rows of the messages table, read past the code under test.
  int64_t message_rows() {
    sqlite3* db = nullptr;
    int64_t count = -1;
    const std::string path = dir_.path() + "/parley.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM messages", -1, &stmt, nullptr) ==
              SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        count = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return count;
  }

  // Declared in the order they are built; each outlives what uses it.
  TempDir dir_{"parley-pipeline"};
  parley::ManualClock clock_;
  std::unique_ptr<store::Storage> storage_;
  FakeUpstream upstream_;
  asio::io_context context_;
  parley::http::HttpClient client_;
  parley::BlockingPool blocking_{1};
  llm::ModelTable models_ = make_model_table();
  // A long interval: API usage is written when the test flushes it.
  llm::Accountant accountant_{models_, nullptr, storage_.get(), std::chrono::hours(1)};
  chat::Assistants assistants_ = make_assistants();
  std::unique_ptr<limits::RateLimiter> limiter_ = limits::make_local_limiter();
  std::unique_ptr<limits::Budgets> budgets_ =
      limits::make_local_budgets(storage_->usage(), blocking_);
  limits::Admission admission_{*limiter_, *budgets_, clock_, nullptr};
  moderation::Moderator moderator_{no_rules(), /*enabled=*/false, nullptr, nullptr, {}, clock_};
  std::unique_ptr<llm::Gateway> gateway_;
  std::unique_ptr<chat::ChatDeps> deps_;
  std::unique_ptr<chat::Pipeline> builtins_;  // owns the built-in stages
  std::unique_ptr<chat::Stage> extra_;
  std::unique_ptr<chat::Pipeline> pipeline_;  // runs them, recorded, with extra_
  std::vector<std::string> ran_;              // names of the stages that ran, in order
};

TEST_F(PipelineTest, StoredTurnCompletesThroughTheBuiltInStages) {
  compose();
  std::vector<std::string> names;
  for (const auto& stage : builtins_->stages()) names.emplace_back(stage->name());
  EXPECT_EQ(names, builtin_stage_names());

  FakeReply reply;
  reply.body = FakeUpstream::openai_completion("Hello, alice.");
  upstream_.enqueue(reply);
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "hello");
  auto result = run(turn);
  ASSERT_TRUE(result.ok()) << result.error().message;

  EXPECT_FALSE(turn.generation_error.has_value()) << turn.generation_error->message;
  EXPECT_EQ(turn.stored->reply.status, "complete");
  EXPECT_EQ(turn.stored->reply.content, "Hello, alice.");
  EXPECT_EQ(turn.stored->reply.finish_reason, "stop");
  EXPECT_EQ(turn.stored->reply.provider, "fake");
  EXPECT_EQ(turn.stored->reply.model, "gpt-fake");
  EXPECT_EQ(turn.stored->reply.output_tokens, 6);
  // Open session (the session was given) and plan route (not a cost route) do not apply.
  EXPECT_EQ(ran_, (std::vector<std::string>{"resolve", "admit", "moderate", "record_input",
                                            "build_prompt", "generate", "moderate_output",
                                            "account", "persist"}));

  ASSERT_EQ(upstream_.calls(), 1);
  const auto sent = upstream_.requests().front();
  EXPECT_EQ(sent.json["model"], "gpt-fake");
  ASSERT_TRUE(sent.json["messages"].is_array());
  EXPECT_EQ(sent.json["messages"].back()["role"], "user");
  EXPECT_EQ(sent.json["messages"].back()["content"], "hello");

  const auto stored = messages(session.id);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].role, "user");
  EXPECT_EQ(stored[0].content, "hello");
  EXPECT_EQ(stored[1].role, "assistant");
  EXPECT_EQ(stored[1].status, "complete");
  EXPECT_EQ(stored[1].content, "Hello, alice.");
  EXPECT_EQ(stored[0].created_at_ms, clock_.unix_ms());  // stamped by the injected clock
  EXPECT_EQ(usage_by_source()["chat"], 1);
}

TEST_F(PipelineTest, StatelessTurnStoresNothingButQueuedUsage) {
  compose();
  chat::Turn turn;
  turn.source = "api";
  turn.actor = alice();
  turn.request_id = "req_stateless";
  turn.model = "main";
  llm::Message hello;
  hello.role = "user";
  hello.content = "hello";
  turn.prompt.messages.push_back(hello);
  auto result = run(turn);
  ASSERT_TRUE(result.ok()) << result.error().message;

  EXPECT_FALSE(turn.generation_error.has_value()) << turn.generation_error->message;
  EXPECT_EQ(turn.generation.completion.content, "Hello from the fake upstream.");
  EXPECT_EQ(turn.generation.provider, "fake");
  EXPECT_EQ(upstream_.calls(), 1);
  EXPECT_EQ(ran_, (std::vector<std::string>{"resolve", "admit", "moderate", "generate",
                                            "moderate_output", "account"}));
  EXPECT_EQ(turn.stored, nullptr);  // a stateless turn carries no session part
  EXPECT_EQ(message_rows(), 0);

  // Queued, not written: the accountant writes it in its next batch.
  EXPECT_EQ(usage_by_source().count("api"), 0u);
  accountant_.flush();
  EXPECT_EQ(usage_by_source()["api"], 1);
}

// Item 7's acceptance test: the client fails to start the transfer, and the reply row ends
// partial with reason error, and the breaker counts it.
TEST_F(PipelineTest, TransferThatCannotStartEndsThePartialReplyAndCountsAgainstTheBreaker) {
  llm::ProviderSettings settings = provider_settings(upstream_);
  // A line break in a header value would smuggle a header in: HttpClient::start refuses it.
  settings.headers.emplace_back("X-Corp-Token", "abc\r\nX-Injected: 1");
  compose(std::move(settings));
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "hello");
  auto result = run(turn);
  ASSERT_TRUE(result.ok()) << "a generation failure lives in the Turn: " << result.error().message;

  ASSERT_TRUE(turn.generation_error.has_value());
  EXPECT_EQ(turn.generation_error->code, ErrorCode::kBadGateway);
  EXPECT_EQ(turn.generation_error->reason, "upstream_request_failed");
  EXPECT_EQ(turn.stored->reply.status, "partial");
  EXPECT_EQ(turn.stored->reply.finish_reason, "error");
  EXPECT_EQ(turn.stored->usage.status, "upstream_request_failed");

  const auto stored = messages(session.id);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].role, "assistant");
  EXPECT_EQ(stored[1].status, "partial");
  EXPECT_EQ(stored[1].finish_reason, "error");

  EXPECT_EQ(upstream_.calls(), 0) << "nothing may reach the upstream";

  const auto breakers = gateway_->breakers();
  ASSERT_EQ(breakers.size(), 1u);
  EXPECT_EQ(breakers[0].provider, "fake");
  EXPECT_EQ(breakers[0].model, "gpt-fake");
  EXPECT_EQ(breakers[0].state, llm::CircuitBreaker::State::kOpen);
}

TEST_F(PipelineTest, StageThatAnswersSkipsGenerationAndStillPersists) {
  compose(provider_settings(upstream_), std::make_unique<Answering>(), "generate");
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "hello");
  auto result = run(turn);
  ASSERT_TRUE(result.ok()) << result.error().message;

  EXPECT_TRUE(turn.answered);
  EXPECT_EQ(upstream_.calls(), 0);
  EXPECT_TRUE(turn.generation.attempts.empty());
  EXPECT_EQ(std::count(ran_.begin(), ran_.end(), "generate"), 0);
  // The finishing stages run after an answer; moderate_output does not.
  EXPECT_EQ(ran_, (std::vector<std::string>{"resolve", "admit", "moderate", "record_input",
                                            "build_prompt", "cache", "account", "persist"}));
  EXPECT_EQ(turn.stored->reply.status, "complete");
  EXPECT_EQ(turn.stored->reply.content, "cached");

  const auto stored = messages(session.id);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].status, "complete");
  EXPECT_EQ(stored[1].content, "cached");
}

TEST_F(PipelineTest, StageThatFailsAfterRecordInputClosesThePendingReply) {
  // Just before build_prompt: right after record_input.
  compose(provider_settings(upstream_), std::make_unique<Failing>(), "build_prompt");
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "hello");
  auto result = run(turn);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().reason, "backend_unavailable");
  EXPECT_EQ(ran_,
            (std::vector<std::string>{"resolve", "admit", "moderate", "record_input", "failing"}));
  EXPECT_EQ(upstream_.calls(), 0);

  const auto stored = messages(session.id);
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& m : stored) EXPECT_NE(m.status, "pending") << m.role;
  EXPECT_EQ(stored[0].content, "hello");
  EXPECT_EQ(stored[1].role, "assistant");
  EXPECT_EQ(stored[1].status, "partial");
  EXPECT_EQ(stored[1].finish_reason, "error");
}

TEST_F(PipelineTest, AFeatureStageGoesInBeforeTheStageItNames) {
  compose();
  chat::Pipeline pipeline(*deps_);
  chat::stages::add_builtin_stages(pipeline, *deps_);
  class Retrieve final : public chat::Stage {
   public:
    const char* name() const override { return "retrieve"; }
    Task<Result<chat::Flow>> run(chat::Turn&) override { co_return chat::Flow::kContinue; }
  };
  EXPECT_TRUE(pipeline.insert_before("build_prompt", std::make_unique<Retrieve>()));
  EXPECT_FALSE(pipeline.insert_before("no_such_stage", std::make_unique<Retrieve>()));
  std::vector<std::string> names;
  for (const auto& stage : pipeline.stages()) names.emplace_back(stage->name());
  const std::vector<std::string> expected = {
      "resolve",      "admit",      "moderate", "open_session",    "record_input", "retrieve",
      "build_prompt", "plan_route", "generate", "moderate_output", "account",      "persist"};
  EXPECT_EQ(names, expected);
}

TEST_F(PipelineTest, ACompleteReplyQueuesItsMemoryExtractionInTheSameTransaction) {
  compose(provider_settings(upstream_), memory::plan_follow_ups_stage({}), "persist");
  FakeReply reply;
  reply.body = FakeUpstream::openai_completion("Nice to meet you, Ana.");
  upstream_.enqueue(reply);
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "My name is Ana.");
  ASSERT_TRUE(run(turn).ok());
  ASSERT_EQ(ran_.back(), "persist");
  EXPECT_EQ(ran_[ran_.size() - 2], "plan_follow_ups");
  EXPECT_TRUE(turn.stored->follow_up_jobs.empty()) << "handed to persist";
  auto jobs = storage_->jobs().list(std::string("queued"), 10);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->at(0).kind, "memory.extract");
  EXPECT_EQ(jobs->at(0).unique_key, "memx:" + turn.stored->reply.id);
  const auto payload = nlohmann::json::parse(jobs->at(0).payload_json);
  EXPECT_EQ(payload["user_id"], "alice");
  EXPECT_EQ(payload["user_message_id"], turn.stored->started.user.id);
  EXPECT_EQ(payload.dump().find("Ana"), std::string::npos) << "the job carries ids, not words";
}

TEST_F(PipelineTest, AFailedReplyQueuesNoMemoryExtraction) {
  llm::ProviderSettings settings = provider_settings(upstream_);
  settings.headers.emplace_back("X-Corp-Token", "abc\r\nX-Injected: 1");  // refused: no transfer
  compose(std::move(settings), memory::plan_follow_ups_stage({}), "persist");
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "My name is Ana.");
  ASSERT_TRUE(run(turn).ok());
  ASSERT_TRUE(turn.generation_error.has_value());
  EXPECT_EQ(turn.stored->reply.status, "partial");
  auto jobs = storage_->jobs().list(std::nullopt, 10);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

TEST_F(PipelineTest, SmallTalkQueuesNoMemoryExtraction) {
  compose(provider_settings(upstream_), memory::plan_follow_ups_stage({}), "persist");
  FakeReply reply;
  reply.body = FakeUpstream::openai_completion("Hello!");
  upstream_.enqueue(reply);
  const store::Session session = new_session();
  chat::Turn turn = stored_turn(session, "Hello, how are you?");
  ASSERT_TRUE(run(turn).ok());
  EXPECT_EQ(turn.stored->reply.status, "complete");
  auto jobs = storage_->jobs().list(std::nullopt, 10);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

}  // namespace
