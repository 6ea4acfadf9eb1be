// The token count that chunk sizes are measured in. Parley has no model's tokenizer built in
// (each model has its own), so this is an estimate shaped like a BPE tokenizer's counts:
// a word is one token plus one per further eight characters, each punctuation mark is one,
// whitespace (ASCII) is free, and each CJK character is one. On English prose and code it comes
// within about 15% of OpenAI's cl100k counts, erring high on long identifiers; it is cheap (one
// pass, no allocation), so sizes can be checked at every boundary.
#pragma once

#include <cstdint>
#include <string_view>

namespace parley::knowledge {

int64_t count_tokens(std::string_view text);

}  // namespace parley::knowledge
