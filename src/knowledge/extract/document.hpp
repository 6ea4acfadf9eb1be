// What an extractor makes of a file: its text, in reading order, and the structure that
// chunking follows (headings, paragraphs, code blocks, list items, table rows, pages). Every
// block is a range of `text`, so a chunk — and a citation — can say exactly which characters
// of the document it came from.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace parley::knowledge {

enum class Format { kText, kMarkdown, kHtml, kPdf, kJson, kYaml, kCode };

// "text", "markdown", "html", "pdf", "json", "yaml", "code".
std::string_view format_name(Format format);

enum class BlockKind { kHeading, kParagraph, kCode, kListItem, kTableRow, kQuote };

std::string_view block_kind_name(BlockKind kind);

struct Block {
  BlockKind kind = BlockKind::kParagraph;
  size_t offset = 0;  // into Extracted::text, in bytes (UTF-8)
  size_t length = 0;
  int page = 0;   // 1-based page of a PDF; 0 for formats without pages
  int level = 0;  // a heading's level, 1 = top
  // The headings this block sits under, outermost first, joined by " > " ("Install > Linux").
  // For a heading, the path up to and including itself.
  std::string section;
};

struct Extracted {
  Format format = Format::kText;
  std::string language;  // source code: "python", "javascript", "css", "c++"...; else empty
  std::string title;     // the first top-level heading, a PDF's or HTML's title, or empty
  std::string text;      // blocks joined by a blank line
  std::vector<Block> blocks;
  int pages = 0;  // a PDF's page count
};

// Bounds that keep a hostile file from costing unbounded memory or time. Exceeding one is a
// clear error, never a crash and never a silently truncated document.
struct ExtractLimits {
  size_t max_text_bytes = size_t{64} << 20;  // extracted text
  size_t max_blocks = 2'000'000;
  int max_depth = 64;  // nesting of JSON and YAML, of Markdown and HTML structure
  int max_pages = 10'000;
};

}  // namespace parley::knowledge
