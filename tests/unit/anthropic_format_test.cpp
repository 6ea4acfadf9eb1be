// Anthropic's Messages API read and written (api/anthropic_format.hpp): a request into Parley's
// OpenAI-shaped chat request, field by field; refusals naming the field; the reply, the stream's
// content blocks in order, and errors in Anthropic's envelope with its statuses.
#include "api/anthropic_format.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/errors.hpp"

namespace {

using nlohmann::json;
namespace format = parley::api::anthropic_format;
using parley::Error;

json body_with(const json& messages) {
  return {{"model", "m"}, {"max_tokens", 100}, {"messages", messages}};
}

TEST(AnthropicFormat, ARequestBecomesOpenAIShapedMessagesToolsAndSettings) {
  json body = body_with(json::array(
      {{{"role", "user"},
        {"content",
         {{{"type", "image"},
           {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", "AAA="}}}},
          {{"type", "text"}, {"text", "What is it?"}}}}},
       {{"role", "assistant"},
        {"content",
         {{{"type", "text"}, {"text", "Checking."}},
          {{"type", "tool_use"}, {"id", "t1"}, {"name", "look"}, {"input", {{"q", "png"}}}}}}},
       {{"role", "user"},
        {"content",
         {{{"type", "text"}, {"text", "Thanks."}},
          {{"type", "tool_result"}, {"tool_use_id", "t1"}, {"content", "a logo"}},
          {{"type", "tool_result"},
           {"tool_use_id", "t2"},
           {"content", {{{"type", "text"}, {"text", "no"}}}},
           {"is_error", true}}}}}}));
  body["system"] = {{{"type", "text"}, {"text", "One."}}, {{"type", "text"}, {"text", "Two."}}};
  body["tools"] = {{{"name", "look"},
                    {"description", "Looks"},
                    {"input_schema", {{"type", "object"}}},
                    {"cache_control", {{"type", "ephemeral"}}}}};
  body["tool_choice"] = {{"type", "tool"}, {"name", "look"}};
  body["top_k"] = 5;
  body["stop_sequences"] = {"END"};
  body["metadata"] = {{"user_id", "u1"}};
  body["stream"] = true;
  auto parsed = format::parse_request(body);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& r = parsed->request;
  EXPECT_TRUE(parsed->stream);
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_EQ(r.top_k, 5);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.user, "u1");
  ASSERT_EQ(r.messages.size(), 6U);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "One.\n\nTwo.");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].parts[0]["image_url"]["url"], "data:image/png;base64,AAA=");
  EXPECT_EQ(r.messages[1].content, "What is it?");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[2].content, "Checking.");
  ASSERT_EQ(r.messages[2].tool_calls.size(), 1U);
  EXPECT_EQ(r.messages[2].tool_calls[0].arguments, R"({"q":"png"})");
  // Tool results first, as OpenAI's order wants them; the user's text after.
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].tool_call_id, "t1");
  EXPECT_EQ(r.messages[3].content, "a logo");
  EXPECT_EQ(r.messages[4].content, "Error: no");
  EXPECT_EQ(r.messages[5].role, "user");
  EXPECT_EQ(r.messages[5].content, "Thanks.");
  EXPECT_TRUE(r.messages[5].parts.is_null());
  EXPECT_EQ(r.tools[0]["function"]["name"], "look");
  EXPECT_EQ(r.tools[0]["function"]["parameters"], json({{"type", "object"}}));
  EXPECT_EQ(r.tool_choice, json({{"type", "function"}, {"function", {{"name", "look"}}}}));
}

TEST(AnthropicFormat, WhatCannotBeHonouredIsRefusedByName) {
  const auto refused = [](json body) -> std::string {
    auto parsed = format::parse_request(body);
    return parsed.ok() ? "" : parsed.error().param;
  };
  const json hi = json::array({{{"role", "user"}, {"content", "Hi"}}});
  EXPECT_EQ(refused({{"max_tokens", 1}, {"messages", hi}}), "model");
  EXPECT_EQ(refused({{"model", "m"}, {"messages", hi}}), "max_tokens");
  EXPECT_EQ(refused({{"model", "m"}, {"max_tokens", 0}, {"messages", hi}}), "max_tokens");
  EXPECT_EQ(refused(body_with(json::array())), "messages");
  json b = body_with(hi);
  b["container"] = "x";
  EXPECT_EQ(refused(b), "container");
  b = body_with(hi);
  b["thinking"] = {{"type", "enabled"}, {"budget_tokens", 1024}};
  EXPECT_EQ(refused(b), "thinking");
  b["thinking"] = {{"type", "disabled"}};
  EXPECT_EQ(refused(b), "");
  b = body_with(hi);
  b["tools"] = {{{"type", "web_search_20250305"}, {"name", "web_search"}}};
  EXPECT_EQ(refused(b), "tools[0].type");
  b = body_with(hi);
  b["temperature"] = 1.5;
  EXPECT_EQ(refused(b), "temperature");
  EXPECT_EQ(refused(body_with({{{"role", "system"}, {"content", "x"}}})), "messages[0].role");
  EXPECT_EQ(refused(body_with({{{"role", "user"}, {"content", {{{"type", "document"}}}}}})),
            "messages[0].content[0].type");
  EXPECT_EQ(refused(body_with({{{"role", "user"}, {"content", {{{"type", "tool_result"}}}}}})),
            "messages[0].content[0].tool_use_id");
  // Booleans of the wrong type are the caller's mistake, never a fault here.
  EXPECT_EQ(
      refused(body_with(
          {{{"role", "user"},
            {"content", {{{"type", "tool_result"}, {"tool_use_id", "t"}, {"is_error", 1}}}}}})),
      "messages[0].content[0].is_error");
  json serial = body_with(hi);
  serial["tool_choice"] = {{"type", "auto"}, {"disable_parallel_tool_use", "yes"}};
  EXPECT_EQ(refused(serial), "tool_choice.disable_parallel_tool_use");
  EXPECT_EQ(refused(body_with({{{"role", "user"},
                                {"content",
                                 {{{"type", "tool_result"},
                                   {"tool_use_id", "t"},
                                   {"content", {{{"type", "image"}}}}}}}}})),
            "messages[0].content[0].content[0]");
  // count_tokens takes neither max_tokens nor stream.
  EXPECT_TRUE(format::parse_request({{"model", "m"}, {"messages", hi}}, true).ok());
}

TEST(AnthropicFormat, TheReplyAndItsStreamAreAnthropicsBlocks) {
  parley::llm::Completion c;
  c.content = "Here.";
  c.tool_calls.push_back({"call_1", "look", R"({"q":1})"});
  c.finish_reason = "tool_calls";
  c.usage = {12, 3, true};
  const json m = format::message_json("msg_1", "gpt", c);
  EXPECT_EQ(m["content"], json::parse(R"([{"type":"text","text":"Here."},
      {"type":"tool_use","id":"call_1","name":"look","input":{"q":1}}])"));
  EXPECT_EQ(m["stop_reason"], "tool_use");
  EXPECT_EQ(m["usage"], json({{"input_tokens", 12}, {"output_tokens", 3}}));
  EXPECT_EQ(format::stop_reason("length"), "max_tokens");
  EXPECT_EQ(format::stop_reason("stop"), "end_turn");

  // Text, then two tool calls streamed in pieces: a block each, opened and closed in order.
  format::StreamWriter writer;
  std::string out;
  parley::llm::Delta text;
  text.content = "Hi";
  writer.delta(text, out);
  writer.delta(text, out);
  parley::llm::Delta first;
  first.tool_calls.push_back({0, "c0", "a", ""});
  writer.delta(first, out);
  parley::llm::Delta args;
  args.tool_calls.push_back({0, "", "", R"({"x":)"});
  writer.delta(args, out);
  parley::llm::Delta second;
  second.tool_calls.push_back({1, "", "b", "{}"});  // an upstream that gave no id
  writer.delta(second, out);
  writer.close(out);
  std::vector<std::string> seen;
  size_t at = 0;
  while ((at = out.find("data: ", at)) != std::string::npos) {
    const size_t end = out.find('\n', at);
    const json e = json::parse(out.substr(at + 6, end - at - 6));
    std::string line = e["type"].get<std::string>() + "@" + std::to_string(e.value("index", -1));
    if (e.contains("content_block")) line += ":" + e["content_block"]["type"].get<std::string>();
    if (e.contains("delta")) line += ":" + e["delta"]["type"].get<std::string>();
    seen.push_back(line);
    at = end;
  }
  EXPECT_NE(out.find(R"("id":"toolu_parley_1")"), std::string::npos) << out;
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "content_block_start@0:text", "content_block_delta@0:text_delta",
                      "content_block_delta@0:text_delta", "content_block_stop@0",
                      "content_block_start@1:tool_use", "content_block_delta@1:input_json_delta",
                      "content_block_stop@1", "content_block_start@2:tool_use",
                      "content_block_delta@2:input_json_delta", "content_block_stop@2"}));
}

TEST(AnthropicFormat, ErrorsTakeAnthropicsTypesAndStatuses) {
  const auto of = [](const Error& e) {
    auto a = format::error_json(e);
    return std::to_string(a.status) + " " + a.body["error"]["type"].get<std::string>();
  };
  EXPECT_EQ(of(Error::invalid_field("x", "bad")), "400 invalid_request_error");
  EXPECT_EQ(of(Error::unauthenticated("who?", "missing_credentials")), "401 authentication_error");
  EXPECT_EQ(of(Error::permission_denied("no", "denied")), "403 permission_error");
  EXPECT_EQ(of(Error::not_found("none", "x_not_found")), "404 not_found_error");
  EXPECT_EQ(of(Error::unavailable("busy", "upstream_overloaded")), "529 overloaded_error");
  EXPECT_EQ(of(Error::bad_gateway("broke", "upstream_error")), "502 api_error");
  // Only Parley's own envelope is rewritten; the message stays, the rest goes.
  auto rewritten = format::to_anthropic_error(
      parley::http::error_response(Error::invalid_field("x", "x is wrong"), "req1"));
  EXPECT_EQ(json::parse(rewritten.body),
            json::parse(R"({"type":"error","error":{"type":"invalid_request_error",
                            "message":"x is wrong"}})"));
  parley::http::Response ok;
  ok.body = R"({"error":"not an envelope but a 200"})";
  EXPECT_EQ(format::to_anthropic_error(ok).body, ok.body);
  parley::http::Response theirs = parley::http::Response::json(
      529, json::parse(R"({"type":"error","error":{"type":"overloaded_error","message":"x"}})"));
  EXPECT_EQ(format::to_anthropic_error(theirs).body, theirs.body);
  parley::http::Response not_envelope = parley::http::Response::json(400, json{{"detail", "x"}});
  EXPECT_EQ(format::to_anthropic_error(not_envelope).body, not_envelope.body);
  EXPECT_EQ(of(Error::deadline("slow", "upstream_timeout")), "504 timeout_error");
  EXPECT_EQ(of(Error::invalid("no such model", "model_not_found")), "404 not_found_error");
  // The field at fault leads the message.
  EXPECT_EQ(format::error_json(Error::invalid_field("messages[0].content", "content is required"))
                .body["error"]["message"],
            "messages[0].content: content is required");
}

}  // namespace
