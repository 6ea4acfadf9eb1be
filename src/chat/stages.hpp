// The built-in stages of the chat pipeline (pipeline.hpp), one factory each, in the order
// they run. app/ composes the list; a feature that adds a stage (retrieval, memory recall, a
// cache, intents) writes its Stage in its own folder and adds one line there.
#pragma once

#include <memory>

#include "chat/pipeline.hpp"

namespace parley::chat::stages {

std::unique_ptr<Stage> resolve(ChatDeps& deps);
std::unique_ptr<Stage> admit(ChatDeps& deps);
std::unique_ptr<Stage> moderate_input(ChatDeps& deps);
std::unique_ptr<Stage> open_session(ChatDeps& deps);
std::unique_ptr<Stage> record_input(ChatDeps& deps);
std::unique_ptr<Stage> build_prompt(ChatDeps& deps);
std::unique_ptr<Stage> plan_route(ChatDeps& deps);
std::unique_ptr<Stage> generate(ChatDeps& deps);
std::unique_ptr<Stage> moderate_output(ChatDeps& deps);
std::unique_ptr<Stage> account(ChatDeps& deps);
std::unique_ptr<Stage> persist(ChatDeps& deps);

// Every built-in stage, in order: what app/ adds to a new pipeline.
void add_builtin_stages(Pipeline& pipeline, ChatDeps& deps);

}  // namespace parley::chat::stages
