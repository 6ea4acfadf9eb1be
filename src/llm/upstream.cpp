// Shared provider plumbing: cancellation hooks, upstream error mapping, token estimates.
#include "llm/upstream.hpp"

#include <ctime>

#include <nlohmann/json.hpp>

namespace parley::llm {

UpstreamCall::UpstreamCall(std::unique_ptr<http::ClientTransfer> transfer, Cancellation& cancel)
    : transfer_(std::move(transfer)), cancel_(cancel) {
  cancel_.set_hook([t = transfer_.get()] { t->cancel(); });
}

UpstreamCall::~UpstreamCall() { cancel_.clear_hook(); }

Error interrupted(const Error& error, const Cancellation& cancel) {
  if (cancel.requested()) return Error::cancelled("the call was cancelled: " + cancel.reason());
  return error;
}

std::optional<int64_t> parse_retry_after(const std::optional<std::string>& retry_after,
                                         const std::optional<std::string>& retry_after_ms) {
  if (retry_after_ms) {
    try {
      double ms = std::stod(*retry_after_ms);
      if (ms >= 0 && ms < 86'400'000) return static_cast<int64_t>(ms);
    } catch (const std::exception&) {
    }
  }
  if (!retry_after) return std::nullopt;
  try {
    size_t used = 0;
    double seconds = std::stod(*retry_after, &used);
    if (used == retry_after->size() && seconds >= 0 && seconds < 86'400) {
      return static_cast<int64_t>(seconds * 1000);
    }
  } catch (const std::exception&) {
  }
  std::tm tm{};
  if (strptime(retry_after->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
    const int64_t at = static_cast<int64_t>(timegm(&tm));
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    return std::max<int64_t>(0, (at - now) * 1000);
  }
  return std::nullopt;
}

Error upstream_http_error(std::string_view provider, int status, std::string_view body,
                          const http::ClientTransfer& transfer) {
  std::string detail;
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    const auto& err = parsed.contains("error") ? parsed["error"] : parsed;
    if (err.is_object() && err.contains("message") && err["message"].is_string()) {
      detail = err["message"].get<std::string>();
    } else if (err.is_string()) {
      detail = err.get<std::string>();
    }
  }
  if (detail.size() > 500) detail = detail.substr(0, 500) + "...";
  std::string message = "provider '" + std::string(provider) + "' answered HTTP " +
                        std::to_string(status) + (detail.empty() ? "" : ": " + detail);
  Error e;
  switch (status) {
    case 400:
    case 413:
    case 422:
      e = Error::invalid(std::move(message), "upstream_rejected");
      break;
    case 401:
    case 403:
      e = Error{ErrorCode::kPermissionDenied, std::move(message), "upstream_auth", {}, {}};
      break;
    case 404:
      e = Error{ErrorCode::kPermissionDenied, std::move(message), "upstream_not_found", {}, {}};
      break;
    case 408:
      e = Error::deadline(std::move(message), "upstream_timeout");
      break;
    case 429:
      e = Error{ErrorCode::kTooManyRequests, std::move(message), "upstream_rate_limited", {}, {}};
      break;
    case 503:
    case 529:  // Anthropic: overloaded
      e = Error::unavailable(std::move(message), "upstream_overloaded");
      break;
    default:
      e = Error::bad_gateway(std::move(message), "upstream_error");
  }
  e.retry_after_ms =
      parse_retry_after(transfer.header("retry-after"), transfer.header("retry-after-ms"));
  return e;
}

int64_t estimate_tokens(std::string_view text) {
  if (text.empty()) return 0;
  return static_cast<int64_t>(text.size() + 3) / 4;
}

int64_t estimate_tokens(const std::vector<Message>& messages) {
  // Each message costs a few tokens of framing (role, separators) besides its text.
  constexpr int64_t kPerMessage = 4;
  int64_t total = 0;
  for (const auto& m : messages) {
    total += kPerMessage + estimate_tokens(m.content);
    for (const auto& call : m.tool_calls)
      total += estimate_tokens(call.name) + estimate_tokens(call.arguments);
  }
  return total;
}

}  // namespace parley::llm
