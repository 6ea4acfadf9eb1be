// Markdown to Telegram HTML, in pieces (see format.hpp).
//
// Inline formatting is matched within one line only, so each rendered line is balanced on its
// own and a message may be cut between any two lines. A line too long for one message is cut
// between words as plain escaped text; a code block is cut between its lines, each piece
// wrapped again.
#include "channels/telegram/format.hpp"

#include <algorithm>
#include <cctype>

namespace parley::channels::telegram {
namespace {

// UTF-16 code units of a UTF-8 string (what Telegram counts): 2 for a 4-byte sequence, 1 for
// any other lead byte, 0 for continuation bytes.
size_t utf16_length(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) == 0x80) continue;
    n += c >= 0xF0 ? 2 : 1;
  }
  return n;
}

// The longest prefix of `text` within `limit` UTF-16 units, ending on a character boundary:
// a lead byte with the continuation bytes that follow it (so that it counts as utf16_length
// counts it, even in text that is not valid UTF-8).
size_t prefix_within(std::string_view text, size_t limit) {
  size_t units = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t cost = (c & 0xC0) == 0x80 ? 0 : (c >= 0xF0 ? 2 : 1);
    if (units + cost > limit) break;
    units += cost;
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80;
}

// One line's inline Markdown: `code`, **bold**, __bold__, *italic*, _italic_, ~~strike~~ and
// [text](http(s)://...) links; everything else escaped. Unmatched delimiters stay as text.
std::string render_inline(std::string_view line) {
  // A closing delimiter is looked for this far ahead at most, so that a long line of
  // unmatched openers costs linear time, not quadratic.
  constexpr size_t kLookahead = 512;
  std::string out;
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    const std::string_view scope = line.substr(0, std::min(line.size(), i + kLookahead));
    if (c == '`') {
      const size_t end = scope.find('`', i + 1);
      if (end != std::string_view::npos && end > i + 1) {
        out += "<code>" + escape_html(line.substr(i + 1, end - i - 1)) + "</code>";
        i = end + 1;
        continue;
      }
    }
    if (c == '[') {
      const size_t close = scope.find("](", i + 1);
      if (close != std::string_view::npos) {
        const size_t end = scope.find(')', close + 2);
        const std::string_view url = end == std::string_view::npos
                                         ? std::string_view()
                                         : line.substr(close + 2, end - close - 2);
        if (!url.empty() && (url.starts_with("http://") || url.starts_with("https://")) &&
            url.find_first_of(" \"<>") == std::string_view::npos) {
          out += "<a href=\"" + escape_html(url) + "\">" +
                 escape_html(line.substr(i + 1, close - i - 1)) + "</a>";
          i = end + 1;
          continue;
        }
      }
    }
    // Paired delimiters: the text between must be non-empty, must not start or end with a
    // space, and single * or _ must not sit inside a word (snake_case stays as written).
    struct Pair {
      std::string_view mark;
      const char* tag;
    };
    static constexpr Pair kPairs[] = {
        {"**", "b"}, {"__", "b"}, {"~~", "s"}, {"*", "i"}, {"_", "i"}};
    bool matched = false;
    for (const auto& p : kPairs) {
      if (line.substr(i, p.mark.size()) != p.mark) continue;
      const size_t start = i + p.mark.size();
      if (start >= line.size() || line[start] == ' ') continue;
      if (p.mark.size() == 1 && i > 0 && is_word_char(line[i - 1])) continue;
      size_t end = scope.find(p.mark, start);
      while (end != std::string_view::npos && p.mark.size() == 1 && end + 1 < line.size() &&
             (line[end + 1] == p.mark[0] || is_word_char(line[end + 1]))) {
        end = scope.find(p.mark, end + 1);
      }
      if (end == std::string_view::npos || end == start || line[end - 1] == ' ') continue;
      out += std::string("<") + p.tag + ">" + escape_html(line.substr(start, end - start)) + "</" +
             p.tag + ">";
      i = end + p.mark.size();
      matched = true;
      break;
    }
    if (matched) continue;
    out += escape_html(line.substr(i, 1));
    ++i;
  }
  return out;
}

// A line of text as it shows: headings bold, list bullets as "•", quotes kept as "> ".
std::string render_line(std::string_view line) {
  size_t hashes = 0;
  while (hashes < line.size() && hashes < 6 && line[hashes] == '#') ++hashes;
  if (hashes > 0 && hashes < line.size() && line[hashes] == ' ') {
    return "<b>" + render_inline(line.substr(hashes + 1)) + "</b>";
  }
  size_t indent = 0;
  while (indent < line.size() && line[indent] == ' ') ++indent;
  const std::string_view rest = line.substr(indent);
  if (rest.size() >= 2 && (rest[0] == '-' || rest[0] == '*' || rest[0] == '+') && rest[1] == ' ') {
    return std::string(indent, ' ') + "• " + render_inline(rest.substr(2));
  }
  return render_inline(line);
}

struct Block {
  bool code = false;
  std::string language;  // of a code block, when it names one
  std::vector<std::string_view> lines;
};

std::vector<Block> blocks_of(std::string_view text) {
  std::vector<Block> blocks;
  Block current;
  bool in_code = false;
  std::string_view fence;
  auto flush = [&] {
    if (!current.lines.empty() || current.code) blocks.push_back(std::move(current));
    current = Block{};
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    size_t indent = 0;
    while (indent < line.size() && indent < 3 && line[indent] == ' ') ++indent;
    const std::string_view trimmed = line.substr(indent);
    const bool is_fence = trimmed.starts_with("```") || trimmed.starts_with("~~~");
    if (in_code) {
      if (is_fence && trimmed.substr(0, 3) == fence) {
        in_code = false;
        flush();
      } else {
        current.lines.push_back(line);
      }
    } else if (is_fence) {
      flush();
      in_code = true;
      fence = trimmed.substr(0, 3);
      current.code = true;
      std::string_view info = trimmed.substr(3);
      size_t n = 0;
      while (n < info.size() && (std::isalnum(static_cast<unsigned char>(info[n])) ||
                                 info[n] == '+' || info[n] == '#' || info[n] == '-')) {
        ++n;
      }
      current.language = std::string(info.substr(0, n));
    } else if (line.find_first_not_of(" \t") == std::string_view::npos) {
      flush();
    } else {
      current.lines.push_back(line);
    }
    if (end == text.size()) break;
  }
  flush();  // an unclosed code block ends with the text
  return blocks;
}

// Packs rendered units (each balanced, each within the limit) into messages.
class Packer {
 public:
  explicit Packer(size_t limit) : limit_(limit) {}

  // `separator` joins it to what came before in the same message.
  void add(const std::string& html, size_t shown, std::string_view separator) {
    const size_t sep = current_.empty() ? 0 : utf16_length(separator);
    if (!current_.empty() && shown_ + sep + shown > limit_) finish();
    if (!current_.empty()) {
      current_ += separator;
      shown_ += utf16_length(separator);
    }
    current_ += html;
    shown_ += shown;
  }
  void finish() {
    if (!current_.empty()) pieces_.push_back(std::move(current_));
    current_.clear();
    shown_ = 0;
  }
  std::vector<std::string> take() {
    finish();
    return std::move(pieces_);
  }

 private:
  size_t limit_;
  std::string current_;
  size_t shown_ = 0;
  std::vector<std::string> pieces_;
};

// A text too long for one message, cut between words (or anywhere, for a run without spaces).
std::vector<std::string_view> cut_words(std::string_view text, size_t limit) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    if (utf16_length(text) <= limit) {
      out.push_back(text);
      break;
    }
    size_t cut = prefix_within(text, limit);
    const size_t space = text.substr(0, cut).rfind(' ');
    if (space != std::string_view::npos && space > 0) cut = space;
    if (cut == 0) cut = std::min(text.size(), size_t{1});
    out.push_back(text.substr(0, cut));
    text.remove_prefix(cut);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  }
  return out;
}

}  // namespace

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

size_t shown_length(std::string_view html) {
  size_t n = 0;
  size_t i = 0;
  while (i < html.size()) {
    if (html[i] == '<') {
      const size_t end = html.find('>', i);
      if (end == std::string_view::npos) break;
      i = end + 1;
      continue;
    }
    if (html[i] == '&') {
      const size_t end = html.find(';', i);
      if (end != std::string_view::npos && end - i <= 8) {
        ++n;
        i = end + 1;
        continue;
      }
    }
    const size_t next = html.find_first_of("<&", i + 1);
    const size_t stop = next == std::string_view::npos ? html.size() : next;
    n += utf16_length(html.substr(i, stop - i));
    i = stop;
  }
  return n;
}

std::vector<std::string> format_reply(std::string_view markdown, size_t limit) {
  limit = std::max<size_t>(limit, 16);
  Packer packer(limit);
  for (const Block& block : blocks_of(markdown)) {
    if (block.code) {
      const std::string open = block.language.empty() ? std::string("<pre><code>")
                                                      : "<pre><code class=\"language-" +
                                                            escape_html(block.language) + "\">";
      const std::string close = "</code></pre>";
      // Lines gathered while they fit; a piece is one <pre> of its own.
      std::string body;
      size_t shown = 0;
      bool first_unit = true;
      auto emit = [&] {
        std::string piece = open;
        piece += body;
        piece += close;
        packer.add(piece, shown, first_unit ? "\n\n" : "\n");
        first_unit = false;
        body.clear();
        shown = 0;
      };
      for (std::string_view line : block.lines) {
        for (std::string_view part :
             cut_words(line.empty() ? std::string_view(" ") : line, limit)) {
          const size_t cost = utf16_length(part) + (body.empty() ? 0 : 1);
          if (!body.empty() && shown + cost > limit) emit();
          if (!body.empty()) {
            body += '\n';
            ++shown;
          }
          body += escape_html(part);
          shown += utf16_length(part);
        }
      }
      if (!body.empty() || first_unit) emit();
      continue;
    }
    bool first_line = true;
    for (std::string_view line : block.lines) {
      const std::string_view separator = first_line ? "\n\n" : "\n";
      first_line = false;
      std::string html = render_line(line);
      const size_t shown = shown_length(html);
      if (shown <= limit) {
        packer.add(html, shown, separator);
        continue;
      }
      bool first_part = true;
      for (std::string_view part : cut_words(line, limit)) {
        packer.add(escape_html(part), utf16_length(part), first_part ? separator : " ");
        first_part = false;
      }
    }
  }
  auto pieces = packer.take();
  // Telegram refuses a message that shows nothing (an empty code block, blank lines).
  pieces.erase(std::remove_if(pieces.begin(), pieces.end(),
                              [](const std::string& p) {
                                bool in_tag = false;
                                for (char c : p) {
                                  if (c == '<') in_tag = true;
                                  if (!in_tag && !std::isspace(static_cast<unsigned char>(c)))
                                    return false;
                                  if (c == '>') in_tag = false;
                                }
                                return true;
                              }),
               pieces.end());
  return pieces;
}

}  // namespace parley::channels::telegram
