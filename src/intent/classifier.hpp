// Which of an assistant's intents a message is, from the intents' examples: each example is
// embedded once with the built-in embedder (lexical: shared words, phrases and word pieces;
// knowledge/embed/hashed_embedder.hpp), and a message scores each intent by the mean cosine
// of its `k` nearest examples. The best intent is decided when it reaches the threshold and
// leads the next intent by the margin; otherwise the classification is ambiguous, for a model
// or the fallback to settle (classify_stage.hpp). Pure and thread-safe once built: no I/O, a
// few microseconds for dozens of examples.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "intent/settings.hpp"
#include "knowledge/embed/hashed_embedder.hpp"

namespace parley::intent {

struct Classification {
  std::string intent;     // the best intent ("" when no intent has examples)
  double confidence = 0;  // its score, a cosine in [-1, 1]
  std::string runner_up;  // the next best
  double runner_up_confidence = 0;
  bool decided = false;  // confident enough to act on without a model
};

class Classifier {
 public:
  explicit Classifier(const AssistantIntents& config);

  Classification classify(std::string_view message) const;

 private:
  struct Example {
    size_t intent;  // index into names_
    std::vector<float> vector;
  };
  knowledge::HashedEmbedder embedder_;
  std::vector<std::string> names_;
  std::vector<Example> examples_;
  double threshold_;
  double margin_;
  size_t k_;
};

}  // namespace parley::intent
