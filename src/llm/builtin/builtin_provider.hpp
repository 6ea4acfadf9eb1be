// The `builtin` provider: what answers when no model is configured, so `make run` works with
// no API key. It streams like a real provider (word by word, usage counted, a finish reason)
// and says plainly that no model is configured and how to configure one. Given passages from
// a knowledge base, it quotes the ones that answer the question, with their citations.
#pragma once

#include <memory>

#include "llm/provider.hpp"

namespace parley::llm {

inline constexpr const char* kBuiltinModel = "parley-builtin";

std::unique_ptr<Provider> make_builtin_provider(std::string name);

// The reply it gives (exposed for tests).
std::string builtin_reply();
// Its reply to a request with knowledge-base passages (ChatRequest::sources): the sentences of
// the best passages that share the most words with the question, quoted with their citation
// numbers.
std::string quoted_reply(const ChatRequest& request);

}  // namespace parley::llm
