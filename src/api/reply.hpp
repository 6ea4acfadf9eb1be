// The two ways a JSON handler answers: an object with a status, or the error envelope.
#pragma once

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "http/errors.hpp"
#include "http/message.hpp"

namespace parley::api {

// Invalid UTF-8 in a value (a file name, a stored attribute) is replaced, never thrown.
inline http::Response json_response(int status, const nlohmann::json& body) {
  http::Response res;
  res.status = status;
  res.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return res;
}

inline http::Response fail(const Error& e, const http::Request& req) {
  return http::error_response(e, req.request_id);
}

}  // namespace parley::api
