// The `recall` stage: before the prompt is built, the memories of the user that bear on the
// message (chat::StoredTurn::memories), which build_prompt puts in the system message and
// persist records on the reply.
//
// Which memories: the user's active, unexpired ones for this assistant and session (or for
// all of them), of the kinds the assistant uses (`memory_kinds`). The recall index
// (recall_index.hpp) finds the best candidates among all of the user's memories, and they are
// read back from the database, so a deletion or an expiry counts at once; until the index is
// built, the newest of the user's memories are read from the database instead. Each is scored by
// how close it is to the message (the cosine of their embeddings when both come from the same
// embedder, and the share of the message's words it holds), by its importance and by how recently
// it was made or changed. A profile fact or a standing instruction always qualifies; anything else
// must reach the assistant's `memory_min_similarity`. The best are kept, at most `memory_top_k`,
// within `memory_max_tokens`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat/pipeline.hpp"
#include "core/blocking_pool.hpp"
#include "store/store.hpp"

namespace parley::knowledge {
class Embedders;
}

namespace parley::memory {

class RecallIndex;

struct RecallDeps {
  store::Storage& storage;
  BlockingPool& blocking;
  knowledge::Embedders* embedders = nullptr;  // null: words alone
  std::string embedder;                       // canonical name the memories' vectors come from
  const Clock& clock;
  RecallIndex* index = nullptr;  // null: the database is read on every turn
};

std::unique_ptr<chat::Stage> recall_stage(RecallDeps deps);

// How a memory qualifies and ranks, apart from I/O (recall.cpp; tested on its own).
struct RecallCandidate {
  const store::Memory* memory = nullptr;
  double similarity = -1;  // cosine with the message; -1 when unknown
};
struct ChooseOptions {
  int top_k = 8;
  int64_t max_tokens = 500;
  double min_similarity = 0.25;
  // Profile facts and standing instructions qualify whatever the message (recall); a search
  // asks for relevance alone.
  bool always_standing = true;
  std::vector<std::string> kinds;  // empty: every kind
};
ChooseOptions recall_options(const chat::Assistant& assistant);
std::vector<chat::RecalledMemory> choose(const std::vector<RecallCandidate>& candidates,
                                         const std::string& message, const ChooseOptions& options,
                                         int64_t now_ms);

// The cosine of two vectors; -1 when their sizes differ or either is empty or zero.
double cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace parley::memory
