// Chunking (structure first, token sizes, overlap, exact offsets), the token estimate, and
// the built-in hashed embedder.
#include <gtest/gtest.h>

#include <random>

#include "knowledge/chunk/chunker.hpp"
#include "knowledge/chunk/tokens.hpp"
#include "knowledge/embed/hashed_embedder.hpp"
#include "knowledge/extract/extract.hpp"
#include "llm/builtin/builtin_provider.hpp"
#include "support/pdf_maker.hpp"

namespace parley::knowledge {
namespace {

Extracted doc_of(std::string_view text, std::string_view name) {
  auto doc = extract(text, name);
  EXPECT_TRUE(doc.ok()) << (doc.ok() ? "" : doc.error().message);
  return doc.ok() ? std::move(doc).value() : Extracted{};
}

std::string text_of(const Extracted& doc, const Chunk& chunk) {
  return doc.text.substr(chunk.start, chunk.end - chunk.start);
}

std::string sentences(int count, const std::string& topic) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out += "The " + topic + " setting number " + std::to_string(i) + " controls one thing. ";
  }
  return out;
}

TEST(KnowledgeTokens, EstimateCountsWordsPunctuationAndLongWords) {
  EXPECT_EQ(count_tokens(""), 0);
  EXPECT_EQ(count_tokens("the cat sat"), 3);
  EXPECT_EQ(count_tokens("Hello, world!"), 4);
  EXPECT_EQ(count_tokens("internationalization"), 3);      // 20 letters: 1 + 19/8
  EXPECT_EQ(count_tokens("\xE6\x97\xA5\xE6\x9C\xAC"), 2);  // two CJK characters
  EXPECT_EQ(count_tokens("caf\xC3\xA9"), 1);
}

TEST(KnowledgeChunker, HeadingsStartChunksAndStayWithTheirText) {
  const Extracted doc = doc_of(
      "# Install\n\nRun the installer.\n\n# Configure\n\n## Timeouts\n\nSet timeout.\n", "a.md");
  const auto chunks = chunk_document(doc, {});
  ASSERT_EQ(chunks.size(), 2U);
  EXPECT_EQ(text_of(doc, chunks[0]), "Install\n\nRun the installer.");
  EXPECT_EQ(chunks[0].section, "Install");
  EXPECT_EQ(text_of(doc, chunks[1]), "Configure\n\nTimeouts\n\nSet timeout.");
  EXPECT_EQ(chunks[1].section, "Configure > Timeouts");
}

TEST(KnowledgeChunker, LongTextIsCutAtSentencesWithinTheSizeAndOverlaps) {
  const Extracted doc = doc_of(sentences(200, "proxy"), "long.txt");
  ChunkOptions options;
  options.max_tokens = 100;
  options.overlap_tokens = 20;
  const auto chunks = chunk_document(doc, options);
  ASSERT_GT(chunks.size(), 10U);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const std::string text = text_of(doc, chunks[i]);
    EXPECT_LE(chunks[i].tokens, 100) << i;
    EXPECT_EQ(chunks[i].tokens, count_tokens(text));
    EXPECT_TRUE(text.starts_with("The proxy setting")) << i << ": " << text.substr(0, 40);
    EXPECT_EQ(text.back(), '.') << i;
    if (i > 0) {
      // Overlap: this chunk starts before the previous one ends, by at most the overlap.
      EXPECT_LT(chunks[i].start, chunks[i - 1].end) << i;
      EXPECT_GT(chunks[i].start, chunks[i - 1].start) << i;
      EXPECT_LE(count_tokens(doc.text.substr(chunks[i].start, chunks[i - 1].end - chunks[i].start)),
                20);
    }
  }
  EXPECT_EQ(chunks.back().end, doc.text.size());
}

TEST(KnowledgeChunker, NoOverlapAcrossHeadingsOrWhenTurnedOff) {
  const Extracted doc =
      doc_of("# A\n\n" + sentences(40, "a") + "\n\n# B\n\n" + sentences(40, "b"), "x.md");
  ChunkOptions options;
  options.max_tokens = 120;
  options.overlap_tokens = 0;
  const auto chunks = chunk_document(doc, options);
  for (size_t i = 1; i < chunks.size(); ++i) EXPECT_GE(chunks[i].start, chunks[i - 1].end);
  options.overlap_tokens = 30;
  const auto overlapping = chunk_document(doc, options);
  for (size_t i = 1; i < overlapping.size(); ++i) {
    if (text_of(doc, overlapping[i]).starts_with("B")) {
      EXPECT_GE(overlapping[i].start, overlapping[i - 1].end) << "overlap crossed a heading";
    }
  }
}

TEST(KnowledgeChunker, CodeIsCutAtLinesAndAHugeWordByBytes) {
  std::string code = "```\n";
  for (int i = 0; i < 300; ++i)
    code += "call_function_number_" + std::to_string(i) + "(argument);\n";
  code += "```\n\n" + std::string(20000, 'x');
  const Extracted doc = doc_of(code, "c.md");
  ChunkOptions options;
  options.max_tokens = 64;
  options.overlap_tokens = 0;
  const auto chunks = chunk_document(doc, options);
  size_t covered = 0;
  for (const auto& chunk : chunks) {
    EXPECT_LE(chunk.tokens, 64);
    const std::string text = text_of(doc, chunk);
    if (text.starts_with("call_")) {
      EXPECT_EQ(text.back(), ';');
    }
    covered += chunk.end - chunk.start;
  }
  EXPECT_GE(covered, doc.text.size() - 2 * chunks.size());  // only separators left out
}

TEST(KnowledgeChunker, PdfPagesNeverShareAChunk) {
  const Extracted doc =
      doc_of(testing::make_pdf({"Page one text.", "Page two text.", "Page three text."}), "p.pdf");
  const auto chunks = chunk_document(doc, {});
  ASSERT_EQ(chunks.size(), 3U);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(chunks[static_cast<size_t>(i)].page, i + 1);
    EXPECT_EQ(chunks[static_cast<size_t>(i)].page_end, i + 1);
  }
}

TEST(KnowledgeChunker, RandomDocumentsAlwaysFitAndStayInBounds) {
  std::mt19937 rng(7);
  const std::vector<std::string> words = {"alpha", "beta.",      "gamma!",
                                          "\n",    "\n\n",       "# H\n",
                                          "```\n", "- item\n",   "internationalization",
                                          "x",     "| a | b |\n"};
  for (int round = 0; round < 200; ++round) {
    std::string md;
    const int n = static_cast<int>(rng() % 2000);
    for (int i = 0; i < n; ++i) md += words[rng() % words.size()] + " ";
    auto doc = extract(md, "r.md");
    if (!doc.ok()) continue;
    ChunkOptions options;
    options.max_tokens = 32 + static_cast<int64_t>(rng() % 200);
    options.overlap_tokens = static_cast<int64_t>(rng() % (options.max_tokens / 2 + 1));
    for (const auto& chunk : chunk_document(*doc, options)) {
      ASSERT_LE(chunk.start, chunk.end);
      ASSERT_LE(chunk.end, doc->text.size());
      ASSERT_LE(chunk.tokens, options.max_tokens);
    }
  }
}

TEST(KnowledgeChunker, OptionsAreValidated) {
  EXPECT_TRUE(validate(ChunkOptions{400, 60}).ok());
  EXPECT_FALSE(validate(ChunkOptions{10, 0}).ok());
  EXPECT_FALSE(validate(ChunkOptions{400, 300}).ok());
  EXPECT_FALSE(validate(ChunkOptions{400, -1}).ok());
}

float cosine(const Vectors& v, size_t a, size_t b) {
  float dot = 0;
  for (int i = 0; i < v.dimension; ++i)
    dot += v.row(a)[static_cast<size_t>(i)] * v.row(b)[static_cast<size_t>(i)];
  return dot;
}

TEST(HashedEmbedder, IsDeterministicNormalisedAndLexicallySimilar) {
  const HashedEmbedder embedder;
  EXPECT_EQ(embedder.dimension(), 384);
  const Vectors v = embedder.embed_now({"How do I configure the proxy timeout?",
                                        "proxy_timeout configuration: seconds before giving up",
                                        "Our refund policy covers damaged goods.",
                                        "How do I configure the proxy timeout?",
                                        "authentification token", "authentication tokens", ""});
  ASSERT_EQ(v.size(), 7U);
  float norm = 0;
  for (float x : v.row(0)) norm += x * x;
  EXPECT_NEAR(norm, 1.0F, 1e-4);
  EXPECT_FLOAT_EQ(cosine(v, 0, 3), cosine(v, 0, 0));   // same text, same vector
  EXPECT_GT(cosine(v, 0, 1), cosine(v, 0, 2) + 0.2F);  // shared words beat unrelated text
  EXPECT_GT(cosine(v, 4, 5), 0.5F);                    // a misspelling still matches
  for (float x : v.row(6)) EXPECT_EQ(x, 0.0F);         // nothing to embed: a zero vector
}

}  // namespace
}  // namespace parley::knowledge

namespace parley::llm {
namespace {

TEST(BuiltinProvider, QuotesTheSentencesOfTheBestPassagesThatMatchTheQuestion) {
  ChatRequest request;
  request.messages.push_back({"system", "Answer from the passages.", {}, {}, {}, {}});
  request.messages.push_back({"user", "How many holiday days do employees get?", {}, {}, {}, {}});
  request.sources.push_back(
      {1, "handbook.md, Holidays",
       "Welcome to the company. Every employee has 28 days of paid holiday a year. Unused days "
       "expire in March."});
  request.sources.push_back(
      {2, "handbook.md, Equipment", "Laptops are replaced every three years."});
  const std::string reply = quoted_reply(request);
  EXPECT_NE(reply.find("> Every employee has 28 days of paid holiday a year."), std::string::npos)
      << reply;
  EXPECT_EQ(reply.find("Welcome to the company"), std::string::npos) << reply;
  EXPECT_NE(reply.find("[1]"), std::string::npos);
  EXPECT_NE(reply.find("> Laptops are replaced every three years. [2]"), std::string::npos)
      << reply;
  EXPECT_NE(reply.find("No language model is configured"), std::string::npos);
}

}  // namespace
}  // namespace parley::llm
