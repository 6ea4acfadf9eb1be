// The response caches' stages on their own, over the in-memory store: what makes two
// requests the same (tenant, model, messages, parameters; not who asked or how it is
// delivered), which requests and answers are cached at all, Cache-Control, a hit replayed
// as a stream, the cost a hit saves, and the semantic cache matching a reworded question
// only under the same system prompt.
#include <gtest/gtest.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <boost/asio/io_context.hpp>

#include "cache/response_cache.hpp"
#include "knowledge/embed/embedders.hpp"
#include "llm/builtin/builtin_provider.hpp"
#include "run_on.hpp"
#include "support/manual_clock.hpp"

namespace parley::cache {
namespace {

using namespace std::chrono_literals;

class ResponseCacheTest : public ::testing::Test {
 protected:
  void make(CacheSettings settings) {
    store_ = make_local_store(100, 100, clock_);
    embedders_ = std::make_unique<knowledge::Embedders>(knowledge::KnowledgeSettings{}, nullptr,
                                                        nullptr, clock_);
    stages_ = make_cache_stages({settings, *store_, embedders_.get(),
                                 std::string(knowledge::kBuiltinEmbedder), clock_, nullptr,
                                 [](const std::string&, int64_t in, int64_t out) {
                                   return static_cast<double>(in + out) / 1000.0;
                                 }});
  }

  static chat::Turn turn(const std::string& question, const std::string& system = "Be brief.",
                         std::optional<double> temperature = 0.0) {
    chat::Turn t;
    t.actor.tenant_id = "t1";
    t.route.name = "gpt-test";
    t.prompt.messages = {{"system", system, nullptr, {}, {}, {}},
                         {"user", question, nullptr, {}, {}, {}}};
    t.prompt.temperature = temperature;
    return t;
  }

  Result<chat::Flow> lookup(chat::Turn& t) {
    return testing::run_on(context_, stages_.lookup->run(t));
  }
  // Answers the turn as a provider would, then lets the store stage keep it.
  void answer_and_store(chat::Turn& t, const std::string& content,
                        const std::string& finish = "stop") {
    t.generation.provider = "up";
    t.generation.model = "gpt-test-2026";
    t.generation.completion.content = content;
    t.generation.completion.finish_reason = finish;
    t.generation.completion.usage = {100, 20, true};
    ASSERT_TRUE(testing::run_on(context_, stages_.store->run(t)).ok());
  }
  // A fresh turn for `question`, looked up: whether it was a hit, and the turn.
  chat::Turn ask(chat::Turn t) {
    auto flow = lookup(t);
    EXPECT_TRUE(flow.ok());
    return t;
  }

  ManualClock clock_;
  boost::asio::io_context context_;
  std::unique_ptr<CacheStore> store_;
  std::unique_ptr<knowledge::Embedders> embedders_;
  CacheStages stages_;
};

TEST_F(ResponseCacheTest, AnIdenticalDeterministicRequestIsAnsweredFromTheCache) {
  make({});
  auto first = turn("What is the refund window?");
  ASSERT_EQ(lookup(first).value(), chat::Flow::kContinue);
  EXPECT_EQ(first.cache.status, "miss");
  answer_and_store(first, "Thirty days.");

  auto again = turn("What is the refund window?");
  again.prompt.user = "someone else";  // who asks does not change the answer
  again.prompt.extra["stream_options"] = {{"include_usage", true}};
  ASSERT_EQ(lookup(again).value(), chat::Flow::kAnswered);
  EXPECT_EQ(again.cache.status, "hit");
  EXPECT_EQ(again.cache.match, "exact");
  EXPECT_EQ(again.generation.completion.content, "Thirty days.");
  EXPECT_EQ(again.generation.model, "gpt-test-2026");
  EXPECT_EQ(again.generation.completion.usage.input_tokens, 100);
  EXPECT_DOUBLE_EQ(again.cache.saved_usd, 0.12);  // (100 + 20) / 1000 by the price given
  EXPECT_EQ(cache_json(again)["match"], "exact");
  http::HeaderList headers;
  add_response_headers(again, headers);
  EXPECT_EQ(headers,
            (http::HeaderList{{"X-Parley-Cache", "hit"}, {"X-Parley-Cache-Match", "exact"}}));

  // What changes the answer changes the key.
  auto other_tenant = turn("What is the refund window?");
  other_tenant.actor.tenant_id = "t2";
  EXPECT_EQ(ask(std::move(other_tenant)).cache.status, "miss");
  auto other_model = turn("What is the refund window?");
  other_model.route.name = "gpt-other";
  EXPECT_EQ(ask(std::move(other_model)).cache.status, "miss");
  // The same route name served by another provider or model (the configuration changed).
  auto provider = llm::make_builtin_provider("builtin");
  auto retargeted = turn("What is the refund window?");
  retargeted.route.targets.push_back({provider.get(), "other-model"});
  EXPECT_EQ(ask(std::move(retargeted)).cache.status, "miss");
  auto seeded = turn("What is the refund window?");
  seeded.prompt.extra["seed"] = 7;
  EXPECT_EQ(ask(std::move(seeded)).cache.status, "miss");
  auto capped = turn("What is the refund window?");
  capped.prompt.max_tokens = 5;
  EXPECT_EQ(ask(std::move(capped)).cache.status, "miss");

  clock_.advance(1h + 1s);  // cache.exact.ttl
  EXPECT_EQ(ask(turn("What is the refund window?")).cache.status, "miss");
}

TEST_F(ResponseCacheTest, AHitIsReplayedAsAStreamInPieces) {
  make({});
  const std::string long_answer =
      "Refunds are paid to the original card within five business days of the return being "
      "received — café orders included.";
  auto first = turn("How are refunds paid?");
  ASSERT_TRUE(lookup(first).ok());
  answer_and_store(first, long_answer);
  auto streamed = turn("How are refunds paid?");
  streamed.stream = true;
  std::vector<std::string> pieces;
  const llm::DeltaSink sink = [&](const llm::Delta& d) -> Task<bool> {
    pieces.push_back(d.content);
    co_return true;
  };
  streamed.sink = &sink;
  ASSERT_EQ(lookup(streamed).value(), chat::Flow::kAnswered);
  ASSERT_GT(pieces.size(), 1U);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, long_answer);
  EXPECT_EQ(streamed.generation.completion.deltas, static_cast<int>(pieces.size()));
}

TEST_F(ResponseCacheTest, OnlyCompleteAnswersToDeterministicRequestsAreKept) {
  make({});
  // No temperature: the model's default, which varies. Neither looked up nor kept.
  auto varied = turn("Tell me a joke", "Be brief.", std::nullopt);
  ASSERT_EQ(lookup(varied).value(), chat::Flow::kContinue);
  EXPECT_EQ(varied.cache.status, "bypass");
  answer_and_store(varied, "A joke.");
  EXPECT_EQ(ask(turn("Tell me a joke", "Be brief.", std::nullopt)).cache.status, "bypass");
  EXPECT_EQ(ask(turn("Tell me a joke")).cache.status, "miss");

  auto cut = turn("Cut short");
  ASSERT_TRUE(lookup(cut).ok());
  answer_and_store(cut, "Half an ans", "length");
  EXPECT_EQ(ask(turn("Cut short")).cache.status, "miss");

  auto tools = turn("Call a tool");
  ASSERT_TRUE(lookup(tools).ok());
  tools.generation.completion.tool_calls.push_back({"call_1", "lookup", "{}"});
  answer_and_store(tools, "Calling.");
  EXPECT_EQ(ask(turn("Call a tool")).cache.status, "miss");

  auto failed = turn("Fails");
  ASSERT_TRUE(lookup(failed).ok());
  failed.generation_error = Error::bad_gateway("upstream down");
  answer_and_store(failed, "partial");
  EXPECT_EQ(ask(turn("Fails")).cache.status, "miss");

  // Caching everything when asked to.
  CacheSettings all;
  all.exact.only_deterministic = false;
  make(all);
  auto any = turn("Tell me a joke", "Be brief.", std::nullopt);
  ASSERT_TRUE(lookup(any).ok());
  answer_and_store(any, "A joke.");
  EXPECT_EQ(ask(turn("Tell me a joke", "Be brief.", std::nullopt)).cache.status, "hit");
}

TEST_F(ResponseCacheTest, CacheControlSkipsTheLookupOrTheStore) {
  make({});
  auto no_store = turn("Private question");
  apply_request_directives("no-store", no_store);
  ASSERT_TRUE(lookup(no_store).ok());
  answer_and_store(no_store, "Private answer.");
  EXPECT_EQ(ask(turn("Private question")).cache.status, "miss");

  auto cached = turn("Public question");
  ASSERT_TRUE(lookup(cached).ok());
  answer_and_store(cached, "Old answer.");
  auto fresh = turn("Public question");
  apply_request_directives("No-Cache, max-age=0", fresh);
  EXPECT_TRUE(fresh.cache.no_cache);
  EXPECT_FALSE(fresh.cache.no_store);
  ASSERT_EQ(lookup(fresh).value(), chat::Flow::kContinue);
  EXPECT_EQ(fresh.cache.status, "bypass");
  answer_and_store(fresh, "New answer.");  // a fresh answer replaces the old one
  auto later = ask(turn("Public question"));
  EXPECT_EQ(later.generation.completion.content, "New answer.");
}

TEST_F(ResponseCacheTest, TheSemanticCacheMatchesARewordedQuestionUnderTheSamePrompt) {
  CacheSettings settings;
  settings.exact.enabled = false;
  settings.semantic.enabled = true;
  make(settings);
  auto first = turn("How do I reset my password?");
  ASSERT_TRUE(lookup(first).ok());
  EXPECT_EQ(first.cache.status, "miss");
  answer_and_store(first, "Use the reset link on the sign-in page.");

  auto reworded = turn("how do i reset my password");
  ASSERT_EQ(lookup(reworded).value(), chat::Flow::kAnswered);
  EXPECT_EQ(reworded.cache.match, "semantic");
  EXPECT_GE(reworded.cache.similarity, 0.95);
  EXPECT_EQ(reworded.generation.completion.content, "Use the reset link on the sign-in page.");

  EXPECT_EQ(ask(turn("How do I change my email address?")).cache.status, "miss");
  EXPECT_EQ(ask(turn("how do i reset my password", "Answer in French.")).cache.status, "miss");
  // Earlier conversation is part of the partition: the same question after other turns
  // may mean something else.
  auto later = turn("how do i reset my password");
  later.prompt.messages.insert(later.prompt.messages.begin() + 1,
                               {{"user", "I use the mobile app", nullptr, {}, {}, {}},
                                {"assistant", "Noted.", nullptr, {}, {}, {}}});
  EXPECT_EQ(ask(std::move(later)).cache.status, "miss");
}

}  // namespace
}  // namespace parley::cache
