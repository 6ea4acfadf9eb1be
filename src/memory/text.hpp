// The text of a memory as the store compares it: "the same fact said ten times is one memory"
// needs a notion of "the same" that ignores case, spacing and closing punctuation.
#pragma once

#include <string>
#include <string_view>

namespace parley::memory {

// Lower-cased (ASCII), runs of whitespace as one space, trimmed, without trailing . ! or ;.
std::string normalized(std::string_view text);

// The store's hash of a memory's text (store::NewMemory::hash): SHA-256 of normalized(text),
// in hex.
std::string text_hash(std::string_view text);

}  // namespace parley::memory
