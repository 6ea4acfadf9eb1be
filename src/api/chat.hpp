// Conversations over REST:
//   GET  /api/v1/assistants                  the configured assistants
//   GET  /api/v1/sessions/{id}/messages      a session's messages (?limit, ?cursor, ?order)
//   POST /api/v1/sessions/{id}/messages      a chat turn: JSON reply, or server-sent events
//                                            with "stream": true or Accept: text/event-stream
//   POST /api/v1/chat                        one call: the turn, creating the session when
//                                            none is given (the seeds' /api/chatbot)
//   GET  /api/v1/usage                       tokens, requests and cost over a time range,
//                                            grouped by model, provider, user, day, source
//
// A streamed turn sends these events:
//   turn.started    {"session_id", "user_message": {...}, "reply_id", "model"}
//   delta           {"content": "..."} (and "tool_calls" pieces)
//   turn.completed  {"reply": {...}}            the stored reply
//   error           {"error": {...}, "reply": {...}}   the envelope, and the stored partial
#pragma once

#include <nlohmann/json.hpp>

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_chat_routes(http::Router& router, Context& context);

// A message as every route shows it (also the user export, api/admin.cpp).
nlohmann::json message_json(const store::Message& message);

}  // namespace parley::api
