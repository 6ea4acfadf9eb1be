// The `openai` provider type: any server that speaks OpenAI's Chat Completions and Embeddings
// APIs (OpenAI, Groq, Together, Mistral, OpenRouter, vLLM, Ollama, llama.cpp's server,
// LM Studio). Requests go to {base_url}/chat/completions with "Authorization: Bearer"; streams
// are server-sent events of chat.completion.chunk objects ending with "data: [DONE]".
#pragma once

#include <memory>

#include "http/client.hpp"
#include "llm/provider.hpp"
#include "llm/upstream.hpp"

namespace parley::llm {

std::unique_ptr<Provider> make_openai_provider(ProviderSettings settings, http::HttpClient& client);

// The wire format, exposed for the tests and the fuzzer.
namespace openai_wire {
// The request body for `request` (stream or not).
nlohmann::json request_body(const ChatRequest& request, bool stream, bool stream_usage);
// A complete (non-streamed) response body into `out`.
Result<void> parse_completion(std::string_view body, Completion& out);
// One streamed event's data into `out` (accumulating) and `delta`; kBadGateway for an error
// event or malformed data. Returns true at "[DONE]".
Result<bool> parse_chunk(std::string_view data, Completion& out, Delta& delta);
}  // namespace openai_wire

}  // namespace parley::llm
