#include "intent/classifier.hpp"

#include <algorithm>
#include <functional>

namespace parley::intent {

Classifier::Classifier(const AssistantIntents& config)
    : threshold_(config.threshold),
      margin_(config.margin),
      k_(static_cast<size_t>(std::max(config.k, 1))) {
  const auto dimension = static_cast<size_t>(embedder_.dimension());
  for (const auto& intent : config.intents) {
    if (intent.examples.empty()) continue;
    names_.push_back(intent.name);
    for (const auto& text : intent.examples) {
      Example e{names_.size() - 1, std::vector<float>(dimension)};
      embedder_.embed_into(text, e.vector);
      examples_.push_back(std::move(e));
    }
  }
}

Classification Classifier::classify(std::string_view message) const {
  Classification out;
  if (names_.empty()) return out;
  std::vector<float> asked(static_cast<size_t>(embedder_.dimension()));
  embedder_.embed_into(message, asked);
  // Each intent's similarities to the message, to average its k best.
  std::vector<std::vector<double>> similarities(names_.size());
  for (const auto& e : examples_) {
    double dot = 0;
    for (size_t i = 0; i < asked.size(); ++i) dot += static_cast<double>(asked[i]) * e.vector[i];
    similarities[e.intent].push_back(dot);
  }
  std::vector<std::pair<double, size_t>> scores;
  for (size_t i = 0; i < names_.size(); ++i) {
    auto& s = similarities[i];
    const size_t k = std::min(k_, s.size());
    std::partial_sort(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k), s.end(),
                      std::greater<>());
    double sum = 0;
    for (size_t j = 0; j < k; ++j) sum += s[j];
    scores.emplace_back(k == 0 ? -1.0 : sum / static_cast<double>(k), i);
  }
  std::stable_sort(scores.begin(), scores.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  out.intent = names_[scores[0].second];
  out.confidence = scores[0].first;
  if (scores.size() > 1) {
    out.runner_up = names_[scores[1].second];
    out.runner_up_confidence = scores[1].first;
  }
  const double lead = scores.size() > 1 ? out.confidence - out.runner_up_confidence : 1.0;
  out.decided = out.confidence >= threshold_ && lead >= margin_;
  return out;
}

}  // namespace parley::intent
