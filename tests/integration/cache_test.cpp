// The response caches through the real server, with the fake provider counting its calls: an
// identical deterministic request answered without a call, as JSON and replayed as a stream;
// Cache-Control: no-cache asking the provider again; hits shown in the headers, the JSON
// answer, usage (provider "cache", no cost) and metrics; a reworded question answered by the
// semantic cache; and, with Redis, one replica answering from what another cached.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "support/metrics_text.hpp"
#include "support/test_redis.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

std::string deterministic_request(const std::string& text, bool stream = false) {
  return json{{"model", "fake-model"},
              {"temperature", 0},
              {"stream", stream},
              {"messages", {{{"role", "user"}, {"content", text}}}}}
      .dump();
}

int completions_calls(const FakeProvider& fake) {
  int n = 0;
  for (const auto& r : fake.requests()) {
    if (r["path"].get<std::string>().find("/chat/completions") != std::string::npos) ++n;
  }
  return n;
}

std::string streamed_text(const std::string& body) {
  std::string text;
  for (const auto& [name, data] : sse_events(body)) {
    if (!data.is_object() || !data.contains("choices") || data["choices"].empty()) continue;
    const auto& delta = data["choices"][0]["delta"];
    if (delta.contains("content") && delta["content"].is_string()) text += delta["content"];
  }
  return text;
}

ServeOptions with_config(TempDir& dir, const FakeProvider& fake, const std::string& extra = "",
                         std::vector<std::string> args = {}) {
  const std::string file = dir.write_file("parley.yaml", fake.base_config() + extra);
  args.insert(args.begin(), {"--config", file});
  return {.args = std::move(args)};
}

TEST(ResponseCache, AnIdenticalRequestIsAnsweredWithoutAProviderCall) {
  FakeProvider fake;
  TempDir config("parley-cache");
  ParleyProcess p(with_config(config, fake));
  fake.enqueue({{"body", openai_completion_body("Refunds take 14 days.", 30, 6)}});
  auto first = http("POST", p.port(), "/v1/chat/completions", deterministic_request("Refunds?"));
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.header("X-Parley-Cache"), "miss");
  EXPECT_EQ(completions_calls(fake), 1);

  auto second = http("POST", p.port(), "/v1/chat/completions", deterministic_request("Refunds?"));
  ASSERT_EQ(second.status, 200) << second.describe();
  EXPECT_EQ(second.header("X-Parley-Cache"), "hit");
  EXPECT_EQ(second.header("X-Parley-Cache-Match"), "exact");
  EXPECT_EQ(second.json()["choices"][0]["message"]["content"], "Refunds take 14 days.");
  EXPECT_EQ(second.json()["usage"]["prompt_tokens"], 30);
  EXPECT_EQ(completions_calls(fake), 1);

  // Asked for as a stream: replayed as one, still without a call.
  auto streamed =
      http("POST", p.port(), "/v1/chat/completions", deterministic_request("Refunds?", true));
  ASSERT_EQ(streamed.status, 200) << streamed.describe();
  EXPECT_EQ(streamed.header("X-Parley-Cache"), "hit");
  EXPECT_EQ(streamed_text(streamed.body), "Refunds take 14 days.");
  EXPECT_NE(streamed.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(completions_calls(fake), 1);

  // no-cache: the provider is asked again, and its new answer is what is cached from now on.
  fake.enqueue({{"body", openai_completion_body("Refunds take 10 days now.", 30, 7)}});
  auto fresh = http("POST", p.port(), "/v1/chat/completions", deterministic_request("Refunds?"),
                    {{"Cache-Control", "no-cache"}});
  ASSERT_EQ(fresh.status, 200) << fresh.describe();
  EXPECT_EQ(fresh.header("X-Parley-Cache"), "bypass");
  EXPECT_EQ(completions_calls(fake), 2);
  auto after = http("POST", p.port(), "/v1/chat/completions", deterministic_request("Refunds?"));
  EXPECT_EQ(after.json()["choices"][0]["message"]["content"], "Refunds take 10 days now.");

  // A request that leaves the temperature to the model is not cached.
  const std::string varied =
      json{{"model", "fake-model"}, {"messages", {{{"role", "user"}, {"content", "Refunds?"}}}}}
          .dump();
  auto v = http("POST", p.port(), "/v1/chat/completions", varied);
  EXPECT_EQ(v.header("X-Parley-Cache"), "bypass");
  EXPECT_EQ(completions_calls(fake), 3);

  // Hits in usage (no cost) and in metrics.
  auto usage = http("GET", p.port(), "/api/v1/usage?group_by=provider").json();
  bool found = false;
  for (const auto& row : usage["data"]) {
    if (row["provider"] != "cache") continue;
    found = true;
    EXPECT_EQ(row["requests"], 3) << usage.dump();
    EXPECT_EQ(row["cost_usd"], 0.0) << usage.dump();
  }
  EXPECT_TRUE(found) << usage.dump();
  const std::string metrics = http("GET", p.port(), "/metrics").body;
  EXPECT_NE(metrics.find(R"(response_cache_requests_total{cache="exact",outcome="hit"} 3)"),
            std::string::npos)
      << metrics;
}

TEST(ResponseCache, SessionTurnsAndTheSemanticCacheAnswerRewordedQuestions) {
  FakeProvider fake;
  TempDir config("parley-cache-semantic");
  ParleyProcess p(with_config(config, fake,
                              "assistants:\n  support:\n    temperature: 0\n"
                              "cache:\n  semantic:\n    enabled: true\n"));
  fake.enqueue({{"body", openai_completion_body("Use the reset link.", 20, 4)}});
  auto first =
      http("POST", p.port(), "/api/v1/chat",
           json{{"message", "How do I reset my password?"}, {"assistant", "support"}}.dump());
  ASSERT_EQ(first.status, 201) << first.describe();
  EXPECT_EQ(first.json()["cache"]["status"], "miss") << first.body;
  // Another session, the question reworded: answered from the semantic cache, and stored in
  // that session like any reply.
  auto second =
      http("POST", p.port(), "/api/v1/chat",
           json{{"message", "how do i reset my password"}, {"assistant", "support"}}.dump());
  ASSERT_EQ(second.status, 201) << second.describe();
  const json answer = second.json();
  EXPECT_EQ(answer["cache"]["status"], "hit") << answer.dump();
  EXPECT_EQ(answer["cache"]["match"], "semantic");
  EXPECT_GE(answer["cache"]["similarity"].get<double>(), 0.95);
  EXPECT_EQ(answer["response"], "Use the reset link.");
  EXPECT_EQ(second.header("X-Parley-Cache"), "hit");
  EXPECT_EQ(completions_calls(fake), 1);
  const std::string session = answer["session_id"];
  auto history = http("GET", p.port(), "/api/v1/sessions/" + session + "/messages").json();
  ASSERT_EQ(history["data"].size(), 2U) << history.dump();
  EXPECT_EQ(history["data"][1]["content"], "Use the reset link.");
  // Asked for as a stream: replayed as one, the header saying so, the turn stored.
  auto streamed = http(
      "POST", p.port(), "/api/v1/chat",
      json{{"message", "How do I reset my password?"}, {"assistant", "support"}, {"stream", true}}
          .dump());
  ASSERT_EQ(streamed.status, 200) << streamed.describe();
  EXPECT_EQ(streamed.header("X-Parley-Cache"), "hit");
  std::string replayed;
  json completed;
  std::vector<std::string> names;
  for (const auto& [name, data] : sse_events(streamed.body)) {
    names.push_back(name);
    if (name == "delta") replayed += data.value("content", "");
    if (name == "turn.completed") completed = data;
  }
  ASSERT_FALSE(names.empty()) << streamed.body;
  EXPECT_EQ(names.front(), "turn.started") << streamed.body;
  EXPECT_EQ(replayed, "Use the reset link.");
  EXPECT_EQ(completed["cache"]["status"], "hit") << streamed.body;
  EXPECT_EQ(completed["reply"]["content"], "Use the reset link.");
  EXPECT_EQ(completions_calls(fake), 1);
  // A different question goes to the model.
  auto other = http("POST", p.port(), "/api/v1/chat",
                    json{{"message", "Where is my parcel?"}, {"assistant", "support"}}.dump());
  EXPECT_EQ(other.json()["cache"]["status"], "miss");
  EXPECT_EQ(completions_calls(fake), 2);
}

TEST(ResponseCache, WithRedisOneReplicaAnswersFromWhatAnotherCached) {
  FakeProvider fake;
  const std::string redis = parley::testing::redis_server_url();
  const std::string prefix = parley::testing::unique_redis_prefix();
  TempDir config_a("parley-cache-a");
  TempDir config_b("parley-cache-b");
  const std::vector<std::string> shared{"--set", "redis.url=" + redis, "--set",
                                        "redis.key_prefix=" + prefix};
  ParleyProcess a(with_config(config_a, fake, "", shared));
  ParleyProcess b(with_config(config_b, fake, "", shared));
  fake.enqueue({{"body", openai_completion_body("Shared answer.", 10, 2)}});
  auto first = http("POST", a.port(), "/v1/chat/completions", deterministic_request("Shared?"));
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.header("X-Parley-Cache"), "miss");
  // The write to Redis is sent after the answer: wait until the entry is there, then ask the
  // other replica once (a miss there would call the provider, which has nothing queued).
  bool stored = false;
  for (int i = 0; i < 500 && !stored; ++i) {
    stored = !parley::testing::redis_keys(redis, prefix + "cache:*").empty();
    if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(stored) << "replica a never wrote its answer to Redis";
  const auto second =
      http("POST", b.port(), "/v1/chat/completions", deterministic_request("Shared?"));
  EXPECT_EQ(second.header("X-Parley-Cache"), "hit") << second.describe();
  EXPECT_EQ(second.json()["choices"][0]["message"]["content"], "Shared answer.");
}

}  // namespace
}  // namespace parley_it
