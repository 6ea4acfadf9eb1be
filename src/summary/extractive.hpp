// A conversation's summary without a model: from each message the sentence that carries the
// most (the words the conversation keeps coming back to, names, numbers), in the order they
// were said, one line each ("- User: ...", "- Assistant: ..."), within a token budget. A
// rolling summary starts from the previous one's lines, which give way first when the budget
// is short: what was said recently weighs a little more than what was said long ago.
//
// Pure: no I/O. Fuzzed (fuzz/fuzz_summary.cpp): any bytes in, valid UTF-8 within the budget
// out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace parley::summary {

struct SaidMessage {
  std::string role;  // "user" or "assistant" (others are left out)
  std::string content;
};

// Tokens as Parley estimates them for prompts (llm::estimate_tokens: about four bytes each).
int64_t estimated_tokens(std::string_view text);

// The lines of `previous` (a summary this function made, or a model's) and of `messages`,
// the best of them within `max_tokens`, in order, joined by newlines. Empty when there is
// nothing to say.
std::string extractive_summary(std::string_view previous, const std::vector<SaidMessage>& messages,
                               int64_t max_tokens);

}  // namespace parley::summary
