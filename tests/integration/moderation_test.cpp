// Content moderation end to end: the real `parley serve` with `moderation:` rules, and in some
// tests the fake provider's /v1/moderations as a classifier after them, in front of the fake
// provider (parley_fake_upstream, its own process, scripted over HTTP). Each test proves what
// the client got, what reached the upstream (a blocked message never does, a redacted one arrives
// redacted, a streamed reply stops before the word that blocks it), what was stored, and what was
// logged and counted: the decision, never the text.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

// Provider "fake" (OpenAI format) on the fake upstream, and `moderation` as the body of the
// `moderation:` section (its lines indented by two spaces).
std::string moderated_config(const FakeProvider& fake, const std::string& moderation) {
  return fake.base_config() + "moderation:\n" + moderation;
}

struct Stack {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  std::unique_ptr<ParleyProcess> parley;
  explicit Stack(const std::string& moderation, std::vector<std::string> args = {}) {
    auto file = config_dir.write_file("parley.yaml", moderated_config(fake, moderation));
    ServeOptions opts;
    opts.args = {"--config", file};
    opts.args.insert(opts.args.end(), args.begin(), args.end());
    parley = std::make_unique<ParleyProcess>(opts);
  }
  int port() const { return parley->port(); }
};

// A word that blocks in both directions, and e-mail addresses redacted.
const std::string kWeaponsAndEmail =
    "  categories:\n"
    "    weapons: {words: [bazooka], action: block}\n"
    "  pii:\n"
    "    email: redact\n";

// The fake's default reply is "Hello from the fake upstream." (streamed as "Hello", " from the",
// " fake upstream."): these rules catch its last word, on the way out only.
const std::string kUpstreamBlockedInReplies =
    "  categories:\n"
    "    leak: {words: [upstream], action: block, stages: [output]}\n";
const std::string kUpstreamRedactedInReplies =
    "  categories:\n"
    "    leak: {words: [upstream], action: redact, stages: [output]}\n";

std::string messages_path(const std::string& session_id) {
  return "/api/v1/sessions/" + session_id + "/messages";
}

std::string turn_request(const std::string& content, bool stream = false) {
  json body = {{"content", content}};
  if (stream) body["stream"] = true;
  return body.dump();
}

// The text of an OpenAI-format stream: every chunk's delta content, in order.
std::string chunk_text(const std::vector<std::pair<std::string, json>>& events) {
  std::string text;
  for (const auto& [name, chunk] : events) {
    if (!chunk.is_object() || !chunk.contains("choices") || !chunk["choices"].is_array() ||
        chunk["choices"].empty()) {
      continue;
    }
    const json& choice = chunk["choices"][0];
    if (choice.contains("delta") && choice["delta"].contains("content") &&
        choice["delta"]["content"].is_string()) {
      text += choice["delta"]["content"].get<std::string>();
    }
  }
  return text;
}

// The text of a chat-turn stream: every "delta" event's content, in order.
std::string delta_text(const std::vector<std::pair<std::string, json>>& events) {
  std::string text;
  for (const auto& [name, data] : events) {
    if (name == "delta") text += data.value("content", "");
  }
  return text;
}

std::vector<std::string> paths(const json& requests) {
  std::vector<std::string> out;
  for (const auto& r : requests) out.push_back(r.value("path", ""));
  return out;
}

// The text a /moderations request asked about (OpenAI takes a string or an array of strings).
std::string moderated_text(json body) {
  const json& input = body["input"];
  if (input.is_string()) return input;
  if (input.is_array() && input.size() == 1 && input[0].is_string()) return input[0];
  return "<not one input: " + input.dump() + ">";
}

// The stored messages of a session, oldest first.
json stored_messages(int port, const std::string& session_id) {
  auto r = http("GET", port, messages_path(session_id));
  EXPECT_EQ(r.status, 200) << r.describe();
  auto body = r.json_or_discarded();
  return body.is_object() && body["data"].is_array() ? body["data"] : json::array();
}

// moderation_decisions_total for one stage, category and action; nullopt when /metrics has no
// such sample.
std::optional<double> decisions_counted(int port, std::string_view stage, std::string_view category,
                                        std::string_view action) {
  auto r = http("GET", port, "/metrics");
  std::string error;
  auto samples = parse_prometheus(r.body, &error);
  if (!samples) {
    ADD_FAILURE() << "/metrics does not parse: " << error;
    return std::nullopt;
  }
  for (const auto& s : *samples) {
    if (s.name == "moderation_decisions_total" && s.label("stage").value_or("") == stage &&
        s.label("category").value_or("") == category && s.label("action").value_or("") == action) {
      return s.value;
    }
  }
  return std::nullopt;
}

Response moderation_log(int port, const std::string& query = "") {
  return http("GET", port, "/api/v1/admin/moderation/logs" + query);
}

// Waits until the moderation log lists at least `n` decisions: they are written in batches (about
// every 200 ms), not by the request that made them.
Response wait_for_decisions(int port, size_t n) {
  Response r;
  const bool enough = eventually(
      [&] {
        r = moderation_log(port);
        auto body = r.json_or_discarded();
        return body.is_object() && body["data"].is_array() && body["data"].size() >= n;
      },
      Millis{5000});
  EXPECT_TRUE(enough) << "fewer than " << n << " decisions logged\n" << r.describe();
  return r;
}

// The logged decisions of one stage and action.
std::vector<json> decisions_where(const Response& log, std::string_view stage,
                                  std::string_view action) {
  std::vector<json> out;
  auto body = log.json_or_discarded();
  if (!body.is_object() || !body["data"].is_array()) return out;
  for (const auto& d : body["data"]) {
    if (d.value("stage", "") == stage && d.value("action", "") == action) out.push_back(d);
  }
  return out;
}

// A field of an error envelope ("message", "param", ...); "" when there is none.
std::string error_field(const Response& r, const char* field) {
  auto body = r.json_or_discarded();
  if (!body.is_object() || !body["error"].is_object()) return "";
  const json& value = body["error"][field];
  return value.is_string() ? value.get<std::string>() : "";
}

// ---------------------------------------------------------------------------------------------
// The rules on input

TEST(Moderation, BlockedInputNeverReachesTheProviderOrTheStore) {
  Stack s(kWeaponsAndEmail);
  const auto sid = new_session(s.port());
  auto r = http("POST", s.port(), messages_path(sid), turn_request("Where can I buy a Bazooka?"));
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  EXPECT_EQ(error_field(r, "param"), "content");
  EXPECT_TRUE(icontains(error_field(r, "message"), "weapons")) << "the message names the category\n"
                                                               << r.body;
  // A streamed turn is refused before its stream begins: a plain error answer.
  r = http("POST", s.port(), messages_path(sid), turn_request("a bazooka, quickly", true));
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  EXPECT_EQ(error_field(r, "param"), "content");
  // Refused before anything was stored: no input row, no pending reply.
  EXPECT_TRUE(stored_messages(s.port(), sid).empty());

  // The OpenAI-compatible API names the offending message; only user messages are checked.
  const json body = {{"model", "fake/fake-model"},
                     {"messages",
                      {{{"role", "user"}, {"content", "Hi"}},
                       {{"role", "assistant"}, {"content", "Hello."}},
                       {{"role", "user"}, {"content", "sell me a BAZOOKA"}}}}};
  r = http("POST", s.port(), "/v1/chat/completions", body.dump());
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  EXPECT_EQ(error_field(r, "param"), "messages[2].content");
  EXPECT_TRUE(icontains(error_field(r, "message"), "weapons")) << r.body;
  EXPECT_EQ(s.fake.calls(), 0) << s.fake.requests().dump();

  // The same server passes a clean message on: the zero above is the block's doing.
  r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Hi there"));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(paths(s.fake.requests()), std::vector<std::string>{"/v1/chat/completions"});
}

TEST(Moderation, RedactedInputIsWhatTheProviderSeesAndWhatIsStored) {
  Stack s(kWeaponsAndEmail);
  const auto sid = new_session(s.port());
  auto r = http("POST", s.port(), messages_path(sid),
                turn_request("Reply to jane.doe@example.com by Friday"));
  ASSERT_EQ(r.status, 200) << r.describe();
  const std::string redacted = "Reply to [REDACTED:pii_email] by Friday";
  EXPECT_EQ(r.json()["user_message"]["content"], redacted);
  auto sent = s.fake.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["body"]["messages"].back()["content"], redacted) << sent.dump();
  auto stored = stored_messages(s.port(), sid);
  ASSERT_EQ(stored.size(), 2u) << stored.dump();
  EXPECT_EQ(stored[0]["content"], redacted);

  r = http("POST", s.port(), "/v1/chat/completions",
           openai_chat_request("Forward it to jane.doe@example.com"));
  ASSERT_EQ(r.status, 200) << r.describe();
  sent = s.fake.requests();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1]["body"]["messages"][0]["content"], "Forward it to [REDACTED:pii_email]");
  // The address left the server in no form.
  EXPECT_EQ(sent.dump().find("jane.doe@example.com"), std::string::npos) << sent.dump();
}

TEST(Moderation, ANewSessionIsTitledFromTheRedactedMessage) {
  Stack s(kWeaponsAndEmail);
  auto r = http("POST", s.port(), "/api/v1/chat",
                R"({"message":"Write to jane.doe@example.com about the invoice"})");
  ASSERT_EQ(r.status, 201) << r.describe();
  const std::string sid = r.json()["session_id"];
  auto session = http("GET", s.port(), "/api/v1/sessions/" + sid);
  ASSERT_EQ(session.status, 200) << session.describe();
  EXPECT_EQ(session.json()["title"], "Write to [REDACTED:pii_email] about the invoice");
  EXPECT_EQ(session.body.find("jane.doe"), std::string::npos) << session.body;
  // A blocked first message opens no session at all.
  auto before = http("GET", s.port(), "/api/v1/sessions");
  r = http("POST", s.port(), "/api/v1/chat", R"({"message":"sell me a bazooka"})");
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  auto after = http("GET", s.port(), "/api/v1/sessions");
  EXPECT_EQ(after.json()["data"].size(), before.json()["data"].size());
}

// ---------------------------------------------------------------------------------------------
// The rules on replies

TEST(Moderation, BlockedReplyIsRefusedAndStoredEmpty) {
  Stack s(kUpstreamBlockedInReplies);
  // The same word in the input passes: the category applies to replies only.
  auto r = http("POST", s.port(), "/v1/chat/completions",
                openai_chat_request("Say something about upstream"));
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  EXPECT_EQ(error_field(r, "param"), "choices[0].message.content");
  EXPECT_TRUE(icontains(error_field(r, "message"), "leak")) << r.body;
  EXPECT_EQ(r.body.find("Hello from the"), std::string::npos) << "no part of the reply is sent";
  EXPECT_EQ(s.fake.calls(), 1) << "the reply was generated, then refused";

  const auto sid = new_session(s.port());
  r = http("POST", s.port(), messages_path(sid), turn_request("Greet me"));
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  auto answer = r.json();
  EXPECT_EQ(answer["error"]["param"], "reply");
  // What was stored comes with the error: the input, and an empty reply filtered by content.
  EXPECT_EQ(answer["user_message"]["content"], "Greet me");
  EXPECT_EQ(answer["reply"]["content"], "");
  EXPECT_EQ(answer["reply"]["finish_reason"], "content_filter");
  auto stored = stored_messages(s.port(), sid);
  ASSERT_EQ(stored.size(), 2u) << stored.dump();
  EXPECT_EQ(stored[1]["role"], "assistant");
  EXPECT_EQ(stored[1]["content"], "");
  EXPECT_EQ(stored[1]["finish_reason"], "content_filter");
  EXPECT_EQ(stored[1]["status"], "complete");
}

TEST(Moderation, RedactedReplyReachesTheClientAndTheStoreRedacted) {
  Stack s(kUpstreamRedactedInReplies);
  const std::string redacted = "Hello from the fake [REDACTED:leak].";
  auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Hi"));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], redacted);

  const auto sid = new_session(s.port());
  r = http("POST", s.port(), messages_path(sid), turn_request("Hi"));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["reply"]["content"], redacted);
  auto stored = stored_messages(s.port(), sid);
  ASSERT_EQ(stored.size(), 2u) << stored.dump();
  EXPECT_EQ(stored[1]["content"], redacted);
  EXPECT_EQ(stored[1]["finish_reason"], "stop");
}

// Streamed replies are released only up to their last whitespace, each release checked with all
// that came before it: a word is checked whole before any of it is sent.
TEST(Moderation, StreamedReplyStopsBeforeABlockedWord) {
  Stack s(kUpstreamBlockedInReplies);
  auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Hi", true));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(icontains(r.header("Content-Type").value_or(""), "text/event-stream"));
  EXPECT_EQ(r.body.find("upstream"), std::string::npos) << "the blocked word was sent\n" << r.body;
  auto events = sse_events(r.body);
  ASSERT_GE(events.size(), 3u) << r.body;
  EXPECT_EQ(chunk_text(events), "Hello from the fake ") << "what preceded it was sent";
  // OpenAI's in-stream error, then the end of the stream; no "stop" chunk claims a whole reply.
  EXPECT_EQ(events.back().second, json("[DONE]"));
  const json& error = events[events.size() - 2].second;
  ASSERT_TRUE(error.is_object() && error.contains("error")) << r.body;
  EXPECT_EQ(error["error"].value("code", ""), "content_blocked");
  EXPECT_EQ(error["error"].value("param", ""), "choices[0].delta.content");
  EXPECT_TRUE(icontains(error["error"].value("message", ""), "leak")) << r.body;
  for (const auto& [name, chunk] : events) {
    if (chunk.is_object() && chunk.contains("choices") && !chunk["choices"].empty()) {
      EXPECT_NE(chunk["choices"][0].value("finish_reason", json()), "stop") << r.body;
    }
  }

  // The chat turn: the same deltas, an error event last, and an empty reply stored.
  const auto sid = new_session(s.port());
  r = http("POST", s.port(), messages_path(sid), turn_request("Hi", true));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body.find("upstream"), std::string::npos) << r.body;
  events = sse_events(r.body);
  ASSERT_GE(events.size(), 2u) << r.body;
  EXPECT_EQ(events.front().first, "turn.started");
  EXPECT_EQ(delta_text(events), "Hello from the fake ");
  EXPECT_EQ(events.back().first, "error") << r.body;
  EXPECT_EQ(events.back().second["error"]["code"], "content_blocked");
  EXPECT_EQ(events.back().second["reply"]["content"], "");
  EXPECT_EQ(events.back().second["reply"]["finish_reason"], "content_filter");
  auto stored = stored_messages(s.port(), sid);
  ASSERT_EQ(stored.size(), 2u) << stored.dump();
  EXPECT_EQ(stored[1]["content"], "");
  EXPECT_EQ(stored[1]["finish_reason"], "content_filter");
}

TEST(Moderation, StreamedReplyIsRedactedAsItGrows) {
  Stack s(
      "  categories:\n"
      "    brand: {words: [fake], action: redact, stages: [output]}\n");
  const std::string redacted = "Hello from the [REDACTED:brand] upstream.";
  auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Hi", true));
  ASSERT_EQ(r.status, 200) << r.describe();
  auto events = sse_events(r.body);
  ASSERT_GE(events.size(), 3u) << r.body;
  EXPECT_EQ(chunk_text(events), redacted);
  EXPECT_EQ(events.back().second, json("[DONE]"));
  json last_chunk = events[events.size() - 2].second;
  ASSERT_TRUE(last_chunk.is_object() && last_chunk.contains("choices")) << r.body;
  EXPECT_EQ(last_chunk["choices"][0]["finish_reason"], "stop") << "a redacted reply is complete";

  const auto sid = new_session(s.port());
  r = http("POST", s.port(), messages_path(sid), turn_request("Hi", true));
  ASSERT_EQ(r.status, 200) << r.describe();
  events = sse_events(r.body);
  ASSERT_FALSE(events.empty()) << r.body;
  EXPECT_EQ(delta_text(events), redacted);
  EXPECT_EQ(events.back().first, "turn.completed") << r.body;
  EXPECT_EQ(events.back().second["reply"]["content"], redacted);
  auto stored = stored_messages(s.port(), sid);
  ASSERT_EQ(stored.size(), 2u) << stored.dump();
  EXPECT_EQ(stored[1]["content"], redacted);
}

TEST(Moderation, BlockFoundMidStreamStopsTheUpstreamCall) {
  // A stalled upstream would hold the request for a minute: only the block can end it in time.
  Stack s(
      "  categories:\n"
      "    secrets: {words: [classified], action: block, stages: [output]}\n",
      {"--set", "llm.stall_timeout=1m"});
  const json stalled = {
      {"pieces",
       {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The plan is \"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"classified and \"}}]}\n\n"}},
      {"content_type", "text/event-stream"},
      {"stall", true}};

  s.fake.enqueue(stalled);
  auto started = Clock::now();
  auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Plan?", true), {},
                Millis{5000});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_LT(elapsed_ms(started), 3000) << "the stream waited on the stalled upstream";
  EXPECT_EQ(r.body.find("classified"), std::string::npos) << r.body;
  auto events = sse_events(r.body);
  ASSERT_GE(events.size(), 2u) << r.body;
  EXPECT_EQ(chunk_text(events), "The plan is ");
  EXPECT_EQ(events[events.size() - 2].second["error"]["code"], "content_blocked") << r.body;
  EXPECT_EQ(events.back().second, json("[DONE]"));
  EXPECT_TRUE(eventually([&] { return s.fake.disconnects() == 1; }, Millis{3000}))
      << "the upstream call outlived the block";

  // The chat turn: the call stopped by the block, not by a client, is stored as filtered.
  s.fake.enqueue(stalled);
  const auto sid = new_session(s.port());
  started = Clock::now();
  r = http("POST", s.port(), messages_path(sid), turn_request("Plan?", true), {}, Millis{5000});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_LT(elapsed_ms(started), 3000);
  EXPECT_EQ(r.body.find("classified"), std::string::npos) << r.body;
  events = sse_events(r.body);
  ASSERT_FALSE(events.empty()) << r.body;
  EXPECT_EQ(delta_text(events), "The plan is ");
  EXPECT_EQ(events.back().first, "error") << r.body;
  EXPECT_EQ(events.back().second["error"]["code"], "content_blocked");
  EXPECT_TRUE(eventually([&] { return s.fake.disconnects() == 2; }, Millis{3000}));
  auto stored = stored_messages(s.port(), sid);
  ASSERT_EQ(stored.size(), 2u) << stored.dump();
  EXPECT_EQ(stored[1]["content"], "");
  EXPECT_EQ(stored[1]["finish_reason"], "content_filter");
  EXPECT_EQ(stored[1]["status"], "complete");
}

// ---------------------------------------------------------------------------------------------
// A moderation provider after the rules

TEST(Moderation, ProviderClassifiesWhatTheRulesLetThroughRedacted) {
  // The provider "fake" flags "fake-violence" as violence and "fake-threat" as
  // harassment/threatening.
  Stack s(
      "  pii:\n"
      "    email: redact\n"
      "  provider:\n"
      "    name: fake\n"
      "    stages: [input, output]\n");
  auto r = http("POST", s.port(), "/v1/chat/completions",
                openai_chat_request("I will fake-violence you"));
  ASSERT_TRUE(is_error(r, 400, "content_blocked"));
  EXPECT_EQ(error_field(r, "param"), "messages[0].content");
  EXPECT_TRUE(icontains(error_field(r, "message"), "violence")) << r.body;
  auto sent = s.fake.requests();
  ASSERT_EQ(paths(sent), std::vector<std::string>{"/v1/moderations"}) << "no chat call";
  EXPECT_EQ(moderated_text(sent[0]["body"]), "I will fake-violence you");
  EXPECT_EQ(sent[0]["body"]["model"], "omni-moderation-latest");
  EXPECT_EQ(sent[0]["headers"]["Authorization"], "Bearer sk-fake-key");

  // A clean input is classified, answered, and the reply classified too. The provider is sent
  // the text as the rules redacted it: the address never leaves the server.
  r = http("POST", s.port(), "/v1/chat/completions",
           openai_chat_request("Write to jane@example.com today"));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "Hello from the fake upstream.");
  sent = s.fake.requests();
  ASSERT_EQ(paths(sent), (std::vector<std::string>{"/v1/moderations", "/v1/moderations",
                                                   "/v1/chat/completions", "/v1/moderations"}))
      << sent.dump();
  EXPECT_EQ(moderated_text(sent[1]["body"]), "Write to [REDACTED:pii_email] today");
  EXPECT_EQ(sent[2]["body"]["messages"][0]["content"], "Write to [REDACTED:pii_email] today");
  EXPECT_EQ(moderated_text(sent[3]["body"]), "Hello from the fake upstream.");
  EXPECT_EQ(sent.dump().find("jane@example.com"), std::string::npos);

  // POST /v1/moderations answers with the provider's classification and model.
  r = http("POST", s.port(), "/v1/moderations", R"({"input":"a fake-threat"})");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto answer = r.json();
  EXPECT_EQ(answer["model"], "omni-moderation-latest");
  ASSERT_EQ(answer["results"].size(), 1u) << answer.dump();
  EXPECT_EQ(answer["results"][0]["flagged"], true);
  EXPECT_EQ(answer["results"][0]["categories"]["harassment/threatening"], true) << answer.dump();
  EXPECT_EQ(answer["results"][0]["action"], "block");

  EXPECT_EQ(decisions_counted(s.port(), "input", "violence", "block"), 1.0);
  // Four decisions: the violent input, the clean input and its reply, the threat.
  auto log = wait_for_decisions(s.port(), 4);
  auto blocked = decisions_where(log, "input", "block");
  ASSERT_FALSE(blocked.empty()) << log.body;
  bool violence_logged = false;
  for (auto& d : blocked) {
    EXPECT_EQ(d["source"], "rules+provider") << d.dump();
    violence_logged =
        violence_logged ||
        d["findings"] ==
            json::array({{{"category", "violence"}, {"action", "block"}, {"count", 1}}});
  }
  EXPECT_TRUE(violence_logged) << log.body;
}

TEST(Moderation, ProviderFailureFollowsOnError) {
  const json failure = {{"status", 500},
                        {"body", {{"error", {{"message", "moderation is down"}}}}},
                        {"path_suffix", "/moderations"}};
  {
    // on_error: allow (the default): the message goes through, and the failure is logged.
    Stack s("  provider: {name: fake}\n");
    s.fake.enqueue(failure);
    auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Hi"));
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(paths(s.fake.requests()),
              (std::vector<std::string>{"/v1/moderations", "/v1/chat/completions"}));
    EXPECT_EQ(decisions_counted(s.port(), "input", "provider_error", "allow"), 1.0);
    auto log = wait_for_decisions(s.port(), 1);
    auto allowed = decisions_where(log, "input", "allow");
    ASSERT_EQ(allowed.size(), 1u) << log.body;
    EXPECT_EQ(allowed[0]["source"], "rules+provider");
    EXPECT_EQ(allowed[0]["findings"],
              json::array({{{"category", "provider_error"}, {"action", "allow"}, {"count", 1}}}));
  }
  {
    // on_error: block: a message nobody could classify is refused.
    Stack s("  provider: {name: fake, on_error: block}\n");
    s.fake.enqueue(failure);
    auto r = http("POST", s.port(), "/v1/chat/completions", openai_chat_request("Hi"));
    ASSERT_TRUE(is_error(r, 400, "content_blocked"));
    EXPECT_TRUE(icontains(error_field(r, "message"), "provider_error")) << r.body;
    EXPECT_EQ(paths(s.fake.requests()), std::vector<std::string>{"/v1/moderations"});
  }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/moderations

TEST(Moderation, ModerationsEndpointAnswersInOpenAiShape) {
  Stack s(kWeaponsAndEmail);
  auto r = http("POST", s.port(), "/v1/moderations", R"({"input":["clean","mail me a@b.com"]})");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto answer = r.json();
  EXPECT_EQ(answer["id"].get<std::string>().rfind("modr-", 0), 0u) << answer.dump();
  EXPECT_TRUE(answer["model"].is_string() && !answer["model"].get<std::string>().empty());
  ASSERT_EQ(answer["results"].size(), 2u) << answer.dump();
  json clean = answer["results"][0];
  EXPECT_EQ(clean["flagged"], false);
  EXPECT_EQ(clean["categories"], json::object());
  EXPECT_EQ(clean["category_scores"], json::object());
  EXPECT_EQ(clean["action"], "allow");
  json mail = answer["results"][1];
  EXPECT_EQ(mail["flagged"], true);
  EXPECT_EQ(mail["categories"], json({{"pii_email", true}}));
  EXPECT_TRUE(mail["category_scores"]["pii_email"].is_number()) << mail.dump();
  EXPECT_EQ(mail["action"], "redact");
  EXPECT_EQ(mail["redacted"], "mail me [REDACTED:pii_email]");

  r = http("POST", s.port(), "/v1/moderations", R"({"input":"a bazooka","model":"any"})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["results"][0]["categories"], json({{"weapons", true}}));
  EXPECT_EQ(r.json()["results"][0]["action"], "block");
  EXPECT_EQ(s.fake.calls(), 0) << "no provider is configured: the rules answer alone";
}

TEST(Moderation, ModerationsEndpointRejectsBadBodiesAndNeedsModeration) {
  {
    Stack s(kWeaponsAndEmail);
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"input":["fine",5]})", "input[1]"},
        {R"({"input":5})", "input"},
        {R"({"input":[]})", "input"},
        {R"({})", "input"},
        {R"({"input":"x","model":7})", "model"},
        {R"({"input":"x","colour":"red"})", "colour"},
    };
    for (const auto& [body, param] : bad) {
      SCOPED_TRACE(body);
      auto r = http("POST", s.port(), "/v1/moderations", body);
      EXPECT_TRUE(is_error(r, 400, "invalid_field"));
      EXPECT_EQ(error_field(r, "param"), param) << r.body;
    }
  }
  // Without a `moderation:` section there is nothing to answer with.
  ParleyProcess plain;
  auto r = http("POST", plain.port(), "/v1/moderations", R"({"input":"hello"})");
  EXPECT_TRUE(is_error(r, 404, "moderation_not_configured"));
}

// ---------------------------------------------------------------------------------------------
// Logs and metrics

TEST(Moderation, DecisionsAreLoggedAndCountedWithoutTheText) {
  Stack s(kWeaponsAndEmail);
  const auto sid = new_session(s.port());
  const std::string marker = "nightjar-7731";
  auto blocked =
      http("POST", s.port(), messages_path(sid), turn_request("Get me a bazooka for " + marker));
  ASSERT_TRUE(is_error(blocked, 400, "content_blocked"));
  ASSERT_EQ(
      http("POST", s.port(), messages_path(sid), turn_request("Status of " + marker + "?")).status,
      200);
  ASSERT_EQ(http("POST", s.port(), messages_path(sid),
                 turn_request("Mail jane.doe@example.com about " + marker))
                .status,
            200);

  // One decision for the blocked turn; input and output for each of the other two.
  auto log = wait_for_decisions(s.port(), 5);
  EXPECT_EQ(log.body.find(marker), std::string::npos) << "message text in the log\n" << log.body;
  EXPECT_EQ(log.body.find("bazooka"), std::string::npos) << log.body;
  EXPECT_EQ(log.body.find("jane.doe@example.com"), std::string::npos) << log.body;

  auto block = decisions_where(log, "input", "block");
  ASSERT_EQ(block.size(), 1u) << log.body;
  EXPECT_EQ(block[0]["object"], "moderation.decision");
  EXPECT_EQ(block[0]["source"], "rules");
  EXPECT_EQ(block[0]["session_id"], sid);
  EXPECT_EQ(block[0]["user_id"], "u1");
  EXPECT_EQ(block[0]["request_id"], blocked.header("X-Request-Id").value_or("?"));
  EXPECT_EQ(block[0]["findings"],
            json::array({{{"category", "weapons"}, {"action", "block"}, {"count", 1}}}));
  auto redact = decisions_where(log, "input", "redact");
  ASSERT_EQ(redact.size(), 1u) << log.body;
  EXPECT_EQ(redact[0]["findings"],
            json::array({{{"category", "pii_email"}, {"action", "redact"}, {"count", 1}}}));
  auto clean_input = decisions_where(log, "input", "allow");
  ASSERT_EQ(clean_input.size(), 1u) << log.body;
  EXPECT_EQ(clean_input[0]["findings"], json::array());
  EXPECT_EQ(decisions_where(log, "output", "allow").size(), 2u) << log.body;

  // Filters.
  auto only_blocks = moderation_log(s.port(), "?action=block").json();
  ASSERT_EQ(only_blocks["data"].size(), 1u) << only_blocks.dump();
  EXPECT_EQ(only_blocks["data"][0]["id"], block[0]["id"]);
  EXPECT_TRUE(moderation_log(s.port(), "?user_id=nobody").json()["data"].empty());
  EXPECT_TRUE(is_error(moderation_log(s.port(), "?action=shred"), 400, "invalid_field"));

  // Every decision counted once, by stage, category and action.
  EXPECT_EQ(decisions_counted(s.port(), "input", "weapons", "block"), 1.0);
  EXPECT_EQ(decisions_counted(s.port(), "input", "pii_email", "redact"), 1.0);
  EXPECT_EQ(decisions_counted(s.port(), "input", "none", "allow"), 1.0);
  EXPECT_EQ(decisions_counted(s.port(), "output", "none", "allow"), 2.0);
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST(Moderation, ProviderMustNameAnOpenAiCompatibleProvider) {
  TempDir dir("parley-moderation-config");
  const std::string providers =
      "providers:\n"
      "  fake:\n"
      "    type: openai\n"
      "    base_url: http://127.0.0.1:9/v1\n"
      "    api_key: sk-fake-key\n"
      "    models: [fake-model]\n"
      "  fakeant:\n"
      "    type: anthropic\n"
      "    base_url: http://127.0.0.1:9\n"
      "    api_key: sk-ant-fake\n"
      "    models: [claude-fake]\n";
  auto config_naming = [&](const std::string& name) {
    return dir.write_file(name + ".yaml",
                          providers + "moderation:\n  provider: {name: " + name + "}\n");
  };
  // Lines of stderr that name the key.
  auto problem_lines = [](const CommandResult& r) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < r.err.size()) {
      auto end = r.err.find('\n', start);
      if (end == std::string::npos) end = r.err.size();
      std::string line = r.err.substr(start, end - start);
      if (line.find("moderation.provider.name") != std::string::npos) out.push_back(line);
      start = end + 1;
    }
    return out;
  };

  auto ok = run_parley({"check-config", "--config", config_naming("fake")});
  EXPECT_EQ(ok.exit_code(), 0) << "an OpenAI-compatible provider is accepted\n" << ok.describe();

  for (const auto& [name, why] : std::vector<std::pair<std::string, std::string>>{
           {"nowhere", "not configured"}, {"fakeant", "anthropic"}}) {
    SCOPED_TRACE(name);
    auto r = run_parley({"check-config", "--config", config_naming(name)});
    ASSERT_TRUE(r.status.has_value()) << r.describe();
    EXPECT_NE(r.exit_code(), 0) << r.describe();
    auto lines = problem_lines(r);
    ASSERT_EQ(lines.size(), 1u) << r.describe();
    EXPECT_NE(lines[0].find(name), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(why), std::string::npos) << lines[0];
  }

  // `serve` refuses it too, in the configuration phase, before anything starts.
  TempDir data;
  auto r = run_parley({"serve", "--listen", "127.0.0.1:0", "--data-dir", data.path(), "--config",
                       config_naming("fakeant")},
                      {.timeout = Millis{10000}});
  ASSERT_FALSE(r.timed_out) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("'configuration'"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("moderation.provider.name"), std::string::npos) << r.describe();
}

TEST(Moderation, InvalidPatternFailsTheConfigurationCheck) {
  TempDir dir("parley-moderation-config");
  auto file = dir.write_file("bad.yaml",
                             "moderation:\n"
                             "  categories:\n"
                             "    secrets: {patterns: ['(unclosed']}\n");
  auto r = run_parley({"check-config", "--config", file});
  ASSERT_TRUE(r.status.has_value()) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("patterns"), std::string::npos) << "the problem names the key\n"
                                                       << r.describe();
}

}  // namespace
}  // namespace parley_it
