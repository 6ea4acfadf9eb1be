// A parser for server-sent events (the WHATWG "text/event-stream" format), the framing both
// OpenAI-style and Anthropic streams use. Incremental: bytes go in as the network delivers
// them, split anywhere (inside a line, between "\r" and "\n", inside a UTF-8 sequence), and
// complete events come out.
//
// Follows the spec's line rules: "\n", "\r\n" and "\r" all end a line; a leading BOM is
// dropped; ":" lines are comments (keep-alives); "data" lines of one event are joined with
// "\n"; a blank line dispatches the event; an event with no data is dropped; "retry" is read
// and ignored. Bounded: an event (or a line) longer than the limit is an error, so an upstream
// cannot make us buffer without end.
//
// Not thread-safe; one parser per stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace parley::llm {

struct SseEvent {
  std::string event;  // the "event:" field; empty means "message"
  std::string data;
  std::string id;
};

class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes = size_t{1} << 20) : max_event_(max_event_bytes) {}

  // Parses `bytes` and appends each event completed by them to `out`. After an error the
  // parser stays failed.
  Result<void> feed(std::string_view bytes, std::vector<SseEvent>& out);

  // True when bytes of an unfinished event are pending: a stream that ends here was cut off.
  bool has_partial_event() const;

 private:
  Result<void> line(std::string_view text, std::vector<SseEvent>& out);

  size_t max_event_;
  std::string line_;       // the current line, not yet ended
  bool after_cr_ = false;  // the last byte was "\r": a "\n" next belongs to it
  bool started_ = false;   // past the optional BOM
  bool failed_ = false;
  bool has_data_ = false;
  bool has_fields_ = false;
  SseEvent pending_;
  // The spec's "last event ID buffer": kept across events until an id field changes it.
  std::string last_id_;
};

}  // namespace parley::llm
