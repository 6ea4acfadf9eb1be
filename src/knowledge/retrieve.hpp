// The retrieve stage of the chat pipeline: before the prompt is built, the user's message is
// searched for in the knowledge bases the assistant names (`knowledge_bases:`, ids or names of
// the caller's tenant) and those the request names (`knowledge_base_ids`), and the best
// passages — at most the assistant's `retrieval_top_k`, within `retrieval_max_tokens` — become
// the turn's citations. A passage counts when it shares words with the question or its
// similarity reaches `retrieval_min_similarity`. build_prompt quotes them, numbered, in the
// system message; the reply carries them (JSON, a `citations` event before a streamed reply's
// text, the stored message).
//
// With `grounding: strict` and no passage found, the stage answers itself, saying the
// documents do not cover the question, and no model is called. A knowledge base the request
// names that does not exist or belongs to another tenant fails the turn (404
// knowledge_base_not_found); one the assistant names that is missing is skipped and logged.
#pragma once

#include <memory>

#include "chat/pipeline.hpp"
#include "core/blocking_pool.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/index/index_manager.hpp"
#include "store/store.hpp"

namespace parley::knowledge {

struct RetrieveDeps {
  store::Storage& storage;
  BlockingPool& blocking;
  IndexManager& index;
  Embedders& embedders;
  int beam = 256;  // knowledge.search_beam
};

std::unique_ptr<chat::Stage> retrieve_stage(RetrieveDeps deps);

// The check made before the session is opened and the input recorded (before open_session):
// the bases the turn names exist and serve (404 knowledge_base_not_found, 503
// knowledge_index_rebuilding), so a refused turn stores nothing and its retry is not a
// duplicate.
std::unique_ptr<chat::Stage> check_knowledge_stage(RetrieveDeps deps);

// What a strict assistant answers when its documents hold nothing on the question.
inline constexpr const char* kNoAnswerInDocuments =
    "The documents I answer from do not cover that, so I cannot answer it.";

}  // namespace parley::knowledge
