// Embedders of knowledge bases: the embedding cache (least recently used out first, nothing
// older than its TTL returned, one embedder's vectors never served for another's), the remote
// embedder against the fake provider over real HTTP (texts sent in batches, vectors normalised
// and in input order, cached texts not asked for again, upstream errors passed on), and the
// registry that maps a base's recorded name to its embedder.
#include <gtest/gtest.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <cmath>

#include <boost/asio/io_context.hpp>

#include "http/client.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/embed/embedding_cache.hpp"
#include "knowledge/embed/remote_embedder.hpp"
#include "llm/gateway.hpp"
#include "llm/openai/openai_provider.hpp"
#include "run_on.hpp"
#include "support/fake_upstream.hpp"
#include "support/manual_clock.hpp"

namespace parley::knowledge {
namespace {

using namespace std::chrono_literals;
using parley::testing::FakeReply;
using parley::testing::FakeUpstream;
using parley::testing::run_on;

TEST(EmbeddingCache, KeepsTheMostRecentlyUsedWithinItsLifetime) {
  ManualClock clock;
  EmbeddingCache cache(2, 1h, clock);
  cache.put("m", "a", {1, 0});
  cache.put("m", "b", {0, 1});
  ASSERT_TRUE(cache.get("m", "a").has_value());  // "a" is now the most recent
  cache.put("m", "c", {1, 1});                   // so "b" goes
  EXPECT_FALSE(cache.get("m", "b").has_value());
  EXPECT_EQ(cache.get("m", "a").value(), (std::vector<float>{1, 0}));
  EXPECT_EQ(cache.get("m", "c").value(), (std::vector<float>{1, 1}));
  EXPECT_EQ(cache.size(), 2U);
  // Another embedder's vector for the same text is another entry.
  EXPECT_FALSE(cache.get("other", "a").has_value());
  EXPECT_EQ(cache.hits(), 3);
  EXPECT_EQ(cache.misses(), 2);
  clock.advance(1h + 1ms);
  EXPECT_FALSE(cache.get("m", "a").has_value());
  EXPECT_EQ(cache.size(), 1U);  // the stale entry went when it was found stale
}

TEST(EmbeddingCache, SizeZeroKeepsNothing) {
  EmbeddingCache cache(0, 1h);
  cache.put("m", "a", {1});
  EXPECT_FALSE(cache.get("m", "a").has_value());
  EXPECT_EQ(cache.size(), 0U);
}

class RemoteEmbedderTest : public ::testing::Test {
 protected:
  RemoteEmbedderTest() : client_(context_) {
    llm::ProviderSettings p;
    p.name = "up";
    p.type = "openai";
    p.base_url = upstream_.base_url() + "/v1";
    p.api_key = "sk-test";
    p.models = {"embed-fake"};
    p.default_model = "embed-fake";
    std::vector<std::unique_ptr<llm::Provider>> providers;
    providers.push_back(llm::make_openai_provider(p, client_));
    llm::GatewayOptions options;
    options.backoff_base = 1ms;
    options.backoff_max = 2ms;
    options.max_retries = 0;
    gateway_ = std::make_unique<llm::Gateway>(
        std::move(providers), std::map<std::string, llm::Route>{}, "up/embed-fake", options);
  }

  RemoteEmbedder make(EmbeddingCache* cache, int batch = 2) {
    auto route = gateway_->resolve("up/embed-fake");
    EXPECT_TRUE(route.ok());
    return RemoteEmbedder(*gateway_, std::move(route).value(), "up/embed-fake", batch, cache);
  }

  Result<Vectors> embed(Embedder& embedder, std::vector<std::string> texts) {
    return run_on(context_, embedder.embed(std::move(texts)));
  }

  static FakeReply reply(std::string body, int status = 200) {
    FakeReply r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

  // An OpenAI embeddings answer whose i-th vector is (i + 1) * (3, 4), unnormalised.
  static std::string scaled_answer(size_t n) {
    nlohmann::json data = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i) {
      const double s = static_cast<double>(i + 1);
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", {3 * s, 4 * s}}});
    }
    return nlohmann::json{{"object", "list"},
                          {"data", data},
                          {"model", "embed-fake"},
                          {"usage", {{"prompt_tokens", 5}, {"total_tokens", 5}}}}
        .dump();
  }

  FakeUpstream upstream_;
  boost::asio::io_context context_;
  http::HttpClient client_;
  std::unique_ptr<llm::Gateway> gateway_;
};

TEST_F(RemoteEmbedderTest, SendsBatchesNormalisesAndCaches) {
  EmbeddingCache cache(100, 1h);
  auto embedder = make(&cache, 2);
  EXPECT_EQ(embedder.dimension(), 0);  // not known before the first answer
  for (int i = 0; i < 3; ++i) upstream_.enqueue(reply(scaled_answer(i < 2 ? 2 : 1)));
  auto vectors = embed(embedder, {"one", "two", "three", "four", "five"});
  ASSERT_TRUE(vectors.ok()) << vectors.error().message;
  EXPECT_EQ(upstream_.calls(), 3);  // 2 + 2 + 1
  const auto sent = upstream_.requests();
  ASSERT_EQ(sent.size(), 3U);
  EXPECT_EQ(sent[0].json["input"], (nlohmann::json{"one", "two"}));
  EXPECT_EQ(sent[2].json["input"], (nlohmann::json{"five"}));
  EXPECT_EQ(sent[0].json["model"], "embed-fake");
  ASSERT_EQ(vectors->size(), 5U);
  EXPECT_EQ(vectors->dimension, 2);
  EXPECT_EQ(embedder.dimension(), 2);
  EXPECT_EQ(vectors->input_tokens, 15);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(vectors->row(i)[0], 0.6, 1e-6);  // (3, 4) / 5 whatever the scale
    EXPECT_NEAR(vectors->row(i)[1], 0.8, 1e-6);
  }

  // Known texts cost nothing; only the new one is asked for, and order is kept.
  upstream_.enqueue(reply(scaled_answer(1)));
  auto again = embed(embedder, {"two", "six", "one"});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(upstream_.calls(), 4);
  EXPECT_EQ(upstream_.requests().back().json["input"], (nlohmann::json{"six"}));
  EXPECT_EQ(again->size(), 3U);
  EXPECT_EQ(again->input_tokens, 5);
  EXPECT_EQ(cache.size(), 6U);
}

TEST_F(RemoteEmbedderTest, PassesUpstreamErrorsOnAndRefusesMismatchedAnswers) {
  auto embedder = make(nullptr, 8);
  upstream_.enqueue(
      reply(R"({"error":{"message":"input too long","type":"invalid_request"}})", 400));
  auto failed = embed(embedder, {"x"});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("input too long"), std::string::npos)
      << failed.error().message;
  // Two vectors for three texts.
  upstream_.enqueue(reply(scaled_answer(2)));
  auto short_answer = embed(embedder, {"a", "b", "c"});
  ASSERT_FALSE(short_answer.ok());
  EXPECT_EQ(short_answer.error().code, ErrorCode::kBadGateway);
  // Nothing to embed: no call.
  const int before = upstream_.calls();
  auto none = embed(embedder, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->size(), 0U);
  EXPECT_EQ(upstream_.calls(), before);
}

TEST_F(RemoteEmbedderTest, TheRegistryNamesBuiltinAndGatewayEmbeddersAndRefusesOthers) {
  KnowledgeSettings settings;
  settings.embedding_dimension = 64;
  Embedders embedders(settings, gateway_.get(), nullptr);
  EXPECT_EQ(embedders.default_name(), kBuiltinEmbedder);
  EXPECT_EQ(embedders.default_dimension(), 64);
  EXPECT_EQ(embedders.canonical("builtin").value(), kBuiltinEmbedder);
  EXPECT_EQ(embedders.canonical("up/embed-fake").value(), "up/embed-fake");
  EXPECT_EQ(embedders.dimension_for("up/embed-fake"), 0);
  auto unknown = embedders.canonical("nobody/nothing");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().reason, "unknown_embedder");
  EXPECT_EQ(unknown.error().param, "embedder");
  // A base keeps the built-in embedder's dimension it was made with.
  auto builtin = embedders.get(kBuiltinEmbedder, 128);
  ASSERT_TRUE(builtin.ok());
  EXPECT_EQ((*builtin)->dimension(), 128);
  auto blocking = embedders.embed_blocking(kBuiltinEmbedder, 0, {"hello"});
  ASSERT_TRUE(blocking.ok());
  EXPECT_EQ(blocking->dimension, 64);
  // A name no longer configured leaves the base's vectors unusable, not the process down.
  auto gone = embedders.get("removed/model", 0);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kUnavailable);
  // A remote embedder needs an event loop to be called from a worker thread.
  auto no_loop = embedders.embed_blocking("up/embed-fake", 0, {"x"});
  ASSERT_FALSE(no_loop.ok());
  EXPECT_EQ(no_loop.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace parley::knowledge
