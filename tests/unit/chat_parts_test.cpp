// The small decision-makers of a chat turn, each on its own: the complexity score and target
// order of cost-aware routes, context-window fitting, the model table's prices, and the
// accountant's merging of proxied usage into batched rows (against a real SQLite file).
#include <gtest/gtest.h>

#include <filesystem>

#include "chat/context_window.hpp"
#include "llm/accounting.hpp"
#include "llm/cost_routing.hpp"
#include "llm/pricing.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace {

using parley::llm::ChatRequest;
using parley::llm::Message;

Message msg(std::string role, std::string content) {
  Message m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

TEST(ComplexityScore, GrowsWithLengthCodeReasoningAndTools) {
  ChatRequest simple;
  simple.messages = {msg("user", "Hi!")};
  const double base = parley::llm::complexity_score(simple);
  EXPECT_LT(base, 0.05);

  ChatRequest reasoning = simple;
  reasoning.messages.back().content = "Explain why the sky is blue, step by step.";
  EXPECT_NEAR(parley::llm::complexity_score(reasoning) - base, 0.20, 0.02);

  ChatRequest code = simple;
  code.messages.back().content = "Fix this:\n```\nint main() { return 0; }\n```";
  EXPECT_GE(parley::llm::complexity_score(code), 0.15);

  ChatRequest tools = simple;
  tools.tools = nlohmann::json::array({{{"type", "function"}}});
  EXPECT_NEAR(parley::llm::complexity_score(tools) - base, 0.10, 1e-9);

  ChatRequest everything;
  everything.messages.assign(30, msg("assistant", "earlier"));
  everything.messages.push_back(msg("user", std::string(8000, 'x') + " explain ```code```"));
  everything.tools = tools.tools;
  EXPECT_DOUBLE_EQ(parley::llm::complexity_score(everything), 1.0);
}

TEST(CostRoute, OrdersTargetsByComplexityAndBudget) {
  parley::llm::Route route;
  route.strategy = "cost";
  route.complexity_threshold = 0.5;
  route.targets = {{nullptr, "cheap"}, {nullptr, "middle"}, {nullptr, "strong"}};
  auto names = [](const parley::llm::Route& r) {
    std::vector<std::string> out;
    for (const auto& t : r.targets) out.push_back(t.model);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names(parley::llm::plan_cost_route(route, 0.2, std::nullopt)),
            (V{"cheap", "middle", "strong"}));
  EXPECT_EQ(names(parley::llm::plan_cost_route(route, 0.5, std::nullopt)),
            (V{"strong", "middle", "cheap"}));
  EXPECT_EQ(names(parley::llm::plan_cost_route(route, 0.9, 5.0)), (V{"strong", "middle", "cheap"}));
  // Less than a cent left today: the cheapest only, however hard the question.
  EXPECT_EQ(names(parley::llm::plan_cost_route(route, 0.9, 0.004)), (V{"cheap"}));
  EXPECT_EQ(names(parley::llm::plan_cost_route(route, 0.9, -1.0)), (V{"cheap"}));
}

TEST(ContextWindow, KeepsSystemAndNewestAndDropsOldestFirst) {
  parley::chat::FitInput in;
  in.system = msg("system", "Be brief.");
  for (int i = 0; i < 10; ++i) {
    in.history.push_back(
        msg(i % 2 ? "assistant" : "user", std::string(400, 'a' + i)));  // ~100 tokens
  }
  in.newest = msg("user", "Latest question");
  in.context_window = 600;
  in.reply_reserve = 100;
  auto fit = parley::chat::fit_context(in);
  ASSERT_GE(fit.messages.size(), 2u);
  EXPECT_EQ(fit.messages.front().content, "Be brief.");
  EXPECT_EQ(fit.messages.back().content, "Latest question");
  EXPECT_LE(fit.estimated_tokens, 500);
  EXPECT_GT(fit.dropped, 0);
  // What is kept is the newest history, in order.
  EXPECT_EQ(fit.messages[fit.messages.size() - 2].content, in.history.back().content);
  EXPECT_EQ(fit.dropped + fit.messages.size() - 2, in.history.size());

  // A generous window keeps everything.
  in.context_window = 100'000;
  fit = parley::chat::fit_context(in);
  EXPECT_EQ(fit.dropped, 0);
  EXPECT_EQ(fit.messages.size(), in.history.size() + 2);

  // Exact counts the provider reported replace the estimate.
  in.context_window = 600;
  in.known_tokens.assign(in.history.size(), 1);
  fit = parley::chat::fit_context(in);
  EXPECT_EQ(fit.dropped, 0) << "ten messages of 1 token (+4 framing) fit in 500";
}

TEST(ContextWindow, NeverStartsWithAToolResultWhoseCallWasDropped) {
  parley::chat::FitInput in;
  in.history = {msg("user", std::string(2000, 'q')), msg("assistant", ""), msg("tool", "42"),
                msg("assistant", "It is 42.")};
  in.history[1].tool_calls = {{"call_1", "lookup", "{}"}};
  in.newest = msg("user", "Thanks");
  in.context_window = 120;
  in.reply_reserve = 20;
  auto fit = parley::chat::fit_context(in);
  ASSERT_FALSE(fit.messages.empty());
  EXPECT_NE(fit.messages.front().role, "tool");
}

TEST(ModelTable, PricesKnownModelsByExactOrPrefixNameAndOverrides) {
  parley::llm::ModelTable table(
      {{"gpt-4o-mini", 1.0, std::nullopt, std::nullopt}, {"house-model", 0.5, 1.5, 4096}});
  EXPECT_DOUBLE_EQ(table.cost("gpt-4o", 1'000'000, 1'000'000), 2.50 + 10.00);
  // A dated snapshot prices as its family; the override changes only what it names.
  EXPECT_DOUBLE_EQ(table.cost("gpt-4o-mini-2024-07-18", 1'000'000, 0), 1.0);
  EXPECT_DOUBLE_EQ(table.cost("gpt-4o-mini", 0, 1'000'000), 0.60);
  EXPECT_DOUBLE_EQ(table.cost("openai/gpt-4o", 2'000'000, 0), 5.0);
  EXPECT_EQ(table.find("house-model").context_window, 4096);
  EXPECT_FALSE(table.find("mystery-model").known);
  EXPECT_DOUBLE_EQ(table.cost("mystery-model", 1'000'000, 1'000'000), 0.0);
}

class AccountantTest : public ::testing::Test {
 protected:
  AccountantTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("parley-accountant-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    parley::store::sqlite::Options options;
    options.path = (dir_ / "parley.db").string();
    auto opened = parley::store::sqlite::open(options);
    EXPECT_TRUE(opened.ok());
    storage_ = std::move(*opened);
  }
  ~AccountantTest() override {
    storage_->close();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<parley::store::Storage> storage_;
};

parley::store::UsageRecord api_call(std::string user, int64_t at_ms, int64_t in, int64_t out) {
  parley::store::UsageRecord r;
  r.at_ms = at_ms;
  r.user_id = std::move(user);
  r.source = "api";
  r.provider = "openai";
  r.model = "gpt-4o-mini";
  r.input_tokens = in;
  r.output_tokens = out;
  r.cost_usd = 0.001;
  r.status = "ok";
  r.request_id = "req";
  return r;
}

TEST_F(AccountantTest, MergesCallsPerUserModelAndMinuteIntoFewRows) {
  parley::llm::ModelTable table;
  parley::llm::Accountant accountant(table, nullptr, storage_.get(), std::chrono::hours(1));
  const int64_t minute = int64_t{1'800'000'000'000} / 60'000 * 60'000;
  for (int i = 0; i < 100; ++i) accountant.enqueue(api_call("alice", minute + i, 10, 5));
  accountant.enqueue(api_call("bob", minute, 1, 1));
  accountant.enqueue(api_call("alice", minute + 60'000, 7, 3));  // the next minute
  EXPECT_EQ(accountant.queued(), 3);
  accountant.flush();
  EXPECT_EQ(accountant.queued(), 0);

  parley::store::UsageQuery q;
  q.group_by = {"user"};
  auto rows = storage_->usage().aggregate(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  const auto& alice = (*rows)[0].keys[0].second == "alice" ? (*rows)[0] : (*rows)[1];
  EXPECT_EQ(alice.requests, 101);
  EXPECT_EQ(alice.input_tokens, 100 * 10 + 7);
  EXPECT_EQ(alice.output_tokens, 100 * 5 + 3);
  EXPECT_NEAR(alice.cost_usd, 0.101, 1e-9);
  auto spent = storage_->usage().spent("default", "alice", minute);
  ASSERT_TRUE(spent.ok());
  EXPECT_NEAR(*spent, 0.101, 1e-9);
}

TEST_F(AccountantTest, StopWritesWhatIsStillQueued) {
  parley::llm::ModelTable table;
  {
    parley::llm::Accountant accountant(table, nullptr, storage_.get(), std::chrono::hours(1));
    accountant.enqueue(api_call("carol", 1'800'000'000'000, 3, 4));
  }  // destroyed: stop() flushes
  parley::store::UsageQuery q;
  auto rows = storage_->usage().aggregate(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].requests, 1);
  EXPECT_EQ((*rows)[0].output_tokens, 4);
}

}  // namespace
