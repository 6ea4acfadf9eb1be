// The `plan_follow_ups` stage: what a stored turn leads to once its reply is complete, queued
// with the reply in one transaction (chat::StoredTurn::follow_up_jobs, persisted by the
// persist stage). Today: extracting memories from the user's message.
#pragma once

#include <memory>

#include "chat/pipeline.hpp"
#include "memory/settings.hpp"

namespace parley::memory {

// Runs after every other stage but persist (it is a finishing stage, so it also sees turns a
// stage answered early, and plans nothing for those without a complete reply). With
// `by_model` every complete turn is worth a look; without, only those the rules find
// something in.
std::unique_ptr<chat::Stage> plan_follow_ups_stage(const MemorySettings& settings,
                                                   bool by_model = false);

}  // namespace parley::memory
