// Markdown through cmark-gfm (CommonMark with GitHub's tables, strikethrough and autolinks):
// headings give sections, paragraphs, list items, quotes, table rows and fenced code become
// blocks of their own kind. Inline markup is dropped and link text kept. YAML front matter
// (between `---` lines at the top) is read for a `title:` and otherwise left out. The tree is
// walked with cmark's iterator, never recursively.
#include <cstring>
#include <memory>
#include <mutex>

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>

#include "knowledge/extract/builder.hpp"
#include "knowledge/extract/extractors.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::knowledge {

namespace {

struct ParserDeleter {
  void operator()(cmark_parser* p) const { cmark_parser_free(p); }
};
struct NodeDeleter {
  void operator()(cmark_node* n) const { cmark_node_free(n); }
};
struct IterDeleter {
  void operator()(cmark_iter* i) const { cmark_iter_free(i); }
};

bool is_type(cmark_node* node, const char* name) {
  const char* type = cmark_node_get_type_string(node);
  return type != nullptr && std::strcmp(type, name) == 0;
}

// The text of a block's inlines: text and code spans, breaks as spaces or newlines.
std::string inline_text(cmark_node* block) {
  std::string out;
  std::unique_ptr<cmark_iter, IterDeleter> it(cmark_iter_new(block));
  cmark_event_type event;
  while ((event = cmark_iter_next(it.get())) != CMARK_EVENT_DONE) {
    if (event != CMARK_EVENT_ENTER) continue;
    cmark_node* node = cmark_iter_get_node(it.get());
    switch (cmark_node_get_type(node)) {
      case CMARK_NODE_TEXT:
      case CMARK_NODE_CODE:
        if (const char* literal = cmark_node_get_literal(node)) out += literal;
        break;
      case CMARK_NODE_SOFTBREAK:
        out += ' ';
        break;
      case CMARK_NODE_LINEBREAK:
        out += '\n';
        break;
      default:
        break;
    }
  }
  return out;
}

// Strips YAML front matter; returns the body and sets `title` when the front matter has one.
std::string_view strip_front_matter(std::string_view text, std::string& title) {
  if (text.substr(0, 4) != "---\n" && text.substr(0, 5) != "---\r\n") return text;
  const size_t first_line_end = text.find('\n');
  size_t pos = first_line_end + 1;
  while (pos < text.size()) {
    const size_t eol = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == "---" || line == "...") return text.substr(std::min(eol + 1, text.size()));
    if (line.substr(0, 6) == "title:") {
      std::string_view value = trim(line.substr(6));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      title = std::string(value);
    }
    pos = eol + 1;
  }
  title.clear();  // no closing line: it was not front matter
  return text;
}

}  // namespace

Result<Extracted> extract_markdown(std::string_view text, const ExtractLimits& limits) {
  static std::once_flag registered;
  std::call_once(registered, [] { cmark_gfm_core_extensions_ensure_registered(); });

  DocumentBuilder builder(Format::kMarkdown, limits);
  std::string front_title;
  const std::string_view body = strip_front_matter(text, front_title);
  if (!front_title.empty()) builder.set_title(front_title);

  std::unique_ptr<cmark_parser, ParserDeleter> parser(cmark_parser_new(CMARK_OPT_DEFAULT));
  for (const char* name : {"table", "strikethrough", "autolink", "tasklist"}) {
    if (cmark_syntax_extension* ext = cmark_find_syntax_extension(name)) {
      cmark_parser_attach_syntax_extension(parser.get(), ext);
    }
  }
  cmark_parser_feed(parser.get(), body.data(), body.size());
  std::unique_ptr<cmark_node, NodeDeleter> document(cmark_parser_finish(parser.get()));
  if (!document) return Error::invalid("the Markdown could not be parsed", "invalid_document");

  std::unique_ptr<cmark_iter, IterDeleter> it(cmark_iter_new(document.get()));
  int in_item = 0;
  int in_quote = 0;
  cmark_event_type event;
  while ((event = cmark_iter_next(it.get())) != CMARK_EVENT_DONE && !builder.failed()) {
    cmark_node* node = cmark_iter_get_node(it.get());
    const cmark_node_type type = cmark_node_get_type(node);
    if (event == CMARK_EVENT_EXIT) {
      if (type == CMARK_NODE_ITEM) in_item--;
      if (type == CMARK_NODE_BLOCK_QUOTE) in_quote--;
      continue;
    }
    if (event != CMARK_EVENT_ENTER) continue;
    switch (type) {
      case CMARK_NODE_ITEM:
        in_item++;
        continue;
      case CMARK_NODE_BLOCK_QUOTE:
        in_quote++;
        continue;
      case CMARK_NODE_HEADING:
        builder.heading(cmark_node_get_heading_level(node), inline_text(node));
        cmark_iter_reset(it.get(), node, CMARK_EVENT_EXIT);
        continue;
      case CMARK_NODE_PARAGRAPH: {
        const std::string content = inline_text(node);
        if (in_item > 0) {
          builder.add(BlockKind::kListItem, "- " + content);
        } else {
          builder.add(in_quote > 0 ? BlockKind::kQuote : BlockKind::kParagraph, content);
        }
        cmark_iter_reset(it.get(), node, CMARK_EVENT_EXIT);
        continue;
      }
      case CMARK_NODE_CODE_BLOCK:
        if (const char* literal = cmark_node_get_literal(node))
          builder.add(BlockKind::kCode, literal);
        continue;
      case CMARK_NODE_HTML_BLOCK:
        if (const char* literal = cmark_node_get_literal(node)) {
          builder.add(BlockKind::kParagraph, fold_whitespace(literal));
        }
        continue;
      default:
        break;
    }
    if (is_type(node, "table_row") || is_type(node, "table_header")) {
      std::string row;
      for (cmark_node* cell = cmark_node_first_child(node); cell != nullptr;
           cell = cmark_node_next(cell)) {
        if (!row.empty()) row += " | ";
        row += fold_whitespace(inline_text(cell));
      }
      builder.add(BlockKind::kTableRow, row);
      cmark_iter_reset(it.get(), node, CMARK_EVENT_EXIT);
    }
  }
  return std::move(builder).finish();
}

}  // namespace parley::knowledge
