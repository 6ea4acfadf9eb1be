// Extraction: each format through its library into text and structure, type detection from
// content and name, and the hostile inputs the knowledge base must refuse cleanly.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "knowledge/extract/extract.hpp"
#include "knowledge/extract/text_utils.hpp"
#include "support/pdf_maker.hpp"

namespace parley::knowledge {
namespace {

std::string block_text(const Extracted& doc, const Block& block) {
  return doc.text.substr(block.offset, block.length);
}

// "kind|section|text" per block, for compact expectations.
std::vector<std::string> outline(const Extracted& doc) {
  std::vector<std::string> out;
  for (const auto& block : doc.blocks) {
    out.push_back(std::string(block_kind_name(block.kind)) + "|" + block.section + "|" +
                  block_text(doc, block));
  }
  return out;
}

Extracted extracted(std::string_view bytes, std::string_view name) {
  auto doc = extract(bytes, name);
  EXPECT_TRUE(doc.ok()) << (doc.ok() ? "" : doc.error().message);
  return doc.ok() ? std::move(doc).value() : Extracted{};
}

Error refused(std::string_view bytes, std::string_view name, const ExtractLimits& limits = {}) {
  auto doc = extract(bytes, name, limits);
  EXPECT_FALSE(doc.ok()) << "extracted: " << (doc.ok() ? doc->text.substr(0, 200) : "");
  return doc.ok() ? Error{} : doc.error();
}

TEST(KnowledgeExtract, MarkdownKeepsHeadingsCodeListsAndTables) {
  const std::string md =
      "---\ntitle: \"Proxy guide\"\n---\n"
      "# Setup\n\nInstall the **proxy** with [the installer](https://x).\n\n"
      "## Linux\n\n- download it\n- run `install.sh`\n\n"
      "```bash\n./install.sh --prefix /opt\n```\n\n"
      "| key | default |\n|---|---|\n| timeout | 30s |\n\n"
      "> Quoted advice.\n\n# Usage\n\nRun it.\n";
  const Extracted doc = extracted(md, "guide.md");
  EXPECT_EQ(doc.format, Format::kMarkdown);
  EXPECT_EQ(doc.title, "Proxy guide");  // front matter wins over the first heading
  EXPECT_EQ(outline(doc), (std::vector<std::string>{
                              "heading|Setup|Setup",
                              "paragraph|Setup|Install the proxy with the installer.",
                              "heading|Setup > Linux|Linux",
                              "list_item|Setup > Linux|- download it",
                              "list_item|Setup > Linux|- run install.sh",
                              "code|Setup > Linux|./install.sh --prefix /opt",
                              "table_row|Setup > Linux|key | default",
                              "table_row|Setup > Linux|timeout | 30s",
                              "quote|Setup > Linux|Quoted advice.",
                              "heading|Usage|Usage",
                              "paragraph|Usage|Run it.",
                          }));
}

TEST(KnowledgeExtract, HtmlDropsChromeAndKeepsStructure) {
  const std::string html =
      "<!DOCTYPE html><html><head><title>API &amp; SDK</title><style>p{}</style>"
      "<script>var secret = 1;</script></head><body><nav>Home | Docs</nav>"
      "<h1>Auth</h1><p>Send a <b>bearer</b>\n   token.</p><ul><li>one</li><li>two</li></ul>"
      "<pre>curl -H 'x'\n  https://api</pre><table><tr><th>code</th><th>meaning</th></tr>"
      "<tr><td>401</td><td>bad key</td></tr></table><h2>Errors</h2><div>Retry<br>later</div>"
      "</body></html>";
  const Extracted doc = extracted(html, "page.html");
  EXPECT_EQ(doc.title, "API & SDK");
  EXPECT_EQ(outline(doc), (std::vector<std::string>{
                              "heading|Auth|Auth",
                              "paragraph|Auth|Send a bearer token.",
                              "list_item|Auth|- one",
                              "list_item|Auth|- two",
                              "code|Auth|curl -H 'x'\n  https://api",
                              "table_row|Auth|code | meaning",
                              "table_row|Auth|401 | bad key",
                              "heading|Auth > Errors|Errors",
                              "paragraph|Auth > Errors|Retry later",
                          }));
  EXPECT_EQ(doc.text.find("secret"), std::string::npos);
  EXPECT_EQ(doc.text.find("Home"), std::string::npos);
}

TEST(KnowledgeExtract, JsonIsFlattenedToPathsUnderTopLevelHeadings) {
  const std::string json =
      R"({"info": {"title": "Pets", "version": 2}, "servers": [{"url": "https://a"}, {"url": "https://b"}],
          "tags": [], "paths": {"/pets": {"get": {"summary": "List pets", "deprecated": false}}}})";
  const Extracted doc = extracted(json, "openapi.json");
  EXPECT_EQ(doc.format, Format::kJson);
  EXPECT_NE(doc.text.find("info.title: Pets\ninfo.version: 2"), std::string::npos) << doc.text;
  EXPECT_NE(doc.text.find("servers[0].url: https://a"), std::string::npos);
  EXPECT_NE(doc.text.find("servers[1].url: https://b"), std::string::npos);
  EXPECT_NE(doc.text.find("tags: []"), std::string::npos);
  EXPECT_NE(doc.text.find("paths./pets.get.summary: List pets"), std::string::npos);
  std::vector<std::string> headings;
  for (const auto& b : doc.blocks) {
    if (b.kind == BlockKind::kHeading) headings.push_back(block_text(doc, b));
  }
  EXPECT_EQ(headings, (std::vector<std::string>{"info", "servers", "paths"}));
}

TEST(KnowledgeExtract, YamlIsFlattenedLikeJsonWithAliasesNamed) {
  const std::string yaml =
      "defaults: &base\n  timeout: 30\n  retries: 3\nservice:\n  name: billing\n  ports: [80, "
      "443]\n"
      "  limits: *base\n";
  const Extracted doc = extracted(yaml, "config.yml");
  EXPECT_EQ(doc.format, Format::kYaml);
  EXPECT_NE(doc.text.find("defaults.timeout: 30"), std::string::npos) << doc.text;
  EXPECT_NE(doc.text.find("service.ports[1]: 443"), std::string::npos);
  EXPECT_NE(doc.text.find("service.limits: (same as a mapping)"), std::string::npos);
}

TEST(KnowledgeExtract, DeepNestingIsRefusedNotRecursedInto) {
  const std::string json = std::string(100000, '[') + std::string(100000, ']');
  const Error json_error = refused(json, "deep.json");
  EXPECT_EQ(json_error.reason, "document_too_deep");
  EXPECT_NE(json_error.message.find("64 levels"), std::string::npos);

  std::string yaml;
  for (int i = 0; i < 200; ++i) yaml += std::string(static_cast<size_t>(i) * 2, ' ') + "k:\n";
  EXPECT_EQ(refused(yaml, "deep.yaml").reason, "document_too_deep");
  EXPECT_EQ(refused(std::string(50000, '['), "flow.yaml").reason, "document_too_deep");
}

TEST(KnowledgeExtract, BrokenJsonAndYamlSayWhere) {
  const Error json = refused(R"({"a": [1, 2,, 3]})", "x.json");
  EXPECT_EQ(json.reason, "invalid_document");
  EXPECT_NE(json.message.find("not valid JSON at byte 12"), std::string::npos) << json.message;
  const Error yaml = refused("a: [1, 2\nb: c\n", "x.yaml");
  EXPECT_EQ(yaml.reason, "invalid_document");
  EXPECT_NE(yaml.message.find("not valid YAML at line"), std::string::npos) << yaml.message;
}

TEST(KnowledgeExtract, SourceCodeSectionsAreTopLevelDefinitions) {
  const std::string py =
      "import os\n\n\ndef parse_args(argv):\n    \"\"\"Reads flags.\"\"\"\n\n    return argv\n\n"
      "class Client:\n    def get(self):\n        pass\n";
  const Extracted doc = extracted(py, "tool.py");
  EXPECT_EQ(doc.format, Format::kCode);
  EXPECT_EQ(doc.language, "python");
  EXPECT_EQ(outline(doc), (std::vector<std::string>{
                              "code||import os",
                              "heading|def parse_args(argv)|def parse_args(argv)",
                              "code|def parse_args(argv)|    \"\"\"Reads flags.\"\"\"",
                              "code|def parse_args(argv)|    return argv",
                              "heading|class Client|class Client",
                              "code|class Client|    def get(self):\n        pass",
                          }));
}

TEST(KnowledgeExtract, PlainTextParagraphs) {
  const Extracted doc = extracted("First para\nstill first.\n\n  \n\nSecond.\n", "notes.txt");
  EXPECT_EQ(outline(doc), (std::vector<std::string>{"paragraph||First para\nstill first.",
                                                    "paragraph||Second."}));
}

TEST(KnowledgeExtract, PdfPagesAreKeptOnEveryBlock) {
  const std::string pdf = testing::make_pdf(
      {"Refunds take five days.", "Shipping is free above 50 EUR.\n\n\n\nReturns need a label."},
      "Policy");
  const Extracted doc = extracted(pdf, "policy.pdf");
  EXPECT_EQ(doc.format, Format::kPdf);
  EXPECT_EQ(doc.title, "Policy");
  EXPECT_EQ(doc.pages, 2);
  ASSERT_GE(doc.blocks.size(), 2U);
  EXPECT_EQ(doc.blocks.front().page, 1);
  EXPECT_EQ(block_text(doc, doc.blocks.front()), "Refunds take five days.");
  EXPECT_EQ(doc.blocks.back().page, 2);
  EXPECT_NE(doc.text.find("Returns need a label."), std::string::npos);
}

TEST(KnowledgeExtract, PdfNamedAnythingIsStillAPdf) {
  const std::string pdf = testing::make_pdf({"Inside."});
  EXPECT_EQ(extracted(pdf, "notes.txt").format, Format::kPdf);
}

TEST(KnowledgeExtract, EncryptedCorruptAndEmptyPdfsAreRefusedWithReasons) {
  std::ifstream file(std::string(PARLEY_FIXTURES_DIR) + "/knowledge/encrypted.pdf",
                     std::ios::binary);
  ASSERT_TRUE(file) << "fixture missing";
  std::stringstream bytes;
  bytes << file.rdbuf();
  const Error locked = refused(bytes.str(), "secret.pdf");
  EXPECT_EQ(locked.reason, "document_encrypted");
  EXPECT_NE(locked.message.find("password"), std::string::npos);

  const Error corrupt = refused("%PDF-1.7\n1 0 obj garbage \xff\xfe endobj trailer <<>>", "x.pdf");
  EXPECT_EQ(corrupt.reason, "invalid_document");

  // Thousands of empty pages: read quickly, refused as having no text.
  const std::string empty = testing::make_pdf(std::vector<std::string>(3000, ""));
  const Error no_text = refused(empty, "scan.pdf");
  EXPECT_EQ(no_text.reason, "document_empty");
  EXPECT_NE(no_text.message.find("3000 pages"), std::string::npos) << no_text.message;

  ExtractLimits limits;
  limits.max_pages = 100;
  EXPECT_EQ(refused(empty, "scan.pdf", limits).reason, "document_too_large");
}

TEST(KnowledgeExtract, BinaryNamedTxtIsRefusedWithWhatItIs) {
  const std::string png(
      "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx"
      "\x9c"
      "c\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xae B`\x82",
      67);
  const Error error = refused(png, "readme.txt");
  EXPECT_EQ(error.reason, "unsupported_type");
  EXPECT_NE(error.message.find("PNG image"), std::string::npos) << error.message;

  const Error elf = refused(std::string("\x7f"
                                        "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
                                        16) +
                                std::string(64, '\0'),
                            "notes.md");
  EXPECT_EQ(elf.reason, "unsupported_type");

  EXPECT_EQ(refused("just words", "fake.pdf").reason, "unsupported_type");
  EXPECT_EQ(refused("", "empty.txt").reason, "document_empty");
}

TEST(KnowledgeExtract, TextEncodingsBecomeUtf8) {
  // UTF-16LE with a byte-order mark.
  const std::string utf16("\xFF\xFEH\0\xE9\0l\0l\0o\0", 12);
  EXPECT_EQ(extracted(utf16, "a.txt").text, "H\xC3\xA9llo");
  // Windows-1252: "café – 5€".
  EXPECT_EQ(extracted("caf\xE9 \x96 5\x80", "b.txt").text,
            "caf\xC3\xA9 \xE2\x80\x93 5\xE2\x82\xAC");
  // A UTF-8 byte-order mark is dropped.
  EXPECT_EQ(extracted("\xEF\xBB\xBFplain", "c.txt").text, "plain");
}

TEST(KnowledgeExtract, UnknownNamesAreSniffedFromContent) {
  EXPECT_EQ(extracted(R"({"a": 1})", "upload").format, Format::kJson);
  EXPECT_EQ(extracted("<!doctype html><p>hi</p>", "page").format, Format::kHtml);
  EXPECT_EQ(extracted("# Title\n\nBody", "README").format, Format::kMarkdown);
  EXPECT_EQ(extracted("{not json at all", "braces").format, Format::kText);
  EXPECT_EQ(extracted("plain words", "notes").format, Format::kText);
}

TEST(KnowledgeExtract, HtmlOfMillionsOfOneTagIsRefusedBeforeParsing) {
  std::string html;
  html.reserve(50 << 20);
  while (html.size() < (50 << 20)) html += "<p>";
  const Error error = refused(html, "huge.html");
  EXPECT_EQ(error.reason, "document_too_large");
  EXPECT_NE(error.message.find("tags"), std::string::npos);
}

TEST(KnowledgeExtract, DeeplyNestedHtmlIsRefusedAndModerateNestingIsWalkedWithoutRecursion) {
  // The HTML5 algorithm scans the open elements at many steps: nesting costs quadratic time.
  std::string deep = "<html><body>";
  for (int i = 0; i < 200000; ++i) deep += "<div>";
  const Error error = refused(deep + "deep text", "deep.html");
  EXPECT_EQ(error.reason, "document_too_deep");

  std::string moderate = "<html><body>";
  for (int i = 0; i < 1500; ++i) moderate += "<div><p>para " + std::to_string(i) + "<li>item";
  const Extracted doc = extracted(moderate + "deep text", "moderate.html");
  EXPECT_NE(doc.text.find("para 1499"), std::string::npos);
  EXPECT_TRUE(doc.text.ends_with("deep text"));
}

TEST(KnowledgeExtract, ExtractedTextOverTheLimitIsRefused) {
  ExtractLimits limits;
  limits.max_text_bytes = 1 << 20;
  std::string text;
  while (text.size() < (2 << 20)) text += "A sentence of some length.\n\n";
  const Error error = refused(text, "big.txt", limits);
  EXPECT_EQ(error.reason, "document_too_large");
  EXPECT_EQ(error.code, ErrorCode::kTooLarge);
}

TEST(KnowledgeText, Utf8ValidationAndRepair) {
  EXPECT_TRUE(valid_utf8("plain \xC3\xA9 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_EQ(repair_utf8("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(fold_whitespace("  a \n\t b  "), "a b");
}

}  // namespace
}  // namespace parley::knowledge
