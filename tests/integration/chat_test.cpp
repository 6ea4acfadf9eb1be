// Conversations end to end: the real `parley serve` against the fake provider
// (parley_fake_upstream, its own process, scripted over HTTP). Each test proves what reached
// the upstream, what the client got, and what was stored: the user's message durable before
// the provider answers, replies cut short stored as partial with their finish reason, history
// and context fitting, retries and fallbacks counted in upstream calls, the OpenAI-compatible
// API, usage and metrics.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

// A configuration with providers "fake" (OpenAI format) and "fakeant" (Anthropic format) on
// the fake, and a route trying one then the other.
std::string config_yaml(const FakeProvider& fake, const std::string& extra = "") {
  return fake.base_config("  stall_timeout: 400ms\n") + fake.anthropic_provider() +
         "routes:\n"
         "  resilient: [fake/fake-model, fakeant/claude-fake]\n"
         "assistants:\n"
         "  default:\n"
         "    system_prompt: You are terse.\n" +
         extra;
}

struct Stack {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  std::unique_ptr<ParleyProcess> parley;
  explicit Stack(const std::string& extra_yaml = "", std::vector<std::string> args = {}) {
    auto file = config_dir.write_file("parley.yaml", config_yaml(fake, extra_yaml));
    ServeOptions opts;
    opts.args = {"--config", file};
    opts.args.insert(opts.args.end(), args.begin(), args.end());
    parley = std::make_unique<ParleyProcess>(opts);
  }
  int port() const { return parley->port(); }
  std::string db() const { return parley->data_dir() + "/parley.db"; }
};

TEST(Chat, TurnStoresBothMessagesAndSendsHistory) {
  Stack s;
  const auto sid = new_session(s.port());
  s.fake.enqueue({{"body", openai_completion_body("First answer.", 20, 3)}});
  auto r = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages",
                R"({"content":"First question?"})");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto turn = r.json();
  EXPECT_EQ(turn["reply"]["content"], "First answer.");
  EXPECT_EQ(turn["reply"]["status"], "complete");
  EXPECT_EQ(turn["reply"]["finish_reason"], "stop");
  EXPECT_EQ(turn["reply"]["provider"], "fake");
  EXPECT_EQ(turn["reply"]["model"], "fake-model");
  EXPECT_EQ(turn["reply"]["usage"]["input_tokens"], 20);
  EXPECT_EQ(turn["reply"]["usage"]["output_tokens"], 3);
  EXPECT_EQ(turn["user_message"]["content"], "First question?");

  s.fake.enqueue({{"body", openai_completion_body("Second answer.")}});
  r = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages", R"({"content":"Second?"})");
  ASSERT_EQ(r.status, 200) << r.describe();
  // The second call carried the system prompt, the first exchange and the new message.
  auto sent = s.fake.requests().back()["body"];
  ASSERT_EQ(sent["messages"].size(), 4u) << sent.dump();
  EXPECT_EQ(sent["messages"][0], json({{"role", "system"}, {"content", "You are terse."}}));
  EXPECT_EQ(sent["messages"][1]["content"], "First question?");
  EXPECT_EQ(sent["messages"][2]["content"], "First answer.");
  EXPECT_EQ(sent["messages"][3]["content"], "Second?");
  EXPECT_EQ(s.fake.requests().back()["headers"]["Authorization"], "Bearer sk-fake-key");
  EXPECT_EQ(sent["user"], "u1");

  auto list = http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages").json();
  ASSERT_EQ(list["data"].size(), 4u);
  EXPECT_EQ(list["data"][0]["role"], "user");
  EXPECT_EQ(list["data"][3]["content"], "Second answer.");
  // Pagination walks forward without repeats.
  auto page = http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages?limit=3").json();
  ASSERT_EQ(page["data"].size(), 3u);
  auto rest = http("GET", s.port(),
                   "/api/v1/sessions/" + sid +
                       "/messages?limit=3&cursor=" + page["next_cursor"].get<std::string>())
                  .json();
  ASSERT_EQ(rest["data"].size(), 1u);
  EXPECT_EQ(rest["data"][0]["content"], "Second answer.");
  EXPECT_TRUE(rest["next_cursor"].is_null());
}

TEST(Chat, StreamedTurnSendsEventsAndStoresTheReply) {
  Stack s;
  const auto sid = new_session(s.port());
  s.fake.enqueue({{"openai_stream", {"Str", "eam", "ed!"}}, {"split", 7}});
  auto r = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages",
                R"({"content":"Go","stream":true})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(icontains(r.header("Content-Type").value_or(""), "text/event-stream"));
  auto events = sse_events(r.body);
  ASSERT_GE(events.size(), 5u) << r.body;
  EXPECT_EQ(events.front().first, "turn.started");
  EXPECT_EQ(events.front().second["session_id"], sid);
  std::string streamed;
  for (const auto& [name, data] : events) {
    if (name == "delta") streamed += data.value("content", "");
  }
  EXPECT_EQ(streamed, "Streamed!");
  EXPECT_EQ(events.back().first, "turn.completed");
  EXPECT_EQ(events.back().second["reply"]["content"], "Streamed!");
  EXPECT_EQ(events.back().second["reply"]["usage"]["output_tokens"], 6);
  EXPECT_FALSE(events.back().second["reply"]["time_to_first_token_ms"].is_null());
  // Accept: text/event-stream asks for a stream too.
  auto accept = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages",
                     R"({"content":"Again"})", {{"Accept", "text/event-stream"}});
  EXPECT_TRUE(icontains(accept.header("Content-Type").value_or(""), "text/event-stream"));
}

TEST(Chat, UserMessageIsDurableBeforeTheProviderAnswers) {
  Stack s;
  const auto sid = new_session(s.port());
  s.fake.enqueue({{"body", openai_completion_body("Late.")}, {"delay_before_head_ms", 3000}});
  std::thread client([&] {
    (void)http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages",
               R"({"content":"Remember me"})", {}, Millis{20000});
  });
  // While the provider thinks: the user's message is stored, the reply row is pending.
  ASSERT_TRUE(eventually([&] { return s.fake.calls() == 1; }, Millis{5000}));
  auto list = http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages").json();
  ASSERT_EQ(list["data"].size(), 2u) << list.dump();
  EXPECT_EQ(list["data"][0]["content"], "Remember me");
  EXPECT_EQ(list["data"][1]["status"], "pending");
  // kill -9 now: the acknowledged input survives, and the restart marks the reply interrupted.
  s.parley->kill9();
  client.join();
  auto again = s.parley->restart({.args = {"--config", s.config_dir.file("parley.yaml")}});
  list = http("GET", again->port(), "/api/v1/sessions/" + sid + "/messages").json();
  ASSERT_EQ(list["data"].size(), 2u) << list.dump();
  EXPECT_EQ(list["data"][0]["content"], "Remember me");
  EXPECT_EQ(list["data"][1]["status"], "partial");
  EXPECT_EQ(list["data"][1]["finish_reason"], "interrupted");
}

TEST(Chat, ClientLeavingMidStreamCancelsUpstreamAndStoresThePartialReply) {
  Stack s;
  const auto sid = new_session(s.port());
  s.fake.enqueue(
      {{"pieces", {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Half a \"}}]}\n\n"}},
       {"content_type", "text/event-stream"},
       {"stall", true}});
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.ok());
  const std::string body = R"({"content":"Tell me a long story","stream":true})";
  ASSERT_TRUE(conn.send_all(raw_request("POST", "/api/v1/sessions/" + sid + "/messages",
                                        {{"Content-Type", "application/json"}}, body)));
  ASSERT_TRUE(eventually(
      [&] {
        conn.read_some(Millis{50});
        return conn.buffer().find("Half a ") != std::string::npos;
      },
      Millis{5000}));
  const auto left = Clock::now();
  conn.close();
  ASSERT_TRUE(eventually([&] { return s.fake.disconnects() == 1; }, Millis{3000}));
  EXPECT_LT(elapsed_ms(left), 1500) << "the upstream request outlived its client";
  ASSERT_TRUE(eventually(
      [&] {
        auto list = http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages").json();
        return list["data"].size() == 2 && list["data"][1]["status"] == "partial";
      },
      Millis{3000}));
  auto reply = http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages").json()["data"][1];
  EXPECT_EQ(reply["content"], "Half a ");
  EXPECT_EQ(reply["finish_reason"], "cancelled");
  EXPECT_EQ(s.fake.calls(), 1);
}

TEST(Chat, ShutdownDuringAStreamStoresThePartialReplyAsShutdown) {
  Stack s("", {"--set", "server.shutdown_grace=300ms", "--set", "llm.stall_timeout=1m"});
  const auto sid = new_session(s.port());
  s.fake.enqueue(
      {{"pieces",
        {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Interrupted \"}}]}\n\n"}},
       {"content_type", "text/event-stream"},
       {"stall", true}});
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.send_all(raw_request("POST", "/api/v1/sessions/" + sid + "/messages",
                                        {{"Content-Type", "application/json"}},
                                        R"({"content":"Go on","stream":true})")));
  ASSERT_TRUE(eventually(
      [&] {
        conn.read_some(Millis{50});
        return conn.buffer().find("Interrupted ") != std::string::npos;
      },
      Millis{5000}));
  ASSERT_TRUE(s.parley->send_signal(SIGTERM));
  auto exit = s.parley->wait_exit(Millis{10000});
  ASSERT_TRUE(exit.has_value()) << "did not stop";
  EXPECT_TRUE(exit->exited_with(0)) << exit->describe();
  auto rows = sqlite_query(
      s.db(), "SELECT status, finish_reason, content FROM messages WHERE role = 'assistant'",
      nullptr);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0][0], "partial");
  EXPECT_EQ((*rows)[0][1], "shutdown");
  EXPECT_EQ((*rows)[0][2], "Interrupted ");
}

TEST(Chat, StalledUpstreamEndsTheStreamWithAnErrorEventAndKeepsThePartialReply) {
  Stack s;
  const auto sid = new_session(s.port());
  s.fake.enqueue(
      {{"pieces", {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Begun\"}}]}\n\n"}},
       {"content_type", "text/event-stream"},
       {"stall", true}});
  auto r = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages",
                R"({"content":"Hi","stream":true})");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto events = sse_events(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "error") << r.body;
  EXPECT_EQ(events.back().second["error"]["code"], "upstream_timeout");
  EXPECT_EQ(events.back().second["reply"]["status"], "partial");
  EXPECT_EQ(events.back().second["reply"]["finish_reason"], "timeout");
  EXPECT_EQ(events.back().second["reply"]["content"], "Begun");
  EXPECT_EQ(s.fake.calls(), 1) << "no retry once a token reached the client";
}

TEST(Chat, RetriesAndFallbacksAreCountedUpstream) {
  Stack s;
  // Three failures exhaust fake (one try, two retries); the route falls back to fakeant.
  for (int i = 0; i < 3; ++i) {
    s.fake.enqueue({{"status", 503},
                    {"body", {{"error", {{"message", "overloaded"}}}}},
                    {"path_suffix", "/chat/completions"}});
  }
  auto r = http("POST", s.port(), "/v1/chat/completions",
                R"({"model":"resilient","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "Hello from the fake upstream.");
  auto sent = s.fake.requests();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[3]["path"], "/v1/messages");
  EXPECT_EQ(sent[3]["headers"]["x-api-key"], "sk-ant-fake");
}

TEST(Chat, UpstreamErrorsMapToClearEnvelopes) {
  Stack s;
  s.fake.enqueue(
      {{"status", 400}, {"body", {{"error", {{"message", "maximum context length exceeded"}}}}}});
  auto r = http("POST", s.port(), "/v1/chat/completions",
                R"({"model":"fake/fake-model","messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_TRUE(is_error(r, 400, "upstream_rejected"));
  EXPECT_TRUE(icontains(r.body, "maximum context length exceeded")) << r.body;
  EXPECT_EQ(s.fake.calls(), 1);

  s.fake.enqueue({{"status", 401}, {"body", {{"error", {{"message", "invalid api key"}}}}}});
  r = http("POST", s.port(), "/v1/chat/completions",
           R"({"model":"fake/fake-model","messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_TRUE(is_error(r, 502, "upstream_auth")) << "the server's credentials, not the client's";

  for (int i = 0; i < 3; ++i) {
    s.fake.enqueue({{"status", 429},
                    {"headers", {{"Retry-After", "0"}}},
                    {"body", {{"error", {{"message", "slow down"}}}}}});
  }
  r = http("POST", s.port(), "/v1/chat/completions",
           R"({"model":"fake/fake-model","messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_TRUE(is_error(r, 429, "upstream_rate_limited"));
  EXPECT_TRUE(r.header("Retry-After").has_value());

  r = http("POST", s.port(), "/v1/chat/completions",
           R"({"model":"fake/fake-model","messages":[]})");
  EXPECT_TRUE(is_error(r, 400, "invalid_field"));
  EXPECT_EQ(r.json()["error"]["param"], "messages");
  r = http("POST", s.port(), "/v1/chat/completions",
           R"({"model":"x","messages":[{"role":"wizard","content":"Hi"}]})");
  EXPECT_TRUE(is_error(r, 400, "invalid_field"));
  EXPECT_EQ(r.json()["error"]["param"], "messages[0].role");
}

TEST(Chat, ARegenerationThatFailsKeepsTheReplyItWasToReplace) {
  Stack s;
  const auto sid = new_session(s.port());
  const std::string path = "/api/v1/sessions/" + sid + "/messages";
  s.fake.enqueue({{"body", openai_completion_body("Blue.")}});
  ASSERT_EQ(http("POST", s.port(), path, R"({"content":"Pick a colour"})").status, 200);
  const auto statuses = [&] {
    std::vector<std::string> seen;
    const json listed = http("GET", s.port(), path).json();
    for (const auto& m : listed["data"]) {
      seen.push_back(m["content"].get<std::string>() + "/" + m["status"].get<std::string>());
    }
    return seen;
  };
  using Seen = std::vector<std::string>;

  // The provider refuses the regeneration: the answer there was stays the answer.
  s.fake.enqueue(
      {{"status", 400}, {"body", {{"error", {{"message", "maximum context length exceeded"}}}}}});
  EXPECT_TRUE(
      is_error(http("POST", s.port(), path, R"({"regenerate":true})"), 400, "upstream_rejected"));
  EXPECT_EQ(statuses(), (Seen{"Pick a colour/complete", "Blue./complete", "/partial"}));

  // The next one succeeds: the question is asked without the replies it replaces.
  s.fake.enqueue({{"body", openai_completion_body("Green.")}});
  auto again = http("POST", s.port(), path, R"({"regenerate":true})");
  ASSERT_EQ(again.status, 200) << again.describe();
  EXPECT_EQ(again.json()["reply"]["content"], "Green.");
  const auto sent = s.fake.requests().back()["body"]["messages"];
  ASSERT_EQ(sent.size(), 2U) << sent.dump();
  EXPECT_EQ(sent[1]["content"], "Pick a colour");
  EXPECT_EQ(statuses(),
            (Seen{"Pick a colour/complete", "Blue./replaced", "/replaced", "Green./complete"}));
}

TEST(Chat, OpenAiCompatibleStreamWithUsageAndToolsPassedThrough) {
  Stack s;
  s.fake.enqueue({{"openai_stream", {"Tool", "s ok"}}, {"split", 5}});
  const json request = {
      {"model", "fake-model"},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"user", "end-user-7"},
      {"seed", 42},
      {"messages", {{{"role", "user"}, {"content", "Weather?"}}}},
      {"tools",
       {{{"type", "function"},
         {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}}},
      {"tool_choice", "auto"}};
  auto r = http("POST", s.port(), "/v1/chat/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.describe();
  auto events = sse_events(r.body);
  ASSERT_GE(events.size(), 4u) << r.body;
  EXPECT_EQ(events.back().second, json("[DONE]"));
  std::string text;
  bool saw_usage = false;
  std::string finish;
  for (const auto& [name, chunk] : events) {
    if (!chunk.is_object()) continue;
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      saw_usage = true;
      EXPECT_EQ(chunk["usage"]["completion_tokens"], 6);
      EXPECT_TRUE(chunk["choices"].empty());
      continue;
    }
    const auto& choice = chunk["choices"][0];
    text += choice["delta"].value("content", "");
    if (choice["finish_reason"].is_string()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(text, "Tools ok");
  EXPECT_EQ(finish, "stop");
  EXPECT_TRUE(saw_usage);
  auto sent = s.fake.requests().back()["body"];
  EXPECT_EQ(sent["tools"], request["tools"]);
  EXPECT_EQ(sent["tool_choice"], "auto");
  EXPECT_EQ(sent["user"], "end-user-7");
  EXPECT_EQ(sent["seed"], 42) << "unknown OpenAI fields pass through";
  EXPECT_EQ(sent["model"], "fake-model");
}

TEST(Chat, ModelsEmbeddingsAndUsage) {
  Stack s;
  auto models = http("GET", s.port(), "/v1/models").json();
  std::vector<std::string> ids;
  for (const auto& m : models["data"]) ids.push_back(m["id"]);
  EXPECT_NE(std::find(ids.begin(), ids.end(), "resilient"), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), "fake/fake-model"), ids.end());

  auto emb = http("POST", s.port(), "/v1/embeddings",
                  R"({"model":"fake/fake-embed","input":["abc","hello"]})");
  ASSERT_EQ(emb.status, 200) << emb.describe();
  auto data = emb.json()["data"];
  ASSERT_EQ(data.size(), 2u);
  EXPECT_DOUBLE_EQ(data[1]["embedding"][0].get<double>(), (5 % 7) / 8.0);

  const auto sid = new_session(s.port(), "alice");
  s.fake.enqueue({{"body", openai_completion_body("ok", 100, 50)}});
  ASSERT_EQ(
      http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages", R"({"content":"hi"})").status,
      200);
  s.fake.enqueue({{"body", openai_completion_body("ok", 10, 5)}});
  ASSERT_EQ(
      http("POST", s.port(), "/v1/chat/completions",
           R"({"model":"fake-model","user":"bob","messages":[{"role":"user","content":"hi"}]})")
          .status,
      200);
  auto usage = http("GET", s.port(), "/api/v1/usage?group_by=user,source").json();
  ASSERT_EQ(usage["object"], "usage") << usage.dump();
  std::map<std::string, json> by_user;
  for (const auto& row : usage["data"]) by_user[row["user"]] = row;
  ASSERT_TRUE(by_user.count("alice")) << usage.dump();
  EXPECT_EQ(by_user["alice"]["input_tokens"], 100);
  EXPECT_EQ(by_user["alice"]["output_tokens"], 50);
  EXPECT_EQ(by_user["alice"]["source"], "chat");
  ASSERT_TRUE(by_user.count("bob")) << usage.dump();
  EXPECT_EQ(by_user["bob"]["source"], "api");
  auto bad = http("GET", s.port(), "/api/v1/usage?group_by=color");
  EXPECT_TRUE(is_error(bad, 400, "invalid_field"));

  auto metrics = http("GET", s.port(), "/metrics").body;
  EXPECT_NE(
      metrics.find("llm_requests_total{model=\"fake-model\",provider=\"fake\",status=\"ok\"}"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("llm_tokens_total{kind=\"input\",model=\"fake-model\",provider=\"fake\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("llm_circuit_state{model=\"fake-model\",provider=\"fake\"} 0"),
            std::string::npos);
  EXPECT_NE(metrics.find("active_sessions 1"), std::string::npos);
}

TEST(Chat, CostRouteSendsSimpleRequestsCheapAndHardOnesStrong) {
  FakeProvider fake;
  TempDir dir("parley-cost");
  auto file = dir.write_file("parley.yaml",
                             "providers:\n"
                             "  fake:\n"
                             "    base_url: " +
                                 fake.base_url() +
                                 "/v1\n"
                                 "    models: [cheap-model, strong-model]\n"
                                 "routes:\n"
                                 "  thrifty:\n"
                                 "    strategy: cost\n"
                                 "    targets: [fake/cheap-model, fake/strong-model]\n"
                                 "    complexity_threshold: 0.3\n");
  ParleyProcess parley({.args = {"--config", file}});
  auto r = http("POST", parley.port(), "/v1/chat/completions",
                R"({"model":"thrifty","messages":[{"role":"user","content":"Hi!"}]})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(fake.requests().back()["body"]["model"], "cheap-model");
  const json hard = {{"model", "thrifty"},
                     {"messages",
                      {{{"role", "user"},
                        {"content",
                         "Explain step by step why this fails, and compare two fixes:\n"
                         "```\nint main() { return *(int*)0; }\n```"}}}}};
  r = http("POST", parley.port(), "/v1/chat/completions", hard.dump());
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(fake.requests().back()["body"]["model"], "strong-model");
  // Readiness shows the circuits the calls went through.
  auto ready = http("GET", parley.port(), "/api/v1/health/readiness").json();
  EXPECT_EQ(ready["checks"]["providers"]["status"], "ok") << ready.dump();
  EXPECT_EQ(ready["checks"]["providers"]["circuits"].size(), 2u) << ready.dump();
}

TEST(Chat, PricedModelsCostMoney) {
  Stack s("models:\n  fake-model:\n    input: 2.0\n    output: 8.0\n");
  const auto sid = new_session(s.port());
  s.fake.enqueue({{"body", openai_completion_body("ok", 1'000'000, 500'000)}});
  auto r = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages", R"({"content":"hi"})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_DOUBLE_EQ(r.json()["reply"]["cost_usd"].get<double>(), 2.0 + 4.0);
  auto usage = http("GET", s.port(), "/api/v1/usage?group_by=model,provider,day").json();
  ASSERT_EQ(usage["data"].size(), 1u) << usage.dump();
  EXPECT_DOUBLE_EQ(usage["data"][0]["cost_usd"].get<double>(), 6.0);
  EXPECT_EQ(usage["data"][0]["provider"], "fake");
  auto metrics = http("GET", s.port(), "/metrics").body;
  EXPECT_NE(metrics.find("api_costs_total{provider=\"fake\"} 6"), std::string::npos) << metrics;
}

TEST(Chat, LongHistoryIsFittedIntoTheContextWindow) {
  // A tiny window: 600 tokens minus 100 reserved for the reply.
  Stack s("models:\n  fake-model:\n    context_window: 600\n",
          {"--set", "chat.default_context_window=600"});
  const auto sid = new_session(s.port());
  const std::string long_text(800, 'x');  // about 200 tokens each
  for (int i = 0; i < 4; ++i) {
    s.fake.enqueue({{"body", openai_completion_body("reply " + std::to_string(i))}});
    auto r = http("POST", s.port(), "/api/v1/sessions/" + sid + "/messages",
                  json{{"content", long_text + std::to_string(i)}, {"max_tokens", 100}}.dump());
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  auto sent = s.fake.requests().back()["body"]["messages"];
  ASSERT_GE(sent.size(), 2u);
  EXPECT_EQ(sent.front()["role"], "system") << "the system prompt is always kept";
  EXPECT_EQ(sent.back()["content"], long_text + "3") << "the newest message is always kept";
  EXPECT_LT(sent.size(), 8u) << "older turns were dropped: " << sent.dump();
  EXPECT_NE(sent[1]["content"], long_text + "0") << "the oldest went first";
}

TEST(Chat, OneCallChatCreatesTheSession) {
  Stack s;
  auto r = http("POST", s.port(), "/api/v1/chat", R"({"message":"hello","user_id":"test"})");
  ASSERT_EQ(r.status, 201) << r.describe();
  auto body = r.json();
  EXPECT_TRUE(body["session_created"].get<bool>());
  EXPECT_EQ(body["response"], "Hello from the fake upstream.");
  const std::string sid = body["session_id"];
  auto again =
      http("POST", s.port(), "/api/v1/chat", json{{"message", "more"}, {"session_id", sid}}.dump());
  ASSERT_EQ(again.status, 200) << again.describe();
  EXPECT_FALSE(again.json()["session_created"].get<bool>());
  EXPECT_EQ(http("GET", s.port(), "/api/v1/sessions/" + sid + "/messages").json()["data"].size(),
            4u);
  auto missing =
      http("POST", s.port(), "/api/v1/chat", R"({"message":"x","session_id":"sess_nope"})");
  EXPECT_TRUE(is_error(missing, 404, "session_not_found"));
  auto assistants = http("GET", s.port(), "/api/v1/assistants").json();
  ASSERT_EQ(assistants["data"].size(), 1u);
  EXPECT_EQ(assistants["data"][0]["name"], "default");
}

TEST(Chat, EcosystemVariablesConfigureAProviderWithNoFile) {
  FakeProvider fake;
  ServeOptions opts;
  opts.env = {{"OPENAI_API_KEY", "sk-from-env"}, {"OPENAI_BASE_URL", fake.base_url() + "/v1"}};
  ParleyProcess parley(opts);
  auto r = http("POST", parley.port(), "/v1/chat/completions",
                R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto sent = fake.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["headers"]["Authorization"], "Bearer sk-from-env");
  EXPECT_EQ(sent[0]["body"]["model"], "gpt-4o-mini");
  // The key never shows in the effective configuration.
  auto cfg = run_parley({"check-config", "--json"}, {.env = opts.env});
  EXPECT_EQ(cfg.out.find("sk-from-env"), std::string::npos) << cfg.out;
  EXPECT_NE(cfg.out.find("\"openai\""), std::string::npos) << cfg.out;
}

// A forward HTTP proxy that answers one request itself: enough to see that Parley sent its
// upstream call through it (in absolute form, "POST http://host/path HTTP/1.1").
class OneShotProxy {
 public:
  OneShotProxy() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotProxy() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string request_line() {
    std::lock_guard lock(mutex_);
    return request_line_;
  }

 private:
  void serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mutex_);
      request_line_ = in.substr(0, in.find("\r\n"));
    }
    const std::string body = openai_completion_body("Through the proxy.").dump();
    const std::string out =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    ::close(fd);
  }
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::string request_line_;
};

TEST(Chat, ProviderCallsGoThroughTheConfiguredProxy) {
  OneShotProxy proxy;
  TempDir dir("parley-proxy");
  auto file = dir.write_file("parley.yaml",
                             "providers:\n"
                             "  far:\n"
                             "    base_url: http://upstream.invalid/v1\n"
                             "    proxy: http://127.0.0.1:" +
                                 std::to_string(proxy.port()) +
                                 "\n"
                                 "    models: [far-model]\n");
  ParleyProcess parley({.args = {"--config", file}});
  auto r = http("POST", parley.port(), "/v1/chat/completions",
                R"({"model":"far/far-model","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "Through the proxy.");
  EXPECT_EQ(proxy.request_line(), "POST http://upstream.invalid/v1/chat/completions HTTP/1.1");
}

TEST(Chat, TheEnvironmentsHttpProxyIsHonoured) {
  OneShotProxy proxy;
  TempDir dir("parley-proxy");
  auto file = dir.write_file("parley.yaml",
                             "providers:\n"
                             "  far:\n"
                             "    base_url: http://upstream.invalid/v1\n"
                             "    models: [far-model]\n");
  ParleyProcess parley(
      {.args = {"--config", file},
       .env = {{"http_proxy", "http://127.0.0.1:" + std::to_string(proxy.port())}}});
  auto r = http("POST", parley.port(), "/v1/chat/completions",
                R"({"model":"far/far-model","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(proxy.request_line(), "POST http://upstream.invalid/v1/chat/completions HTTP/1.1");
}

TEST(Chat, WithoutAnyProviderTheBuiltinReplyExplainsHowToConfigureOne) {
  ParleyProcess parley;
  auto r = http("POST", parley.port(), "/api/v1/chat", R"({"message":"hello"})");
  ASSERT_EQ(r.status, 201) << r.describe();
  EXPECT_TRUE(icontains(r.json()["response"].get<std::string>(), "OPENAI_API_KEY"));
  EXPECT_EQ(r.json()["reply"]["provider"], "builtin");
}

}  // namespace
}  // namespace parley_it
