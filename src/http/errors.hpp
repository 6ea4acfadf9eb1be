// The one JSON error envelope, used for every error from every route:
//   {"error":{"type":"invalid_request_error","message":"...","code":"malformed_json",
//             "param":"title","request_id":"..."}}
// `type` follows the families OpenAI and Anthropic clients already understand; `code` is the
// specific, stable reason a program can branch on.
#pragma once

#include <string_view>

#include "core/error.hpp"
#include "http/message.hpp"

namespace parley::http {

int status_for(ErrorCode code);
std::string_view type_for_status(int status);

// An envelope response for an Error. kInternal messages are replaced by a generic text (the
// details belong in the log, not in the client's hands).
Response error_response(const Error& error, std::string_view request_id);

// An envelope for a protocol-level failure with an explicit status and code.
Response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view request_id);

}  // namespace parley::http
