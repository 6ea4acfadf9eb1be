// Error envelope construction and the ErrorCode -> HTTP status mapping.
#include "http/errors.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace parley::http {

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kUnprocessable:
      return 422;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMedia:
      return 415;
    case ErrorCode::kTooManyRequests:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kBadGateway:
      return 502;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kCancelled:
      // Nginx's "client closed request": only ever logged, the client is not there to read it.
      return 499;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view type_for_status(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 413:
    case 431:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

namespace {

Response envelope(int status, std::string_view code, std::string_view message,
                  std::string_view request_id, std::string_view param) {
  nlohmann::json error = {
      {"type", type_for_status(status)},
      {"message", message},
      {"code", code},
      {"request_id", request_id},
  };
  if (!param.empty()) error["param"] = param;
  return Response::json(status, {{"error", std::move(error)}});
}

}  // namespace

Response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view request_id) {
  return envelope(status, code, message, request_id, {});
}

Response error_response(const Error& error, std::string_view request_id) {
  std::string_view message = error.message;
  if (error.code == ErrorCode::kInternal) {
    message = "internal error; the request id is in the server log";
  }
  std::string_view code =
      error.reason.empty() ? std::string_view("error") : std::string_view(error.reason);
  Response res = envelope(status_for(error.code), code, message, request_id, error.param);
  if (error.retry_after_ms) {
    // Whole seconds, rounded up: Retry-After has no finer unit.
    const int64_t seconds = std::max<int64_t>(1, (*error.retry_after_ms + 999) / 1000);
    res.header("Retry-After", std::to_string(seconds));
  }
  return res;
}

}  // namespace parley::http
