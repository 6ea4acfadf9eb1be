// multipart/form-data request bodies (RFC 7578): file uploads. The parts are views into the
// body, so a large upload is never copied; each part's name, filename and content type come
// from its own headers. Bounded: at most 64 parts, 8 KiB of headers per part. Malformed input
// is an Error (kInvalidArgument, reason "malformed_multipart") saying what is wrong, never an
// exception. Pure; fuzzed (fuzz/fuzz_multipart.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace parley::http {

struct FormPart {
  std::string name;                     // the form field
  std::optional<std::string> filename;  // present for a file
  std::string content_type;             // as sent; "" when absent
  std::string_view data;                // into the body
};

// Whether the Content-Type is multipart/form-data (any parameters).
bool is_multipart_form(std::string_view content_type);

// `content_type` is the request's Content-Type header (it carries the boundary).
Result<std::vector<FormPart>> parse_multipart(std::string_view content_type, std::string_view body);

// The first part named `name`, or null.
const FormPart* find_part(const std::vector<FormPart>& parts, std::string_view name);

}  // namespace parley::http
