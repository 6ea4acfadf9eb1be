// Highlights (see highlight.hpp).
#include "knowledge/index/highlight.hpp"

#include <algorithm>
#include <cstdint>

namespace parley::knowledge {

namespace {

constexpr std::string_view kOpen = "\u00ab";
constexpr std::string_view kClose = "\u00bb";
constexpr std::string_view kMore = "\u2026";
constexpr size_t kMaxMatches = 512;  // beyond these, a long text's later matches are not weighed

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool ascii_word(uint8_t b) {
  return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9');
}

// The character at `i`: its length in bytes (1 for a byte that does not start a valid UTF-8
// sequence) and its code point.
size_t character_at(std::string_view text, size_t i, unsigned& code_point) {
  const auto b = static_cast<uint8_t>(text[i]);
  const size_t n = b < 0x80           ? 1
                   : (b >> 5) == 0x6  ? 2
                   : (b >> 4) == 0xE  ? 3
                   : (b >> 3) == 0x1E ? 4
                                      : 0;
  if (n == 0 || i + n > text.size()) {
    code_point = b;
    return 1;
  }
  code_point = n == 1 ? b : b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<uint8_t>(text[i + k]);
    if ((c >> 6) != 0x2) {
      code_point = b;
      return 1;
    }
    code_point = (code_point << 6) | (c & 0x3F);
  }
  return n;
}

// Whether a stem could be that of a word beginning so: stemmers change endings, except that
// "dying", "lying" and "tying" become "die", "lie" and "tie".
bool could_begin(char first, char second, const std::string& stem, size_t word_size) {
  if (lower(first) != stem[0]) return false;
  if (word_size < 2) return stem.size() == 1;
  const char s = lower(second);
  return stem.size() >= 2 && (s == stem[1] || (s == 'y' && stem[1] == 'i'));
}

struct Word {
  size_t begin = 0;
  size_t end = 0;
  int term = -1;  // the query term it matches, or -1
};

}  // namespace

Highlighter::Highlighter(std::vector<HighlightTerm> terms, Stemmer stem,
                         WordCharacter word_character)
    : terms_(std::move(terms)), stem_(std::move(stem)), word_character_(word_character) {
  std::erase_if(terms_, [](const HighlightTerm& t) { return t.stem.empty(); });
}

std::string Highlighter::operator()(std::string_view text, size_t length) const {
  if (terms_.empty() || !stem_ || text.empty()) return {};
  length = std::max<size_t>(length, 1);

  // The words, and which query term each matches.
  std::vector<Word> words;
  std::vector<size_t> matches;  // indexes into words
  std::string word;
  // Whether the character at `i` belongs to a word; `bytes`: its length.
  const auto word_at = [&](size_t i, size_t& bytes) {
    const auto b = static_cast<uint8_t>(text[i]);
    if (b < 0x80) {
      bytes = 1;
      return ascii_word(b);
    }
    unsigned code_point = 0;
    bytes = character_at(text, i, code_point);
    return bytes > 1 && word_character_ != nullptr && word_character_(code_point);
  };
  for (size_t i = 0; i < text.size();) {
    size_t bytes = 0;
    if (!word_at(i, bytes)) {
      i += bytes;
      continue;
    }
    Word w;
    w.begin = i;
    while (i < text.size() && word_at(i, bytes)) i += bytes;
    w.end = i;
    const std::string_view found = text.substr(w.begin, w.end - w.begin);
    const bool plain = static_cast<uint8_t>(found[0]) < 0x80 &&
                       (found.size() < 2 || static_cast<uint8_t>(found[1]) < 0x80);
    bool candidate = !plain;  // a non-ASCII start: its lower case is the stemmer's to find
    for (size_t t = 0; plain && !candidate && t < terms_.size(); ++t) {
      candidate =
          could_begin(found[0], found.size() > 1 ? found[1] : ' ', terms_[t].stem, found.size());
    }
    if (candidate && matches.size() < kMaxMatches) {
      word.assign(found);
      const std::string stemmed = stem_(word);
      for (size_t t = 0; t < terms_.size(); ++t) {
        if (terms_[t].stem == stemmed) {
          w.term = static_cast<int>(t);
          matches.push_back(words.size());
          break;
        }
      }
    }
    words.push_back(w);
  }
  if (matches.empty()) return {};

  // The window: it starts a little before one of the matches and holds the most weight of
  // distinct terms; the earliest wins a tie.
  const size_t lead = length / 5;
  size_t best_first = 0;  // the window's first word
  double best_weight = -1;
  std::vector<char> seen(terms_.size());
  for (const size_t m : matches) {
    size_t first = m;
    while (first > 0 && words[m].begin - words[first - 1].begin <= lead) --first;
    const size_t limit = words[first].begin + length;
    std::fill(seen.begin(), seen.end(), 0);
    double weight = 0;
    for (size_t w = first; w < words.size() && words[w].end <= limit; ++w) {
      const int t = words[w].term;
      if (t < 0 || seen[static_cast<size_t>(t)] != 0) continue;
      seen[static_cast<size_t>(t)] = 1;
      weight += terms_[static_cast<size_t>(t)].weight;
    }
    if (weight > best_weight) {
      best_weight = weight;
      best_first = first;
    }
  }
  // A window that would start near the text's beginning starts there.
  size_t begin = words[best_first].begin;
  if (begin <= lead) {
    best_first = 0;
    begin = 0;
  }
  const size_t limit = words[best_first].begin + length;
  size_t last = best_first;  // the window's last word
  while (last + 1 < words.size() && words[last + 1].end <= limit) ++last;
  std::string out;
  out.reserve(length + 64);
  if (begin > 0) out += kMore;
  // After the last word: the text's end when little is left (a full stop), else a cut.
  const size_t stop = last + 1 == words.size() && text.size() - words[last].end <= 8
                          ? text.size()
                          : words[last].end;
  bool space = false;  // white space seen since the last thing written
  bool wrote = false;  // anything of the text written yet
  size_t next_word = best_first;
  for (size_t i = begin; i < stop;) {
    if (next_word <= last && i == words[next_word].begin) {
      const Word& w = words[next_word++];
      if (space && wrote) out += ' ';
      space = false;
      wrote = true;
      if (w.term >= 0) out += kOpen;
      out.append(text.substr(w.begin, w.end - w.begin));
      if (w.term >= 0) out += kClose;
      i = w.end;
      continue;
    }
    const char c = text[i++];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      space = true;
      continue;
    }
    if (space && wrote) out += ' ';
    space = false;
    wrote = true;
    out += c;
  }
  if (stop < text.size()) out += kMore;
  return out;
}

}  // namespace parley::knowledge
