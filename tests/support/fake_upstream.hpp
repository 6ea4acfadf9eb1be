// A fake LLM provider for tests: a real HTTP server on loopback that speaks OpenAI's Chat
// Completions / Embeddings / Moderations and Anthropic's Messages wire formats, JSON and SSE, and
// fails on command. Tests queue scripted replies (status, headers, body or stream pieces, delays,
// stalls) and read back every request it received, so they can prove how many upstream calls
// a turn made and what was sent.
//
// With nothing queued it answers like a healthy provider: for OpenAI paths a completion of
// "Hello from the fake upstream." (streamed in pieces when the request asks for a stream),
// for /v1/messages the same in Anthropic's format, for /embeddings deterministic vectors, for
// /moderations OpenAI's moderation results (inputs containing "fake-violence" or
// "fake-threat" are flagged).
//
// Thread-safe: the server runs on its own thread; every public method may be called from the
// test's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace parley::testing {

struct FakeReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  // A plain body, sent whole.
  std::string body;
  // When non-empty: a streamed body, each piece written (and flushed) separately.
  std::vector<std::string> pieces;
  std::chrono::milliseconds delay_before_head{0};
  std::chrono::milliseconds delay_between_pieces{0};
  // After the pieces: keep the stream open without a byte until the client leaves.
  bool stall = false;
  // Only for requests whose path ends with this ("" matches any).
  std::string path_suffix;
};

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  nlohmann::json json;  // the body parsed, or null
  std::string header(std::string_view name) const;
};

class FakeUpstream {
 public:
  // `port` 0 picks a free one. With `control`, the scripting API is served too (for tests in
  // other processes, such as the JavaScript end-to-end tests):
  //   POST /_fake/replies   a FakeReply as JSON (see reply_from_json), queued
  //   GET  /_fake/requests  the requests received so far, as JSON
  //   POST /_fake/default   a FakeReply used whenever nothing is queued (benchmarks)
  //   POST /_fake/reset     forgets replies, the default, requests and counts
  explicit FakeUpstream(uint16_t port = 0, bool control = false);
  ~FakeUpstream();
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  uint16_t port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:PORT

  // Replies are used first in, first out, by the next matching requests.
  void enqueue(FakeReply reply);
  int calls() const;
  std::vector<ReceivedRequest> requests() const;
  // Streams that ended because the client went away.
  int client_disconnects() const;
  void reset();

  // --- Builders for the providers' formats -----------------------------------------------
  static std::string openai_completion(const std::string& content, int prompt_tokens = 11,
                                       int completion_tokens = 6,
                                       const std::string& finish = "stop");
  // SSE events (each a complete "data: ...\n\n") of a streamed completion, content split into
  // the given pieces, with a usage chunk when asked and the [DONE] marker.
  static std::vector<std::string> openai_stream(const std::vector<std::string>& pieces,
                                                bool with_usage = true, bool with_done = true);
  static std::string anthropic_message(const std::string& content, int input_tokens = 11,
                                       int output_tokens = 6);
  static std::vector<std::string> anthropic_stream(const std::vector<std::string>& pieces,
                                                   int input_tokens = 11, int output_tokens = 6);
  static FakeReply error_reply(int status, const std::string& message,
                               std::vector<std::pair<std::string, std::string>> headers = {});
  // Concatenates events and cuts them into pieces of `size` bytes, wherever that falls.
  static std::vector<std::string> resplit(const std::vector<std::string>& events, size_t size);
  // {"status", "headers": {..}, "content_type", "body", "pieces": [..], "delay_before_head_ms",
  //  "delay_between_pieces_ms", "stall", "path_suffix"}; or a shorthand for the formats:
  //  {"openai_stream": ["Hel", "lo"], "split": 3} and {"anthropic_stream": [...]}.
  static FakeReply reply_from_json(const nlohmann::json& spec);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace parley::testing
