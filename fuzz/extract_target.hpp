// The body shared by the document-extractor fuzz targets: extract the input as a file of the
// given name, then check what every extractor promises — blocks inside the text, the text
// valid UTF-8, an error always with a reason and a message — and chunk the result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "knowledge/chunk/chunker.hpp"
#include "knowledge/extract/extract.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::fuzzing {

inline void extract_and_check(const uint8_t* data, size_t size, std::string_view name) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  knowledge::ExtractLimits limits;
  limits.max_text_bytes = 1 << 20;  // small limits, so the fuzzer reaches them
  limits.max_pages = 50;
  auto doc = knowledge::extract(bytes, name, limits);
  if (!doc) {
    if (doc.error().reason.empty() || doc.error().message.empty()) __builtin_trap();
    return;
  }
  if (!knowledge::valid_utf8(doc->text)) __builtin_trap();
  for (const auto& block : doc->blocks) {
    if (block.offset + block.length > doc->text.size()) __builtin_trap();
  }
  knowledge::ChunkOptions options;
  options.max_tokens = 64;
  options.overlap_tokens = 16;
  for (const auto& chunk : knowledge::chunk_document(*doc, options)) {
    if (chunk.start > chunk.end || chunk.end > doc->text.size()) __builtin_trap();
    if (chunk.tokens > options.max_tokens) __builtin_trap();
  }
}

}  // namespace parley::fuzzing
