// The providers' wire formats (openai_wire, anthropic_wire): the request bodies Parley sends and
// how replies and stream events are read back. No network: the bodies and events are the
// documented shapes of OpenAI's Chat Completions and Anthropic's Messages API, written out.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llm/anthropic/anthropic_wire.hpp"
#include "llm/openai/openai_wire.hpp"
#include "llm/sse.hpp"

namespace {

using nlohmann::json;
using parley::ErrorCode;
using parley::llm::ChatRequest;
using parley::llm::Completion;
using parley::llm::Delta;
using parley::llm::Message;
using parley::llm::SseEvent;
using parley::llm::SseParser;
namespace openai_wire = parley::llm::openai_wire;
namespace anthropic_wire = parley::llm::anthropic_wire;

Message message(std::string role, std::string content) {
  Message m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

// A user asks, the assistant calls a tool, the tool answers: the turn shapes both providers
// must translate.
ChatRequest tool_conversation() {
  ChatRequest request;
  request.model = "gpt-4o-mini";
  request.messages.push_back(message("system", "Be brief."));
  Message user = message("user", "Weather in Paris?");
  user.name = "alice";
  request.messages.push_back(user);
  Message call = message("assistant", "");
  call.tool_calls.push_back({"call_1", "get_weather", R"({"city":"Paris"})"});
  request.messages.push_back(call);
  Message result = message("tool", R"({"temp_c":18})");
  result.tool_call_id = "call_1";
  request.messages.push_back(result);
  return request;
}

const json kWeatherTool = json::parse(R"({
  "type": "function",
  "function": {
    "name": "get_weather",
    "description": "Weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}
  }
})");

// --- OpenAI: request ---------------------------------------------------------------------------

TEST(OpenAiWireTest, RequestBodyCarriesTheConversation) {
  ChatRequest request = tool_conversation();
  request.user = "user-42";
  request.temperature = 0.5;
  request.max_tokens = 256;
  request.stop = {"END"};
  const json body = openai_wire::request_body(request, /*stream=*/false, /*stream_usage=*/true);

  EXPECT_EQ(body.at("model"), "gpt-4o-mini");
  const json& messages = body.at("messages");
  ASSERT_EQ(messages.size(), 4u) << messages;
  EXPECT_EQ(messages[0], json::parse(R"({"role":"system","content":"Be brief."})"));
  EXPECT_EQ(messages[1],
            json::parse(R"({"role":"user","content":"Weather in Paris?","name":"alice"})"));
  // An assistant turn that only calls tools has null content, as OpenAI sends it.
  EXPECT_EQ(messages[2], json::parse(R"({"role":"assistant","content":null,"tool_calls":[
      {"id":"call_1","type":"function",
       "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]})"));
  EXPECT_EQ(messages[3], json::parse(R"({"role":"tool","content":"{\"temp_c\":18}",
                                         "tool_call_id":"call_1"})"));
  EXPECT_EQ(body.at("temperature"), 0.5);
  EXPECT_EQ(body.at("max_tokens"), 256);
  EXPECT_EQ(body.at("stop"), json::array({"END"}));
  EXPECT_EQ(body.at("user"), "user-42");
  EXPECT_EQ(body.at("stream"), false);
  EXPECT_FALSE(body.contains("stream_options")) << body;
  EXPECT_FALSE(body.contains("tools")) << "no tools were given: " << body;
  EXPECT_FALSE(body.contains("tool_choice")) << body;
  EXPECT_FALSE(body.contains("top_p")) << body;
}

TEST(OpenAiWireTest, RequestBodyLeavesOutAnEmptyUser) {
  ChatRequest request;
  request.model = "m";
  request.messages.push_back(message("user", "hi"));
  const json body = openai_wire::request_body(request, false, false);
  EXPECT_FALSE(body.contains("user")) << body;
  EXPECT_EQ(body.at("messages"), json::parse(R"([{"role":"user","content":"hi"}])"));
}

TEST(OpenAiWireTest, AsksForUsageOnlyWhenStreamingWithStreamUsage) {
  ChatRequest request;
  request.model = "m";
  request.messages.push_back(message("user", "hi"));
  // The client's own stream_options must not reach a call that does not stream.
  request.extra = {{"stream_options", {{"include_usage", false}}}};

  const json streamed = openai_wire::request_body(request, true, true);
  EXPECT_EQ(streamed.at("stream"), true);
  EXPECT_EQ(streamed.at("stream_options"), json::object({{"include_usage", true}}));

  const json without_usage = openai_wire::request_body(request, true, false);
  EXPECT_EQ(without_usage.at("stream"), true);
  EXPECT_FALSE(without_usage.contains("stream_options")) << without_usage;

  const json unstreamed = openai_wire::request_body(request, false, true);
  EXPECT_EQ(unstreamed.at("stream"), false);
  EXPECT_FALSE(unstreamed.contains("stream_options")) << unstreamed;
}

TEST(OpenAiWireTest, RequestBodyPassesExtraFieldsThrough) {
  ChatRequest request;
  request.model = "m";
  request.messages.push_back(message("user", "hi"));
  request.tools = json::array({kWeatherTool});
  request.tool_choice = "required";
  // Fields Parley has no name for go to the provider as they are; the ones it does own win.
  request.extra = json::parse(
      R"({"seed":7,"response_format":{"type":"json_object"},"logprobs":true,
          "model":"not-this-one","messages":[]})");
  const json body = openai_wire::request_body(request, false, false);
  EXPECT_EQ(body.at("seed"), 7);
  EXPECT_EQ(body.at("response_format"), json::parse(R"({"type":"json_object"})"));
  EXPECT_EQ(body.at("logprobs"), true);
  EXPECT_EQ(body.at("model"), "m");
  EXPECT_EQ(body.at("messages").size(), 1u);
  // OpenAI-shaped tools need no translation.
  EXPECT_EQ(body.at("tools"), json::array({kWeatherTool}));
  EXPECT_EQ(body.at("tool_choice"), "required");
}

// --- OpenAI: complete replies ------------------------------------------------------------------

TEST(OpenAiWireTest, ParsesACompletion) {
  Completion out;
  auto parsed = openai_wire::parse_completion(R"({
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
      "role": "assistant", "content": "Checking.",
      "tool_calls": [{"id": "call_a", "type": "function",
                      "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}})",
                                              out);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(out.id, "chatcmpl-1");
  EXPECT_EQ(out.model, "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(out.content, "Checking.");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].id, "call_a");
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(out.finish_reason, "tool_calls");
  EXPECT_EQ(out.usage.input_tokens, 12);
  EXPECT_EQ(out.usage.output_tokens, 5);
  EXPECT_TRUE(out.usage.reported);
}

TEST(OpenAiWireTest, ACompletionWithNullContentAndNoFinishReason) {
  Completion out;
  auto parsed = openai_wire::parse_completion(
      R"({"choices":[{"message":{"role":"assistant","content":null}}]})", out);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(out.content, "");
  EXPECT_EQ(out.finish_reason, "stop");
  // No usage in the reply: the counts are Parley's to estimate.
  EXPECT_FALSE(out.usage.reported);
}

TEST(OpenAiWireTest, AnErrorOrNonsenseInsteadOfACompletionIsABadGateway) {
  for (const char* body :
       {R"({"error":{"message":"The model is overloaded","type":"server_error"}})",
        "<html>502 Bad Gateway</html>", "", R"({"id":"x","choices":[]})", R"([1,2])",
        R"({"choices":[{"index":0}]})"}) {
    Completion out;
    auto parsed = openai_wire::parse_completion(body, out);
    ASSERT_FALSE(parsed.ok()) << body;
    EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway) << body;
  }
  Completion out;
  auto parsed = openai_wire::parse_completion(R"({"error":{"message":"overloaded"}})", out);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, "upstream_error");
}

// --- OpenAI: streams ---------------------------------------------------------------------------

// Reads `chunks` in order, none of which may fail or be the end marker; returns the deltas.
std::vector<Delta> read_chunks(const std::vector<std::string>& chunks, Completion& out) {
  std::vector<Delta> deltas;
  for (const auto& chunk : chunks) {
    Delta delta;
    auto parsed = openai_wire::parse_chunk(chunk, out, delta);
    EXPECT_TRUE(parsed.ok()) << chunk << ": " << parsed.error().message;
    if (parsed.ok()) {
      EXPECT_FALSE(parsed.value()) << chunk;
    }
    deltas.push_back(std::move(delta));
  }
  return deltas;
}

TEST(OpenAiWireTest, ContentDeltasAccumulate) {
  Completion out;
  // The shape OpenAI streams with include_usage: "usage" is null until a last chunk with no
  // choices carries it.
  const std::vector<std::string> content = {
      R"({"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,
          "delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null})",
      R"({"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,
          "delta":{"content":"Hel"},"finish_reason":null}],"usage":null})",
      R"({"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,
          "delta":{"content":"lo"},"finish_reason":null}],"usage":null})",
  };
  auto deltas = read_chunks(content, out);
  ASSERT_EQ(deltas.size(), 3u);
  EXPECT_EQ(deltas[0].content, "");
  EXPECT_EQ(deltas[1].content, "Hel");
  EXPECT_EQ(deltas[2].content, "lo");
  EXPECT_EQ(out.content, "Hello");
  EXPECT_EQ(out.id, "chatcmpl-9");
  EXPECT_EQ(out.model, "gpt-4o-mini");
  EXPECT_EQ(out.finish_reason, "") << "a null finish_reason is not a finish";
  EXPECT_FALSE(out.usage.reported) << "a null usage is not a report";

  const std::vector<std::string> ending = {
      R"({"id":"chatcmpl-9","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
          "usage":null})",
      R"({"id":"chatcmpl-9","choices":[],
          "usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})",
  };
  deltas = read_chunks(ending, out);
  EXPECT_EQ(out.finish_reason, "stop");
  EXPECT_EQ(out.content, "Hello");
  EXPECT_TRUE(out.usage.reported);
  EXPECT_EQ(out.usage.input_tokens, 9);
  EXPECT_EQ(out.usage.output_tokens, 2);
  for (const auto& d : deltas) EXPECT_TRUE(d.content.empty() && d.tool_calls.empty());

  Delta delta;
  auto done = openai_wire::parse_chunk("[DONE]", out, delta);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done.value());
  EXPECT_EQ(out.content, "Hello");
}

TEST(OpenAiWireTest, ToolCallDeltasAccumulateByIndex) {
  Completion out;
  // Two calls, the second starting before the first's arguments are complete.
  const std::vector<std::string> chunks = {
      R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[
          {"index":0,"id":"call_1","type":"function",
           "function":{"name":"get_weather","arguments":""}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[
          {"index":0,"function":{"arguments":"{\"ci"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[
          {"index":1,"id":"call_2","type":"function",
           "function":{"name":"get_time","arguments":"{}"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[
          {"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
  };
  auto deltas = read_chunks(chunks, out);
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].id, "call_1");
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(out.tool_calls[1].id, "call_2");
  EXPECT_EQ(out.tool_calls[1].name, "get_time");
  EXPECT_EQ(out.tool_calls[1].arguments, "{}");
  EXPECT_EQ(out.finish_reason, "tool_calls");
  EXPECT_EQ(out.content, "") << "null content adds nothing";

  // Each delta carries its own piece, tagged with the call's index.
  ASSERT_EQ(deltas.size(), 5u);
  ASSERT_EQ(deltas[1].tool_calls.size(), 1u);
  EXPECT_EQ(deltas[1].tool_calls[0].index, 0);
  EXPECT_EQ(deltas[1].tool_calls[0].arguments, "{\"ci");
  EXPECT_EQ(deltas[1].tool_calls[0].id, "");
  ASSERT_EQ(deltas[2].tool_calls.size(), 1u);
  EXPECT_EQ(deltas[2].tool_calls[0].index, 1);
  EXPECT_EQ(deltas[2].tool_calls[0].id, "call_2");
  EXPECT_EQ(deltas[2].tool_calls[0].name, "get_time");
}

TEST(OpenAiWireTest, AnErrorChunkIsAStreamError) {
  Completion out;
  Delta delta;
  auto parsed = openai_wire::parse_chunk(
      R"({"error":{"message":"The server had an error","type":"server_error"}})", out, delta);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway);
  EXPECT_EQ(parsed.error().reason, "upstream_stream_error");
  EXPECT_NE(parsed.error().message.find("The server had an error"), std::string::npos)
      << parsed.error().message;
}

TEST(OpenAiWireTest, MalformedChunksAreErrors) {
  for (const char* chunk : {"not json", "", "[1]", "\"text\"", "{\"choices\":[",
                            // Tool call indexes outside what a reply can hold.
                            R"({"choices":[{"delta":{"tool_calls":[{"index":128}]}}]})",
                            R"({"choices":[{"delta":{"tool_calls":[{"index":-1}]}}]})",
                            R"({"choices":[{"delta":{"tool_calls":[{"index":3000000000}]}}]})"}) {
    Completion out;
    Delta delta;
    auto parsed = openai_wire::parse_chunk(chunk, out, delta);
    ASSERT_FALSE(parsed.ok()) << chunk;
    EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway) << chunk;
    EXPECT_TRUE(out.tool_calls.empty()) << chunk;
  }
}

// The chunk is the upstream's: an index that is not a small integer must come back as an error,
// never as an exception thrown through the provider's coroutine, nor wrapped into range (2^32
// read as an int is 0, and would append to the first call).
TEST(OpenAiWireTest, AToolCallIndexThatIsNotASmallIntegerIsAnError) {
  for (const char* chunk : {R"({"choices":[{"delta":{"tool_calls":[{"index":"0"}]}}]})",
                            R"({"choices":[{"delta":{"tool_calls":[{"index":null}]}}]})",
                            R"({"choices":[{"delta":{"tool_calls":[{"index":4294967296}]}}]})"}) {
    Completion out;
    Delta delta;
    EXPECT_NO_THROW({
      auto parsed = openai_wire::parse_chunk(chunk, out, delta);
      EXPECT_FALSE(parsed.ok()) << chunk;
    }) << chunk;
  }
}

// --- Anthropic: request ------------------------------------------------------------------------

TEST(AnthropicWireTest, RequestBodyTranslatesTheConversation) {
  ChatRequest request;
  request.model = "claude-sonnet-4-5";
  request.messages.push_back(message("system", "Be brief."));
  request.messages.push_back(message("developer", "Answer in French."));
  request.messages.push_back(message("user", "Weather in Paris?"));
  request.messages.push_back(message("user", "And in Rome?"));
  Message call = message("assistant", "Let me check.");
  call.tool_calls.push_back({"toolu_1", "get_weather", R"({"city":"Paris"})"});
  request.messages.push_back(call);
  Message result = message("tool", "18C");
  result.tool_call_id = "toolu_1";
  request.messages.push_back(result);
  request.messages.push_back(message("user", "Thanks"));
  request.stop = {"END"};
  request.temperature = 0.2;
  request.extra = {{"seed", 1}};

  const json body = anthropic_wire::request_body(request, /*stream=*/false, 4096);
  EXPECT_EQ(body.at("model"), "claude-sonnet-4-5");
  // System (and developer) messages are not turns: they become the top-level system text.
  EXPECT_EQ(body.at("system"), "Be brief.\n\nAnswer in French.");
  EXPECT_EQ(body.at("max_tokens"), 4096) << "the provider's default when the request sets none";
  // Turns alternate: the two user messages are one turn, and the tool's result opens the user
  // turn that "Thanks" joins.
  EXPECT_EQ(body.at("messages"), json::parse(R"([
    {"role":"user","content":[{"type":"text","text":"Weather in Paris?"},
                              {"type":"text","text":"And in Rome?"}]},
    {"role":"assistant","content":[{"type":"text","text":"Let me check."},
      {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
                              {"type":"text","text":"Thanks"}]}
  ])"))
      << body.at("messages").dump(2);
  EXPECT_EQ(body.at("stop_sequences"), json::array({"END"}));
  EXPECT_EQ(body.at("temperature"), 0.2);
  EXPECT_FALSE(body.contains("stream")) << body;
  EXPECT_FALSE(body.contains("metadata")) << body;
  EXPECT_FALSE(body.contains("tools")) << body;
  // OpenAI-only fields have no meaning here.
  EXPECT_FALSE(body.contains("seed")) << body;
}

TEST(AnthropicWireTest, RequestBodyToolsChoiceUserAndStream) {
  ChatRequest request = tool_conversation();
  request.model = "claude-haiku-4-5";
  request.max_tokens = 100;
  request.user = "user-7";
  request.tools =
      json::array({kWeatherTool, {{"type", "function"}, {"function", {{"name", "now"}}}}});
  request.tool_choice = "required";

  const json body = anthropic_wire::request_body(request, /*stream=*/true, 4096);
  EXPECT_EQ(body.at("max_tokens"), 100);
  EXPECT_EQ(body.at("stream"), true);
  EXPECT_EQ(body.at("metadata"), json::parse(R"({"user_id":"user-7"})"));
  EXPECT_EQ(body.at("tools"), json::parse(R"([
    {"name":"get_weather","description":"Weather by city",
     "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
    {"name":"now","input_schema":{"type":"object","properties":{}}}
  ])"));
  EXPECT_EQ(body.at("tool_choice"), json::parse(R"({"type":"any"})"));
  // The assistant turn that only calls a tool is the tool_use block alone; its arguments are
  // parsed, since Anthropic takes the input as an object.
  EXPECT_EQ(body.at("messages"), json::parse(R"([
    {"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]},
    {"role":"assistant","content":[
      {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"call_1","content":"{\"temp_c\":18}"}]}
  ])"))
      << body.at("messages").dump(2);
  EXPECT_EQ(body.at("system"), "Be brief.");
}

TEST(AnthropicWireTest, ToolChoiceTranslations) {
  ChatRequest request;
  request.model = "m";
  request.messages.push_back(message("user", "hi"));
  request.tools = json::array({kWeatherTool});
  const std::vector<std::pair<json, json>> cases = {
      {"required", {{"type", "any"}}},
      {"auto", {{"type", "auto"}}},
      {"none", {{"type", "none"}}},
      {json::parse(R"({"type":"function","function":{"name":"get_weather"}})"),
       {{"type", "tool"}, {"name", "get_weather"}}},
  };
  for (const auto& [choice, expected] : cases) {
    request.tool_choice = choice;
    EXPECT_EQ(anthropic_wire::request_body(request, false, 1024).at("tool_choice"), expected)
        << choice;
  }
}

TEST(AnthropicWireTest, ToolArgumentsThatAreNotAnObjectBecomeAnEmptyInput) {
  ChatRequest request;
  request.model = "m";
  Message call = message("assistant", "");
  call.tool_calls.push_back({"toolu_1", "get_weather", "{\"city\": \"Par"});
  call.tool_calls.push_back({"toolu_2", "now", "[]"});
  request.messages.push_back(call);
  const json body = anthropic_wire::request_body(request, false, 1024);
  EXPECT_EQ(body.at("messages"), json::parse(R"([{"role":"assistant","content":[
    {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}},
    {"type":"tool_use","id":"toolu_2","name":"now","input":{}}]}])"));
}

// --- Anthropic: complete replies ---------------------------------------------------------------

TEST(AnthropicWireTest, ParsesAMessage) {
  Completion out;
  auto parsed = anthropic_wire::parse_message(R"({
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
      {"type": "text", "text": "Let me "},
      {"type": "text", "text": "check."},
      {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
    ],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 20, "output_tokens": 11}})",
                                              out);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(out.id, "msg_01");
  EXPECT_EQ(out.model, "claude-sonnet-4-5");
  EXPECT_EQ(out.content, "Let me check.");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].id, "toolu_01");
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  // Arguments are JSON text, as OpenAI's clients expect them.
  EXPECT_EQ(json::parse(out.tool_calls[0].arguments), json::parse(R"({"city":"Paris"})"));
  EXPECT_EQ(out.finish_reason, "tool_calls");
  EXPECT_EQ(out.usage.input_tokens, 20);
  EXPECT_EQ(out.usage.output_tokens, 11);
  EXPECT_TRUE(out.usage.reported);
}

TEST(AnthropicWireTest, MapsStopReasonsToOpenAiFinishReasons) {
  for (const auto& [stop, finish] :
       std::vector<std::pair<std::string, std::string>>{{"end_turn", "stop"},
                                                        {"max_tokens", "length"},
                                                        {"tool_use", "tool_calls"},
                                                        {"stop_sequence", "stop"}}) {
    Completion out;
    const std::string body =
        R"({"content":[{"type":"text","text":"x"}],"stop_reason":")" + stop + R"("})";
    auto parsed = anthropic_wire::parse_message(body, out);
    ASSERT_TRUE(parsed.ok()) << body;
    EXPECT_EQ(out.finish_reason, finish) << stop;
  }
  EXPECT_EQ(anthropic_wire::finish_reason("refusal"), "content_filter");
}

TEST(AnthropicWireTest, AnErrorOrNonsenseInsteadOfAMessageIsABadGateway) {
  for (const char* body :
       {R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
        "<html></html>", "", R"({"type":"message"})", "[]"}) {
    Completion out;
    auto parsed = anthropic_wire::parse_message(body, out);
    ASSERT_FALSE(parsed.ok()) << body;
    EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway) << body;
  }
}

// --- Anthropic: streams ------------------------------------------------------------------------

// A tool-using reply as the Messages API streams it, ping included.
const char* const kAnthropicStream = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", world."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}

event: message_stop
data: {"type":"message_stop"}

)sse";

TEST(AnthropicWireTest, ReadsAFullStream) {
  SseParser parser;
  std::vector<SseEvent> events;
  ASSERT_TRUE(parser.feed(kAnthropicStream, events).ok());
  ASSERT_EQ(events.size(), 12u);

  anthropic_wire::StreamState state;
  Completion out;
  std::vector<Delta> deltas;  // the ones a client would be sent
  for (const auto& event : events) {
    EXPECT_FALSE(state.stopped) << "stopped before " << event.event;
    Delta delta;
    auto parsed = anthropic_wire::parse_event(event.event, event.data, state, out, delta);
    ASSERT_TRUE(parsed.ok()) << event.event << ": " << parsed.error().message;
    if (event.event == "message_start") {
      EXPECT_EQ(out.usage.input_tokens, 25);
      EXPECT_TRUE(out.usage.reported);
    }
    if (!delta.content.empty() || !delta.tool_calls.empty()) deltas.push_back(std::move(delta));
  }
  EXPECT_TRUE(state.stopped);
  EXPECT_EQ(out.id, "msg_01");
  EXPECT_EQ(out.model, "claude-sonnet-4-5");
  EXPECT_EQ(out.content, "Hello, world.");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].id, "toolu_01");
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(out.finish_reason, "tool_calls");
  // Input counted at the start, output at the end; the end does not erase the start's count.
  EXPECT_EQ(out.usage.input_tokens, 25);
  EXPECT_EQ(out.usage.output_tokens, 42);

  ASSERT_EQ(deltas.size(), 5u);
  EXPECT_EQ(deltas[0].content, "Hello");
  EXPECT_EQ(deltas[1].content, ", world.");
  // The tool call is announced with its id and name, as OpenAI's first tool call delta is.
  ASSERT_EQ(deltas[2].tool_calls.size(), 1u);
  EXPECT_EQ(deltas[2].tool_calls[0].index, 0) << "the first tool call, though block 1";
  EXPECT_EQ(deltas[2].tool_calls[0].id, "toolu_01");
  EXPECT_EQ(deltas[2].tool_calls[0].name, "get_weather");
  ASSERT_EQ(deltas[3].tool_calls.size(), 1u);
  EXPECT_EQ(deltas[3].tool_calls[0].index, 0);
  EXPECT_EQ(deltas[3].tool_calls[0].arguments, "{\"city\": ");
  ASSERT_EQ(deltas[4].tool_calls.size(), 1u);
  EXPECT_EQ(deltas[4].tool_calls[0].arguments, "\"Paris\"}");
}

TEST(AnthropicWireTest, PingIsIgnored) {
  anthropic_wire::StreamState state;
  Completion out;
  Delta delta;
  ASSERT_TRUE(anthropic_wire::parse_event("ping", R"({"type": "ping"})", state, out, delta).ok());
  EXPECT_TRUE(delta.content.empty() && delta.tool_calls.empty());
  EXPECT_FALSE(state.stopped);
  EXPECT_EQ(out.content, "");
}

TEST(AnthropicWireTest, TheEventNameStandsInForAMissingType) {
  anthropic_wire::StreamState state;
  Completion out;
  Delta delta;
  ASSERT_TRUE(anthropic_wire::parse_event("message_stop", "{}", state, out, delta).ok());
  EXPECT_TRUE(state.stopped);
}

TEST(AnthropicWireTest, ErrorEventsMapToRetryableCodes) {
  struct Case {
    const char* type;
    ErrorCode code;
  };
  for (const Case& c : {Case{"overloaded_error", ErrorCode::kUnavailable},
                        Case{"rate_limit_error", ErrorCode::kTooManyRequests},
                        Case{"api_error", ErrorCode::kBadGateway}}) {
    anthropic_wire::StreamState state;
    Completion out;
    Delta delta;
    const std::string data =
        R"({"type":"error","error":{"type":")" + std::string(c.type) + R"(","message":"Busy"}})";
    auto parsed = anthropic_wire::parse_event("error", data, state, out, delta);
    ASSERT_FALSE(parsed.ok()) << c.type;
    EXPECT_EQ(parsed.error().code, c.code) << c.type;
    EXPECT_NE(parsed.error().message.find("Busy"), std::string::npos) << parsed.error().message;
  }
}

TEST(AnthropicWireTest, ToolInputForABlockThatIsNotAToolCallIsAnError) {
  anthropic_wire::StreamState state;
  Completion out;
  Delta delta;
  ASSERT_TRUE(
      anthropic_wire::parse_event(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
          state, out, delta)
          .ok());
  for (const char* index : {"0", "1", "-1"}) {
    const std::string data = R"({"type":"content_block_delta","index":)" + std::string(index) +
                             R"(,"delta":{"type":"input_json_delta","partial_json":"{}"}})";
    auto parsed = anthropic_wire::parse_event("content_block_delta", data, state, out, delta);
    ASSERT_FALSE(parsed.ok()) << data;
    EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway) << data;
  }
}

TEST(AnthropicWireTest, AStreamEventThatIsNotJsonIsAnError) {
  anthropic_wire::StreamState state;
  Completion out;
  Delta delta;
  auto parsed = anthropic_wire::parse_event("content_block_delta", "{\"type\":", state, out, delta);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kBadGateway);
}

// As for OpenAI: a block index that is not a small integer is an error, not an exception, nor
// wrapped into range.
TEST(AnthropicWireTest, ABlockIndexThatIsNotASmallIntegerIsAnError) {
  for (const char* data :
       {R"({"type":"content_block_start","index":"0","content_block":{"type":"text","text":""}})",
        R"({"type":"content_block_delta","index":null,"delta":{"type":"text_delta","text":"x"}})",
        R"({"type":"content_block_start","index":4294967296,
            "content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}})"}) {
    anthropic_wire::StreamState state;
    Completion out;
    Delta delta;
    EXPECT_NO_THROW({
      auto parsed = anthropic_wire::parse_event("", data, state, out, delta);
      EXPECT_FALSE(parsed.ok()) << data;
    }) << data;
  }
}

}  // namespace
