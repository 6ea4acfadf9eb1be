// The memory module's jobs, registered with a worker (`parley serve` and `parley worker`
// alike): `memory.extract` (extract.hpp) and the periodic `memory.expire`, which deletes the
// memories past their expiry.
#pragma once

#include <string_view>

#include "core/clock.hpp"
#include "knowledge/ingest.hpp"
#include "llm/blocking_completion.hpp"
#include "memory/settings.hpp"
#include "queue/worker.hpp"
#include "store/store.hpp"

namespace parley::knowledge {
class Embedders;
}

namespace parley::memory {

inline constexpr std::string_view kExpireJob = "memory.expire";

// `default_embedder` is knowledge.embedder (memory.embedder may leave it to that);
// `book_usage` may be empty; `complete`, when set, is the model that extracts (else the
// rules). Fails on an embedder nothing here can make vectors with.
Result<void> add_memory_jobs(queue::Worker& worker, store::Storage& storage, const Clock& clock,
                             const MemorySettings& settings, knowledge::Embedders& embedders,
                             std::string_view default_embedder,
                             const knowledge::EmbedUsageFn& book_usage, llm::CompleteFn complete);

// The model memory.model names, when it is one (not the built-in provider); empty otherwise.
// kInvalidArgument when it names nothing the gateway knows.
Result<llm::CompleteFn> extraction_model(const MemorySettings& settings, llm::Gateway& gateway,
                                         IoPool& io, llm::Accountant* accountant,
                                         const Clock& clock);

// Deletes what expired, a batch at a time; answers how many.
queue::Handler expire_handler(store::MemoryRepository& memories, const Clock& clock);

}  // namespace parley::memory
