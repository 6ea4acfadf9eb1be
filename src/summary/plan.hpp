// The `plan_summary` stage: a stored turn whose prompt found the session's history near its
// model's limit queues `session.summarize` (summarize.hpp) with the reply, in one transaction
// (chat::StoredTurn::follow_up_jobs). The turn itself never waits for a summary: until the
// job has stored one, prompts fit the history as they always did.
#pragma once

#include <memory>

#include "chat/pipeline.hpp"
#include "summary/settings.hpp"

namespace parley::summary {

// Whether a turn's history is due a summary: some of it no longer fit (or max_history cut
// it), or it takes at least trigger_ratio of the room the model left it. Pure.
bool due(const chat::StoredTurn& turn, const SummarySettings& settings);

// A finishing stage, before persist (only complete replies plan anything).
std::unique_ptr<chat::Stage> plan_summary_stage(const SummarySettings& settings);

}  // namespace parley::summary
