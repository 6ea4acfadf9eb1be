// The built-in embedder: no network, no model file, deterministic, microseconds per chunk.
//
// What it captures, honestly: lexical similarity. Each text becomes a bag of features — its
// words (lower-cased, with a light English suffix strip, common stop words left out), its
// word pairs, and the character trigrams of its words — hashed into `dimension` signed
// buckets (the "hashing trick") and normalised. Two texts are close when they share words,
// phrases and word fragments: "configure the proxy timeout" finds "proxy_timeout
// configuration", and a misspelt "authentification" still finds "authentication". It does
// not know meaning: "car" does not find "automobile", and no language but the words' letters
// is understood. For semantic search configure a real embedding model
// (knowledge.embedder); the hybrid search's BM25 side is lexical either way. Hashing a long
// chunk's thousands of features into 384 numbers also adds noise of about 1/sqrt(384) to every
// similarity, so a short question's neighbours past the first few are close to chance, and
// the nearest-neighbour index's recall is measured on a real model's vectors instead
// (docs/benchmarks.md).
#pragma once

#include <string>
#include <string_view>

#include "knowledge/embed/embedder.hpp"

namespace parley::knowledge {

class HashedEmbedder final : public Embedder {
 public:
  static constexpr int kDefaultDimension = 384;

  explicit HashedEmbedder(int dimension = kDefaultDimension);

  const std::string& name() const override { return name_; }
  int dimension() const override { return dimension_; }
  Task<Result<Vectors>> embed(std::vector<std::string> texts) override;

  // The same, synchronously (it never waits on anything): for jobs and benchmarks.
  Vectors embed_now(const std::vector<std::string>& texts) const;
  // One text into `out` (dimension() floats).
  void embed_into(std::string_view text, std::span<float> out) const;

 private:
  int dimension_;
  std::string name_;
};

}  // namespace parley::knowledge
