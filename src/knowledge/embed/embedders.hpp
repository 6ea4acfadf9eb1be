// Which embedder a knowledge base's recorded name means, in this process.
//
// "parley-hashed-v1" (what `knowledge.embedder: builtin` gives) is the built-in embedder at
// the base's dimension. Any other name is a model or route of `llm.*` that makes embeddings,
// called through the gateway (remote_embedder.hpp), with this process's embedding cache.
// A name that no longer resolves (a provider removed from the configuration) is kUnavailable
// for that base's vectors; its lexical search still works.
//
// Thread-safe. embed_blocking() is for worker threads, never an I/O thread: it waits for the
// call on the event loop.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/io_pool.hpp"
#include "knowledge/embed/embedder.hpp"
#include "knowledge/embed/embedding_cache.hpp"
#include "knowledge/settings.hpp"

namespace parley::llm {
class Gateway;
}

namespace parley::knowledge {

class Embedders {
 public:
  // `gateway` and `io` may be null (only the built-in embedder then).
  Embedders(const KnowledgeSettings& settings, llm::Gateway* gateway, IoPool* io,
            const Clock& clock = Clock::system());

  // What a new knowledge base records: its embedder's name and dimension (0 when not known
  // before the first vectors).
  const std::string& default_name() const { return default_name_; }
  int default_dimension() const { return default_dimension_; }

  // A name a person gave ("builtin", a model, a route), checked and made canonical:
  // kInvalidArgument "unknown_embedder" (param `field`) when nothing here makes embeddings
  // under it.
  Result<std::string> canonical(std::string_view name, const char* field = "embedder") const;
  // The dimension a base gets for a canonical name: the built-in one's, 0 for a remote one.
  int dimension_for(std::string_view name) const;

  // The embedder for a base's recorded name and dimension.
  Result<std::shared_ptr<Embedder>> get(std::string_view name, int64_t dimension);

  // One query's vector, on an I/O thread.
  Task<Result<std::vector<float>>> embed_query(std::string name, int64_t dimension,
                                               std::string query);

  // From a worker thread: the built-in embedder directly, a remote one on the event loop.
  // kUnavailable when the event loops stopped (the process is shutting down).
  Result<Vectors> embed_blocking(std::string_view name, int64_t dimension,
                                 const std::vector<std::string>& texts);

  EmbeddingCache& cache() { return cache_; }

 private:
  KnowledgeSettings settings_;
  llm::Gateway* gateway_;
  IoPool* io_;
  EmbeddingCache cache_;
  std::string default_name_;
  int default_dimension_ = 0;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Embedder>, std::less<>> made_;  // by name and dimension
};

// The built-in embedder's recorded name.
inline constexpr std::string_view kBuiltinEmbedder = "parley-hashed-v1";

}  // namespace parley::knowledge
