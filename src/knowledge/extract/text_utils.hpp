// Small text helpers the extractors share: UTF-8 validation and repair, whitespace folding.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace parley::knowledge {

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing past
// U+10FFFF).
bool valid_utf8(std::string_view text);

// `text` as UTF-8: kept as is when it already is; otherwise each byte of a malformed sequence
// becomes U+FFFD.
std::string repair_utf8(std::string_view text);

// Bytes in ISO-8859-1 / Windows-1252 as UTF-8 (the usual encoding of a text file that is not
// UTF-8).
std::string windows1252_to_utf8(std::string_view text);

// Runs of whitespace (including line breaks) become one space; the ends are trimmed.
std::string fold_whitespace(std::string_view text);

// Blank lines and trailing spaces at the ends are removed; inner lines are kept as they are.
std::string_view trim_blank_lines(std::string_view text);

std::string_view trim(std::string_view text);

// The runs of lines between blank lines (lines of only whitespace count as blank).
std::vector<std::string_view> split_paragraphs(std::string_view text);

}  // namespace parley::knowledge
