// Embedders turn texts into vectors for the nearest-neighbour side of search. A knowledge base
// records the name and dimension of the embedder its vectors came from; vectors from two
// embedders are never compared (a change re-embeds in the background).
//
// Two implementations: the built-in hashed n-gram embedder (hashed_embedder.hpp; offline,
// no download, lexical similarity only) and any OpenAI-compatible /embeddings endpoint through
// the gateway (remote_embedder.hpp; batched, with a cache).
//
// Contract: embed() may be awaited from any I/O thread; vectors come back in input order,
// L2-normalised (so a dot product is the cosine similarity). Failures are Error values:
// kInvalidArgument for input the embedder refuses, kUnavailable/kBadGateway/kTooManyRequests
// from a remote endpoint (retryable), kInternal otherwise.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/task.hpp"

namespace parley::knowledge {

// Row-major vectors: values[i * dimension .. (i + 1) * dimension) is the i-th.
struct Vectors {
  int dimension = 0;
  std::vector<float> values;
  int64_t input_tokens = 0;  // as the endpoint counted them (remote); 0 when free

  size_t size() const {
    return dimension == 0 ? 0 : values.size() / static_cast<size_t>(dimension);
  }
  std::span<const float> row(size_t i) const {
    return {values.data() + i * static_cast<size_t>(dimension), static_cast<size_t>(dimension)};
  }
};

class Embedder {
 public:
  virtual ~Embedder() = default;
  // What a knowledge base records ("parley-hashed-v1", "openai/text-embedding-3-small").
  virtual const std::string& name() const = 0;
  // 0 when not known until the first answer (a remote model with no configured dimension).
  virtual int dimension() const = 0;
  virtual Task<Result<Vectors>> embed(std::vector<std::string> texts) = 0;
};

// Scales a vector to unit length (a zero vector stays zero).
void normalize(std::span<float> vector);

}  // namespace parley::knowledge
