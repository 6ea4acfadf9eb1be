// Fuzz target: the extractive summary (summary/extractive.hpp) over untrusted conversation
// text. The input is split at NUL bytes: the first part is the previous summary, the others
// alternate user and assistant messages; the first byte (mod 64, times 8) is the budget. The
// summary must be valid UTF-8 and within its budget.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "knowledge/extract/text_utils.hpp"
#include "summary/extractive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int64_t budget = static_cast<int64_t>(data[0] % 64) * 8;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= input.size()) {
    size_t end = input.find('\0', start);
    if (end == std::string_view::npos) end = input.size();
    parts.push_back(input.substr(start, end - start));
    start = end + 1;
  }
  std::vector<parley::summary::SaidMessage> messages;
  for (size_t i = 1; i < parts.size(); ++i) {
    messages.push_back({i % 2 == 1 ? "user" : "assistant", std::string(parts[i])});
  }
  const std::string summary = parley::summary::extractive_summary(parts.front(), messages, budget);
  if (!parley::knowledge::valid_utf8(summary)) __builtin_trap();
  if (parley::summary::estimated_tokens(summary) > budget) __builtin_trap();
  return 0;
}
