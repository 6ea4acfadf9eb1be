// The hashed n-gram embedder (see hashed_embedder.hpp for what it does and does not capture).
#include "knowledge/embed/hashed_embedder.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace parley::knowledge {

namespace {

// Weights of the three feature kinds: whole words carry the most, pairs keep some word order,
// trigrams match fragments and misspellings.
constexpr float kWordWeight = 1.0F;
constexpr float kPairWeight = 0.5F;
constexpr float kTrigramWeight = 0.2F;

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t fnv1a(std::string_view s, uint64_t h = kFnvOffset) {
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return h;
}

// A final mix, so that buckets and signs use well-spread bits (splitmix64's finaliser).
uint64_t mix(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

constexpr std::array<std::string_view, 64> kStopWords = {
    "a",    "an",   "and",  "are",   "as",    "at",   "be",   "but",   "by",    "can",   "do",
    "does", "for",  "from", "had",   "has",   "have", "how",  "i",     "if",    "in",    "into",
    "is",   "it",   "its",  "me",    "my",    "no",   "not",  "of",    "on",    "or",    "our",
    "so",   "than", "that", "the",   "their", "them", "then", "there", "these", "they",  "this",
    "to",   "too",  "us",   "was",   "we",    "were", "what", "when",  "where", "which", "who",
    "why",  "will", "with", "would", "you",   "your", "also", "any",   "all"};

bool is_stop_word(std::string_view word) {
  if (word.size() > 5) return false;
  return std::find(kStopWords.begin(), kStopWords.end(), word) != kStopWords.end();
}

// A light English suffix strip, so "configures", "configured" and "configuring" meet.
std::string_view stem(std::string_view w) {
  const auto ends = [&](std::string_view suffix) {
    return w.size() > suffix.size() && w.substr(w.size() - suffix.size()) == suffix;
  };
  if (w.size() > 5 && ends("ing")) return w.substr(0, w.size() - 3);
  if (w.size() > 4 && ends("ed")) return w.substr(0, w.size() - 2);
  if (w.size() > 4 && ends("es") && !ends("ses")) return w.substr(0, w.size() - 2);
  if (w.size() > 3 && ends("s") && !ends("ss") && !ends("us") && !ends("is"))
    return w.substr(0, w.size() - 1);
  return w;
}

class FeatureSink {
 public:
  FeatureSink(std::span<float> out) : out_(out) {}  // NOLINT: a view, not a conversion

  void add(uint64_t hash, float weight) {
    const uint64_t h = mix(hash);
    const size_t bucket = h % out_.size();
    out_[bucket] += (h >> 63) != 0 ? -weight : weight;
  }

 private:
  std::span<float> out_;
};

}  // namespace

void normalize(std::span<float> vector) {
  double sum = 0;
  for (float v : vector) sum += static_cast<double>(v) * v;
  if (sum <= 0) return;
  const auto scale = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& v : vector) v *= scale;
}

HashedEmbedder::HashedEmbedder(int dimension)
    : dimension_(std::max(8, dimension)), name_("parley-hashed-v1") {}

void HashedEmbedder::embed_into(std::string_view text, std::span<float> out) const {
  std::fill(out.begin(), out.end(), 0.0F);
  FeatureSink sink(out);
  std::string word;
  std::string previous;  // the last kept word, for pairs
  std::string padded;
  const auto finish_word = [&] {
    if (word.empty()) return;
    const std::string_view stemmed = stem(word);
    if (!is_stop_word(word)) {
      sink.add(fnv1a(stemmed, 1), kWordWeight);
      if (!previous.empty()) {
        sink.add(fnv1a(stemmed, fnv1a(previous, 2)), kPairWeight);
      }
      previous.assign(stemmed);
      // Character trigrams of the word with boundary marks: "#pr", "pro", "rox", "oxy", "xy#".
      if (word.size() >= 3) {
        padded.assign(1, '#');
        padded += word;
        padded += '#';
        for (size_t i = 0; i + 3 <= padded.size(); ++i) {
          sink.add(fnv1a(std::string_view(padded).substr(i, 3), 3), kTrigramWeight);
        }
      }
    }
    word.clear();
  };
  char last = ' ';
  for (char c : text) {
    const auto b = static_cast<uint8_t>(c);
    const bool upper = b >= 'A' && b <= 'Z';
    const bool lower_or_digit = (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9');
    if (upper) {
      // camelCase: an upper-case letter after a lower-case one starts a new word.
      if (last >= 'a' && last <= 'z') finish_word();
      word += static_cast<char>(b - 'A' + 'a');
    } else if (lower_or_digit || b >= 0x80) {
      word += c;
    } else {
      finish_word();
    }
    last = c;
  }
  finish_word();
  normalize(out);
}

Vectors HashedEmbedder::embed_now(const std::vector<std::string>& texts) const {
  Vectors vectors;
  vectors.dimension = dimension_;
  vectors.values.assign(texts.size() * static_cast<size_t>(dimension_), 0.0F);
  for (size_t i = 0; i < texts.size(); ++i) {
    embed_into(texts[i], {vectors.values.data() + i * static_cast<size_t>(dimension_),
                          static_cast<size_t>(dimension_)});
  }
  return vectors;
}

Task<Result<Vectors>> HashedEmbedder::embed(std::vector<std::string> texts) {
  co_return embed_now(texts);
}

}  // namespace parley::knowledge
