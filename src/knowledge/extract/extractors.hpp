// One extractor per format, each through a library made for that format (extract.hpp
// chooses). Every one takes the whole file and returns the document or a clear error; none
// trusts its input: sizes, nesting and counts are bounded by ExtractLimits, and no traversal
// of a parsed tree recurses (a nested file cannot exhaust the stack).
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "knowledge/extract/document.hpp"

namespace parley::knowledge {

// UTF-8 text in, for every text format.
Result<Extracted> extract_plain_text(std::string_view text, const ExtractLimits& limits);
Result<Extracted> extract_source_code(std::string_view text, const std::string& language,
                                      const ExtractLimits& limits);
Result<Extracted> extract_markdown(std::string_view text,
                                   const ExtractLimits& limits);                     // cmark-gfm
Result<Extracted> extract_html(std::string_view text, const ExtractLimits& limits);  // gumbo
Result<Extracted> extract_json(std::string_view text, const ExtractLimits& limits);  // nlohmann SAX
Result<Extracted> extract_yaml(std::string_view text,
                               const ExtractLimits& limits);  // yaml-cpp events

// Raw bytes (poppler).
Result<Extracted> extract_pdf(std::string_view bytes, const ExtractLimits& limits);

}  // namespace parley::knowledge
