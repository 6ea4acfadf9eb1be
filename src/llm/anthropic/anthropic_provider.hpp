// The `anthropic` provider type: Anthropic's Messages API ({base_url}/v1/messages, x-api-key,
// anthropic-version 2023-06-01). Translated both ways: system messages become the top-level
// "system" text, OpenAI-style tool definitions, calls and results become tool_use/tool_result
// blocks, and the stream's typed events (message_start, content_block_delta, message_delta,
// error, ping...) become Parley's deltas with OpenAI's finish reasons.
#pragma once

#include <memory>

#include "http/client.hpp"
#include "llm/provider.hpp"
#include "llm/upstream.hpp"

namespace parley::llm {

std::unique_ptr<Provider> make_anthropic_provider(ProviderSettings settings,
                                                  http::HttpClient& client);

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
