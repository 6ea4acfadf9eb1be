// Provider: one upstream that generates replies (an OpenAI-compatible server, Anthropic's
// Messages API, the built-in offline responder, later llama.cpp in-process). One folder per
// type under llm/; the gateway (llm/gateway.hpp) picks providers and retries across them.
//
// Contract:
//  - Coroutines on the calling request's I/O thread; never block it.
//  - chat() fills `out` as the reply arrives, so after a failure mid-stream `out` holds the
//    partial reply and `out.deltas` says how much of it reached the sink. With a sink the
//    reply is streamed; without one it is fetched whole.
//  - Failures are values, classified so the gateway can decide about retries:
//      kUnavailable       upstream unreachable or overloaded (connect failed, 503, 529)
//      kTooManyRequests   upstream rate limit (429); Error::retry_after_ms when it said
//      kBadGateway        upstream 5xx, broken connection, malformed or error stream
//      kDeadlineExceeded  a CallLimits deadline passed
//      kInvalidArgument   the upstream rejected the request itself (400, 413, 422): a retry
//                         elsewhere would fail the same way
//      kPermissionDenied  the upstream refused our credentials or the model (401, 403, 404):
//                         a configuration problem, worth a fallback but not a retry
//      kCancelled         `cancel` was requested
//  - Thread-safe: one Provider serves every thread at once (its state is configuration).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/task.hpp"
#include "llm/types.hpp"

namespace parley::llm {

class Provider {
 public:
  virtual ~Provider() = default;

  virtual const std::string& name() const = 0;  // as configured: "openai", "local"
  virtual const char* type() const = 0;         // "openai", "anthropic", "builtin"
  // Models to list in /v1/models (configured or well known); may be empty.
  virtual const std::vector<std::string>& models() const = 0;
  // The model to use when a request names only this provider.
  virtual const std::string& default_model() const = 0;

  virtual Task<Result<void>> chat(const ChatRequest& request, const CallLimits& limits,
                                  Cancellation& cancel, const DeltaSink* sink, Completion& out) = 0;

  virtual bool supports_embeddings() const { return false; }
  virtual Task<Result<Embeddings>> embed(const EmbeddingRequest& request, const CallLimits& limits,
                                         Cancellation& cancel);

  // A moderation endpoint (OpenAI's /v1/moderations and servers compatible with it).
  virtual bool supports_moderation() const { return false; }
  virtual Task<Result<Moderations>> moderate(const ModerationRequest& request,
                                             const CallLimits& limits, Cancellation& cancel);
};

}  // namespace parley::llm
