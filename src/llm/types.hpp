// The language of the LLM layer: a chat request as Parley understands it, the reply, the
// pieces of a streamed reply, and token usage. Providers translate these to and from their
// wire formats (llm/openai, llm/anthropic); the gateway and the chat pipeline see only these.
//
// The shapes follow OpenAI's Chat Completions, the format most clients and servers speak, so
// the OpenAI-compatible API passes requests through with little translation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/task.hpp"

namespace parley::llm {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, exactly as the model produced it
};

struct Message {
  std::string role;     // "system", "user", "assistant" or "tool"
  std::string content;  // the text
  // Non-text content parts (OpenAI's array form: images, audio), passed through to providers
  // that take them; null when the content is plain text.
  nlohmann::json parts;
  std::vector<ToolCall> tool_calls;  // an assistant's calls
  std::string tool_call_id;          // a tool result's call
  std::string name;                  // optional participant name
};

// A passage the prompt cites ([number]), from a knowledge base (chat/pipeline.hpp's Citation).
struct Source {
  int number = 0;
  std::string title;  // "guide.md, Install > Linux, page 3"
  std::string text;
};

struct ChatRequest {
  std::string model;  // the provider's own model id (routing has already happened)
  std::vector<Message> messages;
  // The passages the system message already quotes, numbered as it cites them. Providers that
  // send text ignore this; the built-in provider, with no model to write an answer, quotes the
  // best of them.
  std::vector<Source> sources;
  bool grounded_strictly = false;  // answer from the sources only
  // What the system message says the assistant remembers about the user (memory/recall.hpp);
  // like `sources`, for the built-in provider, which has no model to read it.
  std::vector<std::string> memories;
  std::optional<double> temperature;
  std::optional<double> top_p;
  // Anthropic's top_k (a way in that speaks its format may set it): sent to providers of that
  // format; OpenAI's has none, and refuses it.
  std::optional<int64_t> top_k;
  std::optional<int64_t> max_tokens;
  std::vector<std::string> stop;
  nlohmann::json tools;        // OpenAI "tools" array, or null
  nlohmann::json tool_choice;  // OpenAI "tool_choice", or null
  std::string user;            // the end user, for the provider's abuse monitoring
  // Other OpenAI request fields (response_format, seed, logprobs, ...): sent as they are to
  // OpenAI-compatible providers, dropped for others.
  nlohmann::json extra = nlohmann::json::object();
  // A request that arrived in OpenAI's format (the compatible API): its parsed body and its
  // text. OpenAI-compatible providers send it on with only the model and the stream settings
  // changed (the text unchanged when those already match), so every field reaches the
  // upstream exactly as the client wrote it. Both must outlive the call; null otherwise.
  const nlohmann::json* openai_body = nullptr;
  std::string_view openai_text;
};

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  // True when the provider reported the counts; false when Parley estimated them.
  bool reported = false;
};

// Why a reply ended. The first four are the providers' (mapped to OpenAI's names); the rest
// are Parley's, for replies cut short.
namespace finish {
inline constexpr const char* kStop = "stop";
inline constexpr const char* kLength = "length";
inline constexpr const char* kToolCalls = "tool_calls";
inline constexpr const char* kContentFilter = "content_filter";
inline constexpr const char* kError = "error";          // the upstream failed mid-reply
inline constexpr const char* kCancelled = "cancelled";  // the client went away
inline constexpr const char* kTimeout = "timeout";      // the upstream stalled
inline constexpr const char* kShutdown = "shutdown";    // the server stopped
}  // namespace finish

// A complete (or, after an error, partial) reply.
struct Completion {
  std::string id;     // the provider's id for it
  std::string model;  // the model that answered, as the provider named it
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  Usage usage;
  int deltas = 0;  // streamed pieces delivered to the sink
  // An OpenAI-compatible provider's unstreamed response body, as received: the compatible
  // API returns it as is (every field the upstream sent, in its order).
  std::string raw_openai;
};

// One piece of a streamed tool call: OpenAI streams a call's id and name first, then its
// arguments in fragments, all tagged with the call's index.
struct ToolCallDelta {
  int index = 0;
  std::string id;
  std::string name;
  std::string arguments;
};

struct Delta {
  std::string content;
  std::vector<ToolCallDelta> tool_calls;
};

// Receives a streamed reply, one delta at a time; awaited, so a slow client slows the read
// from upstream. Returns false to stop (the client is gone). The first delta may be empty: it
// says the upstream's stream has begun (sinks start their own response then, and write
// nothing for it).
using DeltaSink = std::function<Task<bool>(const Delta&)>;

// Cancellation of a call in progress, requested from outside (the client left, the server is
// stopping). The call in progress installs a hook that aborts what it is waiting on.
// Single-threaded: used on the request's I/O thread only.
class Cancellation {
 public:
  bool requested() const { return requested_; }
  const std::string& reason() const { return reason_; }
  // `reason` is a finish reason: finish::kCancelled or finish::kShutdown.
  void request(std::string reason) {
    if (requested_) return;
    requested_ = true;
    reason_ = std::move(reason);
    if (auto hook = std::exchange(hook_, nullptr)) hook();
  }
  void set_hook(std::function<void()> hook) { hook_ = std::move(hook); }
  void clear_hook() { hook_ = nullptr; }

 private:
  bool requested_ = false;
  std::string reason_;
  std::function<void()> hook_;
};

// Deadlines of one call to a provider.
struct CallLimits {
  std::chrono::milliseconds connect_timeout{10'000};
  // From sending the request to the first token (or the whole reply, unstreamed).
  std::chrono::milliseconds first_token_timeout{60'000};
  // The longest silence between two pieces of a streamed reply.
  std::chrono::milliseconds stall_timeout{30'000};
  // The whole call.
  std::chrono::milliseconds total_timeout{600'000};
};

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> inputs;
  std::string user;
  nlohmann::json extra = nlohmann::json::object();  // "dimensions", "encoding_format"...
};

struct Embeddings {
  std::string model;
  std::vector<std::vector<float>> vectors;  // one per input, in order
  Usage usage;
};

// A classification request to a provider's moderation endpoint (OpenAI's /v1/moderations).
struct ModerationRequest {
  std::string model;
  std::vector<std::string> inputs;
};

// The provider's verdict on one input.
struct ModerationScore {
  bool flagged = false;
  // The categories the provider flagged ("violence", "harassment/threatening"), in its order.
  std::vector<std::string> categories;
  // Every category's score, 0 to 1, as sent.
  std::vector<std::pair<std::string, double>> scores;
};

struct Moderations {
  std::string model;
  std::vector<ModerationScore> results;  // one per input, in order
};

}  // namespace parley::llm
