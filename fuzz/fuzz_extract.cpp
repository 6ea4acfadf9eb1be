// Fuzz targets: one per document extractor, each this file built with the name the input is
// uploaded as (PARLEY_FUZZ_FILE_NAME, set in CMakeLists.txt): "doc.md" reaches the Markdown
// extractor, "doc.pdf" poppler's, "upload" type detection from content alone. Each runs the
// chunker on what was extracted.
#include "extract_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parley::fuzzing::extract_and_check(data, size, PARLEY_FUZZ_FILE_NAME);
  return 0;
}
