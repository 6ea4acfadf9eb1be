// OpenAI Chat Completions wire format: the request body, a complete response, and one
// streamed chunk. Pure functions over JSON text, apart from the HTTP call, so that the tests
// and the fuzzer reach them directly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "llm/types.hpp"

namespace parley::llm {

namespace openai_wire {
// OpenAI's usage object (prompt_tokens, completion_tokens) into `out`.
void read_usage(const nlohmann::json& usage, Usage& out);
// The request body for `request` (stream or not).
nlohmann::json request_body(const ChatRequest& request, bool stream, bool stream_usage);
// The same as text; a request that arrived in OpenAI's format is passed through (see
// ChatRequest::openai_body).
std::string request_text(const ChatRequest& request, bool stream, bool stream_usage);
// A complete (non-streamed) response body into `out`.
Result<void> parse_completion(std::string_view body, Completion& out);
// One streamed event's data into `out` (accumulating) and `delta`; kBadGateway for an error
// event or malformed data. Returns true at "[DONE]".
Result<bool> parse_chunk(std::string_view data, Completion& out, Delta& delta);
// A /moderations response for `inputs` inputs: one result per input, each with "flagged",
// "categories" (name -> bool) and "category_scores" (name -> number). kBadGateway
// ("upstream_malformed") for anything else.
Result<Moderations> parse_moderations(std::string_view body, size_t inputs);
}  // namespace openai_wire

}  // namespace parley::llm
