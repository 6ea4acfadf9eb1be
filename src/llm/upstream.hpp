// What every HTTP provider shares: its settings, the upstream call with deadlines and
// cancellation wired in, and the mapping of an upstream's HTTP failure to an Error the
// gateway can act on (see provider.hpp for the classes).
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/task.hpp"
#include "http/client.hpp"
#include "llm/types.hpp"

namespace parley::llm {

struct ProviderSettings {
  std::string name;      // as configured
  std::string type;      // "openai", "anthropic", "builtin"
  std::string base_url;  // without a trailing slash
  std::string api_key;   // secret; may be empty (local servers)
  std::vector<std::string> models;
  std::string default_model;
  std::string embedding_model;  // empty: no embeddings from this provider
  http::HeaderList headers;     // sent with every request (OpenRouter's, Azure's...)
  std::string proxy;
  std::string ca_file;
  bool stream_usage = true;           // ask for usage in streams (stream_options.include_usage)
  int64_t default_max_tokens = 4096;  // for APIs that require max_tokens (Anthropic)
  std::string source;                 // where it was defined ("config.yaml:12"), for messages
};

// An upstream request in progress, with the call's cancellation hooked to it for as long as
// this object lives.
class UpstreamCall {
 public:
  UpstreamCall(std::unique_ptr<http::ClientTransfer> transfer, Cancellation& cancel);
  ~UpstreamCall();
  UpstreamCall(const UpstreamCall&) = delete;
  UpstreamCall& operator=(const UpstreamCall&) = delete;

  http::ClientTransfer& transfer() { return *transfer_; }

 private:
  std::unique_ptr<http::ClientTransfer> transfer_;
  Cancellation& cancel_;
};

// The deadline for the next wait: `wait` from now, but never past the call's end.
inline http::Deadline next_deadline(std::chrono::milliseconds wait, http::Deadline call_end) {
  return std::min(std::chrono::steady_clock::now() + wait, call_end);
}

// A timeout or cancellation as the right Error: cancelled wins (the client left; the transfer
// was aborted because of it).
Error interrupted(const Error& error, const Cancellation& cancel);

// An upstream's error response as an Error. `body` is its (small) body; the message of
// OpenAI's and Anthropic's error envelopes is quoted when there is one.
Error upstream_http_error(std::string_view provider, int status, std::string_view body,
                          const http::ClientTransfer& transfer);

// Retry-After (seconds or an HTTP date) and retry-after-ms, in milliseconds.
std::optional<int64_t> parse_retry_after(const std::optional<std::string>& retry_after,
                                         const std::optional<std::string>& retry_after_ms);

// Parley's rough token count for text the provider did not count: about four characters a
// token for English (OpenAI's rule of thumb), never zero for non-empty text. Documented in
// docs/architecture.md; exact counts replace it whenever a provider reports usage.
int64_t estimate_tokens(std::string_view text);
int64_t estimate_tokens(const std::vector<Message>& messages);

}  // namespace parley::llm
