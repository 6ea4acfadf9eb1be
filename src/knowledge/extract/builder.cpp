// DocumentBuilder (see builder.hpp).
#include "knowledge/extract/builder.hpp"

#include "knowledge/extract/text_utils.hpp"

namespace parley::knowledge {

namespace {
constexpr std::string_view kBlockSeparator = "\n\n";
constexpr size_t kMaxSectionTitle = 200;  // bytes of one heading kept in a section path
}  // namespace

DocumentBuilder::DocumentBuilder(Format format, const ExtractLimits& limits) : limits_(limits) {
  doc_.format = format;
}

void DocumentBuilder::set_title(std::string_view title) {
  doc_.title = fold_whitespace(title);
  title_set_ = !doc_.title.empty();
}

void DocumentBuilder::fail(Error error) {
  if (!error_) error_ = std::move(error);
}

std::string DocumentBuilder::section_path() const {
  std::string path;
  for (const auto& [level, title] : headings_) {
    if (!path.empty()) path += " > ";
    path += title;
  }
  return path;
}

bool DocumentBuilder::heading(int level, std::string_view text) {
  if (error_) return false;
  std::string title = fold_whitespace(text);
  if (title.empty()) return true;
  if (title.size() > kMaxSectionTitle) {
    size_t cut = kMaxSectionTitle;
    while (cut > 0 && (static_cast<unsigned char>(title[cut]) & 0xC0) == 0x80) --cut;
    title.resize(cut);
  }
  if (!title_set_ && level == 1) set_title(title);
  while (!headings_.empty() && headings_.back().first >= level) headings_.pop_back();
  if (static_cast<int>(headings_.size()) >= limits_.max_depth) {
    fail(Error::invalid("the document's headings are nested deeper than " +
                            std::to_string(limits_.max_depth) + " levels",
                        "document_too_deep"));
    return false;
  }
  headings_.emplace_back(level, std::move(title));
  return append(BlockKind::kHeading, headings_.back().second, level);
}

bool DocumentBuilder::add(BlockKind kind, std::string_view text) {
  if (error_) return false;
  const std::string_view body = kind == BlockKind::kCode ? trim_blank_lines(text) : trim(text);
  if (body.empty()) return true;
  return append(kind, body, 0);
}

bool DocumentBuilder::append(BlockKind kind, std::string_view text, int level) {
  const size_t separator = doc_.text.empty() ? 0 : kBlockSeparator.size();
  if (doc_.text.size() + separator + text.size() > limits_.max_text_bytes) {
    fail(Error{ErrorCode::kTooLarge,
               "the document's text is larger than " +
                   std::to_string(limits_.max_text_bytes >> 20) + " MiB once extracted",
               "document_too_large",
               {},
               {}});
    return false;
  }
  if (doc_.blocks.size() >= limits_.max_blocks) {
    fail(Error{ErrorCode::kTooLarge,
               "the document has more than " + std::to_string(limits_.max_blocks) + " blocks",
               "document_too_large",
               {},
               {}});
    return false;
  }
  if (separator != 0) doc_.text += kBlockSeparator;
  Block block;
  block.kind = kind;
  block.offset = doc_.text.size();
  block.length = text.size();
  block.page = page_;
  block.level = level;
  block.section = section_path();
  doc_.text += text;
  doc_.blocks.push_back(std::move(block));
  return true;
}

Result<Extracted> DocumentBuilder::finish() && {
  if (error_) return std::move(*error_);
  return std::move(doc_);
}

std::string_view format_name(Format format) {
  switch (format) {
    case Format::kText:
      return "text";
    case Format::kMarkdown:
      return "markdown";
    case Format::kHtml:
      return "html";
    case Format::kPdf:
      return "pdf";
    case Format::kJson:
      return "json";
    case Format::kYaml:
      return "yaml";
    case Format::kCode:
      return "code";
  }
  return "text";
}

std::string_view block_kind_name(BlockKind kind) {
  switch (kind) {
    case BlockKind::kHeading:
      return "heading";
    case BlockKind::kParagraph:
      return "paragraph";
    case BlockKind::kCode:
      return "code";
    case BlockKind::kListItem:
      return "list_item";
    case BlockKind::kTableRow:
      return "table_row";
    case BlockKind::kQuote:
      return "quote";
  }
  return "paragraph";
}

}  // namespace parley::knowledge
