// The content-moderation rule engine: given a policy (named categories of words and regular
// expressions, detectors for personal data, length limits), decide what to do with one chat
// message on its way in (the user's input) or out (the model's reply): let it through, let it
// through with the offending spans replaced, or refuse it. The chat turn's "moderate" stage and
// the reply path call it; reading the policy from the configuration happens elsewhere, so this
// module does no I/O and parses nothing but the regular expressions it is given.
//
// Matching is linear in the text: word lists run through one Aho-Corasick automaton, regular
// expressions through RE2 (never std::regex: its backtracking is exponential and recursive on
// untrusted input), and the personal-data detectors are hand-written single scans. Texts of
// hundreds of KiB are fine.
//
// Thread safety: a RuleSet is immutable after `compile` and may be evaluated from any number of
// threads at once without synchronization. Copies are cheap and share the compiled rules.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace parley::moderation {

// What to do with a message. Ordered by severity: a verdict takes the most severe action of
// its findings.
enum class Action { kAllow, kRedact, kBlock };

std::string_view action_name(Action action);  // "allow", "redact", "block"
std::optional<Action> parse_action(std::string_view name);

// Which way a message goes: the user's input, or the model's output.
enum class Stage { kInput, kOutput };

std::string_view stage_name(Stage stage);  // "input", "output"

// A named category of unwanted content, e.g. "violence" or "internal_codenames".
struct CategoryRule {
  // Letters, digits, '_', '-' and '.'; it names the finding and the "[REDACTED:<name>]"
  // placeholder. Names starting with "pii_" and the name "max_length" are reserved.
  std::string name;
  // Matched as whole words, ignoring ASCII case (other bytes must match exactly). A word may
  // hold spaces ("credit card dump"): any run of whitespace in the text matches one space.
  // Whole-word means that an edge of the word that is a letter, digit or '_' must not touch
  // another letter, digit or '_' in the text ("ass" matches neither "class" nor "assé");
  // letters of scripts written without spaces (Chinese, Japanese, Thai, ...) need no boundary.
  std::vector<std::string> words;
  // RE2 regular expressions (RE2 syntax, UTF-8), matched anywhere in the text. Use "(?i)" for
  // case-insensitive matching and "\b" for ASCII word boundaries. Empty matches are ignored.
  // Matches do not overlap; each is RE2's leftmost-first match, except that an alternative
  // completing more than 512 bytes past where a shorter match ends loses to the shorter one:
  // the bound that keeps patterns like "kill.*people|kill" linear on untrusted text.
  std::vector<std::string> patterns;
  Action action = Action::kBlock;
  bool input = true;   // applies to the user's messages
  bool output = true;  // applies to the model's replies
};

// Personal data found by built-in detectors rather than by lists.
//   kEmail: local@domain.tld in the practical sense (not the whole of RFC 5322).
//   kPhone: "+" and 8-15 digits, or a national number of 9-12 digits written in groups
//           ("415-555-0132", "(415) 555-0132", "020 7946 0958"; unbroken only with a leading
//           0, as in "02079460958"). Dates, times, versions, IP addresses, amounts with
//           thousands separators and unbroken ids are not phones.
//   kCard:  13-19 digits, unbroken or grouped by single spaces or dashes the way cards are
//           printed (a first group of 4), passing the Luhn check. Such a number is never
//           reported as a phone.
enum class PiiKind { kEmail, kPhone, kCard };

std::string_view pii_kind_name(PiiKind kind);  // "email", "phone", "card"
std::optional<PiiKind> parse_pii_kind(std::string_view name);
std::string pii_category(PiiKind kind);  // the finding's category: "pii_email", ...

struct PiiRule {
  PiiKind kind = PiiKind::kEmail;
  Action action = Action::kRedact;
  bool input = true;
  bool output = true;
};

struct Policy {
  std::vector<CategoryRule> categories;
  std::vector<PiiRule> pii;  // at most one rule per kind
  // Longest message allowed, in Unicode code points of the UTF-8 text; 0 means no limit. A
  // longer message is blocked with the finding "max_length" and is not scanned further.
  size_t max_input_chars = 0;
  size_t max_output_chars = 0;
};

// One category that matched a message. Findings with the allow action are reported too: they
// are for the log, and change nothing.
struct Finding {
  std::string category;  // a CategoryRule's name, "pii_email"/"pii_phone"/"pii_card", "max_length"
  Action action = Action::kAllow;
  size_t count = 0;  // matches, counting overlapping matches of one category once
};

struct Verdict {
  Action action = Action::kAllow;  // the most severe action among the findings
  // One per category that matched, in policy order: categories, then personal-data rules
  // ("max_length" alone when the text was too long).
  std::vector<Finding> findings;
  // Set when `action` is kRedact: the text with each match of a redact-action category replaced
  // by "[REDACTED:<category>]" and every other byte unchanged. Overlapping matches are merged
  // into one placeholder named after the match that starts first (on a tie, the earlier in
  // policy order); matches that merely touch keep a placeholder each.
  std::optional<std::string> redacted;
  std::string blocked_category;  // when kBlock: the first blocking finding's category
};

class RuleSet {
 public:
  // Allows everything.
  RuleSet();

  // Validates and compiles `policy`. Errors are kInvalidArgument values naming the offending
  // field under `field_prefix`, e.g. "moderation.categories[2].patterns[0]" with RE2's reason
  // for an invalid expression; also an empty, reserved, malformed or repeated category name, an
  // empty word, a repeated personal-data kind, an out-of-range enum value.
  static Result<RuleSet> compile(const Policy& policy,
                                 std::string_view field_prefix = "moderation");

  // Applies the rules of `stage` to `text` (UTF-8; invalid bytes are tolerated and never
  // produce a match on their own).
  Verdict evaluate(std::string_view text, Stage stage) const;

 private:
  struct Compiled;
  explicit RuleSet(std::shared_ptr<const Compiled> compiled);

  std::shared_ptr<const Compiled> compiled_;
};

// The Luhn (mod 10) check of a card number given as digits only; false for anything else,
// including an empty string.
bool luhn_valid(std::string_view digits);

// The number of Unicode code points in UTF-8 `text` (bytes that do not continue a sequence).
size_t count_code_points(std::string_view text);

}  // namespace parley::moderation
