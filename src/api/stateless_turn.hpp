// What the ways in that bring their conversation whole share (the OpenAI-compatible
// /v1/chat/completions and Anthropic's /v1/messages): a stateless turn of the chat pipeline,
// nothing stored but usage.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <optional>
#include <string>

#include "api/context.hpp"
#include "chat/pipeline.hpp"
#include "core/result.hpp"
#include "http/message.hpp"
#include "llm/types.hpp"

namespace parley::api {

// The turn for `request`: the end user resolved (a service key names one in the request's
// `user`, a user key is its own), and the provider told that user, never the body's claim.
// Not counted yet: the handler counts it (Access::count_user_request) before any work.
Result<chat::Turn> stateless_turn(Context& ctx, http::Request& req, std::string model, bool stream,
                                  llm::ChatRequest request);

// The turn stops when the client leaves (through `cancel`, which must outlive it), and honours
// the request's Cache-Control.
void follow_client(http::Request& req, chat::Turn& turn, llm::Cancellation& cancel);

// Why a turn the pipeline ran has no reply to give: its output was blocked, or the providers
// failed. nullopt when it has one.
std::optional<Error> reply_error(const chat::Turn& turn);

}  // namespace parley::api
