// The `session.summarize` job: folds a session's older messages into its rolling summary
// (store.hpp, Summary), so that later prompts carry the summary in place of them.
//
// Planned after a reply whose prompt found the history near the model's limit (plan.hpp), at
// most one queued or running per session (unique key "sum:<session id>"). It reads the
// current summary and the messages after it, leaves the newest as they are (those that fit in
// `summary.keep_ratio` of the room, at least `summary.keep_recent`), and writes a new summary
// of the previous one plus the rest: by a model when `summary.model` names one (its tokens
// booked with source `summary`), else extractively (extractive.hpp). A model that fails is
// retried; an empty answer falls back to the extractive summary. The turn that planned it
// never waits for it: until it is stored, prompts fit the history as before.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/io_pool.hpp"
#include "core/result.hpp"
#include "llm/blocking_completion.hpp"
#include "queue/worker.hpp"
#include "store/store.hpp"
#include "summary/settings.hpp"

namespace parley::summary {

inline constexpr std::string_view kSummarizeJob = "session.summarize";

// One job per session at a time. `history_budget` is the room (tokens) the turn's model left
// the history.
store::NewJob summarize_job(const std::string& tenant_id, const std::string& session_id,
                            int64_t history_budget, const SummarySettings& settings);

// How many of `messages` (oldest first, the history after the current summary) a new summary
// folds: all but the newest that fit in keep_ratio * budget, and never the newest
// keep_recent. 0 when there is nothing worth folding. Pure.
size_t messages_to_fold(const std::vector<store::Message>& messages, int64_t history_budget,
                        const SummarySettings& settings);

// What a model is asked to write the new summary from: `folded` as given, each message cut to
// 8 KiB (the job passes the newest 48 KiB, the older ones already folded into `previous`).
// Pure.
std::vector<llm::Message> summary_request(const std::string& previous,
                                          const std::vector<store::Message>& folded,
                                          int64_t max_tokens);

struct SummarizeDeps {
  store::Storage& storage;
  const Clock& clock;
  SummarySettings settings;
  llm::CompleteFn complete = {};  // empty: extractive summaries
};

queue::Handler summarize_handler(SummarizeDeps deps);

// The model summary.model names, when it is one (not the built-in provider); empty
// otherwise. kInvalidArgument when it names nothing the gateway knows.
Result<llm::CompleteFn> summary_model(const SummarySettings& settings, llm::Gateway& gateway,
                                      IoPool& io, llm::Accountant* accountant, const Clock& clock);

void add_summary_jobs(queue::Worker& worker, store::Storage& storage, const Clock& clock,
                      const SummarySettings& settings, llm::CompleteFn complete);

}  // namespace parley::summary
