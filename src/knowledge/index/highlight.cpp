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

// Word characters as the indexer sees them, near enough: ASCII letters and digits, and every
// byte of a multi-byte UTF-8 character (so a cut never falls inside one).
bool word_byte(char c) {
  const auto b = static_cast<uint8_t>(c);
  return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b >= 0x80;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

struct Word {
  size_t begin = 0;
  size_t end = 0;
  int term = -1;  // the query term it matches, or -1
};

}  // namespace

Highlighter::Highlighter(std::vector<HighlightTerm> terms, Stemmer stem)
    : terms_(std::move(terms)), stem_(std::move(stem)) {
  std::erase_if(terms_, [](const HighlightTerm& t) { return t.stem.empty(); });
}

std::string Highlighter::operator()(std::string_view text, size_t length) const {
  if (terms_.empty() || !stem_ || text.empty()) return {};
  length = std::max<size_t>(length, 1);

  // The words, and which query term each matches.
  std::vector<Word> words;
  std::vector<size_t> matches;  // indexes into words
  std::string word;
  for (size_t i = 0; i < text.size();) {
    if (!word_byte(text[i])) {
      ++i;
      continue;
    }
    Word w;
    w.begin = i;
    while (i < text.size() && word_byte(text[i])) ++i;
    w.end = i;
    const std::string_view found = text.substr(w.begin, w.end - w.begin);
    const bool plain = static_cast<uint8_t>(found[0]) < 0x80 &&
                       (found.size() < 2 || static_cast<uint8_t>(found[1]) < 0x80);
    bool candidate = !plain;  // a non-ASCII start: its lower case is the stemmer's to find
    for (size_t t = 0; plain && !candidate && t < terms_.size(); ++t) {
      const std::string& s = terms_[t].stem;
      candidate = lower(found[0]) == s[0] &&
                  (found.size() < 2 ? s.size() == 1 : s.size() >= 2 && lower(found[1]) == s[1]);
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
  if (words[best_first].begin <= lead) best_first = 0;
  const size_t begin = best_first == 0 ? 0 : words[best_first].begin;
  const size_t limit = begin + length;
  size_t last = best_first;  // the window's last word
  while (last + 1 < words.size() && words[last + 1].end <= limit) ++last;

  std::string out;
  out.reserve(length + 64);
  if (begin > 0) out += kMore;
  const size_t stop = last + 1 < words.size() ? words[last].end : text.size();
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
