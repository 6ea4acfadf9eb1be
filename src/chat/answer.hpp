// A stage's own answer to a turn, without a model: a template, a strict assistant with nothing
// to cite. The stage then returns Flow::kAnswered, so only the finishing stages run.
#pragma once

#include <string>

#include "chat/pipeline.hpp"

namespace parley::chat {

// The reply is `text`, from `provider`/`model` (what the stored reply and usage name), streamed
// to the caller when it asked for a stream.
Task<void> answer_without_model(Turn& turn, std::string text, std::string provider,
                                std::string model);

}  // namespace parley::chat
