// The `builtin` provider: what answers when no model is configured, so `make run` works with
// no API key. It streams like a real provider (word by word, usage counted, a finish reason)
// and says plainly that no model is configured and how to configure one. The knowledge-base
// work will teach it to answer from documents.
#pragma once

#include <memory>

#include "llm/provider.hpp"

namespace parley::llm {

inline constexpr const char* kBuiltinModel = "parley-builtin";

std::unique_ptr<Provider> make_builtin_provider(std::string name);

// The reply it gives (exposed for tests).
std::string builtin_reply();

}  // namespace parley::llm
