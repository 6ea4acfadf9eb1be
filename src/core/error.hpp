// Error values shared by every layer. Expected failures travel as `Error` inside a `Result`
// (see result.hpp) and become the HTTP error envelope only at the HTTP edge (http/errors.hpp).
// The code says what kind of failure it is; the message says what happened, for a human, and
// must never carry internals (SQL text, file paths of the server, secrets) for kInternal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace parley {

enum class ErrorCode {
  kInvalidArgument,   // the caller sent something wrong (400)
  kNotFound,          // the thing asked for does not exist, or the caller may not see it (404)
  kConflict,          // the request conflicts with the current state (409)
  kUnprocessable,     // well-formed, but cannot be processed as asked (422)
  kUnauthenticated,   // no or bad credentials (401)
  kPermissionDenied,  // credentials fine, action not allowed (403)
  kTooLarge,          // a size limit was exceeded (413)
  kUnsupportedMedia,  // the body is in a format the route does not take (415)
  kTooManyRequests,   // a limit was reached, here or upstream; retry later (429)
  kUnavailable,       // a dependency is down or we are draining; retry later (503)
  kBadGateway,        // an upstream (model provider) failed or answered nonsense (502)
  kDeadlineExceeded,  // an operation ran out of time (504)
  kCancelled,         // the caller went away or the server is stopping (499, never sent)
  kInternal,          // a bug or an unexpected failure (500)
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // A machine-readable reason ("session_not_found", "malformed_json"); empty means the
  // HTTP edge picks a default for the code.
  std::string reason;
  // The request field the error is about ("metadata.tags[2]"), when there is one.
  std::string param;
  // For kTooManyRequests and kUnavailable: when a retry may succeed, if known (the HTTP edge
  // sends it as Retry-After).
  std::optional<int64_t> retry_after_ms;

  static Error invalid(std::string message, std::string reason = "invalid_request",
                       std::string param = {}) {
    return {
        ErrorCode::kInvalidArgument, std::move(message), std::move(reason), std::move(param), {}};
  }
  static Error invalid_field(std::string param, std::string message) {
    return {ErrorCode::kInvalidArgument, std::move(message), "invalid_field", std::move(param), {}};
  }
  static Error not_found(std::string message, std::string reason = "not_found") {
    return {ErrorCode::kNotFound, std::move(message), std::move(reason), {}, {}};
  }
  static Error conflict(std::string message, std::string reason = "conflict") {
    return {ErrorCode::kConflict, std::move(message), std::move(reason), {}, {}};
  }
  static Error unauthenticated(std::string message, std::string reason = "invalid_api_key") {
    return {ErrorCode::kUnauthenticated, std::move(message), std::move(reason), {}, {}};
  }
  static Error permission_denied(std::string message, std::string reason = "forbidden") {
    return {ErrorCode::kPermissionDenied, std::move(message), std::move(reason), {}, {}};
  }
  static Error too_many_requests(std::string message, std::string reason, int64_t retry_after_ms) {
    return {ErrorCode::kTooManyRequests, std::move(message), std::move(reason), {}, retry_after_ms};
  }
  static Error unavailable(std::string message, std::string reason = "unavailable") {
    return {ErrorCode::kUnavailable, std::move(message), std::move(reason), {}, {}};
  }
  static Error bad_gateway(std::string message, std::string reason = "upstream_error") {
    return {ErrorCode::kBadGateway, std::move(message), std::move(reason), {}, {}};
  }
  static Error deadline(std::string message, std::string reason = "timeout") {
    return {ErrorCode::kDeadlineExceeded, std::move(message), std::move(reason), {}, {}};
  }
  static Error cancelled(std::string message) {
    return {ErrorCode::kCancelled, std::move(message), "cancelled", {}, {}};
  }
  static Error internal(std::string message) {
    return {ErrorCode::kInternal, std::move(message), "internal", {}, {}};
  }
};

}  // namespace parley
