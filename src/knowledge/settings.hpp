// `knowledge.*`: uploads, extraction limits, chunking defaults and the embedder of new
// knowledge bases (knowledge/).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace parley::config {
class Schema;
}

namespace parley::knowledge {

struct KnowledgeSettings {
  uint64_t max_file_size = uint64_t{64} << 20;  // an upload (413 above)
  uint64_t max_text_size = uint64_t{64} << 20;  // a document's text once extracted
  int max_pages = 10'000;                       // of a PDF
  int64_t chunk_tokens = 400;                   // defaults of a new knowledge base
  int64_t chunk_overlap = 60;
  // The embedder of new knowledge bases: "builtin" (hashed n-grams, offline) or a model or
  // route of llm.* served by an OpenAI-compatible /embeddings endpoint (embed/embedders.hpp).
  std::string embedder = "builtin";
  int embedding_dimension = 384;  // the built-in embedder's
  int embed_batch = 64;           // texts per call to a remote embedder
  int search_beam = 256;          // the vector side's graph walk (index/base_index.hpp)
  // The seed's EMBEDDING_CACHE_SIZE and EMBEDDING_CACHE_TTL (embed/embedding_cache.hpp).
  int64_t embedding_cache_size = 5000;
  std::chrono::milliseconds embedding_cache_ttl{3'600'000};
};

void declare_settings(config::Schema& schema);

}  // namespace parley::knowledge
