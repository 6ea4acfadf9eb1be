// Anthropic's Messages API as a way in (POST /v1/messages), against the real binary and the
// fake provider: authentication by x-api-key as the Anthropic SDK sends it, every error in
// Anthropic's envelope with its status (the access guard's refusals too: 401, 429 with
// retry-after; 529 when the upstreams are overloaded), fields Parley cannot honour refused by
// name, the stream's events in order, and the same request accounting as every other way in.
// (tests/e2e/anthropic_sdk.test.mjs drives it with the official SDK.)
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

const std::string kAdminKey = "itest-anthropic-admin-key-3c9d1e7a5b20f468";

struct Stack {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  std::unique_ptr<ParleyProcess> parley;
  explicit Stack(const std::string& extra = "") {
    auto file = config_dir.write_file("parley.yaml",
                                      fake.base_config() + fake.anthropic_provider() + extra);
    ServeOptions opts;
    opts.args = {"--config", file};
    opts.env = {{"PARLEY_ADMIN_KEY", kAdminKey}};
    parley = std::make_unique<ParleyProcess>(opts);
  }
  int port() const { return parley->port(); }
};

HeaderList anthropic_headers(const std::string& key) {
  return {{"x-api-key", key}, {"anthropic-version", "2023-06-01"}};
}

// Anthropic's envelope: {"type":"error","error":{"type","message"}}, nothing else.
::testing::AssertionResult is_anthropic_error(const Response& r, long status,
                                              const std::string& type) {
  if (r.status != status) {
    return ::testing::AssertionFailure() << "status " << r.status << ": " << r.body;
  }
  const json body = r.json_or_discarded();
  if (!body.is_object() || body.value("type", "") != "error" || !body.contains("error") ||
      body["error"].value("type", "") != type || body["error"].value("message", "").empty() ||
      body.size() != 2 || body["error"].size() != 2) {
    return ::testing::AssertionFailure() << "not Anthropic's " << type << " envelope: " << r.body;
  }
  return ::testing::AssertionSuccess();
}

std::string hello(const std::string& model = "fake-model") {
  return json{
      {"model", model}, {"max_tokens", 32}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}}
      .dump();
}

TEST(AnthropicApi, AnXApiKeyIsAcceptedAndEveryErrorIsInAnthropicsEnvelope) {
  Stack s;
  auto ok = http("POST", s.port(), "/v1/messages", hello(), anthropic_headers(kAdminKey));
  ASSERT_EQ(ok.status, 200) << ok.describe();
  EXPECT_EQ(ok.json()["type"], "message");
  EXPECT_EQ(ok.json()["content"][0]["text"], "Hello from the fake upstream.");

  // The access guard's refusal, written as Anthropic writes it.
  EXPECT_TRUE(is_anthropic_error(
      http("POST", s.port(), "/v1/messages", hello(), anthropic_headers("sk-wrong")), 401,
      "authentication_error"));
  EXPECT_TRUE(is_anthropic_error(http("POST", s.port(), "/v1/messages", hello()), 401,
                                 "authentication_error"));
  EXPECT_TRUE(is_anthropic_error(
      http("POST", s.port(), "/v1/messages", "{not json", anthropic_headers(kAdminKey)), 400,
      "invalid_request_error"));
  // Fields Parley cannot honour are refused by name, never ignored.
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"container", "c"},
                                                 {"thinking", {{"type", "enabled"}}},
                                                 {"mcp_servers", json::array()}}) {
    json body = json::parse(hello());
    body[field] = value;
    auto refused =
        http("POST", s.port(), "/v1/messages", body.dump(), anthropic_headers(kAdminKey));
    EXPECT_TRUE(is_anthropic_error(refused, 400, "invalid_request_error")) << field;
    EXPECT_NE(refused.body.find(field), std::string::npos) << refused.body;
  }
  json server_tool = json::parse(hello());
  server_tool["tools"] = {{{"type", "web_search_20250305"}, {"name", "web_search"}}};
  auto refused =
      http("POST", s.port(), "/v1/messages", server_tool.dump(), anthropic_headers(kAdminKey));
  EXPECT_TRUE(is_anthropic_error(refused, 400, "invalid_request_error"));
  EXPECT_NE(refused.body.find("web_search_20250305"), std::string::npos) << refused.body;
  json no_max = json::parse(hello());
  no_max.erase("max_tokens");
  EXPECT_TRUE(is_anthropic_error(
      http("POST", s.port(), "/v1/messages", no_max.dump(), anthropic_headers(kAdminKey)), 400,
      "invalid_request_error"));

  // Every upstream overloaded: 529, which the Anthropic SDKs retry.
  for (int i = 0; i < 3; ++i) {
    s.fake.enqueue({{"status", 529},
                    {"body",
                     {{"type", "error"},
                      {"error", {{"type", "overloaded_error"}, {"message", "Overloaded"}}}}}});
  }
  EXPECT_TRUE(is_anthropic_error(http("POST", s.port(), "/v1/messages",
                                      hello("fakeant/claude-fake"), anthropic_headers(kAdminKey)),
                                 529, "overloaded_error"));
}

TEST(AnthropicApi, AUsersRequestLimitIsA429WithRetryAfter) {
  Stack s("limits:\n  user:\n    requests_per_minute: 1\n");
  auto created = http("POST", s.port(), "/api/v1/admin/keys",
                      R"({"scope":"user","user_id":"ann","name":"ann"})",
                      {{"Authorization", "Bearer " + kAdminKey}});
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string key = created.json()["key"];
  // The client's own id in metadata.user_id (as Claude Code sends) does not refuse a user's
  // key: the key acts for its user.
  json with_metadata = json::parse(hello());
  with_metadata["metadata"] = {{"user_id", "user_4f1c_account__session_9a"}};
  auto own = http("POST", s.port(), "/v1/messages", with_metadata.dump(), anthropic_headers(key));
  ASSERT_EQ(own.status, 200) << own.describe();
  EXPECT_EQ(s.fake.requests().back()["body"]["user"], "ann");
  auto limited = http("POST", s.port(), "/v1/messages", hello(), anthropic_headers(key));
  EXPECT_TRUE(is_anthropic_error(limited, 429, "rate_limit_error"));
  EXPECT_TRUE(limited.header("retry-after").has_value());
  // Counted as every other way in counts: the usage is the user's (written in batches).
  json total;
  for (int i = 0; i < 100; ++i) {
    total = http("GET", s.port(), "/api/v1/usage?user_id=ann", "",
                 {{"Authorization", "Bearer " + kAdminKey}})
                .json()["total"];
    if (total.value("requests", 0) >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(total.value("requests", 0), 1) << total.dump();
}

TEST(AnthropicApi, AStreamIsAnthropicsEventsInOrderAndIdempotencyReplaysTheMessage) {
  Stack s;
  s.fake.enqueue({{"openai_stream", {"Hel", "lo!"}}});
  json body = json::parse(hello());
  body["stream"] = true;
  auto streamed = http("POST", s.port(), "/v1/messages", body.dump(), anthropic_headers(kAdminKey));
  ASSERT_EQ(streamed.status, 200) << streamed.describe();
  EXPECT_EQ(streamed.header("content-type").value_or("").rfind("text/event-stream", 0), 0U);
  std::vector<std::string> names;
  std::string text;
  for (const auto& [name, event] : sse_events(streamed.body)) {
    EXPECT_EQ(event["type"], name) << event.dump();  // each event's data names it too
    if (names.empty() || names.back() != name) names.push_back(name);
    if (name == "content_block_delta") text += event["delta"]["text"].get<std::string>();
    if (name == "message_delta") {
      EXPECT_EQ(event["delta"]["stop_reason"], "end_turn");
      EXPECT_GT(event["usage"]["output_tokens"].get<int>(), 0);
    }
  }
  EXPECT_EQ(text, "Hello!");
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                             "content_block_delta", "content_block_stop",
                                             "message_delta", "message_stop"}));

  // The same Idempotency-Key answers once.
  HeaderList headers = anthropic_headers(kAdminKey);
  headers.emplace_back("Idempotency-Key", "anthropic-once");
  auto first = http("POST", s.port(), "/v1/messages", hello(), headers);
  auto again = http("POST", s.port(), "/v1/messages", hello(), headers);
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.header("idempotent-replayed").value_or(""), "true");
  EXPECT_EQ(s.fake.calls(), 2);
}

}  // namespace
}  // namespace parley_it
