// Content-moderation rules: validating and compiling a Policy, and evaluating a text against it
// (see rules.hpp for the contract). Four detectors feed one list of spans:
//   - word lists: one Aho-Corasick automaton over every category's words (ASCII-folded,
//     whitespace runs collapsed), with word boundaries checked on the original text;
//   - regular expressions: RE2, searching in bounded windows from where the last match ended
//     (find_all says why);
//   - e-mail: an RE2 expression;
//   - cards and phones: a hand-written scan for chains of digit groups, then rules about their
//     shape, because "is this a phone number" depends on Luhn, digit counts, separators and
//     what surrounds the number, none of which a regular expression says well.
// The spans are then counted per category and, for a redact verdict, spliced out of the text.
// Every step is one pass over the text, or one pass per pattern.
#include "moderation/rules.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <utility>

namespace parley::moderation {
namespace {

constexpr std::string_view kMaxLength = "max_length";

size_t stage_index(Stage stage) { return stage == Stage::kInput ? 0 : 1; }

bool valid_action(Action action) {
  return action == Action::kAllow || action == Action::kRedact || action == Action::kBlock;
}

// ---------------------------------------------------------------------------------------------
// Characters

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_word_byte(char c) { return is_digit(c) || is_alpha(c) || c == '_'; }
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;

// Decodes the code point that starts at text[at]; `length` gets the bytes it spans (1 for an
// invalid byte). Overlong forms are accepted: this only classifies characters.
char32_t decode_at(std::string_view text, size_t at, size_t& length) {
  const auto lead = static_cast<unsigned char>(text[at]);
  length = 1;
  if (lead < 0x80) return lead;
  size_t n = 0;
  char32_t cp = 0;
  if ((lead & 0xE0) == 0xC0) {
    n = 2;
    cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3;
    cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4;
    cp = lead & 0x07;
  } else {
    return kInvalidCodePoint;
  }
  if (at + n > text.size()) return kInvalidCodePoint;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(text[at + k]);
    if ((b & 0xC0) != 0x80) return kInvalidCodePoint;
    cp = (cp << 6) | (b & 0x3F);
  }
  length = n;
  return cp;
}

// The code point that ends just before text[end] (end > 0).
char32_t decode_before(std::string_view text, size_t end) {
  size_t start = end - 1;
  for (int back = 0; back < 3 && start > 0 && is_continuation(text[start]); ++back) --start;
  size_t length = 0;
  const char32_t cp = decode_at(text, start, length);
  return start + length == end ? cp : kInvalidCodePoint;
}

// What a character is to a word boundary. Letters and digits of scripts written with spaces
// between words join a word; spaces, punctuation and symbols separate words; letters of
// scripts written without spaces (Chinese, Japanese, Thai, ...) sit next to a listed word
// without being part of it, or no word of theirs could ever be matched inside a sentence.
enum class CharClass { kSeparator, kWord, kUnspaced };

CharClass classify(char32_t cp) {
  if (cp == kInvalidCodePoint) return CharClass::kSeparator;
  if (cp < 0x80) {
    return is_word_byte(static_cast<char>(cp)) ? CharClass::kWord : CharClass::kSeparator;
  }
  // Latin-1's no-break space, punctuation and symbols, and × and ÷.
  if (cp <= 0xBF || cp == 0xD7 || cp == 0xF7) return CharClass::kSeparator;
  struct Block {
    char32_t first, last;
    CharClass cls;
  };
  static constexpr Block kBlocks[] = {
      {0x0E00, 0x0EFF, CharClass::kUnspaced},     // Thai, Lao
      {0x1000, 0x109F, CharClass::kUnspaced},     // Myanmar
      {0x1780, 0x17FF, CharClass::kUnspaced},     // Khmer
      {0x2000, 0x2BFF, CharClass::kSeparator},    // punctuation, symbols, arrows, math, shapes
      {0x2E00, 0x2E7F, CharClass::kSeparator},    // supplemental punctuation
      {0x2E80, 0x2FDF, CharClass::kUnspaced},     // CJK radicals
      {0x3000, 0x303F, CharClass::kSeparator},    // CJK punctuation, ideographic space
      {0x3040, 0x31FF, CharClass::kUnspaced},     // kana, bopomofo
      {0x3400, 0x4DBF, CharClass::kUnspaced},     // CJK extension A
      {0x4E00, 0x9FFF, CharClass::kUnspaced},     // CJK unified ideographs
      {0xF900, 0xFAFF, CharClass::kUnspaced},     // CJK compatibility ideographs
      {0xFE00, 0xFE0F, CharClass::kSeparator},    // variation selectors
      {0xFE30, 0xFE6F, CharClass::kSeparator},    // CJK compatibility and small forms
      {0xFF00, 0xFF0F, CharClass::kSeparator},    // fullwidth punctuation
      {0xFF1A, 0xFF20, CharClass::kSeparator},    //
      {0xFF3B, 0xFF40, CharClass::kSeparator},    //
      {0xFF5B, 0xFF65, CharClass::kSeparator},    //
      {0xFF66, 0xFF9F, CharClass::kUnspaced},     // halfwidth katakana
      {0xFFF0, 0xFFFF, CharClass::kSeparator},    // specials
      {0x1F000, 0x1FAFF, CharClass::kSeparator},  // emoji and pictographs
      {0x20000, 0x3FFFF, CharClass::kUnspaced},   // CJK extensions B and later
      {0xE0000, 0xE007F, CharClass::kSeparator},  // tags
  };
  for (const auto& block : kBlocks) {
    if (cp < block.first) break;
    if (cp <= block.last) return block.cls;
  }
  return CharClass::kWord;
}

// ---------------------------------------------------------------------------------------------
// Spans: what every detector reports

struct Span {
  size_t begin = 0;
  size_t end = 0;
  size_t label = 0;  // index into Compiled::labels
};

// ---------------------------------------------------------------------------------------------
// Word lists: Aho-Corasick over ASCII-folded bytes

// Lowercases ASCII, trims, and collapses runs of whitespace to one space: the form words are
// stored in and text is fed in.
std::string normalize_word(std::string_view word) {
  std::string out;
  out.reserve(word.size());
  bool pending_space = false;
  for (char c : word) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(ascii_lower(c));
  }
  return out;
}

struct WordEntry {
  size_t label = 0;
  uint32_t length = 0;  // normalized bytes
  // The word's first (last) character is a word character, so the text's character before
  // (after) the match must not be one.
  bool left_boundary = false;
  bool right_boundary = false;
};

class WordMatcher {
 public:
  WordMatcher() : nodes_(1) {}

  void add(const std::string& word, size_t label) {
    int32_t state = 0;
    for (char c : word) {
      const auto byte = static_cast<unsigned char>(c);
      int32_t next = child(state, byte);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        auto& edges = nodes_[state].next;
        edges.insert(std::lower_bound(edges.begin(), edges.end(), std::make_pair(byte, 0)),
                     std::make_pair(byte, next));
      }
      state = next;
    }
    // The same word twice in one category would count every occurrence twice.
    for (int32_t o = nodes_[state].own; o >= 0; o = outputs_[o].next) {
      if (outputs_[o].entry.label == label) return;
    }
    size_t length = 0;
    WordEntry entry;
    entry.label = label;
    entry.length = static_cast<uint32_t>(word.size());
    entry.left_boundary = classify(decode_at(word, 0, length)) == CharClass::kWord;
    entry.right_boundary = classify(decode_before(word, word.size())) == CharClass::kWord;
    outputs_.push_back({entry, nodes_[state].own});
    nodes_[state].own = static_cast<int32_t>(outputs_.size() - 1);
    max_length_ = std::max(max_length_, word.size());
  }

  // Sets the failure and output links, breadth first. Call once, after the last add().
  void build() {
    root_.fill(0);
    for (const auto& [byte, node] : nodes_[0].next) root_[byte] = node;
    std::vector<int32_t> queue;
    queue.reserve(nodes_.size());
    for (const auto& edge : nodes_[0].next) queue.push_back(edge.second);
    for (size_t head = 0; head < queue.size(); ++head) {
      const int32_t u = queue[head];
      for (const auto& [byte, v] : nodes_[u].next) {
        const int32_t fail = step(nodes_[u].fail, byte);
        nodes_[v].fail = fail;
        nodes_[v].dict = nodes_[fail].own >= 0 ? fail : nodes_[fail].dict;
        queue.push_back(v);
      }
    }
    ring_size_ = std::bit_ceil(std::max<size_t>(max_length_, 1));
  }

  // Calls on_match(span) for each whole-word occurrence in `text` of a word whose label passes
  // `wanted`. Occurrences may overlap.
  template <typename Wanted, typename OnMatch>
  void scan(std::string_view text, const Wanted& wanted, const OnMatch& on_match) const {
    // Where each of the last ring_size_ normalized bytes came from in `text`: collapsing
    // whitespace makes the two differ.
    std::vector<size_t> origin(ring_size_);
    const size_t mask = ring_size_ - 1;
    size_t fed = 0;
    int32_t state = 0;
    bool after_space = false;
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (is_space(c)) {
        if (after_space) continue;
        after_space = true;
        c = ' ';
      } else {
        after_space = false;
        c = ascii_lower(c);
      }
      origin[fed & mask] = i;
      ++fed;
      state = step(state, static_cast<unsigned char>(c));
      for (int32_t node = nodes_[state].own >= 0 ? state : nodes_[state].dict; node >= 0;
           node = nodes_[node].dict) {
        for (int32_t o = nodes_[node].own; o >= 0; o = outputs_[o].next) {
          const WordEntry& entry = outputs_[o].entry;
          if (!wanted(entry.label)) continue;
          const size_t begin = origin[(fed - entry.length) & mask];
          const size_t end = i + 1;
          if (entry.left_boundary && begin > 0 &&
              classify(decode_before(text, begin)) == CharClass::kWord) {
            continue;
          }
          size_t length = 0;
          if (entry.right_boundary && end < text.size() &&
              classify(decode_at(text, end, length)) == CharClass::kWord) {
            continue;
          }
          on_match(Span{begin, end, entry.label});
        }
      }
    }
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
    int32_t fail = 0;
    int32_t own = -1;   // the first of the words that end here (index into outputs_)
    int32_t dict = -1;  // the nearest node down the failure chain where words end
  };
  struct Output {
    WordEntry entry;
    int32_t next = -1;  // the next word ending at the same node
  };

  int32_t child(int32_t state, unsigned char byte) const {
    const auto& edges = nodes_[state].next;
    auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(byte, int32_t{0}));
    return it != edges.end() && it->first == byte ? it->second : -1;
  }

  int32_t step(int32_t state, unsigned char byte) const {
    while (state != 0) {
      const int32_t next = child(state, byte);
      if (next >= 0) return next;
      state = nodes_[state].fail;
    }
    return root_[byte];
  }

  std::vector<Node> nodes_;
  std::vector<Output> outputs_;
  std::array<int32_t, 256> root_{};  // the root's transitions, complete
  size_t max_length_ = 0;
  size_t ring_size_ = 1;
};

// ---------------------------------------------------------------------------------------------
// Cards and phones
//
// The scan finds chains: digit groups, the first optionally after "+", a group optionally in
// parentheses, joined by one space, dash or dot (or nothing after a parenthesis). A chain must
// not be glued to a word or a number on either side ("ORD-12345678", "v1.2.3", "12:30").
// Dashes and dots bind groups into an atom; a space only sits between atoms, and a card or a
// phone is a run of whole atoms, so "415-555-0132 415-555-0199" is two phones while
// "1234-5678-9012-3456-7890" is nothing.

struct Group {
  size_t begin = 0;  // in the text, "+" and parentheses included
  size_t end = 0;
  size_t digits_begin = 0;
  size_t digits_end = 0;
  char sep_before = 0;  // ' ', '-' or '.'; 0 for the first group and after a ')'
  bool paren = false;
  bool plus = false;

  size_t digits() const { return digits_end - digits_begin; }
};

struct Atom {
  size_t first = 0;  // groups, inclusive
  size_t last = 0;
  size_t digits = 0;
};

// Whether the chain about to start at text[at] continues something else: a word, an id with
// dashes, a version, a path, an amount, a time.
bool glued_left(std::string_view text, size_t at) {
  if (at == 0) return false;
  const char p = text[at - 1];
  if (is_word_byte(p)) return true;
  if (p == ':') return at >= 2 && is_digit(text[at - 2]);  // "12:30", but "tel:+44..." is fine
  static constexpr std::string_view kGlue = "-./,#@$%&=\\*^~+";
  return kGlue.find(p) != std::string_view::npos;
}

// Whether what follows a chain ending at text[at] makes its last atom part of something else.
bool glued_right(std::string_view text, size_t at) {
  if (at >= text.size()) return false;
  const char c = text[at];
  if (is_word_byte(c)) return true;
  const bool word_follows = at + 1 < text.size() && is_word_byte(text[at + 1]);
  if ((c == '-' || c == '/' || c == ':' || c == '@') && word_follows) return true;
  if (c == ',') {
    // A decimal part ("1 234,56"), but not a list ("415-555-0132,415-555-0199").
    size_t n = 0;
    while (at + 1 + n < text.size() && is_digit(text[at + 1 + n])) ++n;
    return n >= 1 && n <= 2;
  }
  return false;
}

bool parse_group(std::string_view text, size_t at, Group& group) {
  group = Group{};
  if (at >= text.size()) return false;
  if (text[at] == '(') {
    size_t end = at + 1;
    while (end < text.size() && is_digit(text[end]) && end - at <= 6) ++end;
    const size_t digits = end - at - 1;
    if (digits == 0 || digits > 5 || end >= text.size() || text[end] != ')') return false;
    group.begin = at;
    group.end = end + 1;
    group.digits_begin = at + 1;
    group.digits_end = end;
    group.paren = true;
    return true;
  }
  if (!is_digit(text[at])) return false;
  size_t end = at;
  while (end < text.size() && is_digit(text[end])) ++end;
  group.begin = group.digits_begin = at;
  group.end = group.digits_end = end;
  return true;
}

size_t group_value(std::string_view text, const Group& g) {
  size_t value = 0;
  for (size_t i = g.digits_begin; i < g.digits_end; ++i) value = value * 10 + (text[i] - '0');
  return value;
}

class NumberScanner {
 public:
  NumberScanner(std::string_view text, std::optional<size_t> card_label,
                std::optional<size_t> phone_label, std::vector<Span>& out)
      : text_(text), card_label_(card_label), phone_label_(phone_label), out_(out) {}

  void run() {
    size_t i = 0;
    while (i < text_.size()) {
      const char c = text_[i];
      const bool startable =
          is_digit(c) || (c == '(' && i + 1 < text_.size() && is_digit(text_[i + 1])) ||
          (c == '+' && i + 1 < text_.size() && (is_digit(text_[i + 1]) || text_[i + 1] == '('));
      if (!startable || glued_left(text_, i) || !parse_chain(i)) {
        ++i;
        continue;
      }
      i = groups_.back().end;
      split_atoms();
      if (glued_right(text_, i)) atoms_.pop_back();
      if (!atoms_.empty()) classify_chain();
    }
  }

 private:
  bool parse_chain(size_t at) {
    groups_.clear();
    const bool plus = text_[at] == '+';
    Group group;
    if (!parse_group(text_, plus ? at + 1 : at, group)) return false;
    group.plus = plus;
    group.begin = at;
    groups_.push_back(group);
    while (true) {
      const Group& last = groups_.back();
      const size_t q = last.end;
      if (q >= text_.size()) break;
      const char c = text_[q];
      if (last.paren && (is_digit(c) || c == '(')) {
        if (!parse_group(text_, q, group)) break;
      } else if ((c == ' ' || c == '-' || c == '.') && q + 1 < text_.size() &&
                 (is_digit(text_[q + 1]) || (c == ' ' && text_[q + 1] == '('))) {
        if (!parse_group(text_, q + 1, group)) break;
        group.sep_before = c;
      } else {
        break;
      }
      groups_.push_back(group);
    }
    return true;
  }

  void split_atoms() {
    atoms_.clear();
    for (size_t g = 0; g < groups_.size(); ++g) {
      if (g == 0 || groups_[g].sep_before == ' ') atoms_.push_back(Atom{g, g, 0});
      atoms_.back().last = g;
      atoms_.back().digits += groups_[g].digits();
    }
  }

  // Cards first: a Luhn-valid number of card length is a card, never a phone. Then phones in
  // the stretches between cards. Both take the longest valid run of atoms from the left.
  void classify_chain() {
    std::vector<bool> taken(atoms_.size(), false);
    if (card_label_) {
      for (size_t i = 0; i < atoms_.size();) {
        const size_t j = longest(i, atoms_.size(), 13, 19, kCardGroups,
                                 [&](size_t a, size_t b, size_t n) { return is_card(a, b, n); });
        if (j == kNone) {
          ++i;
          continue;
        }
        emit(i, j, *card_label_);
        for (size_t k = i; k <= j; ++k) taken[k] = true;
        i = j + 1;
      }
    }
    if (!phone_label_) return;
    for (size_t begin = 0; begin < atoms_.size();) {
      if (taken[begin]) {
        ++begin;
        continue;
      }
      size_t end = begin;
      while (end < atoms_.size() && !taken[end]) ++end;
      for (size_t i = begin; i < end;) {
        const size_t j = longest(i, end, 8, 15, kPhoneGroups, [&](size_t a, size_t b, size_t n) {
          return is_phone(a, b, n, begin, end);
        });
        if (j == kNone) {
          ++i;
          continue;
        }
        emit(i, j, *phone_label_);
        i = j + 1;
      }
      begin = end;
    }
  }

  static constexpr size_t kNone = static_cast<size_t>(-1);
  static constexpr size_t kCardGroups = 5;   // 4-4-4-4-3 is the most a card is printed in
  static constexpr size_t kPhoneGroups = 7;  // "+44 (0)20 7946 0958" is 5

  // The last atom j in [i, end) such that atoms i..j hold min_digits to max_digits digits in
  // at most max_groups groups and valid(i, j, digits), trying the longest run first; kNone if
  // there is none. At most max_groups runs are tried, each of at most max_groups groups:
  // bounded work per start, however long the chain.
  template <typename Valid>
  size_t longest(size_t i, size_t end, size_t min_digits, size_t max_digits, size_t max_groups,
                 const Valid& valid) const {
    const size_t first = atoms_[i].first;
    size_t j = i;
    size_t digits = atoms_[i].digits;
    if (digits > max_digits || atoms_[i].last - first + 1 > max_groups) return kNone;
    while (j + 1 < end && digits + atoms_[j + 1].digits <= max_digits &&
           atoms_[j + 1].last - first + 1 <= max_groups) {
      digits += atoms_[++j].digits;
    }
    for (size_t k = j;; --k) {
      if (digits < min_digits) return kNone;
      if (valid(i, k, digits)) return k;
      if (k == i) return kNone;
      digits -= atoms_[k].digits;
    }
  }

  void emit(size_t a, size_t b, size_t label) {
    out_.push_back(Span{groups_[atoms_[a].first].begin, groups_[atoms_[b].last].end, label});
  }

  // 13-19 digits, unbroken or in groups the way cards are printed (4-4-4-4, 4-6-5, 4-6-4,
  // 4-4-4-4-3, ...: a first group of 4) with one kind of separator, space or dash, and Luhn.
  bool is_card(size_t a, size_t b, size_t digits) const {
    const size_t first = atoms_[a].first;
    const size_t last = atoms_[b].last;
    if (digits < 13 || digits > 19 || groups_[first].plus) return false;
    const size_t count = last - first + 1;
    char sep = 0;
    std::array<char, 19> number{};
    size_t length = 0;
    for (size_t g = first; g <= last; ++g) {
      const Group& group = groups_[g];
      if (group.paren) return false;
      if (g > first) {
        if (group.sep_before != ' ' && group.sep_before != '-') return false;
        if (sep != 0 && group.sep_before != sep) return false;
        sep = group.sep_before;
      }
      if (count > 1) {
        const size_t n = group.digits();
        const bool fits = g == first ? n == 4 : g == last ? n <= 6 : (n >= 4 && n <= 6);
        if (!fits) return false;
      }
      for (size_t d = group.digits_begin; d < group.digits_end; ++d) number[length++] = text_[d];
    }
    return luhn_valid(std::string_view(number.data(), length));
  }

  // Three groups in a row that read as a date: 2026-11-22, 22.11.2026, 11-22-2026.
  bool has_date(size_t first, size_t last) const {
    for (size_t g = first; g + 2 <= last; ++g) {
      const Group& x = groups_[g];
      const Group& y = groups_[g + 1];
      const Group& z = groups_[g + 2];
      const auto date_sep = [](char c) { return c == '-' || c == '.'; };
      if (x.paren || y.paren || z.paren || !date_sep(y.sep_before) || !date_sep(z.sep_before)) {
        continue;
      }
      const size_t vx = group_value(text_, x);
      const size_t vy = group_value(text_, y);
      const size_t vz = group_value(text_, z);
      const bool small_y = y.digits() <= 2;
      if (x.digits() == 4 && small_y && z.digits() <= 2 && vy >= 1 && vy <= 12 && vz >= 1 &&
          vz <= 31) {
        return true;
      }
      if (x.digits() <= 2 && small_y && z.digits() == 4 && vx >= 1 && vx <= 31 && vy >= 1 &&
          vy <= 31 && (vx <= 12 || vy <= 12)) {
        return true;
      }
    }
    return false;
  }

  // Atoms a..b, holding `digits` digits, of the stretch [begin, end) between cards.
  bool is_phone(size_t a, size_t b, size_t digits, size_t begin, size_t end) const {
    const size_t first = atoms_[a].first;
    const size_t last = atoms_[b].last;
    // Cheap tests first: on a long run of spaced digits every start tries several runs.
    if (groups_[first].plus) return digits >= 8 && digits <= 15 && !has_date(first, last);
    if (digits < 9 || digits > 12) return false;
    const size_t count = last - first + 1;
    if (count == 1) {
      // Unbroken and without "+": more often an id, a timestamp or an amount, unless it
      // starts with a trunk prefix ("02079460958").
      return !groups_[first].paren && text_[groups_[first].digits_begin] == '0' &&
             (digits == 10 || digits == 11);
    }
    // One kind of separator, not counting a space after an area code in parentheses, as in
    // "(415) 555-0132"; "415-555-0132 415" is a phone and another number.
    char sep = 0;
    for (size_t g = first + 1; g <= last; ++g) {
      const char s = groups_[g].sep_before;
      if (s == 0 || (s == ' ' && groups_[g - 1].paren)) continue;
      if (sep != 0 && s != sep) return false;
      sep = s;
    }
    // Spaces join any numbers that happen to be written side by side, so a number grouped by
    // spaces counts only as a whole: "4111 1111 1111 1112" (a card failing Luhn) is not a
    // phone followed by " 1112".
    if (sep == ' ' && (a != begin || b + 1 != end)) return false;
    // Only a leading trunk or country digit stands alone ("1-800-555-0199"); dotted numbers
    // keep to groups of at most 4 digits, or every build number ("10.0.19045.2965") would
    // qualify.
    for (size_t g = first; g <= last; ++g) {
      const size_t n = groups_[g].digits();
      if (g > first && n < 2) return false;
      if (sep == '.' && n > 4) return false;
    }
    if (has_date(first, last)) return false;
    // An amount with thousands separators: "1 234 567 890", "123.456.789.012".
    bool thousands = count >= 3;
    for (size_t g = first + 1; g <= last && thousands; ++g) {
      thousands = !groups_[g].paren && groups_[g].digits() == 3;
    }
    if (thousands && (groups_[first].digits() <= 2 || count >= 4)) return false;
    // An IPv4 address.
    if (sep == '.' && count == 4) {
      bool ip = true;
      for (size_t g = first; g <= last; ++g) ip = ip && groups_[g].digits() <= 3;
      if (ip) return false;
    }
    return true;
  }

  std::string_view text_;
  std::optional<size_t> card_label_;
  std::optional<size_t> phone_label_;
  std::vector<Span>& out_;
  std::vector<Group> groups_;
  std::vector<Atom> atoms_;
};

// E-mail addresses in the practical sense: a local part of the usual characters, then a
// domain of dot-separated labels (letters, digits, inner dashes) ending in a letters-only TLD.
constexpr std::string_view kEmailPattern =
    R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)"
    R"((?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,63})";

RE2::Options regex_options() {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingUTF8);
  options.set_log_errors(false);
  // Only whole matches are used; without capture groups RE2 can stay on its fastest paths.
  options.set_never_capture(true);
  return options;
}

// How far past the first place a match could end RE2 may look for the match it prefers.
constexpr size_t kMatchReach = 512;
// The first window searched for the next match; it doubles while it holds none.
constexpr size_t kFirstWindow = 64;

// Appends every non-empty match of `re` in `text`, leftmost first, each search resuming where
// the previous match ended.
//
// Searching all the rest of the text for each match would make a pattern that prefers a long
// alternative it rarely completes ("kill.*people|kill") read to the end of the text for every
// match: quadratic, and a user controls the text. So a match is first located by a cheap "is
// there one" search in a doubling window (linear in the distance to it); then taken from a
// window reaching kMatchReach bytes past that point; and if it runs to that window's end, it
// is followed in doubling windows, anchored, to its real end (linear in its length, which is
// consumed). The result is RE2's own leftmost-first match, except that an alternative which
// completes more than kMatchReach bytes past where a match could first end loses to the
// shorter one.
void find_all(const RE2& re, std::string_view text, size_t label, std::vector<Span>& out) {
  const re2::StringPiece whole(text.data(), text.size());
  const size_t n = text.size();
  size_t pos = 0;
  while (pos <= n) {
    size_t window = kFirstWindow;
    size_t end = std::min(n, pos + window);
    while (!re.Match(whole, pos, end, RE2::UNANCHORED, nullptr, 0)) {
      if (end == n) return;
      window *= 2;
      end = std::min(n, pos + window);
    }
    size_t reach = std::min(n, end + kMatchReach);
    re2::StringPiece match;
    if (!re.Match(whole, pos, reach, RE2::UNANCHORED, &match, 1)) return;  // cannot happen
    const size_t begin = static_cast<size_t>(match.data() - text.data());
    size_t stop = begin + match.size();
    while (stop == reach && reach < n) {
      // Cut by the window: the match may go on.
      reach = std::min(n, begin + 2 * (reach - begin));
      if (!re.Match(whole, begin, reach, RE2::ANCHOR_START, &match, 1)) break;  // cannot happen
      stop = begin + match.size();
    }
    if (stop > begin) {
      out.push_back(Span{begin, stop, label});
      pos = stop;
      continue;
    }
    // An empty match redacts nothing; step over one character and search on.
    pos = begin + 1;
    while (pos < n && is_continuation(text[pos])) ++pos;
  }
}

bool valid_category_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_word_byte(c) || c == '-' || c == '.'; });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Names

std::string_view action_name(Action action) {
  switch (action) {
    case Action::kAllow:
      return "allow";
    case Action::kRedact:
      return "redact";
    case Action::kBlock:
      return "block";
  }
  return "unknown";
}

std::optional<Action> parse_action(std::string_view name) {
  if (name == "allow") return Action::kAllow;
  if (name == "redact") return Action::kRedact;
  if (name == "block") return Action::kBlock;
  return std::nullopt;
}

std::string_view stage_name(Stage stage) { return stage == Stage::kInput ? "input" : "output"; }

std::string_view pii_kind_name(PiiKind kind) {
  switch (kind) {
    case PiiKind::kEmail:
      return "email";
    case PiiKind::kPhone:
      return "phone";
    case PiiKind::kCard:
      return "card";
  }
  return "unknown";
}

std::optional<PiiKind> parse_pii_kind(std::string_view name) {
  if (name == "email") return PiiKind::kEmail;
  if (name == "phone") return PiiKind::kPhone;
  if (name == "card") return PiiKind::kCard;
  return std::nullopt;
}

std::string pii_category(PiiKind kind) { return "pii_" + std::string(pii_kind_name(kind)); }

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (!is_digit(*it)) return false;
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

size_t count_code_points(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return !is_continuation(c); }));
}

// ---------------------------------------------------------------------------------------------
// Compiling

struct RuleSet::Compiled {
  // What a span is attributed to: the categories in policy order, then the PII rules.
  struct Label {
    std::string name;
    Action action = Action::kAllow;
    std::array<bool, 2> stages{};  // by stage_index()
  };
  struct Pattern {
    std::unique_ptr<RE2> re;
    size_t label = 0;
  };

  std::vector<Label> labels;
  WordMatcher words;
  std::array<bool, 2> has_words{};
  std::vector<Pattern> patterns;
  std::unique_ptr<RE2> email;
  std::optional<size_t> email_label;
  std::optional<size_t> phone_label;
  std::optional<size_t> card_label;
  std::array<size_t, 2> max_chars{};

  bool applies(std::optional<size_t> label, size_t stage) const {
    return label && labels[*label].stages[stage];
  }
};

RuleSet::RuleSet() : compiled_(std::make_shared<Compiled>()) {}

RuleSet::RuleSet(std::shared_ptr<const Compiled> compiled) : compiled_(std::move(compiled)) {}

Result<RuleSet> RuleSet::compile(const Policy& policy, std::string_view field_prefix) {
  auto compiled = std::make_shared<Compiled>();
  const std::string prefix(field_prefix);

  for (size_t i = 0; i < policy.categories.size(); ++i) {
    const CategoryRule& rule = policy.categories[i];
    const std::string path = prefix + ".categories[" + std::to_string(i) + "]";
    const std::string name_path = path + ".name";
    if (rule.name.empty()) return Error::invalid_field(name_path, name_path + " must not be empty");
    if (!valid_category_name(rule.name)) {
      return Error::invalid_field(
          name_path,
          name_path + " may hold only letters, digits, '_', '-' and '.': '" + rule.name + "'");
    }
    if (rule.name.rfind("pii_", 0) == 0 || rule.name == kMaxLength) {
      return Error::invalid_field(
          name_path, name_path + " '" + rule.name + "' is reserved for built-in findings");
    }
    for (const auto& label : compiled->labels) {
      if (label.name == rule.name) {
        return Error::invalid_field(name_path,
                                    name_path + " '" + rule.name + "' names an earlier category");
      }
    }
    if (!valid_action(rule.action)) {
      return Error::invalid_field(path + ".action", path + ".action is not allow, redact or block");
    }
    const size_t label = compiled->labels.size();
    compiled->labels.push_back({rule.name, rule.action, {rule.input, rule.output}});

    for (size_t j = 0; j < rule.words.size(); ++j) {
      const std::string word = normalize_word(rule.words[j]);
      if (word.empty()) {
        const std::string word_path = path + ".words[" + std::to_string(j) + "]";
        return Error::invalid_field(word_path, word_path + " must not be empty");
      }
      compiled->words.add(word, label);
      if (rule.input) compiled->has_words[0] = true;
      if (rule.output) compiled->has_words[1] = true;
    }
    for (size_t j = 0; j < rule.patterns.size(); ++j) {
      const std::string pattern_path = path + ".patterns[" + std::to_string(j) + "]";
      if (rule.patterns[j].empty()) {
        return Error::invalid_field(pattern_path, pattern_path + " must not be empty");
      }
      auto re = std::make_unique<RE2>(rule.patterns[j], regex_options());
      if (!re->ok()) {
        return Error::invalid_field(
            pattern_path, pattern_path + " is not a valid RE2 regular expression: " + re->error());
      }
      compiled->patterns.push_back({std::move(re), label});
    }
  }

  for (size_t i = 0; i < policy.pii.size(); ++i) {
    const PiiRule& rule = policy.pii[i];
    const std::string path = prefix + ".pii[" + std::to_string(i) + "]";
    std::optional<size_t>* slot = nullptr;
    switch (rule.kind) {
      case PiiKind::kEmail:
        slot = &compiled->email_label;
        break;
      case PiiKind::kPhone:
        slot = &compiled->phone_label;
        break;
      case PiiKind::kCard:
        slot = &compiled->card_label;
        break;
    }
    if (slot == nullptr) {
      return Error::invalid_field(path + ".kind", path + ".kind is not email, phone or card");
    }
    if (slot->has_value()) {
      return Error::invalid_field(
          path + ".kind",
          path + ".kind '" + std::string(pii_kind_name(rule.kind)) + "' has an earlier rule");
    }
    if (!valid_action(rule.action)) {
      return Error::invalid_field(path + ".action", path + ".action is not allow, redact or block");
    }
    *slot = compiled->labels.size();
    compiled->labels.push_back({pii_category(rule.kind), rule.action, {rule.input, rule.output}});
  }
  if (compiled->email_label) {
    compiled->email = std::make_unique<RE2>(
        re2::StringPiece(kEmailPattern.data(), kEmailPattern.size()), regex_options());
    if (!compiled->email->ok()) return Error::internal("the e-mail detector does not compile");
  }

  compiled->words.build();
  compiled->max_chars = {policy.max_input_chars, policy.max_output_chars};
  return RuleSet(std::move(compiled));
}

// ---------------------------------------------------------------------------------------------
// Evaluating

Verdict RuleSet::evaluate(std::string_view text, Stage stage) const {
  const Compiled& c = *compiled_;
  const size_t s = stage_index(stage);
  Verdict verdict;

  // Too long is decided before any scan: the answer is a block whatever else matches, and an
  // oversized text is the one a scan should not be spent on.
  if (c.max_chars[s] > 0 && count_code_points(text) > c.max_chars[s]) {
    verdict.action = Action::kBlock;
    verdict.findings.push_back({std::string(kMaxLength), Action::kBlock, 1});
    verdict.blocked_category = std::string(kMaxLength);
    return verdict;
  }

  std::vector<Span> spans;
  if (c.has_words[s]) {
    c.words.scan(
        text, [&](size_t label) { return c.labels[label].stages[s]; },
        [&](const Span& span) { spans.push_back(span); });
  }
  for (const auto& pattern : c.patterns) {
    if (c.labels[pattern.label].stages[s]) find_all(*pattern.re, text, pattern.label, spans);
  }
  if (c.applies(c.email_label, s)) find_all(*c.email, text, *c.email_label, spans);
  const bool cards = c.applies(c.card_label, s);
  const bool phones = c.applies(c.phone_label, s);
  if (cards || phones) {
    NumberScanner(text, cards ? c.card_label : std::nullopt, phones ? c.phone_label : std::nullopt,
                  spans)
        .run();
  }
  if (spans.empty()) return verdict;

  // Per label, overlapping matches become one (so they count once and redact as one span).
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    if (x.label != y.label) return x.label < y.label;
    if (x.begin != y.begin) return x.begin < y.begin;
    return x.end > y.end;
  });
  std::vector<size_t> counts(c.labels.size(), 0);
  std::vector<Span> merged;
  merged.reserve(spans.size());
  for (const Span& span : spans) {
    if (!merged.empty() && merged.back().label == span.label && span.begin < merged.back().end) {
      merged.back().end = std::max(merged.back().end, span.end);
      continue;
    }
    merged.push_back(span);
    ++counts[span.label];
  }

  for (size_t label = 0; label < c.labels.size(); ++label) {
    if (counts[label] == 0) continue;
    const auto& l = c.labels[label];
    verdict.findings.push_back({l.name, l.action, counts[label]});
    verdict.action = std::max(verdict.action, l.action);
    if (l.action == Action::kBlock && verdict.blocked_category.empty()) {
      verdict.blocked_category = l.name;
    }
  }
  if (verdict.action != Action::kRedact) return verdict;

  // Splice: redact-action spans in text order, overlapping ones merged under the first.
  std::vector<Span> cuts;
  for (const Span& span : merged) {
    if (c.labels[span.label].action == Action::kRedact) cuts.push_back(span);
  }
  std::sort(cuts.begin(), cuts.end(), [](const Span& x, const Span& y) {
    if (x.begin != y.begin) return x.begin < y.begin;
    return x.label < y.label;
  });
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (size_t k = 0; k < cuts.size();) {
    const Span& head = cuts[k];
    size_t end = head.end;
    for (++k; k < cuts.size() && cuts[k].begin < end; ++k) end = std::max(end, cuts[k].end);
    out.append(text.substr(copied, head.begin - copied));
    out.append("[REDACTED:").append(c.labels[head.label].name).append("]");
    copied = end;
  }
  out.append(text.substr(copied));
  verdict.redacted = std::move(out);
  return verdict;
}

}  // namespace parley::moderation
