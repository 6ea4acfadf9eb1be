// Highlights: the passage of a chunk's text that best matches a search's words, with those
// words marked.
//
// Xapian's MSet::snippet does this too, but it reads every character through its Unicode
// tables and stems every word of the text: about 50 µs a chunk, half a millisecond of a ten-hit
// search. This one stems only the words whose first two letters could begin one of the query's
// stems (a stemmer changes endings; "dying" to "die" is the one change to a second letter), so
// a chunk costs a few microseconds.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::knowledge {

struct HighlightTerm {
  std::string stem;     // as the index holds it: lower case, stemmed
  double weight = 1.0;  // what a window gains by holding it (its BM25 weight in the search)
};

class Highlighter {
 public:
  // A word of the text, as found, to its stem (lower-cased and stemmed as the index does).
  using Stemmer = std::function<std::string(const std::string&)>;
  // Whether a character beyond ASCII belongs to words (the indexer's rule: curly quotes, dashes
  // and no-break spaces separate words; accented letters do not).
  using WordCharacter = bool (*)(unsigned code_point);

  Highlighter() = default;
  Highlighter(std::vector<HighlightTerm> terms, Stemmer stem, WordCharacter word_character);

  // About `length` bytes of `text` around the words that carry the most weight, cut at word
  // boundaries, each matching word within «», with … where the text goes on. Runs of white
  // space become one space. Empty when no word matches.
  std::string operator()(std::string_view text, size_t length) const;

 private:
  std::vector<HighlightTerm> terms_;
  Stemmer stem_;
  WordCharacter word_character_ = nullptr;
};

}  // namespace parley::knowledge
