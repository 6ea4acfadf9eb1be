// Ingestion: a document's file becomes chunks with vectors, as a durable job
// ("knowledge.ingest", run by whichever worker takes it). The job extracts the text
// (extract/), cuts it into chunks by the knowledge base's settings (chunk/), embeds each chunk
// with its section heading (embed/), and commits them in one transaction that replaces the
// document's previous chunks (store::KnowledgeRepository::commit_chunks). The document shows
// its progress ("extracting", "chunking", "embedding" with counts, "storing") while it runs.
//
// A file that cannot be ingested (encrypted, corrupt, binary, too large, no text) fails the
// document with the extractor's reason, once: the job itself succeeds, since retrying cannot
// help. Failures that may pass (the database or a remote embedder unavailable) fail the job,
// which the queue retries with back-off; on the last attempt the document fails too, so none
// stays "processing" for ever. A document deleted or replaced while its job ran is left alone
// (the replacement has its own job).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "knowledge/chunk/chunker.hpp"
#include "knowledge/embed/embedder.hpp"
#include "knowledge/extract/document.hpp"
#include "knowledge/settings.hpp"
#include "queue/worker.hpp"
#include "store/store.hpp"

namespace parley::llm {
class Accountant;
}

namespace parley::knowledge {

inline constexpr std::string_view kIngestJob = "knowledge.ingest";

store::NewJob ingest_job(std::string_view document_id, std::string_view file_id);

// A knowledge base's own settings (store::KnowledgeBase::settings_json).
struct BaseSettings {
  ChunkOptions chunking;
};
// Missing fields take the defaults of `knowledge.*`; kInvalidArgument for bad values.
Result<BaseSettings> parse_base_settings(std::string_view json, const KnowledgeSettings& defaults);
std::string base_settings_json(const BaseSettings& settings);

using ExtractFn = std::function<Result<Extracted>(std::string_view bytes, std::string_view name)>;
// Vectors from the embedder a knowledge base records, at its dimension (0: the embedder's
// own). Blocking; called from the job's worker thread.
using EmbedFn = std::function<Result<Vectors>(const std::string& embedder, int64_t dimension,
                                              const std::vector<std::string>& texts)>;
// What a remote embedder's calls cost, booked to the base's tenant.
using EmbedUsageFn = std::function<void(const std::string& tenant_id, const std::string& embedder,
                                        int64_t input_tokens)>;

struct IngestDeps {
  store::KnowledgeRepository& repository;
  const Clock& clock;
  KnowledgeSettings settings;
  ExtractFn extract;
  EmbedFn embed;
  // After a commit: the local search index catches up at once rather than at its next poll.
  std::function<void()> committed;
  EmbedUsageFn book_usage;  // may be empty
};

queue::Handler ingest_handler(IngestDeps deps);

// What is embedded for a chunk: its section path, then its text, so that a chunk under
// "Install > Linux" is found by a question about installing on Linux.
std::string embedding_text(const std::string& section, std::string_view text);

}  // namespace parley::knowledge

namespace parley::knowledge {

class Embedders;

// Books a remote embedder's tokens as usage (source "knowledge", the embedder as the model,
// priced by llm.models) through the accountant's batched writer.
EmbedUsageFn book_embedding_usage(llm::Accountant& accountant, const Clock& clock);

// Registers "knowledge.ingest" and "knowledge.reembed" with a worker: extraction in this
// process with the configured limits, and each base's embedder from `embedders`. `committed`
// runs after each document's chunks (or a base's new vectors) are stored: this process's
// search index catches up at once. `book_usage` may be empty.
void add_knowledge_jobs(queue::Worker& worker, store::Storage& storage, const Clock& clock,
                        const KnowledgeSettings& settings, Embedders& embedders,
                        std::function<void()> committed, EmbedUsageFn book_usage);

}  // namespace parley::knowledge
