// English words too common to say what a text is about ("the", "with", "what"...), which
// comparisons of texts by their words leave out: the summary's choice of sentences and the
// share of a message's words a memory holds.
#pragma once

#include <string_view>

namespace parley {

// `word` in lower case.
bool is_common_word(std::string_view word);

}  // namespace parley
