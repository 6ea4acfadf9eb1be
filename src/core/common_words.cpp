#include "core/common_words.hpp"

#include <algorithm>
#include <array>

namespace parley {
namespace {

constexpr std::array<std::string_view, 64> kCommonWords = {
    "the",    "and",   "you",    "that",  "with",   "for",   "this",  "have", "are",  "was",
    "what",   "can",   "your",   "but",   "not",    "all",   "any",   "just", "like", "from",
    "they",   "will",  "would",  "there", "their",  "about", "which", "when", "then", "than",
    "also",   "into",  "some",   "could", "should", "been",  "were",  "has",  "had",  "does",
    "did",    "our",   "out",    "how",   "why",    "who",   "its",   "yes",  "okay", "sure",
    "thanks", "thank", "please", "hello", "here",   "let",   "know",  "get",  "got",  "one",
    "more",   "very",  "much",   "them"};

}  // namespace

bool is_common_word(std::string_view word) {
  return std::find(kCommonWords.begin(), kCommonWords.end(), word) != kCommonWords.end();
}

}  // namespace parley
