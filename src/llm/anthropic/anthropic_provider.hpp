// The `anthropic` provider type: Anthropic's Messages API ({base_url}/v1/messages, x-api-key,
// anthropic-version 2023-06-01). Translated both ways: system messages become the top-level
// "system" text, OpenAI-style tool definitions, calls and results become tool_use/tool_result
// blocks, and the stream's typed events (message_start, content_block_delta, message_delta,
// error, ping...) become Parley's deltas with OpenAI's finish reasons.
#pragma once

#include <memory>

#include "http/client.hpp"
#include "llm/anthropic/anthropic_wire.hpp"
#include "llm/provider.hpp"
#include "llm/upstream.hpp"

namespace parley::llm {

std::unique_ptr<Provider> make_anthropic_provider(ProviderSettings settings,
                                                  http::HttpClient& client);

}  // namespace parley::llm
