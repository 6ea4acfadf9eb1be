// Plain text and source code. Plain text is cut into paragraphs at blank lines. Source code is
// cut at blank lines too, and each top-level definition (a line at column 0 that opens a
// function, class, type or CSS rule) is a heading, so a chunk can cite "def parse_args(argv)"
// and chunking keeps a definition with its body where it fits.
#include <array>

#include "knowledge/extract/builder.hpp"
#include "knowledge/extract/extractors.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::knowledge {

namespace {

constexpr size_t kMaxDefinitionLine = 160;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A line that opens a top-level definition: its signature, cleaned; empty otherwise.
std::string definition_of(std::string_view line, std::string_view language) {
  if (line.empty() || line.size() > kMaxDefinitionLine) return {};
  if (line.front() == ' ' || line.front() == '\t' || line.front() == '}' || line.front() == '#' ||
      line.front() == '/' || line.front() == '*') {
    // Indented, a closing brace, or a comment (Python's and C's comments open with these).
    return {};
  }
  static constexpr std::array<std::string_view, 22> kKeywords = {
      "def ",       "async def ", "class ",      "function ", "async function ", "export ",
      "fn ",        "pub fn ",    "pub struct ", "impl ",     "struct ",         "enum ",
      "interface ", "type ",      "func ",       "module ",   "trait ",          "public ",
      "private ",   "protected ", "template ",   "namespace "};
  std::string_view trimmed = trim(line);
  bool opens = false;
  for (const auto keyword : kKeywords) {
    if (starts_with(trimmed, keyword)) {
      opens = true;
      break;
    }
  }
  // A CSS rule or a C-style function: a line at column 0 that opens a brace.
  if (!opens && !trimmed.empty() && trimmed.back() == '{' &&
      (language == "css" || trimmed.find('(') != std::string_view::npos)) {
    opens = true;
  }
  if (!opens) return {};
  while (!trimmed.empty() &&
         (trimmed.back() == '{' || trimmed.back() == ':' || trimmed.back() == ' '))
    trimmed.remove_suffix(1);
  return std::string(trimmed);
}

}  // namespace

Result<Extracted> extract_plain_text(std::string_view text, const ExtractLimits& limits) {
  DocumentBuilder builder(Format::kText, limits);
  for (const std::string_view paragraph : split_paragraphs(text)) {
    builder.add(BlockKind::kParagraph, paragraph);
  }
  return std::move(builder).finish();
}

Result<Extracted> extract_source_code(std::string_view text, const std::string& language,
                                      const ExtractLimits& limits) {
  DocumentBuilder builder(Format::kCode, limits);
  builder.set_language(language);
  for (const std::string_view paragraph : split_paragraphs(text)) {
    // A definition line inside the paragraph starts a section; the lines before it stay in
    // the section before.
    size_t start = 0;
    size_t pos = 0;
    while (pos < paragraph.size()) {
      const size_t eol = std::min(paragraph.find('\n', pos), paragraph.size());
      const std::string definition = definition_of(paragraph.substr(pos, eol - pos), language);
      if (!definition.empty()) {
        if (pos > start) builder.add(BlockKind::kCode, paragraph.substr(start, pos - start));
        builder.heading(1, definition);
        start = eol + 1;
      }
      pos = eol + 1;
    }
    if (start < paragraph.size()) builder.add(BlockKind::kCode, paragraph.substr(start));
  }
  return std::move(builder).finish();
}

}  // namespace parley::knowledge
