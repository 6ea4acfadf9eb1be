// Request bodies in JSON: content-type check (415), size is already bounded by the server,
// parse errors name the byte offset (400 malformed_json), nesting depth is bounded so a
// hostile body cannot exhaust the stack anywhere downstream.
#pragma once

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "http/message.hpp"

namespace parley::http {

inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as JSON. Errors are kInvalidArgument with reason "malformed_json" and a
// message with the byte offset.
Result<nlohmann::json> parse_json(std::string_view text);

// The request's body as a JSON object. An empty body without a content type is `{}`; any
// other body must be labelled application/json (or a +json type).
Result<nlohmann::json> parse_json_object_body(const Request& request);

}  // namespace parley::http
