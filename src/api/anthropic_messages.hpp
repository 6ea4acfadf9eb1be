// Anthropic's Messages API, so that the Anthropic SDK and the tools built on it use Parley as
// their base URL:
//   POST /v1/messages               streamed (Anthropic's events) or not, tools and tool_use,
//                                   images, system as text or blocks, metadata.user_id
//   POST /v1/messages/count_tokens  Parley's estimate of the input
// Any model Parley routes answers, whatever its provider: the request becomes the one chat
// pipeline's stateless turn (same keys, limits, idempotency, moderation, caches, knowledge of
// the assistant, accounting and metrics as /v1/chat/completions), and the reply is written back
// in Anthropic's shapes (api/anthropic_format.hpp). Authenticated by `x-api-key` or Bearer;
// `anthropic-version` is accepted; every error, the access guard's included, is in Anthropic's
// envelope.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_anthropic_routes(http::Router& router, Context& context);

}  // namespace parley::api
