// Fuzz target: what the knowledge indexes read back and show. The chunk record decoder over any
// bytes (a record that decodes must survive encoding again unchanged), and the highlighter over
// any text with query terms taken from the input itself.
#include <cstdint>
#include <string>
#include <string_view>

#include "knowledge/index/chunk_record.hpp"
#include "knowledge/index/highlight.hpp"

namespace {

using parley::knowledge::ChunkRecord;

bool same(const ChunkRecord& a, const ChunkRecord& b) {
  return a.document_id == b.document_id && a.section == b.section && a.ordinal == b.ordinal &&
         a.page == b.page && a.page_end == b.page_end && a.start_offset == b.start_offset &&
         a.end_offset == b.end_offset && a.text == b.text;
}

std::string lower(const std::string& word) {
  std::string s = word;
  for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (s.size() > 4 && s.back() == 's') s.pop_back();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (const auto record = parley::knowledge::decode_chunk_record(input)) {
    const auto again =
        parley::knowledge::decode_chunk_record(parley::knowledge::encode_chunk_record(*record));
    if (!again || !same(*record, *again)) __builtin_trap();
  }
  // The first line holds the query's terms; the rest is the text; the length comes from the
  // input's size so that short and long windows are both tried.
  const size_t newline = input.find('\n');
  const std::string_view query = input.substr(0, newline == std::string_view::npos ? 0 : newline);
  const std::string_view text =
      newline == std::string_view::npos ? input : input.substr(newline + 1);
  std::vector<parley::knowledge::HighlightTerm> terms;
  size_t at = 0;
  while (at < query.size()) {
    const size_t space = query.find(' ', at);
    const size_t end = space == std::string_view::npos ? query.size() : space;
    if (end > at) terms.push_back({lower(std::string(query.substr(at, end - at))), 1.0});
    at = end + 1;
  }
  const parley::knowledge::Highlighter highlight(std::move(terms), lower, [](unsigned c) {
    return c >= 0xC0 && !(c >= 0x2000 && c <= 0x206F);
  });
  const std::string out = highlight(text, 1 + size % 400);
  // Never longer than the text with its marks and ellipses.
  if (out.size() > text.size() * 5 + 16) __builtin_trap();
  return 0;
}
