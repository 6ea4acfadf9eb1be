// Fuzz target: the request-body path a JSON route runs: content-type check, parse with the
// depth limit, object check, and the error envelope built from whatever failed.
#include <cstdint>
#include <string>

#include "http/errors.hpp"
#include "http/json_body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parley::http::Request request;
  request.body.assign(reinterpret_cast<const char*>(data), size);
  request.headers.emplace_back("Content-Type", "application/json");
  auto parsed = parley::http::parse_json_object_body(request);
  if (!parsed) {
    auto response = parley::http::error_response(parsed.error(), "fuzz");
    if (response.status != 400) __builtin_trap();
  } else {
    // Whatever parsed must serialize back (invalid UTF-8 is replaced, never thrown).
    (void)parsed->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
