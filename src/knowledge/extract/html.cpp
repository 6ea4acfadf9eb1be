// HTML through gumbo (Google's HTML5 parser: the browsers' parsing algorithm, so broken markup
// reads as a browser would show it). Headings give sections; paragraphs, list items, table
// rows, quotes and <pre> blocks become blocks of their own kind; scripts, styles, navigation
// and other chrome are left out; the <title> is the document's title. The tree is walked with
// an explicit stack, never recursively. A file with more elements than a real page has is
// refused before parsing, since gumbo's tree costs about a hundred bytes an element.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <memory>
#include <vector>

#include <gumbo.h>

#include "knowledge/extract/builder.hpp"
#include "knowledge/extract/extractors.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::knowledge {

namespace {

constexpr size_t kMaxElements = 500'000;
// Real pages nest a few dozen elements deep; the HTML5 algorithm scans the stack of open
// elements at many steps, so deep nesting costs quadratic time (200,000 nested <div>s: two
// minutes of CPU).
constexpr int kMaxNesting = 2048;
constexpr int kMaxParseErrors = 100;  // gumbo keeps every parse error in memory otherwise

size_t count_tags(std::string_view text) {
  size_t tags = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '<') continue;
    const char c = text[i + 1];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) ++tags;
  }
  return tags;
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Elements that never nest (void) or that the parser closes by itself when the next one
// opens (<p>, <li>, table parts...): a document without their end tags is not deep.
bool never_nests(std::string_view name) {
  static constexpr std::array<std::string_view, 31> kNames = {
      "area",     "base", "br",     "col",      "embed",   "hr",    "img",   "input",
      "link",     "meta", "source", "track",    "wbr",     "p",     "li",    "dt",
      "dd",       "tr",   "td",     "th",       "thead",   "tbody", "tfoot", "option",
      "optgroup", "rt",   "rp",     "colgroup", "caption", "param", "keygen"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

// The deepest nesting of elements, estimated from start and end tags without parsing: enough
// to refuse a file built to be deep before gumbo spends minutes on it.
int estimate_nesting(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  std::string name;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '<' || i + 1 >= text.size()) continue;
    const bool closing = text[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    if (j >= text.size() || !is_letter(text[j])) continue;
    name.clear();
    while (j < text.size() && (is_letter(text[j]) || (text[j] >= '0' && text[j] <= '9'))) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(text[j])));
      ++j;
    }
    if (never_nests(name)) continue;
    if (closing) {
      depth = std::max(0, depth - 1);
      continue;
    }
    const size_t end = text.find('>', j);
    if (end != std::string_view::npos && end > j && text[end - 1] == '/') continue;  // <x/>
    if (name == "script" || name == "style") {
      const size_t close = text.find(name == "script" ? "</script" : "</style", j);
      if (close == std::string_view::npos) break;
      i = close;
      continue;
    }
    deepest = std::max(deepest, ++depth);
  }
  return deepest;
}

bool skipped(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_MATH:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_BUTTON:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_TEXTAREA:
      return true;
    default:
      return false;
  }
}

int heading_level(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_H1:
      return 1;
    case GUMBO_TAG_H2:
      return 2;
    case GUMBO_TAG_H3:
      return 3;
    case GUMBO_TAG_H4:
      return 4;
    case GUMBO_TAG_H5:
      return 5;
    case GUMBO_TAG_H6:
      return 6;
    default:
      return 0;
  }
}

// Elements that end the text before them and after them.
bool is_block(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TBODY:
    case GUMBO_TAG_TFOOT:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_BODY:
    case GUMBO_TAG_HTML:
      return true;
    default:
      return false;
  }
}

struct GumboDeleter {
  void operator()(GumboOutput* output) const {
    gumbo_destroy_output(&kGumboDefaultOptions, output);
  }
};

std::string node_text(const GumboNode* root) {
  std::string out;
  std::vector<const GumboNode*> stack{root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_WHITESPACE ||
        node->type == GUMBO_NODE_CDATA) {
      out += node->v.text.text;
    } else if (node->type == GUMBO_NODE_ELEMENT) {
      const GumboVector& children = node->v.element.children;
      for (unsigned i = children.length; i > 0; --i) {
        stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
      }
    }
  }
  return out;
}

class HtmlWalker {
 public:
  explicit HtmlWalker(DocumentBuilder& builder) : builder_(builder) {}

  void walk(const GumboNode* root) {
    struct Frame {
      const GumboNode* node;
      unsigned next = 0;
    };
    std::vector<Frame> stack{{root}};
    enter(root);
    while (!stack.empty() && !builder_.failed()) {
      Frame& frame = stack.back();
      const GumboNode* node = frame.node;
      if (node->type != GUMBO_NODE_ELEMENT || frame.next >= node->v.element.children.length) {
        leave(node);
        stack.pop_back();
        continue;
      }
      const auto* child =
          static_cast<const GumboNode*>(node->v.element.children.data[frame.next++]);
      if (enter(child)) stack.push_back({child});
    }
    flush();
  }

 private:
  // Returns whether to descend into the node.
  bool enter(const GumboNode* node) {
    switch (node->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_CDATA:
        text_ += node->v.text.text;
        return false;
      case GUMBO_NODE_WHITESPACE:
        text_ += pre_ > 0 ? node->v.text.text : " ";
        return false;
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_TEMPLATE:
        break;
      default:
        return false;
    }
    const GumboTag tag = node->v.element.tag;
    if (skipped(tag)) return false;
    if (tag == GUMBO_TAG_BR) {
      text_ += '\n';
      return false;
    }
    if (const int level = heading_level(tag); level > 0) {
      flush();
      heading_level_ = level;
      return true;
    }
    if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH) {
      if (!trim(text_).empty()) text_ += " | ";
      return true;
    }
    if (is_block(tag)) {
      flush();
      if (tag == GUMBO_TAG_LI) kinds_.push_back(BlockKind::kListItem);
      if (tag == GUMBO_TAG_TR) kinds_.push_back(BlockKind::kTableRow);
      if (tag == GUMBO_TAG_BLOCKQUOTE) kinds_.push_back(BlockKind::kQuote);
      if (tag == GUMBO_TAG_PRE) {
        kinds_.push_back(BlockKind::kCode);
        pre_++;
      }
    }
    return true;
  }

  void leave(const GumboNode* node) {
    if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE) return;
    const GumboTag tag = node->v.element.tag;
    if (heading_level(tag) > 0 && heading_level_ > 0) {
      builder_.heading(heading_level_, text_);
      text_.clear();
      heading_level_ = 0;
      return;
    }
    if (!is_block(tag)) return;
    flush();
    if (tag == GUMBO_TAG_LI || tag == GUMBO_TAG_TR || tag == GUMBO_TAG_BLOCKQUOTE ||
        tag == GUMBO_TAG_PRE) {
      if (!kinds_.empty()) kinds_.pop_back();
    }
    if (tag == GUMBO_TAG_PRE) pre_--;
  }

  void flush() {
    if (heading_level_ > 0) return;  // a block inside a heading: the heading takes its text
    const BlockKind kind = kinds_.empty() ? BlockKind::kParagraph : kinds_.back();
    if (kind == BlockKind::kCode) {
      builder_.add(kind, text_);
    } else {
      const std::string folded = fold_whitespace(text_);
      if (!folded.empty())
        builder_.add(kind, kind == BlockKind::kListItem ? "- " + folded : folded);
    }
    text_.clear();
  }

  DocumentBuilder& builder_;
  std::string text_;
  std::vector<BlockKind> kinds_;
  int heading_level_ = 0;
  int pre_ = 0;
};

}  // namespace

Result<Extracted> extract_html(std::string_view text, const ExtractLimits& limits) {
  if (const size_t tags = count_tags(text); tags > kMaxElements) {
    return Error{ErrorCode::kTooLarge,
                 "the HTML has " + std::to_string(tags) + " tags; at most " +
                     std::to_string(kMaxElements) + " are read",
                 "document_too_large",
                 {},
                 {}};
  }
  if (estimate_nesting(text) > kMaxNesting) {
    return Error::invalid(
        "the HTML nests elements more than " + std::to_string(kMaxNesting) + " deep",
        "document_too_deep");
  }
  GumboOptions options = kGumboDefaultOptions;
  options.max_errors = kMaxParseErrors;
  std::unique_ptr<GumboOutput, GumboDeleter> output(
      gumbo_parse_with_options(&options, text.data(), text.size()));
  if (!output) return Error::invalid("the HTML could not be parsed", "invalid_document");

  DocumentBuilder builder(Format::kHtml, limits);
  // The title, from <head>.
  std::vector<const GumboNode*> stack{output->root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (node->type != GUMBO_NODE_ELEMENT) continue;
    if (node->v.element.tag == GUMBO_TAG_TITLE) {
      builder.set_title(node_text(node));
      break;
    }
    if (node->v.element.tag == GUMBO_TAG_BODY) continue;
    const GumboVector& children = node->v.element.children;
    for (unsigned i = children.length; i > 0; --i) {
      stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
    }
  }
  HtmlWalker(builder).walk(output->root);
  return std::move(builder).finish();
}

}  // namespace parley::knowledge
