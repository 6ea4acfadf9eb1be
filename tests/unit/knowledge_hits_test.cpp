// What a search hit shows. Highlights: the best window of a chunk's text, cut at word
// boundaries, its matching words marked, with the stemmer deciding what matches, and through a
// real Xapian search. Chunk records: the citation and text the lexical index keeps, round
// trips, records of earlier versions (JSON), and bytes that are not a record.
#include <gtest/gtest.h>

#include <string>

#include "knowledge/index/chunk_record.hpp"
#include "knowledge/index/highlight.hpp"
#include "knowledge/index/lexical_index.hpp"

namespace parley::knowledge {
namespace {

// Lower case and a trailing "s" dropped: enough of a stemmer to tell matching from stemming.
std::string toy_stem(const std::string& word) {
  std::string s;
  for (char c : word) s += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (s.size() > 3 && s.back() == 's') s.pop_back();
  return s;
}

// Letters from U+00C0 on, but not the general punctuation block (dashes, curly quotes) nor the
// no-break space: what Xapian's rule does for the characters these tests use.
bool toy_word_character(unsigned c) { return c >= 0xC0 && !(c >= 0x2000 && c <= 0x206F); }

Highlighter make(std::vector<HighlightTerm> terms) {
  return {std::move(terms), toy_stem, toy_word_character};
}

TEST(HighlightTest, MarksMatchingWordsWhateverTheirCaseOrEnding) {
  const auto h = make({{"refund", 2.0}, {"order", 1.0}});
  EXPECT_EQ(h("Refunds for an ORDER arrive in five days.", 300),
            "\u00abRefunds\u00bb for an \u00abORDER\u00bb arrive in five days.");
}

TEST(HighlightTest, NothingMatchingGivesNothing) {
  const auto h = make({{"refund", 1.0}});
  EXPECT_EQ(h("Shipping takes a week.", 300), "");
  EXPECT_EQ(h("", 300), "");
  EXPECT_EQ(Highlighter()("refund", 300), "");
  // "re" begins "refund" but is another word.
  EXPECT_EQ(h("re fun d", 300), "");
}

TEST(HighlightTest, ChoosesTheWindowWithTheMostWeightAndCutsAtWords) {
  std::string text = "alpha refund ";
  for (int i = 0; i < 40; ++i) text += "filler ";
  text += "then the refund of the order and the invoice come together ";
  for (int i = 0; i < 40; ++i) text += "padding ";
  const auto h = make({{"refund", 1.0}, {"order", 1.0}, {"invoice", 1.0}});
  const std::string out = h(text, 80);
  EXPECT_EQ(out.rfind("\u2026", 0), 0U) << out;  // starts after the text's beginning
  EXPECT_NE(out.find("\u00abrefund\u00bb of the \u00aborder\u00bb and the \u00abinvoice\u00bb"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.substr(out.size() - 3), "\u2026") << out;
  // About the length asked for (marks and ellipses aside), and never a cut word.
  EXPECT_LE(out.size(), 80U + 6 * 2 + 2 * 3);
  EXPECT_EQ(out.find("paddin "), std::string::npos);
  EXPECT_EQ(out.find(" fille"), std::string::npos) << out;
}

TEST(HighlightTest, HeavierTermsWinOverMoreMatches) {
  std::string text = "common common common common ";
  for (int i = 0; i < 30; ++i) text += "word ";
  text += "rare thing";
  const auto h = make({{"common", 0.1}, {"rare", 5.0}});
  const std::string out = h(text, 40);
  EXPECT_NE(out.find("\u00abrare\u00bb"), std::string::npos) << out;
  EXPECT_EQ(out.find("\u00abcommon\u00bb"), std::string::npos) << out;
}

TEST(HighlightTest, WhiteSpaceFoldsAndUtf8StaysWhole) {
  const auto h = make({{"café", 1.0}, {"menu", 1.0}});
  const std::string out = h("Le  café\n\n\tet le menu\u00e9tendu", 300);
  EXPECT_EQ(out, "Le \u00abcafé\u00bb et le menu\u00e9tendu");
  // A short window never splits a multi-byte character.
  const std::string cut = h(std::string(50, 'x') + " café " + std::string(10, 'y'), 8);
  EXPECT_NE(cut.find("\u00abcafé\u00bb"), std::string::npos) << cut;
}

TEST(HighlightTest, PunctuationBeyondAsciiSeparatesWords) {
  const auto h = make({{"refund", 1.0}, {"order", 1.0}});
  EXPECT_EQ(h("The \u201crefund\u201d\u2014order\u00a0policy", 300),
            "The \u201c\u00abrefund\u00bb\u201d\u2014\u00aborder\u00bb\u00a0policy");
  // Invalid UTF-8 is neither a word nor a crash, and stays as it was.
  EXPECT_EQ(h("\xff refund \xe2\x80", 300), "\xff \u00abrefund\u00bb \xe2\x80");
}

TEST(HighlightTest, StemsThatChangeTheirSecondLetterStillMatch) {
  // A stemmer that makes "dying" "die", as Snowball's English one does.
  const Highlighter h(
      {{"die", 1.0}}, [](const std::string& w) { return w == "dying" ? std::string("die") : w; },
      toy_word_character);
  EXPECT_EQ(h("a dying star", 300), "a \u00abdying\u00bb star");
}

TEST(HighlightTest, ALongRunOfPunctuationIsCutNotCopied) {
  const auto h = make({{"refund", 1.0}});
  const std::string out = h(std::string(500, '-') + " refund " + std::string(500, '='), 100);
  EXPECT_EQ(out, "\u2026\u00abrefund\u00bb\u2026");
}

TEST(HighlightTest, ThroughXapianSearchStemsAsTheIndexDoes) {
  auto index = LexicalIndex::open("");
  ASSERT_TRUE(index.ok());
  (*index)->upsert(1, "d1", "", "Configuring the proxy for timeouts", "{}");
  (*index)->upsert(2, "d1", "", "Nothing to see", "{}");
  LexicalSearch options;
  const auto result = (*index)->search("configured proxies timeout", options);
  ASSERT_EQ(result.hits.size(), 1U);
  EXPECT_EQ(result.highlight("Configuring the proxy for timeouts"),
            "\u00abConfiguring\u00bb the \u00abproxy\u00bb for \u00abtimeouts\u00bb");
  EXPECT_EQ(result.highlight("Nothing to see"), "");
}

TEST(ChunkRecordTest, RoundTripsEveryField) {
  ChunkRecord r;
  r.document_id = "doc_1";
  r.section = "Install \u00bb Linux";
  r.ordinal = 300;
  r.page = -1;  // never written, but signed all the same
  r.page_end = INT64_MAX;
  r.start_offset = INT64_MIN;
  r.end_offset = 0;
  r.text = std::string("a\0b", 3) + std::string(100000, 'x');
  const std::string bytes = encode_chunk_record(r);
  const auto back = decode_chunk_record(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->document_id, r.document_id);
  EXPECT_EQ(back->section, r.section);
  EXPECT_EQ(back->ordinal, 300);
  EXPECT_EQ(back->page, -1);
  EXPECT_EQ(back->page_end, INT64_MAX);
  EXPECT_EQ(back->start_offset, INT64_MIN);
  EXPECT_EQ(back->end_offset, 0);
  EXPECT_EQ(back->text, r.text);
  EXPECT_LT(bytes.size(), r.text.size() + 64);
  // Any shorter prefix, or a byte more, is not a record.
  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{20}, bytes.size() - 1}) {
    EXPECT_FALSE(decode_chunk_record(std::string_view(bytes).substr(0, n)).has_value()) << n;
  }
  EXPECT_FALSE(decode_chunk_record(bytes + "!").has_value());
  std::string other_version = bytes;
  other_version[0] = 2;
  EXPECT_FALSE(decode_chunk_record(other_version).has_value());
}

TEST(ChunkRecordTest, ReadsTheJsonOfEarlierIndexes) {
  const auto r = decode_chunk_record(
      R"({"d":"doc","s":"Intro","o":3,"p":1,"pe":2,"a":10,"b":20,"t":"caf\u00e9"})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->document_id, "doc");
  EXPECT_EQ(r->section, "Intro");
  EXPECT_EQ(r->ordinal, 3);
  EXPECT_EQ(r->page, 1);
  EXPECT_EQ(r->page_end, 2);
  EXPECT_EQ(r->start_offset, 10);
  EXPECT_EQ(r->end_offset, 20);
  EXPECT_EQ(r->text, "caf\u00e9");
  EXPECT_FALSE(decode_chunk_record(R"({"d":5})").has_value());
  // A number no int64_t holds is not a record (casting it would be undefined).
  EXPECT_FALSE(decode_chunk_record(R"({"d":"doc","o":1e99})").has_value());
  EXPECT_FALSE(decode_chunk_record(R"({"d":"doc","o":1.5})").has_value());
  EXPECT_EQ(decode_chunk_record(R"({"o":18446744073709551615})")->ordinal, INT64_MAX);
  EXPECT_FALSE(decode_chunk_record("{not json").has_value());
}

}  // namespace
}  // namespace parley::knowledge
