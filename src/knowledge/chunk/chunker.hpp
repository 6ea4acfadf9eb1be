// Cuts an extracted document into chunks, the unit of search and of citation.
//
// Chunks follow the document's structure: a heading starts a new chunk (and stays with the
// text under it), so does a new PDF page, and blocks are packed whole while they fit
// `max_tokens`. A block larger than that is cut at sentence ends (prose) or line ends (code,
// tables), and a sentence or line larger still at word boundaries. When a chunk ends only
// because it is full, the next one repeats its last sentences or blocks, up to
// `overlap_tokens`, so an answer that straddles the cut is whole in one of them.
//
// Every chunk is a range of the document's text, so its offsets are exact citations. Sizes
// are in the token estimate of tokens.hpp. Pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "knowledge/extract/document.hpp"

namespace parley::knowledge {

struct ChunkOptions {
  int64_t max_tokens = 400;
  int64_t overlap_tokens = 60;
};

// Checks ranges: max_tokens 32..8192, overlap 0..max_tokens/2.
Result<void> validate(const ChunkOptions& options);

struct Chunk {
  size_t start = 0;  // into Extracted::text
  size_t end = 0;
  int64_t tokens = 0;
  int page = 0;         // where it starts (PDF); 0 otherwise
  int page_end = 0;     // where it ends
  std::string section;  // the heading path of its first block of text
};

std::vector<Chunk> chunk_document(const Extracted& document, const ChunkOptions& options);

}  // namespace parley::knowledge
