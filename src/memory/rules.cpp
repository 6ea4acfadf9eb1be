// The built-in memory extractor (see rules.hpp for the contract). One pass splits the message
// into words and sentences; a second walks each sentence and, at every word that starts a
// clause, tries the phrasings below. Each try reads a bounded number of words, so the whole is
// linear in the message, and nothing recurses on the input.
//
// Phrasings understood, matched ignoring ASCII case ("I'm" and "I am" alike, "’" as "'"), at
// the start of a sentence or clause (after a comma, "and", "but", "so", "also", "please",
// "hi", "btw", ...):
//   name        "my name is X", "I'm called X", "call me X", "I go by X", "Hi, I'm X"
//   location    "I live in X", "I'm living/based in X", "I moved to X"      -> "Lives in X"
//   hometown    "I'm from X", "I come from X"                              -> "Is from X"
//   employer    "I work at/for X", "I'm employed at/by X"       -> "Works at X" / "Works for X"
//   occupation  "I work as a X", "I'm a X by profession/trade"             -> "Works as a X"
//   allergy     "I'm allergic to X"                                        -> "Is allergic to X"
//   preference  "I prefer/like/love/enjoy/hate/dislike/don't like X"       -> "Likes X", ...
//   favorite    "my favorite Y is X" (slot "favorite y")                   -> "Favorite Y is X"
//   generic     "my Y is X", Y of 1-3 words (slot "y"), "my Y is called X" -> "Y's name is X"
//   remember    "remember (that) X", "don't forget (that) X", "note that X", "keep in mind X"
//   instruction "always X", "never X", "from now on, X", "answer/reply in <language>"
//   forget      "forget my X", "forget that X", "forget (what I said) about X"  -> kDelete
//   no longer   "I no longer live in X", "I don't work at X anymore", "I'm not allergic to X
//               anymore", "my Y is no longer X"                                -> kDelete
//
// "remember that X" uses a specific phrasing when X starts with one ("remember that my name is
// Ana" is the name); otherwise X is stored rewritten to be about the user:
//   - a leading "I am"/"I'm" becomes "Is", "I have"/"I've" "Has", "I was" "Was", "I do" "Does",
//     "I don't" "Doesn't", a modal ("I can't", "I will") stays ("Can't", "Will"), a past tense
//     ending in "ed" stays ("Moved"), and one of about sixty common verbs takes the third
//     person's -s ("I need" -> "Needs"), after up to two adverbs ("I usually drink" -> "Usually
//     drinks");
//   - any other leading "I" is not conjugated: the memory is `User said: "X"`, verbatim;
//   - elsewhere "I" becomes "they" ("I'm" "they're", "I am" "they are", "I was" "they were"),
//     "my" "their", "me" "them", "mine" "theirs", "myself" "themselves" (singular they, which
//     keeps the verbs right).
// It is an "event" (retention "short") when X names a day or date (tomorrow, Friday, next
// week, June, the 5th, 5/12, 3pm), else a "fact". The values of the statements above get the
// same pronouns ("I love my job" -> "Loves their job"). Instructions keep the user's words
// ("Never use emojis", "Always greet me by name"): they are addressed to the assistant, so
// "me" stays "me". A place or an address may run over commas ("Lives in Paris, France").
//
// Nothing comes from a sentence that is a question (it ends in "?" or starts with a question
// word or an auxiliary), except a polite request ("Can you remember that my name is Ana?",
// "Could you forget my address?"); from the rest of a sentence after a word that makes it
// hypothetical or reported ("if", "imagine", "suppose", "pretend", "said", "told", "story",
// ...); from inside double quotes; from statements about others ("he lives in Paris"); from
// plain negations ("my name is not Bob", "I don't live in Paris"), which say what is not rather
// than what to forget; nor from a value that reads like something else: one of over 12 words
// (4 for a name), one starting with a pronoun or a vague word ("I like it", "I love that you
// ...", "call me later"). A "my Y is X" never stores a secret (password, PIN, card number, ...;
// kSecretWords), a Y that is vague or passing (problem, question, point, guess, order, day,
// mood, ...; kVagueSlotWords), nor a description of a person or pet ("my wife is a doctor";
// kPeople), though their names are kept ("my wife is called Eva" -> "Wife's name is Eva").
// "forget it", "forget everything" and "forget what I said" name nothing to forget and yield
// nothing.
#include "memory/rules.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace parley::memory {
namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

// Words longer than this are kept as words but never compared with a keyword.
constexpr size_t kMaxKeyBytes = 40;

// How many words a value may have: a slot's value ("Paris", "Ana Maria"), a name, a list of
// things liked or avoided, a clause to remember.
constexpr size_t kMaxSlotValueWords = 12;
constexpr size_t kMaxNameWords = 4;
constexpr size_t kMaxListWords = 20;
constexpr size_t kMaxClauseWords = 60;

using Keys = std::span<const std::string_view>;

bool in(std::string_view key, Keys keys) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// ---------------------------------------------------------------------------------------------
// Characters

bool is_ascii_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }
bool is_ascii_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ascii_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
char ascii_lower(char c) { return is_ascii_upper(c) ? static_cast<char>(c + 32) : c; }
char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

std::string capitalized(std::string text) {
  if (!text.empty()) text[0] = ascii_upper(text[0]);
  return text;
}

bool has_prefix(std::string_view text, size_t at, std::string_view prefix) {
  // The first byte alone rules out nearly every position, without a call to memcmp.
  return text.size() - at >= prefix.size() && text[at] == prefix[0] &&
         text.substr(at, prefix.size()) == prefix;
}

// The length of the well-formed UTF-8 sequence at text[i], or 0 when it is malformed
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t sequence_length(std::string_view text, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = at(0);
  if (lead < 0x80) return 1;
  const size_t left = text.size() - i;
  const auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < left && at(k) >= lo && at(k) <= hi;
  };
  if (lead >= 0xC2 && lead <= 0xDF) return cont(1) ? 2 : 0;
  if (lead == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if (lead == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (lead >= 0xE1 && lead <= 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (lead == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (lead >= 0xF1 && lead <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (lead == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

bool is_nbsp(std::string_view text, size_t i) { return has_prefix(text, i, "\xC2\xA0"); }

// The bytes of a double quotation mark at text[i] (", “, ”, „, «, »), or 0.
size_t quote_length(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c == '"') return 1;
  if (c == 0xE2 && (has_prefix(text, i, "\xE2\x80\x9C") || has_prefix(text, i, "\xE2\x80\x9D") ||
                    has_prefix(text, i, "\xE2\x80\x9E"))) {
    return 3;
  }
  if (c == 0xC2 && (has_prefix(text, i, "\xC2\xAB") || has_prefix(text, i, "\xC2\xBB"))) return 2;
  return 0;
}

// An en or em dash, which separates clauses like a comma.
size_t dash_length(std::string_view text, size_t i) {
  return has_prefix(text, i, "\xE2\x80\x93") || has_prefix(text, i, "\xE2\x80\x94") ? 3 : 0;
}

bool is_ellipsis(std::string_view text, size_t i) { return has_prefix(text, i, "\xE2\x80\xA6"); }

// ---------------------------------------------------------------------------------------------
// Words and sentences

enum class Mark { kWord, kPunct, kOpenQuote, kCloseQuote };

struct Word {
  std::string key;   // ASCII-lower-cased, "’" as "'"; empty for punctuation and very long words
  size_t begin = 0;  // the bytes of the message it was written as
  size_t end = 0;
  Mark mark = Mark::kWord;
  char punct = 0;             // for kPunct: ',', ';', ':', '(', '-', ...
  bool quoted = false;        // inside a pair of double quotes
  bool continuation = false;  // the second part of a contraction ("m" of "I'm"), same bytes
};

struct Sentence {
  size_t first = 0;  // words [first, last)
  size_t last = 0;
  bool question = false;
};

struct Tokens {
  std::vector<Word> words;
  std::vector<Sentence> sentences;
};

// Contractions read as the words they stand for, so that "I'm" matches "I am". "'s" is read
// as "is" only after words it cannot make possessive ("dog's name" stays one word).
struct Contraction {
  std::string_view written;
  std::string_view first;
  std::string_view second;
};
constexpr std::array<Contraction, 25> kContractions = {{
    {"i'm", "i", "am"},         {"im", "i", "am"},          {"i've", "i", "have"},
    {"i'll", "i", "will"},      {"don't", "do", "not"},     {"dont", "do", "not"},
    {"doesn't", "does", "not"}, {"didn't", "did", "not"},   {"isn't", "is", "not"},
    {"aren't", "are", "not"},   {"wasn't", "was", "not"},   {"can't", "can", "not"},
    {"cannot", "can", "not"},   {"won't", "will", "not"},   {"haven't", "have", "not"},
    {"what's", "what", "is"},   {"it's", "it", "is"},       {"that's", "that", "is"},
    {"name's", "name", "is"},   {"let's", "let", "us"},     {"there's", "there", "is"},
    {"who's", "who", "is"},     {"where's", "where", "is"}, {"how's", "how", "is"},
    {"here's", "here", "is"},
}};

// A period after one of these, or after a single letter (an initial), does not end a sentence.
constexpr std::string_view kAbbreviations[] = {"mr",  "mrs", "ms",   "dr",    "st", "jr",
                                               "sr",  "mt",  "ft",   "prof",  "vs", "e.g",
                                               "i.e", "ave", "dept", "approx"};

struct QuoteMark {
  size_t at = 0;
  size_t length = 0;
  bool opens = false;
};

// The double quotation marks that pair up within a line: marks open and close alternately, and
// a line's last mark without a partner is not a quotation mark at all (a stray '"', inches).
std::vector<QuoteMark> paired_quotes(std::string_view text) {
  std::vector<QuoteMark> marks;
  bool open = false;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\n') {
      if (open) marks.pop_back();
      open = false;
      ++i;
      continue;
    }
    if (const size_t length = quote_length(text, i)) {
      marks.push_back({i, length, !open});
      open = !open;
      i += length;
      continue;
    }
    ++i;
  }
  if (open) marks.pop_back();
  return marks;
}

// Whether a word written at text[i] ends before it.
bool word_breaks_at(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) {
    if (is_ascii_alnum(c)) return false;
    if (is_ascii_space(c) || c == '"' || c == '!' || c == '?' || c == '(' || c == ')' || c == '[' ||
        c == ']' || c == '{' || c == '}') {
      return true;
    }
    // "1,000" and "10:30" are words; "Paris, France" is two.
    if (c == ',' || c == ';' || c == ':') {
      return i + 1 == text.size() || !is_ascii_alnum(static_cast<unsigned char>(text[i + 1]));
    }
    return false;
  }
  // Beyond ASCII only these start a space, a quotation mark, a dash or an ellipsis.
  if (c != 0xC2 && c != 0xE2) return false;
  return is_nbsp(text, i) || quote_length(text, i) > 0 || dash_length(text, i) > 0 ||
         is_ellipsis(text, i);
}

class Tokenizer {
 public:
  explicit Tokenizer(std::string_view text) : text_(text), quotes_(paired_quotes(text)) {}

  Tokens run() {
    tokens_.words.reserve(text_.size() / 5 + 8);  // about one word per five bytes of English
    size_t i = 0;
    while (i < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[i]);
      if (c == '\n' || c == '\r') {
        end_sentence(false);
        ++i;
      } else if (is_ascii_space(c)) {
        ++i;
      } else if (is_nbsp(text_, i)) {
        i += 2;
      } else if (next_quote_ < quotes_.size() && quotes_[next_quote_].at == i) {
        const QuoteMark& mark = quotes_[next_quote_++];
        quoted_ = mark.opens;
        add_mark(mark.opens ? Mark::kOpenQuote : Mark::kCloseQuote, '"', i, i + mark.length);
        i += mark.length;
      } else if (const size_t stray = quote_length(text_, i)) {
        add_mark(Mark::kPunct, '"', i, i + stray);
        i += stray;
      } else if (c == '!' || c == '?') {
        if (!quoted_) end_sentence(c == '?');
        ++i;
      } else if (is_ellipsis(text_, i)) {
        if (!quoted_) end_sentence(false);
        i += 3;
      } else if (const size_t dash = dash_length(text_, i)) {
        add_mark(Mark::kPunct, '-', i, i + dash);
        i += dash;
      } else if (word_breaks_at(text_, i)) {  // , ; : and brackets
        add_mark(Mark::kPunct, static_cast<char>(c), i, i + 1);
        ++i;
      } else {
        size_t end = i;
        while (end < text_.size() && !word_breaks_at(text_, end)) ++end;
        add_word_run(i, end);
        i = end;
      }
    }
    end_sentence(false);
    return std::move(tokens_);
  }

 private:
  void add_mark(Mark mark, char punct, size_t begin, size_t end) {
    Word word;
    word.begin = begin;
    word.end = end;
    word.mark = mark;
    word.punct = punct;
    word.quoted = quoted_ && mark == Mark::kPunct;
    tokens_.words.push_back(std::move(word));
    just_ended_ = false;
  }

  // A run of word bytes [begin, end): a word, unless it is a lone "-", and a sentence end when
  // it finishes with a period that is not an abbreviation's.
  void add_word_run(size_t begin, size_t end) {
    size_t dots = 0;
    while (end - dots > begin && text_[end - dots - 1] == '.') ++dots;
    bool ends_sentence = false;
    if (dots >= 2) {
      end -= dots;
      ends_sentence = true;
    } else if (dots == 1) {
      const std::string bare = lower(text_.substr(begin, end - 1 - begin));
      const bool initial = bare.size() == 1 && bare[0] >= 'a' && bare[0] <= 'z';
      if (!initial && !in(bare, kAbbreviations)) {
        --end;
        ends_sentence = true;
      }
    }
    if (end > begin) {
      const std::string_view written = text_.substr(begin, end - begin);
      if (written == "-" || written == "--") {
        add_mark(Mark::kPunct, '-', begin, end);
      } else {
        add_word(begin, end);
      }
    }
    if (ends_sentence && !quoted_) end_sentence(false);
  }

  void add_word(size_t begin, size_t end) {
    Word word;
    word.begin = begin;
    word.end = end;
    word.quoted = quoted_;
    if (end - begin <= kMaxKeyBytes) {
      const std::string_view written = text_.substr(begin, end - begin);
      for (size_t k = 0; k < written.size(); ++k) {
        if (has_prefix(written, k, "\xE2\x80\x99")) {
          word.key += '\'';
          k += 2;
        } else {
          word.key += ascii_lower(written[k]);
        }
      }
    }
    const bool may_contract = word.key.find('\'') != std::string::npos || word.key == "im" ||
                              word.key == "dont" || word.key == "cannot";
    for (const Contraction& contraction : kContractions) {
      if (!may_contract || word.key != contraction.written) continue;
      Word second = word;
      word.key = contraction.first;
      second.key = contraction.second;
      second.continuation = true;
      tokens_.words.push_back(std::move(word));
      tokens_.words.push_back(std::move(second));
      just_ended_ = false;
      return;
    }
    tokens_.words.push_back(std::move(word));
    just_ended_ = false;
  }

  void end_sentence(bool question) {
    if (tokens_.words.size() > sentence_first_) {
      tokens_.sentences.push_back({sentence_first_, tokens_.words.size(), question});
      sentence_first_ = tokens_.words.size();
      just_ended_ = true;
    } else if (question && just_ended_ && !tokens_.sentences.empty()) {
      tokens_.sentences.back().question = true;  // "...!?"
    }
  }

  std::string_view text_;
  std::vector<QuoteMark> quotes_;
  size_t next_quote_ = 0;
  bool quoted_ = false;
  bool just_ended_ = false;
  size_t sentence_first_ = 0;
  Tokens tokens_;
};

// ---------------------------------------------------------------------------------------------
// Word lists

// Words that make the rest of a sentence hypothetical, reported or fictional.
constexpr std::string_view kBlockers[] = {
    "if",        "unless",    "whether",    "imagine",        "imagining",    "suppose",
    "supposing", "pretend",   "pretending", "hypothetically", "hypothetical", "say",
    "said",      "says",      "saying",     "told",           "tells",        "asked",
    "asks",      "wish",      "maybe",      "perhaps",        "story",        "character",
    "roleplay",  "role-play", "fictional",  "fiction",        "scenario",     "e.g.",
    "quote",     "quoting"};

constexpr std::string_view kGreetings[] = {"hi", "hello", "hey", "greetings", "howdy", "hiya"};

// Words after which a new clause may start.
constexpr std::string_view kConnectors[] = {
    "and",  "but",  "so",     "also",     "because", "since",    "plus",   "then",      "now",
    "oh",   "well", "ok",     "okay",     "hi",      "hello",    "hey",    "greetings", "howdy",
    "hiya", "yes",  "yeah",   "yep",      "btw",     "actually", "anyway", "anyways",   "please",
    "just", "fyi",  "though", "although", "way",     "note",     "also",   "alright",   "sure"};

// Words that start a new clause after "and" or a comma inside a list ("I like tea and I live in
// Paris", "I'm allergic to nuts, please remember that").
constexpr std::string_view kClauseOpeners[] = {
    "i",      "my",   "we",     "our",   "you",  "please", "also", "remember",
    "forget", "call", "always", "never", "from", "btw",    "he",   "she",
    "they",   "it",   "there",  "this",  "that", "i'd",    "what", "how"};

// Adverbs allowed between "I" (or "I am") and the verb: "I really like", "I'm originally from".
constexpr std::string_view kAdverbs[] = {
    "also",      "really",     "actually",  "still",     "just",   "truly",     "absolutely",
    "totally",   "definitely", "usually",   "generally", "mostly", "honestly",  "currently",
    "now",       "originally", "recently",  "severely",  "very",   "mildly",    "extremely",
    "highly",    "slightly",   "seriously", "always",    "often",  "sometimes", "normally",
    "typically", "only",       "personally"};

// Stop a slot's value: "Ana and ...", "Paris with my wife", "Acme for five years".
constexpr std::string_view kSlotStops[] = {
    "and",      "or",    "but",    "so",    "because", "cause", "since",   "though",
    "although", "while", "when",   "where", "which",   "who",   "whose",   "with",
    "for",      "as",    "unless", "until", "then",    "plus",  "whereas", "except",
    "not",      "by",    "is",     "was",   "are",     "were",  "lol",     "haha"};

// Stop a list of things ("Likes tea, coffee and cake"); "and" and "or" stop it only before a
// new clause.
constexpr std::string_view kListStops[] = {"but",      "because", "cause",   "since", "though",
                                           "although", "while",   "whereas", "when",  "whenever",
                                           "which",    "so",      "except",  "unless"};

// Trailing words that are not part of a value: "I live in Berlin now".
constexpr std::string_view kTrailingFillers[] = {
    "now", "currently", "too",     "though", "anyway", "anyways", "actually", "lol",   "haha",
    "btw", "nowadays",  "already", "again",  "please", "thanks",  "also",     "either"};

// Words a value never starts with: pronouns, vague words, negations ("I like it", "I love how
// you ...", "my name is not Bob").
constexpr std::string_view kNotAValueStart[] = {
    "it",       "that",      "this",       "these",    "those",   "you",    "your",     "yours",
    "him",      "her",       "them",       "us",       "me",      "myself", "yourself", "so",
    "too",      "much",      "what",       "how",      "when",    "where",  "which",    "who",
    "why",      "whatever",  "whoever",    "if",       "not",     "no",     "never",    "nothing",
    "anything", "something", "everything", "everyone", "someone", "anyone", "there",    "here",
    "to",       "a lot",     "lots",       "more",     "less",    "very",   "really",   "such",
    "and",      "or",        "but",        "the way"};

// What a name is not: "call me later", "I'm called to the bar", "my name is on the list".
constexpr std::string_view kNotAName[] = {
    "on",        "in",       "at",        "by",      "to",         "for",      "from",
    "the",       "a",        "an",        "also",    "still",      "actually", "really",
    "just",      "very",     "spelled",   "spelt",   "pronounced", "written",  "hard",
    "difficult", "easy",     "long",      "short",   "weird",      "strange",  "unusual",
    "common",    "rare",     "unique",    "same",    "different",  "up",       "out",
    "back",      "later",    "tomorrow",  "tonight", "today",      "now",      "anytime",
    "whenever",  "maybe",    "please",    "crazy",   "sometime",   "soon",     "again",
    "anything",  "whatever", "something", "nothing", "one",        "first",    "only"};

// After "Hi, I'm": words that describe the user rather than name them.
constexpr std::string_view kNotAGreetingName[] = {
    "sorry",   "fine",     "good",      "great",   "ok",       "okay",      "back",   "here",
    "new",     "glad",     "happy",     "tired",   "busy",     "ready",     "done",   "interested",
    "looking", "trying",   "wondering", "curious", "going",    "currently", "always", "never",
    "stuck",   "confused", "working",   "writing", "building", "using",     "having", "getting",
    "well",    "not",      "so",        "very",    "really",   "just",      "still",  "also",
    "excited", "new",      "a",         "an",      "the",      "in",        "on",     "at",
    "from",    "with",     "about",     "afraid",  "sure",     "back",      "alone",  "planning"};

// Where one does not live, work or come from: "I live in fear", "I work at home".
constexpr std::string_view kNotAPlace[] = {
    "fear",  "hope",   "denial", "peace",  "harmony",  "misery", "poverty", "luxury", "shame",
    "sin",   "home",   "night",  "nights", "weekends", "least",  "all",     "myself", "free",
    "fun",   "money",  "times",  "once",   "here",     "there",  "work",    "school", "now",
    "hours", "length", "ease",   "full",   "part",     "remote", "remotely"};

// "my Y is X" is not stored when Y is, or ends with, one of these: vague ("my problem is", "my
// guess is"), passing ("my order is", "my day is"), or the speaker's turn of phrase ("my bad").
constexpr std::string_view kVagueSlotWords[] = {
    "problem",  "problems", "question",  "questions",     "point",      "guess",
    "answer",   "answers",  "concern",   "concerns",      "issue",      "issues",
    "idea",     "ideas",    "opinion",   "view",          "thought",    "thoughts",
    "feeling",  "feelings", "fault",     "pleasure",      "turn",       "mistake",
    "request",  "message",  "reason",    "bad",           "god",        "gosh",
    "goodness", "dear",     "bet",       "understanding", "impression", "assumption",
    "hope",     "hunch",    "advice",    "suggestion",    "order",      "life",
    "day",      "week",     "morning",   "night",         "evening",    "head",
    "mind",     "mood",     "heart",     "experience",    "code",       "output",
    "result",   "results",  "prompt",    "input",         "error",      "test",
    "task",     "attempt",  "take",      "understanding", "worry",      "fear",
    "dream",    "wish",     "apologies", "priority",      "focus",      "own",
    "only",     "other",    "one",       "main",          "it",         "this",
    "that",     "self",     "way",       "part",          "situation",  "case",
    "side",     "job",      "boss"};

// Never remembered by rules, whatever the phrasing: secrets and payment data.
constexpr std::string_view kSecretWords[] = {
    "password",    "passwords", "passcode", "passphrase", "pin",    "cvv",    "cvc",
    "ssn",         "secret",    "token",    "key",        "card",   "iban",   "login",
    "credentials", "security",  "otp",      "2fa",        "social", "account"};

// Leading words of Y that do not change the slot: "my new address" is the address.
constexpr std::string_view kSlotAdjectives[] = {"current", "new",     "actual", "real",
                                                "correct", "updated", "present"};

// Things to forget that name no single-valued slot.
constexpr std::string_view kNotASlot[] = {"allergies",    "allergy",       "likes",     "dislikes",
                                          "preferences",  "hobbies",       "interests", "memories",
                                          "data",         "information",   "info",      "details",
                                          "stuff",        "everything",    "history",   "messages",
                                          "conversation", "conversations", "chats"};

// Languages recognised in "answer in X" when written in lower case (a capitalised word is
// taken as a language too: "answer in Tagalog").
constexpr std::string_view kLanguages[] = {
    "english",   "french",     "spanish",   "german",     "italian",   "portuguese", "dutch",
    "russian",   "chinese",    "mandarin",  "cantonese",  "japanese",  "korean",     "arabic",
    "hindi",     "turkish",    "polish",    "swedish",    "norwegian", "danish",     "finnish",
    "greek",     "hebrew",     "ukrainian", "czech",      "romanian",  "hungarian",  "vietnamese",
    "thai",      "indonesian", "malay",     "persian",    "farsi",     "urdu",       "bengali",
    "catalan",   "basque",     "galician",  "swahili",    "tagalog",   "latin",      "esperanto",
    "icelandic", "irish",      "welsh",     "bulgarian",  "serbian",   "croatian",   "slovak",
    "slovenian", "estonian",   "latvian",   "lithuanian", "tamil",     "telugu",     "punjabi"};

constexpr std::string_view kReplyVerbs[] = {"answer", "reply", "respond", "speak",
                                            "write",  "talk",  "chat"};

// Verbs whose third person "remember that I ..." may safely write ("I need" -> "Needs").
constexpr std::string_view kCommonVerbs[] = {
    "like",    "love",  "hate",      "prefer",    "need",    "want",       "work",     "live",
    "own",     "use",   "speak",     "eat",       "drink",   "play",       "study",    "teach",
    "drive",   "take",  "visit",     "go",        "watch",   "read",       "write",    "run",
    "walk",    "cook",  "travel",    "know",      "plan",    "enjoy",      "wear",     "keep",
    "get",     "make",  "feel",      "think",     "believe", "follow",     "practice", "practise",
    "support", "care",  "sleep",     "wake",      "start",   "finish",     "leave",    "attend",
    "collect", "avoid", "try",       "stay",      "commute", "cycle",      "swim",     "ride",
    "fly",     "rent",  "miss",      "fix",       "dislike", "understand", "expect",   "intend",
    "do",      "have",  "celebrate", "volunteer", "teach",   "manage",     "lead",     "run"};

constexpr std::string_view kModals[] = {"will", "would", "can", "could", "should",
                                        "must", "might", "may", "shall"};

// Day and date words that make a remembered clause an event.
constexpr std::string_view kDateWords[] = {
    "today",       "tonight",  "tomorrow",    "yesterday", "monday",  "tuesday",   "wednesday",
    "thursday",    "friday",   "saturday",    "sunday",    "mondays", "tuesdays",  "wednesdays",
    "thursdays",   "fridays",  "saturdays",   "sundays",   "weekend", "january",   "february",
    "march",       "april",    "june",        "july",      "august",  "september", "october",
    "november",    "december", "noon",        "midnight",  "o'clock", "christmas", "birthday",
    "anniversary", "deadline", "appointment", "meeting"};

// ---------------------------------------------------------------------------------------------
// Scanning one sentence

struct Scan {
  std::string_view message;
  const std::vector<Word>& words;
  size_t first = 0;  // the sentence's words [first, end)
  size_t end = 0;
  bool greeted = false;  // a greeting came earlier in the sentence

  // An unquoted word (not punctuation) at i.
  bool word(size_t i) const { return i < end && words[i].mark == Mark::kWord && !words[i].quoted; }
  bool is(size_t i, std::string_view key) const { return word(i) && words[i].key == key; }
  bool is_any(size_t i, Keys keys) const { return word(i) && in(words[i].key, keys); }
  bool is_one_of(size_t i, std::initializer_list<std::string_view> keys) const {
    return word(i) && in(words[i].key, Keys(keys.begin(), keys.size()));
  }
  std::string_view key(size_t i) const {
    return word(i) ? std::string_view(words[i].key) : std::string_view();
  }
  bool punct(size_t i) const { return i < end && words[i].mark == Mark::kPunct; }

  // The index after `keys` matched one by one from i, or kNone.
  size_t after(size_t i, std::initializer_list<std::string_view> keys) const {
    for (std::string_view k : keys) {
      if (!is(i, k)) return kNone;
      ++i;
    }
    return i;
  }

  // Whether a clause may start at i: the sentence's start, after punctuation or a connector.
  bool clause_start(size_t i) const {
    if (i == first) return true;
    const Word& before = words[i - 1];
    if (before.mark == Mark::kPunct) return true;
    return before.mark == Mark::kWord && in(before.key, kConnectors);
  }
};

// Whether the word at i makes the rest of its sentence hypothetical or reported ("for
// example" does, "example" alone does not).
bool is_blocker(const Scan& s, size_t i) {
  if (!s.word(i)) return false;
  if (s.is_any(i, kBlockers)) return true;
  return s.is(i, "example") && i > s.first && s.is(i - 1, "for");
}

size_t skip_adverbs(const Scan& s, size_t i) {
  for (int n = 0; n < 2 && s.is_any(i, kAdverbs); ++n) ++i;
  return i;
}

// "I" and up to two adverbs: the index after them, or kNone.
size_t after_i(const Scan& s, size_t i) { return s.is(i, "i") ? skip_adverbs(s, i + 1) : kNone; }

// "I am"/"I'm" and up to two adverbs.
size_t after_i_am(const Scan& s, size_t i) {
  const size_t k = s.after(i, {"i", "am"});
  return k == kNone ? kNone : skip_adverbs(s, k);
}

// A value: the words [begin, end); scanning goes on at `next`.
struct Span {
  size_t begin = 0;
  size_t end = 0;
  size_t next = 0;
  bool anymore = false;  // it ended in "anymore", "any more" or "any longer" (removed)
};

enum class Shape {
  kSlot,    // one value: stops at punctuation and at "and", "with", "for", ...
  kList,    // things liked or avoided: commas and "and" go on, unless a new clause starts
  kClause,  // a clause to remember: goes on to the end of the sentence or the next clause
};

bool new_clause_at(const Scan& s, size_t i) { return s.is_any(i, kClauseOpeners); }

// Drops trailing punctuation and, but from a clause to remember, trailing filler words
// ("now", "right now", "at the moment") and "anymore" (noted in the span).
void trim_value(const Scan& s, Span& span, Shape shape) {
  while (span.end > span.begin) {
    const size_t last = span.end - 1;
    const bool two = last > span.begin;
    const bool three = last > span.begin + 1;
    if (s.punct(last)) {
      --span.end;
      continue;
    }
    if (shape == Shape::kClause) return;
    if (s.is(last, "anymore") ||
        (two && s.is(last - 1, "any") && s.is_one_of(last, {"more", "longer"}))) {
      span.end -= s.is(last, "anymore") ? 1 : 2;
      span.anymore = true;
    } else if (s.is_any(last, kTrailingFillers)) {
      --span.end;
    } else if (three && ((s.is(last - 2, "at") && s.is(last - 1, "the") && s.is(last, "moment")) ||
                         (s.is(last - 2, "by") && s.is(last - 1, "the") && s.is(last, "way")))) {
      span.end -= 3;
    } else if (two && ((s.is(last - 1, "right") && s.is(last, "now")) ||
                       (s.is(last - 1, "these") && s.is(last, "days")) ||
                       (s.is(last - 1, "as") && s.is(last, "well")) ||
                       (s.is(last - 1, "for") && s.is(last, "now")))) {
      span.end -= 2;
    } else {
      return;
    }
  }
}

// The value that starts at i, or nothing when there is none or it is longer than `max_words`
// (then it is probably not a value). A value that opens with a quotation mark is the quotation.
std::optional<Span> take_value(const Scan& s, size_t i, Shape shape, size_t max_words) {
  const auto& words = s.words;
  if (i < s.end && words[i].mark == Mark::kOpenQuote) {
    size_t j = i + 1;
    while (j < s.end && words[j].mark != Mark::kCloseQuote) {
      if (j - i > max_words) return std::nullopt;
      ++j;
    }
    if (j >= s.end || j == i + 1) return std::nullopt;
    Span span{i + 1, j, j + 1, false};
    return span;
  }
  size_t j = i;
  size_t count = 0;
  while (j < s.end) {
    const Word& w = words[j];
    if (w.mark == Mark::kOpenQuote || w.mark == Mark::kCloseQuote || w.quoted) break;
    if (w.mark == Mark::kPunct) {
      if (shape == Shape::kSlot || w.punct != ',' || new_clause_at(s, j + 1)) break;
      ++j;
      continue;
    }
    if (shape != Shape::kClause && is_blocker(s, j)) break;
    if (shape == Shape::kSlot && in(w.key, kSlotStops)) break;
    if (shape == Shape::kList && in(w.key, kListStops)) break;
    if (shape != Shape::kSlot && (w.key == "and" || w.key == "or" || w.key == "but") &&
        new_clause_at(s, j + 1)) {
      break;
    }
    if (++count > max_words) return std::nullopt;
    ++j;
  }
  Span span{i, j, j, false};
  trim_value(s, span, shape);
  if (span.end == span.begin) return std::nullopt;
  return span;
}

// Extends a place or an address over the comma-separated parts that complete it ("Paris,
// France", "12 Rue de Rivoli, 75001 Paris"): each part must start with a capital, a digit or a
// letter outside ASCII, and end the clause.
void extend_over_commas(const Scan& s, Span& span) {
  for (int parts = 0;
       parts < 3 && span.end == span.next && s.punct(span.end) && s.words[span.end].punct == ',';
       ++parts) {
    const size_t start = span.end + 1;
    if (!s.word(start) || s.is_any(start, kClauseOpeners) || s.is_any(start, kConnectors)) return;
    const auto c = static_cast<unsigned char>(s.message[s.words[start].begin]);
    if (!is_ascii_upper(c) && !is_digit(c) && c < 0x80) return;
    auto part = take_value(s, start, Shape::kSlot, 4);
    if (!part || part->end != part->next) return;
    if (part->next < s.end && !s.punct(part->next)) return;
    span.end = part->end;
    span.next = part->next;
  }
}

// Whether the value's first word (or first two) is one it never starts with.
bool starts_badly(const Scan& s, const Span& span, Keys not_first) {
  const std::string_view first = s.words[span.begin].key;
  if (in(first, not_first)) return true;
  if (span.end - span.begin >= 2) {
    std::string two(first);
    two += ' ';
    two += s.words[span.begin + 1].key;
    if (in(two, not_first)) return true;
  }
  return false;
}

// Whether every word of the value is written like a name: a capital, a digit or a letter
// outside ASCII first ("Ana", "Zoë", "Łukasz"), or a particle ("da", "van", "de").
bool looks_like_name(const Scan& s, const Span& span) {
  static constexpr std::string_view kParticles[] = {"da", "de", "del", "della", "di", "van", "von",
                                                    "la", "le", "bin", "al",    "el", "dos"};
  for (size_t k = span.begin; k < span.end; ++k) {
    const Word& w = s.words[k];
    if (w.mark != Mark::kWord) return false;
    const auto c = static_cast<unsigned char>(s.message[w.begin]);
    if (is_ascii_upper(c) || is_digit(c) || c >= 0x80) continue;
    if (k > span.begin && in(w.key, kParticles)) continue;
    return false;
  }
  return true;
}

// Appends the words [a, b) as written, one space where the user had whitespace, up to a little
// past the text limit (the caller cuts it at a character boundary).
void append_written(const Scan& s, size_t a, size_t b, std::string& out) {
  size_t previous_end = kNone;
  for (size_t k = a; k < b && out.size() <= kMaxMemoryTextBytes; ++k) {
    const Word& w = s.words[k];
    if (w.continuation) continue;
    if (previous_end != kNone && previous_end < w.begin && !out.empty()) out += ' ';
    const size_t room = kMaxMemoryTextBytes + 8 - std::min(out.size(), kMaxMemoryTextBytes);
    out.append(s.message.substr(w.begin, std::min(w.end - w.begin, room)));
    previous_end = w.end;
  }
}

std::string written(const Scan& s, size_t a, size_t b) {
  std::string out;
  append_written(s, a, b, out);
  return out;
}

// Drops trailing punctuation a value should not keep ("Paris!", "tea...", "Ana'").
std::string_view trim_trailing_punctuation(std::string_view text) {
  while (!text.empty()) {
    const char c = text.back();
    if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == '\'' ||
        c == '"' || c == '`' || is_ascii_space(static_cast<unsigned char>(c))) {
      text.remove_suffix(1);
    } else {
      break;
    }
  }
  return text;
}

std::string value_text(const Scan& s, const Span& span) {
  const std::string text = written(s, span.begin, span.end);
  return std::string(trim_trailing_punctuation(text));
}

// The third person of a verb from kCommonVerbs: "likes", "watches", "tries", "has".
std::string third_person(std::string_view verb) {
  if (verb == "have") return "has";
  std::string out(verb);
  const auto ends = [&](std::string_view tail) {
    return out.size() >= tail.size() &&
           out.compare(out.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh") || ends("o")) {
    out += "es";
  } else if (out.size() > 1 && out.back() == 'y' &&
             std::string_view("aeiou").find(out[out.size() - 2]) == std::string_view::npos) {
    out.back() = 'i';
    out += "es";
  } else {
    out += 's';
  }
  return out;
}

// The words [a, b) with first-person pronouns in the third (see the top of the file).
void append_about_user(const Scan& s, size_t a, size_t b, std::string& out) {
  size_t previous_end = kNone;
  for (size_t k = a; k < b && out.size() <= kMaxMemoryTextBytes; ++k) {
    const Word& w = s.words[k];
    if (w.continuation) continue;
    if (previous_end != kNone && previous_end < w.begin && !out.empty()) out += ' ';
    previous_end = w.end;
    const bool contracted = k + 1 < b && s.words[k + 1].continuation;
    std::string_view replacement;
    if (w.mark == Mark::kWord && w.key == "i") {
      const std::string_view next = k + 1 < b ? std::string_view(s.words[k + 1].key) : "";
      if (contracted) {
        replacement = next == "am" ? "they're" : next == "have" ? "they've" : "they'll";
      } else if (next == "am" || next == "was") {
        replacement = next == "am" ? "they are" : "they were";
        previous_end = s.words[k + 1].end;
        ++k;
      } else {
        replacement = "they";
      }
    } else if (w.mark == Mark::kWord && !contracted) {
      static constexpr std::pair<std::string_view, std::string_view> kPronouns[] = {
          {"my", "their"},
          {"mine", "theirs"},
          {"me", "them"},
          {"myself", "themselves"},
          {"i'd", "they'd"}};
      for (const auto& [first, third] : kPronouns) {
        if (w.key == first) replacement = third;
      }
    }
    if (!replacement.empty()) {
      out += replacement;
    } else {
      const size_t room = kMaxMemoryTextBytes + 8 - std::min(out.size(), kMaxMemoryTextBytes);
      out.append(s.message.substr(w.begin, std::min(w.end - w.begin, room)));
    }
  }
}

// A value with first-person pronouns in the third: "Loves their job".
std::string value_about_user(const Scan& s, const Span& span) {
  std::string text;
  append_about_user(s, span.begin, span.end, text);
  return std::string(trim_trailing_punctuation(text));
}

// Whether the value has something to say: a letter, a digit or a character outside ASCII.
bool has_substance(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return is_ascii_alnum(b) || b >= 0x80;
  });
}

// The words [a, b) joined by single spaces, lower-cased: a slot name.
std::string slot_name(const Scan& s, size_t a, size_t b) {
  std::string out;
  for (size_t k = a; k < b; ++k) {
    if (s.words[k].continuation) continue;
    if (!out.empty()) out += ' ';
    out += s.words[k].key;
  }
  return clean_memory_text(out, kMaxSlotBytes);
}

// Whether words [a, b) could name an attribute: plain words of letters, "'" and "-".
bool plain_words(const Scan& s, size_t a, size_t b) {
  for (size_t k = a; k < b; ++k) {
    if (!s.word(k) || s.words[k].continuation) return false;
    const std::string_view key = s.words[k].key;
    if (key.empty()) return false;
    for (char c : key) {
      const auto u = static_cast<unsigned char>(c);
      if (!((u >= 'a' && u <= 'z') || c == '\'' || c == '-' || u >= 0x80)) return false;
    }
  }
  return true;
}

bool names_a_secret(const Scan& s, size_t a, size_t b) {
  for (size_t k = a; k < b; ++k) {
    std::string_view key = s.words[k].key;
    if (key.size() > 2 && key.substr(key.size() - 2) == "'s") key.remove_suffix(2);
    if (in(key, kSecretWords)) return true;
  }
  return false;
}

struct Match {
  Proposal proposal;
  size_t next = 0;  // where scanning goes on
};
using Found = std::optional<Match>;

Proposal make_proposal(Event event, std::string_view text, std::string_view kind,
                       std::string_view slot, double importance, std::string_view retention = {}) {
  Proposal p;
  p.event = event;
  p.text = clean_memory_text(text, kMaxMemoryTextBytes);
  p.kind = std::string(kind);
  p.slot = clean_memory_text(slot, kMaxSlotBytes);
  p.importance = importance;
  p.retention = std::string(retention);
  return p;
}

// A proposal built from a value, or nothing when the value says nothing.
Found found(Proposal proposal, size_t next) {
  if (proposal.text.empty() || !has_substance(proposal.text)) return std::nullopt;
  return Match{std::move(proposal), next};
}

// ---------------------------------------------------------------------------------------------
// Statements about the user

Found match_name(const Scan& s, size_t i) {
  size_t v = kNone;
  bool strict = false;    // the value must be written like a name
  bool greeting = false;  // "Hi, I'm Ana": only a name that ends the clause
  if (s.is(i, "my")) {
    size_t k = i + 1;
    if (s.is_one_of(k, {"full", "first", "real"})) ++k;
    v = s.after(k, {"name", "is"});
  } else if (size_t k = after_i_am(s, i); k != kNone && s.is(k, "called")) {
    v = k + 1;
  } else if (size_t g = after_i(s, i); g != kNone && s.after(g, {"go", "by"}) != kNone) {
    v = g + 2;
    strict = true;
  } else if (s.after(i, {"call", "me"}) != kNone) {
    v = i + 2;
    strict = true;
  } else if (s.is(i, "you") && s.is_one_of(i + 1, {"can", "may"}) &&
             s.after(i + 2, {"call", "me"}) != kNone) {
    v = i + 4;
    strict = true;
  } else if (s.greeted && s.after(i, {"i", "am"}) != kNone) {
    v = i + 2;
    greeting = true;
  }
  if (v == kNone) return std::nullopt;
  auto span = take_value(s, v, Shape::kSlot, greeting ? 3 : kMaxNameWords);
  if (!span || starts_badly(s, *span, kNotAName) || starts_badly(s, *span, kNotAValueStart)) {
    return std::nullopt;
  }
  if ((strict || greeting) && !looks_like_name(s, *span)) return std::nullopt;
  if (greeting) {
    if (starts_badly(s, *span, kNotAGreetingName)) return std::nullopt;
    const size_t after = span->next;  // the name must end the clause
    if (after < s.end && !s.punct(after) && !s.is_one_of(after, {"and", "but"})) {
      return std::nullopt;
    }
  }
  return found(make_proposal(Event::kAdd, "Name is " + value_text(s, *span), "profile", "name", 0.9,
                             "permanent"),
               span->next);
}

struct PlaceVerb {
  size_t value = kNone;   // where the value starts
  std::string_view text;  // the memory's opening words
  std::string_view slot;
};

// "I live in", "I'm living in", "I'm based in", "I moved to": the location.
PlaceVerb location_verb(const Scan& s, size_t i) {
  if (size_t k = after_i(s, i); k != kNone) {
    if (size_t v = s.after(k, {"live", "in"}); v != kNone) return {v, "Lives in", "location"};
    if (s.is_one_of(k, {"moved", "relocated"}) && s.is(k + 1, "to")) {
      return {k + 2, "Lives in", "location"};
    }
    if (s.is(k, "have")) {
      const size_t m = skip_adverbs(s, k + 1);
      if (s.is_one_of(m, {"moved", "relocated"}) && s.is(m + 1, "to")) {
        return {m + 2, "Lives in", "location"};
      }
    }
    if (size_t v = s.after(k, {"come", "from"}); v != kNone) return {v, "Is from", "hometown"};
  }
  if (size_t k = after_i_am(s, i); k != kNone) {
    if (s.is_one_of(k, {"living", "based", "located"}) && s.is(k + 1, "in")) {
      return {k + 2, "Lives in", "location"};
    }
    if (s.is(k, "from")) return {k + 1, "Is from", "hometown"};
  }
  return {};
}

Found match_place(const Scan& s, size_t i) {
  const PlaceVerb verb = location_verb(s, i);
  if (verb.value == kNone) return std::nullopt;
  auto span = take_value(s, verb.value, Shape::kSlot, kMaxSlotValueWords);
  if (!span || span->anymore || starts_badly(s, *span, kNotAValueStart) ||
      starts_badly(s, *span, kNotAPlace)) {
    return std::nullopt;
  }
  if (s.is(span->begin, "the") &&
      s.is_one_of(span->begin + 1, {"moment", "past", "present", "future"})) {
    return std::nullopt;
  }
  extend_over_commas(s, *span);
  std::string text(verb.text);
  text += ' ';
  text += value_about_user(s, *span);
  return found(make_proposal(Event::kAdd, text, "profile", verb.slot, 0.8), span->next);
}

// "I work at/for X", "I'm working at X", "I'm employed at/by X": the employer, with the user's
// preposition ("Works for Acme"); "I work as a X", "I'm a X by profession": the occupation.
Found match_work(const Scan& s, size_t i) {
  size_t v = kNone;
  std::string_view preposition;
  bool occupation = false;
  bool by_profession = false;
  if (size_t k = after_i(s, i); k != kNone && s.is(k, "work")) {
    if (s.is_one_of(k + 1, {"at", "for"})) {
      v = k + 2;
      preposition = s.key(k + 1);
    } else if (s.is(k + 1, "as") && s.is_one_of(k + 2, {"a", "an"})) {
      v = k + 2;
      occupation = true;
    }
  } else if (size_t m = after_i_am(s, i); m != kNone) {
    if (s.is(m, "working") && s.is_one_of(m + 1, {"at", "for"})) {
      v = m + 2;
      preposition = s.key(m + 1);
    } else if (s.is(m, "employed") && s.is_one_of(m + 1, {"at", "by"})) {
      v = m + 2;
      preposition = s.is(m + 1, "by") ? "for" : "at";
    } else if (s.is_one_of(m, {"a", "an"})) {
      v = m;
      occupation = true;
      by_profession = true;
    }
  }
  if (v == kNone) return std::nullopt;
  if (!occupation) {
    auto span = take_value(s, v, Shape::kSlot, kMaxSlotValueWords);
    if (!span || span->anymore || starts_badly(s, *span, kNotAValueStart) ||
        starts_badly(s, *span, kNotAPlace)) {
      return std::nullopt;
    }
    std::string text = "Works ";
    text += preposition;
    text += ' ';
    text += value_about_user(s, *span);
    return found(make_proposal(Event::kAdd, text, "profile", "employer", 0.7), span->next);
  }
  // The article is part of the value: "Works as an engineer". "by" stops a slot's value, so
  // "I'm a nurse by profession" ends at "nurse" with "by profession" next.
  auto span = take_value(s, v, Shape::kSlot, kMaxSlotValueWords);
  if (!span || span->anymore || span->end - span->begin < 2) return std::nullopt;
  size_t next = span->next;
  if (by_profession) {
    if (span->end != span->next || !s.is(next, "by") ||
        !s.is_one_of(next + 1, {"profession", "trade"})) {
      return std::nullopt;
    }
    next += 2;
  }
  if (in(s.key(span->begin + 1), kNotAValueStart)) return std::nullopt;
  return found(make_proposal(Event::kAdd, "Works as " + value_about_user(s, *span), "profile",
                             "occupation", 0.7),
               next);
}

Found match_allergy(const Scan& s, size_t i) {
  const size_t k = after_i_am(s, i);
  if (k == kNone || !s.is(k, "allergic") || !s.is(k + 1, "to")) return std::nullopt;
  auto span = take_value(s, k + 2, Shape::kList, kMaxSlotValueWords);
  if (!span || span->anymore || starts_badly(s, *span, kNotAValueStart)) return std::nullopt;
  return found(make_proposal(Event::kAdd, "Is allergic to " + value_about_user(s, *span), "fact",
                             "", 0.9, "permanent"),
               span->next);
}

// "I prefer/like/love/enjoy/hate/dislike X", "I don't like X", "I do like X".
Found match_preference(const Scan& s, size_t i) {
  size_t k = after_i(s, i);
  if (k == kNone) return std::nullopt;
  std::string_view verb;
  if (s.is(k, "do") && s.is(k + 1, "not")) {
    const size_t m = skip_adverbs(s, k + 2);
    if (!s.is(m, "like")) return std::nullopt;
    verb = "Dislikes";
    k = m + 1;
  } else {
    if (s.is(k, "do")) k = skip_adverbs(s, k + 1);  // "I do like", "I do really like"
    static constexpr std::pair<std::string_view, std::string_view> kVerbs[] = {
        {"prefer", "Prefers"}, {"like", "Likes"},       {"love", "Loves"},   {"enjoy", "Enjoys"},
        {"hate", "Hates"},     {"dislike", "Dislikes"}, {"adore", "Adores"}, {"detest", "Detests"}};
    for (const auto& [key, third_person] : kVerbs) {
      if (s.is(k, key)) verb = third_person;
    }
    if (verb.empty()) return std::nullopt;
    ++k;
  }
  auto span = take_value(s, k, Shape::kList, kMaxListWords);
  if (!span || span->anymore || starts_badly(s, *span, kNotAValueStart)) return std::nullopt;
  std::string text(verb);
  text += ' ';
  text += value_about_user(s, *span);
  return found(make_proposal(Event::kAdd, text, "preference", "", 0.6), span->next);
}

// "my favorite/favourite/fav Y is/are X".
Found match_favorite(const Scan& s, size_t i) {
  if (!s.is(i, "my") || !s.is_one_of(i + 1, {"favorite", "favourite", "fav"})) {
    return std::nullopt;
  }
  const size_t y = i + 2;
  size_t verb = kNone;
  for (size_t k = y + 1; k <= y + 3 && k < s.end; ++k) {
    if (s.is_one_of(k, {"is", "are"})) {
      verb = k;
      break;
    }
  }
  if (verb == kNone || !plain_words(s, y, verb)) return std::nullopt;
  auto span = take_value(s, verb + 1, Shape::kSlot, kMaxSlotValueWords);
  if (!span || span->anymore || starts_badly(s, *span, kNotAValueStart)) return std::nullopt;
  const std::string text = capitalized(written(s, i + 1, verb)) + ' ' + std::string(s.key(verb)) +
                           ' ' + value_about_user(s, *span);
  return found(
      make_proposal(Event::kAdd, text, "preference", "favorite " + slot_name(s, y, verb), 0.6),
      span->next);
}

struct Attribute {
  size_t begin = kNone;  // Y: words [begin, end), adjectives like "new" left out
  size_t end = kNone;
  size_t verb = kNone;  // the "is"
};

// "my Y is": Y of 1-3 plain words that is not vague, passing or secret.
Attribute attribute_at(const Scan& s, size_t i) {
  if (!s.is(i, "my")) return {};
  size_t y = i + 1;
  if (s.is_any(y, kSlotAdjectives) && s.word(y + 1) && !s.is(y + 1, "is")) ++y;
  size_t verb = kNone;
  for (size_t k = y + 1; k <= y + 3 && k < s.end; ++k) {
    if (s.is(k, "is")) {
      verb = k;
      break;
    }
  }
  if (verb == kNone || !plain_words(s, y, verb) || names_a_secret(s, y, verb)) return {};
  for (size_t k = y; k < verb; ++k) {
    if (s.is_one_of(k, {"not", "and", "or", "favorite", "favourite", "fav", "own"})) {
      return {};
    }
  }
  if (s.is_any(y, kVagueSlotWords) || s.is_any(verb - 1, kVagueSlotWords)) return {};
  return {y, verb, verb};
}

// People and pets: "my wife is a doctor" describes someone else and is not kept, but "my wife
// is called Eva" and "my wife's name is Eva" are.
constexpr std::string_view kPeople[] = {
    "wife",      "husband",  "partner",  "boyfriend", "girlfriend", "fiance",      "fiancee",
    "spouse",    "son",      "daughter", "kid",       "kids",       "child",       "children",
    "baby",      "mom",      "mum",      "mother",    "dad",        "father",      "parents",
    "brother",   "sister",   "sibling",  "grandma",   "grandpa",    "grandmother", "grandfather",
    "aunt",      "uncle",    "cousin",   "nephew",    "niece",      "friend",      "roommate",
    "colleague", "coworker", "manager",  "teacher",   "doctor",     "neighbor",    "neighbour",
    "dog",       "cat",      "pet",      "puppy",     "kitten",     "team",        "family"};

// Words a "my Y is X" value does not start with: states of the moment ("my internet is so
// slow", "my phone is getting old").
constexpr std::string_view kNotAnAttributeValue[] = {
    "a bit",    "kind",       "sort",    "going",  "gonna",     "being",  "getting", "also",
    "still",    "just",       "quite",   "pretty", "always",    "broken", "down",    "dead",
    "acting",   "killing",    "driving", "making", "giving",    "full",   "empty",   "low",
    "high",     "slow",       "fast",    "ok",     "okay",      "fine",   "great",   "good",
    "bad",      "terrible",   "awful",   "same",   "different", "better", "worse",   "over",
    "gone",     "out",        "on",      "off",    "in",        "at",     "about",   "like",
    "probably", "definitely", "actually"};

Found match_attribute(const Scan& s, size_t i) {
  const Attribute attr = attribute_at(s, i);
  if (attr.verb == kNone) return std::nullopt;
  if (s.is(attr.begin, "name") && attr.end == attr.begin + 1) return std::nullopt;  // the name
  size_t v = attr.verb + 1;
  const bool named = s.is_one_of(v, {"called", "named"});
  if (named) ++v;
  auto span = take_value(s, v, Shape::kSlot, kMaxSlotValueWords);
  if (!span || span->anymore || starts_badly(s, *span, kNotAValueStart) ||
      starts_badly(s, *span, kNotAnAttributeValue)) {
    return std::nullopt;
  }
  if (!named) extend_over_commas(s, *span);
  if (!named && s.is_any(attr.end - 1, kPeople)) return std::nullopt;
  std::string attribute = written(s, attr.begin, attr.end);
  std::string slot = slot_name(s, attr.begin, attr.end);
  if (named) {  // "my dog is called Rex": the dog's name
    if (!looks_like_name(s, *span)) return std::nullopt;
    attribute += "'s name";
    slot = clean_memory_text(slot + "'s name", kMaxSlotBytes);
  }
  const std::string text = capitalized(attribute) + " is " + value_about_user(s, *span);
  return found(make_proposal(Event::kAdd, text, "fact", slot, 0.7), span->next);
}

// The statements above, most specific first.
Found match_statement(const Scan& s, size_t i) {
  if (auto m = match_name(s, i)) return m;
  if (auto m = match_place(s, i)) return m;
  if (auto m = match_work(s, i)) return m;
  if (auto m = match_allergy(s, i)) return m;
  if (auto m = match_preference(s, i)) return m;
  if (auto m = match_favorite(s, i)) return m;
  return match_attribute(s, i);
}

// ---------------------------------------------------------------------------------------------
// What is no longer true, and what to forget

Proposal deletion(std::string_view query, std::string_view slot, std::string_view kind) {
  Proposal p = make_proposal(Event::kDelete, query, kind, slot, 0.5);
  p.query = p.text;
  return p;
}

Found found_deletion(Proposal proposal, size_t next) {
  if (proposal.query.empty() || !has_substance(proposal.query)) return std::nullopt;
  return Match{std::move(proposal), next};
}

// "I no longer live in X", "I don't live in X anymore", "I'm not allergic to X anymore",
// "I don't like X anymore", "my Y is no longer X": the memory to delete, named by the text it
// would have been stored as. "I don't work there anymore" names the slot alone.
Found match_no_longer(const Scan& s, size_t i) {
  size_t k = kNone;
  bool said_no_longer = false;
  bool am = false;
  if (size_t a = after_i(s, i); a != kNone) {
    if (s.after(a, {"no", "longer"}) != kNone) {
      k = skip_adverbs(s, a + 2);
      said_no_longer = true;
    } else if (s.after(a, {"do", "not"}) != kNone) {
      k = skip_adverbs(s, a + 2);
    } else if (s.is(a, "am")) {
      const size_t m = skip_adverbs(s, a + 1);
      if (s.after(m, {"no", "longer"}) != kNone) {
        k = skip_adverbs(s, m + 2);
        said_no_longer = true;
        am = true;
      } else if (s.is(m, "not")) {
        k = skip_adverbs(s, m + 1);
        am = true;
      }
    }
  }
  if (k != kNone) {
    std::string_view text;
    std::string_view slot;
    std::string_view kind = "profile";
    size_t v = kNone;
    if (am && s.after(k, {"allergic", "to"}) != kNone) {
      v = k + 2;
      text = "Is allergic to";
      kind = "fact";
    } else if (am && s.is(k, "from")) {
      v = k + 1;
      text = "Is from";
      slot = "hometown";
    } else if ((am && s.is_one_of(k, {"living", "based"}) && s.is(k + 1, "in")) ||
               (!am && s.after(k, {"live", "in"}) != kNone)) {
      v = k + 2;
      text = "Lives in";
      slot = "location";
    } else if ((am && s.is(k, "working") && s.is_one_of(k + 1, {"at", "for"})) ||
               (!am && s.is(k, "work") && s.is_one_of(k + 1, {"at", "for"}))) {
      v = k + 2;
      text = s.is(k + 1, "at") ? "Works at" : "Works for";
      slot = "employer";
    } else if (!am && s.is(k, "live") && s.is_one_of(k + 1, {"there", "here"})) {
      v = k + 1;
      slot = "location";
    } else if (!am && s.is(k, "work") && s.is_one_of(k + 1, {"there", "here"})) {
      v = k + 1;
      slot = "employer";
    } else if (!am && s.is_one_of(k, {"like", "love", "prefer"})) {
      v = k + 1;
      text = s.is(k, "like") ? "Likes" : s.is(k, "love") ? "Loves" : "Prefers";
      kind = "preference";
    }
    if (v == kNone) return std::nullopt;
    const Shape shape = slot.empty() ? Shape::kList : Shape::kSlot;
    auto span = take_value(s, v, shape, kMaxSlotValueWords);
    if (!span || !(span->anymore || said_no_longer)) return std::nullopt;
    if (text.empty()) {  // "I don't work there anymore": whatever the slot holds
      if (span->end != span->begin + 1) return std::nullopt;
      return found_deletion(deletion(std::string(slot), slot, kind), span->next);
    }
    if (starts_badly(s, *span, kNotAValueStart)) return std::nullopt;
    std::string query(text);
    query += ' ';
    query += value_about_user(s, *span);
    return found_deletion(deletion(std::move(query), slot, kind), span->next);
  }
  // "my Y is no longer X", "my Y is not X anymore"
  if (!s.is(i, "my")) return std::nullopt;
  size_t y_end = kNone;
  for (size_t m = i + 2; m <= i + 4 && m < s.end; ++m) {
    if (s.is(m, "is")) {
      y_end = m;
      break;
    }
  }
  if (y_end == kNone || !plain_words(s, i + 1, y_end) || names_a_secret(s, i + 1, y_end)) {
    return std::nullopt;
  }
  size_t v = kNone;
  if (s.after(y_end + 1, {"no", "longer"}) != kNone) {
    v = y_end + 3;
    said_no_longer = true;
  } else if (s.is(y_end + 1, "not")) {
    v = y_end + 2;
  }
  if (v == kNone) return std::nullopt;
  auto span = take_value(s, v, Shape::kSlot, kMaxSlotValueWords);
  if (!span || !(span->anymore || said_no_longer) || starts_badly(s, *span, kNotAValueStart)) {
    return std::nullopt;
  }
  size_t y = i + 1;
  if (s.is_any(y, kSlotAdjectives) && y + 1 < y_end) ++y;
  const bool is_name = s.is(y, "name") && y_end == y + 1;
  std::string slot = is_name ? std::string("name") : slot_name(s, y, y_end);
  std::string_view kind = is_name ? "profile" : "fact";
  if (s.is_one_of(y, {"favorite", "favourite", "fav"})) {
    slot = clean_memory_text("favorite " + slot_name(s, y + 1, y_end), kMaxSlotBytes);
    kind = "preference";
  }
  const std::string query = capitalized(written(s, y, y_end)) + " is " + value_about_user(s, *span);
  return found_deletion(deletion(query, slot, kind), span->next);
}

std::string remembered_text(const Scan& s, size_t a, size_t b);

// The slot that "my X" names in "forget my X", or "" when it names none.
std::string slot_of_my(const Scan& s, size_t a, size_t b) {
  if (a < b && s.is_any(a, kSlotAdjectives) && a + 1 < b) ++a;
  if (a >= b || b - a > 3 || !plain_words(s, a, b)) return "";
  std::string words = slot_name(s, a, b);
  static constexpr std::pair<std::string_view, std::string_view> kSynonyms[] = {
      {"name", "name"},
      {"first name", "name"},
      {"full name", "name"},
      {"location", "location"},
      {"city", "location"},
      {"town", "location"},
      {"home", "location"},
      {"hometown", "hometown"},
      {"job", "employer"},
      {"employer", "employer"},
      {"company", "employer"},
      {"workplace", "employer"},
      {"occupation", "occupation"},
      {"profession", "occupation"}};
  for (const auto& [phrase, slot] : kSynonyms) {
    if (words == phrase) return std::string(slot);
  }
  if (s.is_one_of(a, {"favorite", "favourite", "fav"})) {
    return a + 1 < b ? clean_memory_text("favorite " + slot_name(s, a + 1, b), kMaxSlotBytes) : "";
  }
  if (s.is_any(a, kNotASlot) || s.is_any(b - 1, kNotASlot) || s.is_any(a, kVagueSlotWords) ||
      s.is_any(b - 1, kVagueSlotWords)) {
    return "";
  }
  return words;
}

// "forget my X", "forget that X", "forget about X", "forget what I said/told you about X".
Found match_forget(const Scan& s, size_t i) {
  if (!s.is(i, "forget")) return std::nullopt;
  size_t k = i + 1;
  if (s.is(k, "what") && s.is(k + 1, "i") && s.is_one_of(k + 2, {"said", "told", "wrote"})) {
    k += 3;
    if (s.is(k, "you")) ++k;
    if (!s.is(k, "about")) return std::nullopt;
    ++k;
  } else if (s.is_one_of(k, {"that", "about"})) {
    ++k;
  }
  if (!s.word(k) && !(k < s.end && s.words[k].mark == Mark::kOpenQuote)) return std::nullopt;
  // "forget that I live in Paris": the statement's own text and slot.
  if (auto statement = match_statement(s, k)) {
    Proposal& p = statement->proposal;
    return found_deletion(deletion(p.text, p.slot, p.kind), statement->next);
  }
  if (s.is(k, "my")) {
    auto span = take_value(s, k + 1, Shape::kSlot, 6);
    if (!span) return std::nullopt;
    const std::string slot = slot_of_my(s, span->begin, span->end);
    return found_deletion(deletion("my " + value_text(s, *span), slot, "fact"), span->next);
  }
  auto span = take_value(s, k, Shape::kClause, kMaxListWords);
  if (!span || starts_badly(s, *span, kNotAValueStart) || s.is(span->begin, "all")) {
    return std::nullopt;
  }
  if (s.is(span->begin, "i")) {  // "forget that I have a cat": as it would have been stored
    const std::string text = remembered_text(s, span->begin, span->end);
    return found_deletion(deletion(text, "", "fact"), span->next);
  }
  return found_deletion(deletion(value_text(s, *span), "", "fact"), span->next);
}

// ---------------------------------------------------------------------------------------------
// Things to remember, and instructions

// Whether words [a, b) name a day or a date.
bool mentions_date(const Scan& s, size_t a, size_t b) {
  for (size_t k = a; k < b; ++k) {
    const std::string_view key = s.words[k].key;
    if (in(key, kDateWords)) return true;
    if ((key == "next" || key == "this" || key == "last") && k + 1 < b &&
        s.is_one_of(k + 1, {"week", "month", "year", "weekend", "monday"})) {
      return true;
    }
    if (key == "may" && k + 1 < b && !s.words[k + 1].key.empty() &&
        is_digit(static_cast<unsigned char>(s.words[k + 1].key[0]))) {
      return true;
    }
    // "5th", "21st", "5/12", "2025-06-01", "3pm", "10:30"
    size_t digits = 0;
    while (digits < key.size() && is_digit(static_cast<unsigned char>(key[digits]))) ++digits;
    if (digits == 0) continue;
    const std::string_view rest = key.substr(digits);
    if (rest == "st" || rest == "nd" || rest == "rd" || rest == "th" || rest == "am" ||
        rest == "pm") {
      return true;
    }
    if (!rest.empty() && (rest[0] == '/' || rest[0] == '-' || rest[0] == ':') && rest.size() > 1 &&
        is_digit(static_cast<unsigned char>(rest[1]))) {
      return true;
    }
  }
  return false;
}

// A clause [a, b) to remember, about the user.
std::string remembered_text(const Scan& s, size_t a, size_t b) {
  std::string lead;
  size_t rest = a;
  if (s.is(a, "i") && a + 1 < b) {
    const std::string_view next = s.key(a + 1);
    // The word after "I" is a negated contraction of its own: "haven't", "don't", "can't".
    const bool negated = a + 2 < b && !s.words[a + 1].continuation && s.words[a + 2].continuation;
    static constexpr std::pair<std::string_view, std::string_view> kLeads[] = {
        {"am", "Is"},   {"have", "Has"}, {"was", "Was"}, {"will", "Will"},
        {"had", "Had"}, {"do", "Does"},  {"did", "Did"}};
    if (negated) {
      lead = next == "have" ? "Hasn't"
             : next == "do" ? "Doesn't"
                            : capitalized(written(s, a + 1, a + 2));
      rest = a + 3;
    } else {
      for (const auto& [key, third] : kLeads) {
        if (next == key) lead = third;
      }
      if (lead.empty() && in(next, kModals)) lead = capitalized(written(s, a + 1, a + 2));
      rest = a + 2;
    }
    if (lead.empty()) {
      const size_t verb = skip_adverbs(s, a + 1);
      const std::string_view key = s.key(verb);
      std::string conjugated;
      if (in(key, kCommonVerbs)) {
        conjugated = third_person(key);
      } else if (key.size() > 3 && key.substr(key.size() - 2) == "ed") {
        conjugated = key;
      } else {  // not a verb this can conjugate: the user's words, quoted
        std::string quoted = "User said: \"";
        append_written(s, a, b, quoted);
        quoted = std::string(trim_trailing_punctuation(quoted));
        quoted += '"';
        return quoted;
      }
      lead = written(s, a + 1, verb);
      if (!lead.empty()) lead += ' ';
      lead = capitalized(lead + conjugated);
      rest = verb + 1;
    }
  }
  std::string tail;
  append_about_user(s, rest, b, tail);
  if (lead.empty()) return capitalized(std::string(trim_trailing_punctuation(tail)));
  if (!tail.empty()) lead += ' ';
  lead += tail;
  return std::string(trim_trailing_punctuation(lead));
}

// Words that cannot start something to remember: "remember when we...", "remember to...".
constexpr std::string_view kNotRememberable[] = {
    "to",   "when", "what", "how",        "who",      "where",     "why",     "if",  "whether",
    "me",   "it",   "this", "that",       "these",    "those",     "us",      "him", "her",
    "them", "you",  "your", "everything", "anything", "something", "nothing", "not", "all"};

// "remember (that) X", "please remember X", "don't forget (that) X", "note that X", "keep in
// mind (that) X", "make a note (that) X".
Found match_remember(const Scan& s, size_t i) {
  size_t k = kNone;
  bool needs_that = false;
  if (s.is(i, "remember")) {
    k = i + 1;
  } else if (size_t f = s.after(i, {"do", "not", "forget"}); f != kNone) {
    k = f;
  } else if (s.is(i, "note")) {
    k = i + 1;
    needs_that = true;
  } else if (size_t m = s.after(i, {"keep", "in", "mind"}); m != kNone) {
    k = m;
  } else if (size_t n = s.after(i, {"make", "a", "note"}); n != kNone) {
    k = n;
  }
  if (k == kNone) return std::nullopt;
  if (s.punct(k) && s.words[k].punct == ':') ++k;
  if (s.is(k, "that") &&
      (s.word(k + 1) || (k + 1 < s.end && s.words[k + 1].mark == Mark::kOpenQuote))) {
    ++k;
  } else if (needs_that) {
    return std::nullopt;
  }
  if (!s.word(k) || s.is_any(k, kNotRememberable)) return std::nullopt;
  if (auto m = match_no_longer(s, k)) return m;
  if (auto m = match_statement(s, k)) return m;
  auto span = take_value(s, k, Shape::kClause, kMaxClauseWords);
  if (!span) return std::nullopt;
  const std::string text = remembered_text(s, span->begin, span->end);
  const bool event = mentions_date(s, span->begin, span->end);
  return found(
      make_proposal(Event::kAdd, text, event ? "event" : "fact", "", 0.7, event ? "short" : ""),
      span->next);
}

// "answer/reply/respond/speak/write/talk (to me) in <language> (only)": the language, or
// nothing. Sets `next` to the word after it.
std::optional<Span> reply_language(const Scan& s, size_t i) {
  if (!s.is_any(i, kReplyVerbs)) return std::nullopt;
  size_t k = i + 1;
  if (s.after(k, {"to", "me"}) != kNone) k += 2;
  if (s.is(k, "only")) ++k;
  if (!s.is(k, "in")) return std::nullopt;
  auto span = take_value(s, k + 1, Shape::kSlot, 3);
  if (!span) return std::nullopt;
  if (s.is(span->end - 1, "only") && span->end - 1 > span->begin) --span->end;
  if (span->end - span->begin > 2) return std::nullopt;
  const Word& last = s.words[span->end - 1];
  const bool language =
      in(last.key, kLanguages) || is_ascii_upper(static_cast<unsigned char>(s.message[last.begin]));
  if (!language || s.is_any(span->begin, kNotAValueStart)) return std::nullopt;
  return span;
}

Found reply_language_instruction(const Scan& s, const Span& language) {
  return found(make_proposal(Event::kAdd, "Always answer in " + value_text(s, language),
                             "instruction", "reply language", 0.8),
               language.next);
}

// Words after "always"/"never" that make a remark, not an instruction ("always been", "never
// mind").
constexpr std::string_view kNotAfterAlways[] = {
    "been",  "was",   "were",  "had",  "have",    "is",    "are",  "the",     "a",
    "an",    "so",    "there", "here", "welcome", "happy", "glad", "thought", "wanted",
    "loved", "liked", "knew",  "felt", "did",     "am",    "will", "would",   "fun",
    "nice",  "good",  "great", "true", "same",    "right"};
constexpr std::string_view kNotAfterNever[] = {
    "mind", "again", "ever",   "before",  "been",  "had",    "have", "did",
    "was",  "were",  "knew",   "thought", "seen",  "heard",  "the",  "a",
    "an",   "too",   "enough", "once",    "will",  "would",  "am",   "is",
    "are",  "in",    "gonna",  "liked",   "loved", "wanted", "felt"};

// "always X", "never X": a standing instruction in the user's words.
Found match_always_never(const Scan& s, size_t i) {
  const bool always = s.is(i, "always");
  if (!always && !s.is(i, "never")) return std::nullopt;
  const size_t k = i + 1;
  if (!s.word(k) || s.is_any(k, always ? Keys(kNotAfterAlways) : Keys(kNotAfterNever)) ||
      s.is_any(k, kNotAValueStart)) {
    return std::nullopt;
  }
  if (always) {
    if (auto language = reply_language(s, k)) return reply_language_instruction(s, *language);
  }
  auto span = take_value(s, k, Shape::kClause, kMaxListWords);
  if (!span) return std::nullopt;
  std::string text = always ? "Always " : "Never ";
  text += value_text(s, *span);
  return found(make_proposal(Event::kAdd, text, "instruction", "", 0.8), span->next);
}

// "from now on, X", "going forward X", "in the future X", "from here on (out) X": X is a
// statement, "always/never ...", something about the user to remember, or an instruction.
Found match_from_now_on(const Scan& s, size_t i) {
  size_t k = s.after(i, {"from", "now", "on"});
  if (k == kNone) k = s.after(i, {"going", "forward"});
  if (k == kNone) k = s.after(i, {"in", "the", "future"});
  if (k == kNone) {
    k = s.after(i, {"from", "here", "on"});
    if (k != kNone && s.is(k, "out")) ++k;
  }
  if (k == kNone) return std::nullopt;
  if (s.punct(k) && s.words[k].punct == ',') ++k;
  if (s.is(k, "please")) ++k;
  if (!s.word(k)) return std::nullopt;
  if (auto m = match_statement(s, k)) return m;
  if (auto m = match_always_never(s, k)) return m;
  if (auto language = reply_language(s, k)) return reply_language_instruction(s, *language);
  auto span = take_value(s, k, Shape::kClause, kMaxListWords);
  if (!span || starts_badly(s, *span, kNotAValueStart)) return std::nullopt;
  if (s.is_one_of(span->begin, {"i", "my"})) {
    const std::string text = remembered_text(s, span->begin, span->end);
    return found(make_proposal(Event::kAdd, text, "fact", "", 0.7), span->next);
  }
  return found(
      make_proposal(Event::kAdd, capitalized(value_text(s, *span)), "instruction", "", 0.8),
      span->next);
}

Found match_instruction(const Scan& s, size_t i) {
  if (auto m = match_always_never(s, i)) return m;
  if (auto m = match_from_now_on(s, i)) return m;
  // "(please) answer in French": an imperative that names a language ends the clause.
  if (auto language = reply_language(s, i)) {
    const size_t after = language->next;
    if (after >= s.end || s.punct(after) || s.is_any(after, kConnectors) ||
        s.after(after, {"from", "now", "on"}) != kNone) {
      return reply_language_instruction(s, *language);
    }
  }
  return std::nullopt;
}

Found match_at(const Scan& s, size_t i) {
  if (auto m = match_forget(s, i)) return m;
  if (auto m = match_no_longer(s, i)) return m;
  if (auto m = match_remember(s, i)) return m;
  if (auto m = match_instruction(s, i)) return m;
  return match_statement(s, i);
}

// ---------------------------------------------------------------------------------------------
// Sentences

constexpr std::string_view kQuestionStarts[] = {
    "what", "who",    "whom",  "whose", "where", "when", "why",  "how", "which", "do",
    "does", "did",    "is",    "are",   "am",    "was",  "were", "can", "could", "would",
    "will", "should", "shall", "may",   "might", "have", "has",  "had", "isn't", "aren't"};

// "Can you remember that ...", "Could you please forget ...": the index of the request's verb,
// or kNone.
size_t polite_request(const Scan& s) {
  const size_t i = s.first;
  if (!s.is_one_of(i, {"can", "could", "would", "will"}) || !s.is(i + 1, "you")) {
    return kNone;
  }
  size_t k = i + 2;
  if (s.is(k, "please")) ++k;
  if (s.is_one_of(k, {"remember", "forget", "note"}) ||
      s.after(k, {"keep", "in", "mind"}) != kNone || s.after(k, {"call", "me"}) != kNone) {
    return k;
  }
  return kNone;
}

bool starts_like_question(const Scan& s) {
  const size_t i = s.first;
  if (!s.is_any(i, kQuestionStarts)) return false;
  return !(s.is(i, "do") && s.is(i + 1, "not"));  // "Don't forget that ..."
}

void scan_sentence(std::string_view message, const Tokens& tokens, const Sentence& sentence,
                   std::vector<Proposal>& out) {
  Scan s{message, tokens.words, sentence.first, sentence.last};
  size_t start = polite_request(s);
  if (start == kNone) {
    if (sentence.question || starts_like_question(s)) return;
    start = sentence.first;
  }
  bool greeted = false;
  for (size_t i = start; i < s.end;) {
    if (s.word(i)) {
      if (is_blocker(s, i)) return;
      if (s.is_any(i, kGreetings)) greeted = true;
      if (i == start || s.clause_start(i)) {
        s.greeted = greeted;
        if (auto m = match_at(s, i)) {
          out.push_back(std::move(m->proposal));
          i = std::max(m->next, i + 1);
          continue;
        }
      }
    }
    ++i;
  }
}

std::string dedupe_key(const Proposal& p) {
  std::string key(event_name(p.event));
  key += '\n';
  key += lower(p.text);
  return key;
}

}  // namespace

std::string_view event_name(Event event) {
  switch (event) {
    case Event::kAdd:
      return "ADD";
    case Event::kUpdate:
      return "UPDATE";
    case Event::kRetire:
      return "RETIRE";
    case Event::kDelete:
      return "DELETE";
    case Event::kNone:
      return "NONE";
  }
  return "NONE";
}

std::optional<Event> parse_event(std::string_view name) {
  if (name.size() > 8) return std::nullopt;
  std::string upper(name);
  for (char& c : upper) c = ascii_upper(c);
  for (Event event : {Event::kAdd, Event::kUpdate, Event::kRetire, Event::kDelete, Event::kNone}) {
    if (upper == event_name(event)) return event;
  }
  return std::nullopt;
}

std::string clean_memory_text(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes + 4));
  bool pending_space = false;
  for (size_t i = 0; i < text.size() && out.size() <= max_bytes;) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_control(c) || c == ' ' || is_nbsp(text, i)) {
      pending_space = !out.empty();
      i += c == 0xC2 ? 2 : 1;
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    if (const size_t n = sequence_length(text, i)) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for each byte of a malformed sequence
      ++i;
    }
  }
  if (out.size() > max_bytes) {
    size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<Proposal> extract_by_rules(std::string_view user_message) {
  const Tokens tokens = Tokenizer(user_message).run();
  std::vector<Proposal> stated;
  for (const Sentence& sentence : tokens.sentences) {
    scan_sentence(user_message, tokens, sentence, stated);
  }
  // One addition per slot, the last stated; then one proposal per event and text.
  std::unordered_map<std::string, size_t> last_for_slot;
  for (size_t k = 0; k < stated.size(); ++k) {
    if (stated[k].event == Event::kAdd && !stated[k].slot.empty()) {
      last_for_slot[stated[k].slot] = k;
    }
  }
  std::unordered_set<std::string> seen;
  std::vector<Proposal> out;
  for (size_t k = 0; k < stated.size() && out.size() < kMaxProposals; ++k) {
    Proposal& p = stated[k];
    if (p.event == Event::kAdd && !p.slot.empty() && last_for_slot[p.slot] != k) continue;
    if (!seen.insert(dedupe_key(p)).second) continue;
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace parley::memory
