// Re-embedding: a knowledge base's embedder changed (PATCH .../knowledge-bases/{id} with
// "embedder"), so every chunk needs a vector from the new one. The job ("knowledge.reembed")
// embeds the chunks in batches into their next vectors while searches keep using the current
// ones, then swaps all of them in one transaction (store::KnowledgeRepository::finish_reembed),
// which every replica's index applies as one replacement of the base's vector index.
//
// Chunks added while it ran (documents ingested meanwhile, with the old embedder) are found
// when the swap refuses ("reembed_incomplete") and embedded in another round. A job whose
// embedder is no longer the base's next one (changed again, or cancelled) stops quietly. A
// remote embedder that fails is retried by the queue; the vectors made so far are kept, so a
// retry continues where it stopped.
#pragma once

#include <string_view>

#include "knowledge/ingest.hpp"

namespace parley::knowledge {

inline constexpr std::string_view kReembedJob = "knowledge.reembed";

store::NewJob reembed_job(std::string_view kb_id, std::string_view embedder);

// Uses deps.repository, clock, settings.embed_batch, embed, committed and book_usage.
queue::Handler reembed_handler(IngestDeps deps);

}  // namespace parley::knowledge
