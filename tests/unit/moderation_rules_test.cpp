// The moderation rule engine (moderation/rules.hpp): what each detector flags and, as much,
// what it must leave alone (dates, times, versions, ids, amounts, Luhn failures, words inside
// other words), how findings combine into a verdict, how redaction splices the text, the
// compile errors a bad policy gets, and that a 256 KiB text full of matches comes out right.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "moderation/rules.hpp"

namespace {

using parley::ErrorCode;
using parley::moderation::Action;
using parley::moderation::action_name;
using parley::moderation::CategoryRule;
using parley::moderation::count_code_points;
using parley::moderation::Finding;
using parley::moderation::luhn_valid;
using parley::moderation::parse_action;
using parley::moderation::parse_pii_kind;
using parley::moderation::pii_category;
using parley::moderation::PiiKind;
using parley::moderation::PiiRule;
using parley::moderation::Policy;
using parley::moderation::RuleSet;
using parley::moderation::Stage;
using parley::moderation::stage_name;
using parley::moderation::Verdict;

RuleSet compile_ok(const Policy& policy) {
  auto compiled = RuleSet::compile(policy);
  EXPECT_TRUE(compiled.ok()) << compiled.error().param << ": " << compiled.error().message;
  return compiled.ok() ? std::move(compiled).value() : RuleSet();
}

CategoryRule category(std::string name, std::vector<std::string> words,
                      std::vector<std::string> patterns = {}, Action action = Action::kBlock) {
  CategoryRule rule;
  rule.name = std::move(name);
  rule.words = std::move(words);
  rule.patterns = std::move(patterns);
  rule.action = action;
  return rule;
}

Policy pii_policy(const std::vector<PiiKind>& kinds) {
  Policy policy;
  for (auto kind : kinds) policy.pii.push_back(PiiRule{kind, Action::kRedact, true, true});
  return policy;
}

// Findings as text, so that a mismatch shows all of them.
std::string describe(const std::vector<Finding>& findings) {
  std::string out;
  for (const auto& f : findings) {
    out +=
        f.category + ":" + std::string(action_name(f.action)) + ":" + std::to_string(f.count) + " ";
  }
  return out;
}

// The text after redaction, or the text itself when the verdict did not redact.
std::string redacted_or_same(const Verdict& verdict, std::string_view text) {
  return verdict.redacted ? *verdict.redacted : std::string(text);
}

// --- names and Luhn ---------------------------------------------------------------------------

TEST(ModerationNames, RoundTrip) {
  for (auto action : {Action::kAllow, Action::kRedact, Action::kBlock}) {
    EXPECT_EQ(parse_action(action_name(action)), action);
  }
  EXPECT_EQ(action_name(Action::kRedact), "redact");
  EXPECT_FALSE(parse_action("Block").has_value());
  EXPECT_FALSE(parse_action("").has_value());
  EXPECT_EQ(stage_name(Stage::kInput), "input");
  EXPECT_EQ(stage_name(Stage::kOutput), "output");
  EXPECT_EQ(parse_pii_kind("phone"), PiiKind::kPhone);
  EXPECT_FALSE(parse_pii_kind("ssn").has_value());
  EXPECT_EQ(pii_category(PiiKind::kEmail), "pii_email");
  EXPECT_EQ(pii_category(PiiKind::kCard), "pii_card");
}

TEST(Luhn, KnownNumbers) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));  // Visa test number
  EXPECT_TRUE(luhn_valid("5555555555554444"));  // Mastercard test number
  EXPECT_TRUE(luhn_valid("378282246310005"));   // Amex test number
  EXPECT_TRUE(luhn_valid("79927398713"));       // the textbook example
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid("1234567812345678"));
  EXPECT_FALSE(luhn_valid("79927398710"));
  EXPECT_FALSE(luhn_valid(""));
  EXPECT_FALSE(luhn_valid("4111 1111 1111 1111"));  // digits only
  EXPECT_FALSE(luhn_valid("41111111a1111111"));
}

TEST(CountCodePoints, CountsCharactersNotBytes) {
  EXPECT_EQ(count_code_points(""), 0u);
  EXPECT_EQ(count_code_points("abc"), 3u);
  EXPECT_EQ(count_code_points("h\xC3\xA9llo"), 5u);              // é: 2 bytes
  EXPECT_EQ(count_code_points("\xE6\x9A\xB4\xE5\x8A\x9B"), 2u);  // 暴力: 3 bytes each
  EXPECT_EQ(count_code_points("\xF0\x9F\x98\x80!"), 2u);         // an emoji: 4 bytes
}

// --- cards ------------------------------------------------------------------------------------

TEST(CardDetector, RedactsLuhnValidNumbersInCardGroupings) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kCard}));
  const std::vector<std::string> cards = {
      "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111",
      "5555 5555 5555 4444", "3782 822463 10005",   "378282246310005",
  };
  for (const auto& card : cards) {
    const std::string text = "pay with " + card + ", thanks";
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(v.action, Action::kRedact) << card;
    EXPECT_EQ(redacted_or_same(v, text), "pay with [REDACTED:pii_card], thanks") << card;
    EXPECT_EQ(describe(v.findings), "pii_card:redact:1 ") << card;
  }
}

TEST(CardDetector, LeavesLuhnFailuresAndOtherDigitRunsAlone) {
  // Phones are on too: a number that fails Luhn must not come back as a phone either.
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kCard, PiiKind::kPhone}));
  const std::vector<std::string> texts = {
      "pay with 4111 1111 1111 1112, thanks",
      "pay with 4111-1111-1111-1112",
      "pay with 4111111111111112",
      "serial 41111111111111110000",      // 20 digits: longer than any card
      "key 1234-5678-9012-3456-7890",     // too long, and one dashed run counts only whole
      "id x4111111111111111",             // glued to a word
      "ref 4111111111111111abc",          // glued to a word
      "mixed 4111-1111 1111-1111 groups"  // one kind of separator per card
  };
  for (const auto& text : texts) {
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(v.action, Action::kAllow) << text << " -> " << describe(v.findings);
    EXPECT_TRUE(v.findings.empty()) << text;
    EXPECT_FALSE(v.redacted.has_value()) << text;
  }
}

TEST(CardDetector, ACardNextToAPhoneIsTwoFindings) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kCard, PiiKind::kPhone}));
  const std::string text = "card 4111 1111 1111 1111 phone 415-555-0132";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(redacted_or_same(v, text), "card [REDACTED:pii_card] phone [REDACTED:pii_phone]");
  EXPECT_EQ(describe(v.findings), "pii_card:redact:1 pii_phone:redact:1 ");  // policy order
}

// --- e-mail -----------------------------------------------------------------------------------

TEST(EmailDetector, RedactsAddresses) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kEmail}));
  const std::string text =
      "Write to jane.doe+tag@mail.example.co.uk. Or <BOB_99@Example.ORG>, mailto:x@y.io!";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(v.action, Action::kRedact);
  EXPECT_EQ(redacted_or_same(v, text),
            "Write to [REDACTED:pii_email]. Or <[REDACTED:pii_email]>, "
            "mailto:[REDACTED:pii_email]!");
  EXPECT_EQ(describe(v.findings), "pii_email:redact:3 ");
}

TEST(EmailDetector, LeavesNonAddressesAlone) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kEmail}));
  for (std::string_view text : {"ping @handle on chat", "root@localhost has mail", "a@b",
                                "user@-example.com", "user@example.c", "50@ each"}) {
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(v.action, Action::kAllow) << text;
  }
}

// --- phones -----------------------------------------------------------------------------------

TEST(PhoneDetector, RedactsInternationalAndNationalForms) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kPhone}));
  const std::vector<std::string> phones = {
      "+1 (415) 555-0132", "+44 20 7946 0958",    "415-555-0132",     "020 7946 0958",
      "(415) 555-0132",    "+14155550132",        "1-800-555-0199",   "415.555.0132",
      "02079460958",       "+44 (0)20 7946 0958", "+49 30 12345-678", "06 12 34 56 78",
  };
  for (const auto& phone : phones) {
    const std::string text = "Call " + phone + " today.";
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(redacted_or_same(v, text), "Call [REDACTED:pii_phone] today.") << phone;
    EXPECT_EQ(describe(v.findings), "pii_phone:redact:1 ") << phone;
  }
}

TEST(PhoneDetector, LeavesDatesTimesVersionsAndIdsAlone) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kPhone}));
  const std::vector<std::string> texts = {
      "due 2026-11-22",
      "due 22.11.2026 or 11-22-2026",
      "at 14:30 or 2:05pm",
      "on 2026-11-22 14:30:00",
      "logged 2026-11-22-1234 today",
      "version 2.10.4, v1.2.3.4",
      "build 10.0.19045.2965",
      "order 12345678",
      "order #123456789",
      "order ORD-2026-112233",
      "ticket ABC123456789",
      "timestamp 1763812345",  // unbroken without "+": an id, not a phone
      "host 192.168.100.200",
      "costs 1 234 567 890 euros",
      "costs 123.456.789.012 euros",
      "3 apples and 12 pears, 42 in all",
      "pages 100-200",
      "ratio 1/2 and 3/4",
  };
  for (const auto& text : texts) {
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(v.action, Action::kAllow) << text << " -> " << redacted_or_same(v, text);
  }
}

TEST(PhoneDetector, SeparatesNumbersWrittenSideBySide) {
  const RuleSet rules = compile_ok(pii_policy({PiiKind::kPhone}));
  const std::string text = "lines: 415-555-0132 415-555-0199 (415) 555-0100 and 2026-11-22";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(redacted_or_same(v, text),
            "lines: [REDACTED:pii_phone] [REDACTED:pii_phone] [REDACTED:pii_phone] and "
            "2026-11-22");
  EXPECT_EQ(describe(v.findings), "pii_phone:redact:3 ");
}

// --- word lists -------------------------------------------------------------------------------

TEST(WordList, MatchesWholeWordsIgnoringAsciiCase) {
  Policy policy;
  policy.categories.push_back(category("rude", {"ass"}));
  const RuleSet rules = compile_ok(policy);
  for (std::string_view text :
       {"first class assessment", "a badass bass", "assassin", "ass_hat", "ass9", "brass."}) {
    EXPECT_EQ(rules.evaluate(text, Stage::kInput).action, Action::kAllow) << text;
  }
  const std::string quoted = std::string("\xE2\x80\x9C") + "ass" + "\xE2\x80\x9D";  // “ass”
  for (std::string_view text :
       {"ass", "you ASS!", "(Ass)", "dumb-ass", "the ass.", quoted.c_str()}) {
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(v.action, Action::kBlock) << text;
    EXPECT_EQ(v.blocked_category, "rude") << text;
  }
  // A letter of another script is part of the word: "assé" is not "ass".
  EXPECT_EQ(rules.evaluate("ass\xC3\xA9", Stage::kInput).action, Action::kAllow);
}

TEST(WordList, PhrasesMatchAcrossAnyWhitespace) {
  Policy policy;
  policy.categories.push_back(category("fraud", {"  Credit   Card Dump "}, {}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const std::string text = "selling a CREDIT card\t\n dump today; credit card dumpster is fine";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(redacted_or_same(v, text),
            "selling a [REDACTED:fraud] today; credit card dumpster is fine");
  EXPECT_EQ(describe(v.findings), "fraud:redact:1 ");
}

TEST(WordList, NonAsciiWordsMatchBytesExactly) {
  Policy policy;
  policy.categories.push_back(category("es",
                                       {"ma\xC3\xB1"
                                        "ana"},
                                       {}, Action::kRedact));  // mañana
  policy.categories.push_back(category("zh", {"\xE6\x9A\xB4\xE5\x8A\x9B"}, {}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  // ASCII letters fold, the ñ must match as written.
  const std::string text =
      "MA\xC3\xB1"
      "ANA y manana";
  EXPECT_EQ(redacted_or_same(rules.evaluate(text, Stage::kInput), text), "[REDACTED:es] y manana");
  // Chinese is written without spaces: the word matches inside a sentence.
  const std::string zh = "\xE8\xBF\x99\xE6\x98\xAF\xE6\x9A\xB4\xE5\x8A\x9B\xE5\x86\x85\xE5\xAE\xB9";
  EXPECT_EQ(redacted_or_same(rules.evaluate(zh, Stage::kInput), zh),
            "\xE8\xBF\x99\xE6\x98\xAF[REDACTED:zh]\xE5\x86\x85\xE5\xAE\xB9");
}

TEST(WordList, WordsThatOverlapOrNestAreAllFound) {
  Policy policy;
  policy.categories.push_back(
      category("a", {"kill", "kill them all", "them"}, {}, Action::kRedact));
  policy.categories.push_back(category("b", {"all"}, {}, Action::kAllow));
  const RuleSet rules = compile_ok(policy);
  const std::string text = "we kill them all now, kill it, all of them";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  // "kill", "them" and "kill them all" overlap: one span, counted once.
  EXPECT_EQ(describe(v.findings), "a:redact:3 b:allow:2 ");
  EXPECT_EQ(redacted_or_same(v, text), "we [REDACTED:a] now, [REDACTED:a] it, all of [REDACTED:a]");
}

TEST(WordList, TheSameWordInTwoCategoriesCountsForBoth) {
  Policy policy;
  policy.categories.push_back(category("violence", {"attack", "attack"}, {}, Action::kRedact));
  policy.categories.push_back(category("security", {"ATTACK"}, {}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const Verdict v = rules.evaluate("an attack", Stage::kOutput);
  EXPECT_EQ(describe(v.findings), "violence:redact:1 security:redact:1 ");
  EXPECT_EQ(redacted_or_same(v, "an attack"), "an [REDACTED:violence]");
}

// --- regular expressions ----------------------------------------------------------------------

TEST(RegexCategory, MatchesAnywhereWithRe2Syntax) {
  Policy policy;
  policy.categories.push_back(category(
      "codenames", {}, {R"((?i)project\s+(falcon|osprey))", R"(\bPX-\d{4}\b)"}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const std::string text = "PROJECT  Falcon ships PX-1234 and PX-12345; project osprey too.";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(redacted_or_same(v, text),
            "[REDACTED:codenames] ships [REDACTED:codenames] and PX-12345; "
            "[REDACTED:codenames] too.");
  EXPECT_EQ(describe(v.findings), "codenames:redact:3 ");
}

TEST(RegexCategory, EmptyMatchesAreSkippedNotLoopedOn) {
  Policy policy;
  policy.categories.push_back(category("x", {}, {"x*"}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  EXPECT_EQ(rules.evaluate("abc \xC3\xA9", Stage::kInput).action, Action::kAllow);
  const Verdict v = rules.evaluate("axxb x", Stage::kInput);
  EXPECT_EQ(redacted_or_same(v, "axxb x"), "a[REDACTED:x]b [REDACTED:x]");
}

TEST(RegexCategory, LongMatchesAreFollowedToTheirEnd) {
  // The search windows are far shorter than this match; it must still be redacted whole.
  Policy policy;
  policy.categories.push_back(category("secrets", {}, {"(?i)password: .*"}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const std::string text = "PASSWORD: " + std::string(5000, 's') + "\nnext line";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(redacted_or_same(v, text), "[REDACTED:secrets]\nnext line");
  EXPECT_EQ(describe(v.findings), "secrets:redact:1 ");
}

TEST(RegexCategory, PreferredLongAlternativesStayCorrectAndBounded) {
  // "kill.*people|kill" prefers the long alternative: near "people" it wins; without it every
  // "kill" is a match of its own, and 256 KiB of them must not take a scan to the end each.
  Policy policy;
  policy.categories.push_back(category("threat", {}, {"kill.*people|kill"}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const std::string near = "I will kill all the people. kill.";
  EXPECT_EQ(redacted_or_same(rules.evaluate(near, Stage::kInput), near),
            "I will [REDACTED:threat]. [REDACTED:threat].");

  std::string text;
  size_t kills = 0;
  while (text.size() < size_t{256} * 1024) {
    text += "kill ";
    ++kills;
  }
  const Verdict v = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(describe(v.findings), "threat:redact:" + std::to_string(kills) + " ");
}

// --- combining findings -----------------------------------------------------------------------

TEST(Verdicts, StageFiltering) {
  Policy policy;
  CategoryRule leak = category("leak", {"hunter2"});
  leak.input = false;  // only the model's replies
  policy.categories.push_back(leak);
  policy.pii.push_back(PiiRule{PiiKind::kEmail, Action::kRedact, true, false});  // input only
  const RuleSet rules = compile_ok(policy);
  const std::string text = "password hunter2 for a@example.com";

  const Verdict in = rules.evaluate(text, Stage::kInput);
  EXPECT_EQ(in.action, Action::kRedact);
  EXPECT_EQ(describe(in.findings), "pii_email:redact:1 ");
  EXPECT_EQ(*in.redacted, "password hunter2 for [REDACTED:pii_email]");

  const Verdict out = rules.evaluate(text, Stage::kOutput);
  EXPECT_EQ(out.action, Action::kBlock);
  EXPECT_EQ(describe(out.findings), "leak:block:1 ");
  EXPECT_EQ(out.blocked_category, "leak");
}

TEST(Verdicts, MostSevereActionWins) {
  Policy policy;
  policy.categories.push_back(category("greeting", {"hello"}, {}, Action::kAllow));
  policy.categories.push_back(category("weapons", {"rifle"}, {}, Action::kBlock));
  policy.categories.push_back(category("drugs", {"meth"}, {}, Action::kBlock));
  policy.pii.push_back(PiiRule{PiiKind::kEmail, Action::kRedact, true, true});
  const RuleSet rules = compile_ok(policy);

  const Verdict redact = rules.evaluate("hello, mail me at a@example.com", Stage::kInput);
  EXPECT_EQ(redact.action, Action::kRedact);
  EXPECT_EQ(describe(redact.findings), "greeting:allow:1 pii_email:redact:1 ");
  EXPECT_EQ(*redact.redacted, "hello, mail me at [REDACTED:pii_email]");
  EXPECT_TRUE(redact.blocked_category.empty());

  // The first blocking category in policy order names the block, whatever the text order.
  const Verdict block = rules.evaluate("hello meth rifle a@example.com", Stage::kInput);
  EXPECT_EQ(block.action, Action::kBlock);
  EXPECT_EQ(block.blocked_category, "weapons");
  EXPECT_EQ(describe(block.findings),
            "greeting:allow:1 weapons:block:1 drugs:block:1 pii_email:redact:1 ");
  EXPECT_FALSE(block.redacted.has_value());
}

TEST(Verdicts, AllowFindingsAreReportedButChangeNothing) {
  Policy policy;
  policy.categories.push_back(category("greeting", {"hello", "hi"}, {}, Action::kAllow));
  policy.pii.push_back(PiiRule{PiiKind::kPhone, Action::kAllow, true, true});
  const RuleSet rules = compile_ok(policy);
  const Verdict v = rules.evaluate("Hello! hi, call 415-555-0132", Stage::kInput);
  EXPECT_EQ(v.action, Action::kAllow);
  EXPECT_EQ(describe(v.findings), "greeting:allow:2 pii_phone:allow:1 ");
  EXPECT_FALSE(v.redacted.has_value());
  EXPECT_TRUE(v.blocked_category.empty());
}

TEST(Verdicts, NoRulesAllowEverything) {
  const RuleSet empty;
  const Verdict v = empty.evaluate("anything at all a@example.com 4111111111111111", Stage::kInput);
  EXPECT_EQ(v.action, Action::kAllow);
  EXPECT_TRUE(v.findings.empty());
  const RuleSet compiled = compile_ok(Policy{});
  EXPECT_EQ(compiled.evaluate("", Stage::kOutput).action, Action::kAllow);
}

TEST(Verdicts, MaxLengthCountsCodePoints) {
  Policy policy;
  policy.max_input_chars = 5;
  policy.categories.push_back(category("rude", {"ass"}));
  const RuleSet rules = compile_ok(policy);
  // Five characters in six bytes fit.
  EXPECT_EQ(rules.evaluate("h\xC3\xA9llo", Stage::kInput).action, Action::kAllow);
  EXPECT_EQ(rules
                .evaluate("\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80"
                          "\xF0\x9F\x98\x80",
                          Stage::kInput)
                .action,
            Action::kAllow);  // five emoji, twenty bytes
  const Verdict v = rules.evaluate("h\xC3\xA9llo!", Stage::kInput);
  EXPECT_EQ(v.action, Action::kBlock);
  EXPECT_EQ(v.blocked_category, "max_length");
  EXPECT_EQ(describe(v.findings), "max_length:block:1 ");
  // No output limit was set.
  EXPECT_EQ(rules.evaluate("a rather long reply", Stage::kOutput).action, Action::kAllow);
}

// --- redaction --------------------------------------------------------------------------------

TEST(Redaction, AdjacentMatchesKeepAPlaceholderEach) {
  Policy policy;
  policy.categories.push_back(category("foo", {}, {"foo"}, Action::kRedact));
  policy.categories.push_back(category("bar", {}, {"bar"}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const Verdict v = rules.evaluate("foofoobar!", Stage::kInput);
  EXPECT_EQ(*v.redacted, "[REDACTED:foo][REDACTED:foo][REDACTED:bar]!");
  EXPECT_EQ(describe(v.findings), "foo:redact:2 bar:redact:1 ");
}

TEST(Redaction, OverlappingMatchesMergeUnderTheFirst) {
  Policy policy;
  policy.categories.push_back(category("late", {}, {"cdef"}, Action::kRedact));
  policy.categories.push_back(category("early", {}, {"abcd"}, Action::kRedact));
  policy.categories.push_back(category("same", {}, {"xyz", "yz1"}, Action::kRedact));
  const RuleSet rules = compile_ok(policy);
  const Verdict v = rules.evaluate("<abcdefg> <xyz12>", Stage::kInput);
  // "abcd" starts first, so the merged span is named after it, policy order notwithstanding.
  EXPECT_EQ(*v.redacted, "<[REDACTED:early]g> <[REDACTED:same]2>");
  EXPECT_EQ(describe(v.findings), "late:redact:1 early:redact:1 same:redact:1 ");
}

TEST(Redaction, KeepsEveryOtherByte) {
  Policy policy = pii_policy({PiiKind::kEmail, PiiKind::kPhone, PiiKind::kCard});
  const RuleSet rules = compile_ok(policy);
  const std::string nul(1, '\0');
  // A BOM, UTF-8, CR LF, a tab, a NUL and invalid bytes around the matches.
  const std::string text =
      "\xEF\xBB\xBF"
      "Caf\xC3\xA9\r\n\ta@b.co" +
      nul + "x 415-555-0132\xFF\xFE 4111111111111111";
  const Verdict v = rules.evaluate(text, Stage::kInput);
  ASSERT_TRUE(v.redacted.has_value());
  EXPECT_EQ(*v.redacted,
            "\xEF\xBB\xBF"
            "Caf\xC3\xA9\r\n\t[REDACTED:pii_email]" +
                nul + "x [REDACTED:pii_phone]\xFF\xFE [REDACTED:pii_card]");
}

// --- compile errors ---------------------------------------------------------------------------

TEST(Compile, InvalidRegexNamesTheField) {
  Policy policy;
  policy.categories.push_back(category("a", {"x"}));
  policy.categories.push_back(category("b", {}, {"fine"}));
  policy.categories.push_back(category("c", {}, {"(unclosed", "ok"}));
  auto compiled = RuleSet::compile(policy);
  ASSERT_FALSE(compiled.ok());
  EXPECT_EQ(compiled.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(compiled.error().reason, "invalid_field");
  EXPECT_EQ(compiled.error().param, "moderation.categories[2].patterns[0]");
  EXPECT_NE(compiled.error().message.find("moderation.categories[2].patterns[0]"),
            std::string::npos);
  EXPECT_NE(compiled.error().message.find("missing )"), std::string::npos)
      << compiled.error().message;

  // Constructs RE2 rejects rather than running slowly.
  policy.categories[2].patterns = {"ok", R"((a)\1)"};
  auto backref = RuleSet::compile(policy, "chat.moderation");
  ASSERT_FALSE(backref.ok());
  EXPECT_EQ(backref.error().param, "chat.moderation.categories[2].patterns[1]");
}

TEST(Compile, RejectsBadNamesWordsAndRepeats) {
  struct Case {
    Policy policy;
    std::string param;
  };
  std::vector<Case> cases;
  {
    Policy p;
    p.categories.push_back(category("", {"x"}));
    cases.push_back({p, "moderation.categories[0].name"});
  }
  {
    Policy p;
    p.categories.push_back(category("has space", {"x"}));
    cases.push_back({p, "moderation.categories[0].name"});
  }
  {
    Policy p;
    p.categories.push_back(category("pii_email", {"x"}));
    cases.push_back({p, "moderation.categories[0].name"});
  }
  {
    Policy p;
    p.categories.push_back(category("max_length", {"x"}));
    cases.push_back({p, "moderation.categories[0].name"});
  }
  {
    Policy p;
    p.categories.push_back(category("a", {"x"}));
    p.categories.push_back(category("a", {"y"}));
    cases.push_back({p, "moderation.categories[1].name"});
  }
  {
    Policy p;
    p.categories.push_back(category("a", {"x", " \t "}));
    cases.push_back({p, "moderation.categories[0].words[1]"});
  }
  {
    Policy p;
    p.categories.push_back(category("a", {}, {""}));
    cases.push_back({p, "moderation.categories[0].patterns[0]"});
  }
  {
    Policy p;
    p.categories.push_back(category("a", {"x"}, {}, static_cast<Action>(7)));
    cases.push_back({p, "moderation.categories[0].action"});
  }
  {
    Policy p = pii_policy({PiiKind::kEmail, PiiKind::kPhone, PiiKind::kEmail});
    cases.push_back({p, "moderation.pii[2].kind"});
  }
  {
    Policy p;
    p.pii.push_back(PiiRule{static_cast<PiiKind>(9), Action::kRedact, true, true});
    cases.push_back({p, "moderation.pii[0].kind"});
  }
  for (const auto& c : cases) {
    auto compiled = RuleSet::compile(c.policy);
    ASSERT_FALSE(compiled.ok()) << c.param;
    EXPECT_EQ(compiled.error().code, ErrorCode::kInvalidArgument) << c.param;
    EXPECT_EQ(compiled.error().param, c.param) << compiled.error().message;
  }
}

// --- large texts and threads ------------------------------------------------------------------

constexpr size_t kLargeText = size_t{256} * 1024;

Policy everything_policy() {
  Policy policy = pii_policy({PiiKind::kEmail, PiiKind::kPhone, PiiKind::kCard});
  policy.categories.push_back(category("rude", {"ass", "credit card dump"}, {}, Action::kRedact));
  policy.categories.push_back(category("codes", {}, {R"(\bPX-\d{4}\b)"}, Action::kRedact));
  return policy;
}

TEST(LargeText, ManyMatchesIn256KiB) {
  const RuleSet rules = compile_ok(everything_policy());
  const std::string unit =
      "Hi ass, mail a.b@example.com or call 415-555-0132; card 4111 1111 1111 1111, "
      "code PX-1234, class of 2026-11-22, v1.2.3.\n";
  const std::string expected_unit =
      "Hi [REDACTED:rude], mail [REDACTED:pii_email] or call [REDACTED:pii_phone]; card "
      "[REDACTED:pii_card], code [REDACTED:codes], class of 2026-11-22, v1.2.3.\n";
  std::string text;
  std::string expected;
  size_t units = 0;
  while (text.size() < kLargeText) {
    text += unit;
    expected += expected_unit;
    ++units;
  }
  const Verdict v = rules.evaluate(text, Stage::kInput);
  ASSERT_EQ(v.action, Action::kRedact);
  const std::string n = std::to_string(units);
  EXPECT_EQ(describe(v.findings), "rude:redact:" + n + " codes:redact:" + n + " pii_email:redact:" +
                                      n + " pii_phone:redact:" + n + " pii_card:redact:" + n + " ");
  EXPECT_TRUE(*v.redacted == expected);  // not EXPECT_EQ: a mismatch would print 512 KiB
}

TEST(LargeText, Adversarial256KiBInputsComeBackClean) {
  const RuleSet rules = compile_ok(everything_policy());
  const size_t size = kLargeText;
  // Long runs that every detector starts on and none finishes.
  const std::vector<std::string> texts = {
      std::string(size, 'a'),  // a local part with no "@"
      std::string(size, '1'),  // one digit run, too long for anything
      [&] {                    // digits separated by single spaces
        std::string s;
        while (s.size() < size) s += "7 ";
        return s;
      }(),
      [&] {  // dotted labels after an "@" with no TLD end
        std::string s = "x@";
        while (s.size() < size) s += "a1.";
        return s;
      }(),
      [&] {  // a word prefix over and over
        std::string s;
        while (s.size() < size) s += "credit card credit ";
        return s;
      }(),
  };
  for (const auto& text : texts) {
    const Verdict v = rules.evaluate(text, Stage::kInput);
    EXPECT_EQ(v.action, Action::kAllow) << text.substr(0, 40) << ": " << describe(v.findings);
  }
}

TEST(Threads, OneRuleSetEvaluatedConcurrently) {
  const RuleSet rules = compile_ok(everything_policy());
  const RuleSet copy = rules;  // copies share the compiled rules
  const std::string text = "ass a@example.com 415-555-0132 4111111111111111 PX-0001";
  const std::string expected = *rules.evaluate(text, Stage::kInput).redacted;
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const Verdict v = (t % 2 ? copy : rules).evaluate(text, Stage::kInput);
        if (!v.redacted || *v.redacted != expected) ++mismatches[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
