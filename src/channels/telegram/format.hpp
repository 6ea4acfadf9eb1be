// A model's Markdown as Telegram messages: HTML in the small subset the Bot API accepts
// (<b>, <i>, <s>, <code>, <pre>, <a href>, <blockquote>), every other character escaped, so a
// reply never makes sendMessage fail with "can't parse entities", in pieces within Telegram's
// limit, cut between paragraphs, then lines, then words, with every piece's tags balanced.
// Pure functions, fuzzed (fuzz/fuzz_telegram.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace parley::channels::telegram {

// Telegram's limit on a message's text, in UTF-16 code units after entities are parsed; the
// pieces are measured in the characters they show, which is never more.
inline constexpr size_t kMessageLimit = 4096;

// &, < and > as entities (all HTML mode requires).
std::string escape_html(std::string_view text);

// The whole reply as pieces of Telegram HTML, each showing at most `limit` characters
// (code points), none empty. Code blocks stay code in every piece they are cut into.
std::vector<std::string> format_reply(std::string_view markdown, size_t limit = kMessageLimit);

// How many characters a piece of Telegram HTML shows (tags not counted, entities as one).
size_t shown_length(std::string_view html);

}  // namespace parley::channels::telegram
