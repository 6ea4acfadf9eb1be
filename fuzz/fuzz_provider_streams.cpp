// Fuzz target: a provider's streamed reply, everything below the network. The event-stream
// parser gets the input in pieces whose sizes the input picks (the network cuts anywhere), and
// every event's data is read both as an OpenAI chunk and as an Anthropic event. Nothing may
// crash or throw, and a reply's text may only grow: what was sent to the client as a delta
// cannot be taken back. The whole input is also read as a /moderations response (OpenAI's
// format), for as many inputs as the first byte says (0 to 3).
//
// The first byte picks the cuts, so that a seed file says how it is fed: '?' (63 mod 64) feeds
// the rest whole, '@' (0 mod 64) one byte at a time, any other byte below 0x80 in pieces of
// 1 + byte % 64 bytes ('C': 4), and a byte from 0x80 up in irregular pieces whose sizes come
// from the stream's own bytes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "llm/anthropic/anthropic_wire.hpp"
#include "llm/openai/openai_wire.hpp"
#include "llm/sse.hpp"

namespace {

// Traps unless `content` still starts with everything seen in it before, then records the new
// text as seen.
void check_only_grew(const std::string& content, std::string& seen) {
  if (content.size() < seen.size() || std::memcmp(content.data(), seen.data(), seen.size()) != 0) {
    __builtin_trap();
  }
  seen.append(content, seen.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  // A limit well inside libFuzzer's input sizes, so over-long lines and events are reached.
  parley::llm::SseParser parser(4096);
  std::vector<parley::llm::SseEvent> events;
  parley::llm::Completion openai;
  std::string openai_seen;
  parley::llm::Completion anthropic;
  std::string anthropic_seen;
  parley::llm::anthropic_wire::StreamState state;

  size_t pos = 0;
  while (pos < stream.size()) {
    size_t piece = stream.size() - pos;
    if (mode >= 0x80) {
      piece = 1 + static_cast<uint8_t>(stream[pos]) % 13;
    } else if (mode % 64 != 63) {
      piece = 1 + mode % 64;
    }
    piece = std::min(piece, stream.size() - pos);
    events.clear();
    // Errors are fine (a failed parser stays failed); the events completed before one still
    // arrive and are read.
    (void)parser.feed(stream.substr(pos, piece), events);
    pos += piece;
    // Both readers keep going past errors and "[DONE]": whatever state an error leaves behind
    // must still be safe to read more into.
    for (const auto& event : events) {
      parley::llm::Delta openai_delta;
      (void)parley::llm::openai_wire::parse_chunk(event.data, openai, openai_delta);
      check_only_grew(openai.content, openai_seen);
      parley::llm::Delta anthropic_delta;
      (void)parley::llm::anthropic_wire::parse_event(event.event, event.data, state, anthropic,
                                                     anthropic_delta);
      check_only_grew(anthropic.content, anthropic_seen);
    }
  }
  (void)parser.has_partial_event();
  auto moderations = parley::llm::openai_wire::parse_moderations(stream, mode % 4);
  if (moderations && moderations->results.size() != mode % 4) __builtin_trap();
  return 0;
}
