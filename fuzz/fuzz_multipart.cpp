// Fuzz target: multipart/form-data parsing. The first line of the input is the Content-Type
// header, the rest the body; every part found must lie inside the body.
#include <cstdint>
#include <string_view>

#include "http/multipart.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t eol = input.find('\n');
  const std::string_view content_type = input.substr(0, eol);
  const std::string_view body =
      eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
  auto parts = parley::http::parse_multipart(content_type, body);
  if (!parts) {
    if (parts.error().reason != "malformed_multipart") __builtin_trap();
    return 0;
  }
  for (const auto& part : *parts) {
    if (part.data.data() < body.data() ||
        part.data.data() + part.data.size() > body.data() + body.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
