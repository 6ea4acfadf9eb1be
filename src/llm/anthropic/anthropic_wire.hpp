// Anthropic Messages API wire format: the request body (translated from OpenAI-style
// messages and tools), a complete response, and one typed stream event. Pure functions, apart
// from the HTTP call, so that the tests and the fuzzer reach them directly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "llm/types.hpp"

namespace parley::llm {

namespace anthropic_wire {
nlohmann::json request_body(const ChatRequest& request, bool stream, int64_t default_max_tokens);
Result<void> parse_message(std::string_view body, Completion& out);
// Per-stream state: which content block index is which tool call.
struct StreamState {
  std::vector<int> tool_index_of_block;  // -1 for text blocks
  bool stopped = false;                  // message_stop seen
};
// One event (its "event:" name and data) into `out` and `delta`.
Result<void> parse_event(std::string_view event, std::string_view data, StreamState& state,
                         Completion& out, Delta& delta);
std::string finish_reason(std::string_view stop_reason);
}  // namespace anthropic_wire

}  // namespace parley::llm
