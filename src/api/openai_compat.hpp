// The OpenAI-compatible API, so that existing clients (the official SDKs, LangChain, any
// "OpenAI base URL" setting) use Parley unchanged:
//   POST /v1/chat/completions   stream and non-stream, stream_options.include_usage, tools
//                               and tool_choice passed through, `user`
//   GET  /v1/models             routes, and the models each provider lists
//   POST /v1/embeddings         when a provider of the route makes embeddings; float or
//                               base64 encoding (the SDKs ask for base64)
// `model` is a route name, "provider/model", or a model (see llm/gateway.hpp). Calls are
// stateless (no session is stored); their usage is accounted in batches (llm/accounting.hpp).
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_openai_routes(http::Router& router, Context& context);

}  // namespace parley::api
