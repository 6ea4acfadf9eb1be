// Fitting a conversation into a model's context window. The system prompt and the newest
// message are always kept; older turns are dropped, oldest first, until the estimate fits the
// window minus the room reserved for the reply.
//
// Token counts: a message's count is exact when the provider reported it (an assistant
// reply's output tokens), otherwise Parley's estimate (llm::estimate_tokens: about four
// characters a token, plus a few tokens of framing per message). The estimate is deliberately
// simple and errs on the side of more tokens for English text.
#pragma once

#include <cstdint>
#include <vector>

#include "llm/types.hpp"

namespace parley::chat {

struct FitInput {
  llm::Message system;                // may have empty content: then it is not sent
  std::vector<llm::Message> history;  // oldest first, without the newest message
  std::vector<int64_t> known_tokens;  // per history message; 0 = unknown (estimate)
  llm::Message newest;
  int64_t context_window = 8192;
  int64_t reply_reserve = 1024;
};

struct FitResult {
  std::vector<llm::Message> messages;  // ready to send
  int64_t estimated_tokens = 0;
  int dropped = 0;  // history messages left out
  // The whole history's tokens, kept or not, and the room it had (the window, less the reply's
  // reserve, the system prompt and the newest message): how close a session is to outgrowing
  // its model (summary/).
  int64_t history_tokens = 0;
  int64_t history_budget = 0;
};

FitResult fit_context(const FitInput& input);

}  // namespace parley::chat
