// The `classify_intent` stage: for an assistant with intents (settings.hpp), what the user's
// message is asking for, decided before the assistant answers, and what is done about it.
//
// Placed after record_input (the message is durable before any model is asked) and before
// retrieval. The intent comes from the examples (classifier.hpp); only when they leave it
// ambiguous is a model asked (the assistant's `model`, when one is configured), and failing
// that the fallback intent. A session gathering a `require` intent's fields continues it.
// The intent and its confidence are written on the user's message (persist), logged (an
// `intent` line with the method: examples, model, fallback, continued) and counted
// (intent_classifications_total{assistant,intent,method}, intent_classification_seconds).
//
// Actions: `route` answers with another assistant or model; `template` answers with its text
// (no model); `require` asks for the missing fields one at a time (kept in the session's
// metadata as `intent_state`), then answers with `then` or lets the assistant answer, told the
// fields; `handover` answers with its text and marks the session's metadata `handover` for a
// person to take over; `none` only records the intent.
#pragma once

#include <memory>

#include "chat/pipeline.hpp"
#include "core/result.hpp"
#include "intent/settings.hpp"

namespace parley::intent {

// Fails (kInvalidArgument) when the intents name an assistant or a model nobody configured.
Result<std::unique_ptr<chat::Stage>> classify_stage(const IntentSettings& settings,
                                                    chat::ChatDeps& deps);

}  // namespace parley::intent
