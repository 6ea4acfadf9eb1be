// Fuzz target: Mem0's search filters (memory/mem0_filter.hpp) from untrusted JSON. The input's
// first line is the filter; the rest, when it is a JSON object, the memory's fields it is
// matched against. A filter either parses or is refused naming `filters`; one that parses
// matches any object without crashing, and the filter that lets everything through matches.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "memory/mem0_filter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view filter_text = input.substr(0, newline);
  const std::string_view fields_text =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  const auto filters = nlohmann::json::parse(filter_text, nullptr, false);
  if (filters.is_discarded()) return 0;
  auto fields = nlohmann::json::parse(fields_text, nullptr, false);
  if (fields.is_discarded() || !fields.is_object()) fields = nlohmann::json::object();
  auto filter = parley::memory::Mem0Filter::parse(filters);
  if (!filter.ok()) {
    if (filter.error().param != "filters" || filter.error().message.empty()) __builtin_trap();
    return 0;
  }
  (void)filter->matches(fields);
  (void)filter->matches(nlohmann::json::object());
  std::string value;
  (void)filter->equality("user_id", &value);
  if (!parley::memory::Mem0Filter().matches(fields)) __builtin_trap();
  return 0;
}
