// What the lexical index keeps with each chunk for search results: its citation (document,
// section, ordinal, pages, character offsets) and its text, in a compact binary record.
//
// A search reads ten to fifty of these; as JSON, parsing them was a sixth of a search's time.
// Records written as JSON by earlier versions are still read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::knowledge {

struct ChunkRecord {
  std::string document_id;
  std::string section;
  int64_t ordinal = 0;
  int64_t page = 0;
  int64_t page_end = 0;
  int64_t start_offset = 0;
  int64_t end_offset = 0;
  std::string text;
};

std::string encode_chunk_record(const ChunkRecord& record);

// Nothing when the bytes are not a record (cut short, or from an unknown version).
std::optional<ChunkRecord> decode_chunk_record(std::string_view bytes);

}  // namespace parley::knowledge
