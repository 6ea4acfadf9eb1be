// The `openai` provider type: any server that speaks OpenAI's Chat Completions and Embeddings
// APIs (OpenAI, Groq, Together, Mistral, OpenRouter, vLLM, Ollama, llama.cpp's server,
// LM Studio). Requests go to {base_url}/chat/completions with "Authorization: Bearer"; streams
// are server-sent events of chat.completion.chunk objects ending with "data: [DONE]".
#pragma once

#include <memory>

#include "http/client.hpp"
#include "llm/openai/openai_wire.hpp"
#include "llm/provider.hpp"
#include "llm/upstream.hpp"

namespace parley::llm {

std::unique_ptr<Provider> make_openai_provider(ProviderSettings settings, http::HttpClient& client);

// The wire format, exposed for the tests and the fuzzer.

}  // namespace parley::llm
