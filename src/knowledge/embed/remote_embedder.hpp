// An embedder served by any OpenAI-compatible /embeddings endpoint (OpenAI, Ollama,
// llama-server, another Parley), reached through the gateway: a model name or route of
// `llm.*`, with its retries, fallbacks and circuit breakers. Texts go in batches of
// `knowledge.embed_batch` per call; vectors already in the embedding cache are not asked for
// again. Vectors are normalised here (not every server normalises them) and must all have one
// dimension, learnt from the first answer.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "knowledge/embed/embedder.hpp"
#include "knowledge/embed/embedding_cache.hpp"
#include "llm/gateway.hpp"

namespace parley::knowledge {

class RemoteEmbedder final : public Embedder {
 public:
  // `model`: what a knowledge base records and the gateway resolves. `cache` may be null.
  RemoteEmbedder(llm::Gateway& gateway, llm::Route route, std::string model, int batch,
                 EmbeddingCache* cache);

  const std::string& name() const override { return model_; }
  int dimension() const override { return dimension_.load(); }
  Task<Result<Vectors>> embed(std::vector<std::string> texts) override;

 private:
  llm::Gateway& gateway_;
  llm::Route route_;
  std::string model_;
  size_t batch_;
  EmbeddingCache* cache_;
  std::atomic<int> dimension_{0};
};

}  // namespace parley::knowledge
