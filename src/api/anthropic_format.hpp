// Anthropic's Messages API as a way in (api/anthropic_messages.hpp): its request read into
// Parley's chat request (llm/types.hpp, OpenAI's shapes), and Parley's reply, stream pieces and
// errors written in Anthropic's shapes. Pure functions, so that the tests and the fuzzer reach
// them directly. (llm/anthropic/ is the other direction: Parley calling Anthropic.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "http/message.hpp"
#include "llm/types.hpp"

namespace parley::api::anthropic_format {

struct ParsedMessages {
  std::string model;
  llm::ChatRequest request;  // messages (system first), sampling, stop, tools in OpenAI's shapes
  bool stream = false;
};

// A POST /v1/messages body. `for_count` reads a count_tokens body (no max_tokens, no stream).
// Every field Anthropic documents that Parley cannot honour is refused with a 400 naming it;
// unknown fields are refused as Anthropic refuses them.
Result<ParsedMessages> parse_request(const nlohmann::json& body, bool for_count = false);

// Anthropic's stop_reason for Parley's finish reason.
std::string stop_reason(std::string_view finish_reason);

// A tool call's arguments (JSON text) as a tool_use block's `input` object.
nlohmann::json tool_input(std::string_view arguments);

// The whole reply as a Message object.
nlohmann::json message_json(const std::string& id, const std::string& model,
                            const llm::Completion& completion);

// `{"type": "error", "error": {"type", "message"}}` and its status for an error of Parley's:
// Anthropic's error types, 529 when the upstreams are overloaded.
struct AnthropicError {
  int status = 500;
  nlohmann::json body;
};
AnthropicError error_json(const Error& error);

// A response in Parley's error envelope rewritten in Anthropic's (the access guard's refusals
// and the handlers' errors alike); any other response is returned as it was.
http::Response to_anthropic_error(http::Response response);

// One server-sent event: "event: <type>\ndata: <json>\n\n".
std::string event(std::string_view type, const nlohmann::json& data);

// A stream's opening: message_start (the message with no content yet) and a ping.
std::string stream_start(const std::string& id, const std::string& model, int64_t input_tokens);
// Its end: message_delta (stop_reason and usage) and message_stop.
std::string stream_end(const llm::Completion& completion);
// An error in a stream that has begun.
std::string stream_error(const Error& error);

// Writes a streamed reply as Anthropic's content-block events: a text block while text comes,
// a tool_use block per tool call, each opened and closed in order.
class StreamWriter {
 public:
  // The events for one delta, appended to `out`.
  void delta(const llm::Delta& delta, std::string& out);
  // Closes the open block.
  void close(std::string& out);

 private:
  int next_index_ = 0;
  int open_index_ = -1;
  bool open_is_text_ = false;
  int open_tool_ = -1;  // the open tool_use block's call index
};

}  // namespace parley::api::anthropic_format
