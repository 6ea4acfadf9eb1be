// Server-sent events: line splitting and field handling (see sse.hpp for the rules).
#include "llm/sse.hpp"

namespace parley::llm {

Result<void> SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  if (failed_) return Error::bad_gateway("the event stream was already malformed", "bad_stream");
  if (!started_) {
    // The BOM may itself arrive split; wait for enough bytes to tell.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    line_.append(bytes);
    if (line_.size() < kBom.size() && kBom.substr(0, line_.size()) == line_) return success();
    started_ = true;
    std::string buffered = std::move(line_);
    line_.clear();
    std::string_view rest(buffered);
    if (rest.substr(0, kBom.size()) == kBom) rest.remove_prefix(kBom.size());
    return feed(rest, out);
  }
  size_t start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c != '\n' && c != '\r') {
      after_cr_ = false;
      continue;
    }
    if (c == '\n' && after_cr_ && i == start && line_.empty()) {
      // The "\n" of a "\r\n" whose "\r" ended the previous line.
      after_cr_ = false;
      start = i + 1;
      continue;
    }
    after_cr_ = c == '\r';
    std::string_view piece = bytes.substr(start, i - start);
    Result<void> r;
    if (line_.empty()) {
      r = line(piece, out);
    } else {
      line_.append(piece);
      r = line(line_, out);
      line_.clear();
    }
    if (!r) {
      failed_ = true;
      return r;
    }
    start = i + 1;
  }
  line_.append(bytes.substr(start));
  if (line_.size() > max_event_) {
    failed_ = true;
    return Error::bad_gateway(
        "an event-stream line exceeds " + std::to_string(max_event_) + " bytes",
        "stream_event_too_large");
  }
  return success();
}

Result<void> SseParser::line(std::string_view text, std::vector<SseEvent>& out) {
  if (text.empty()) {
    // Dispatch. An event without data lines is dropped (the spec's rule).
    if (has_data_) {
      pending_.id = last_id_;
      out.push_back(std::move(pending_));
    }
    pending_ = SseEvent{};
    has_data_ = false;
    has_fields_ = false;
    return success();
  }
  if (text.front() == ':') return success();  // a comment: keep-alive
  std::string_view field = text;
  std::string_view value;
  if (auto colon = text.find(':'); colon != std::string_view::npos) {
    field = text.substr(0, colon);
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  has_fields_ = true;
  if (field == "data") {
    if (has_data_) pending_.data.push_back('\n');
    pending_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    pending_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  }
  // "retry" and unknown fields are ignored.
  if (pending_.data.size() + pending_.event.size() + last_id_.size() > max_event_) {
    return Error::bad_gateway(
        "an event-stream event exceeds " + std::to_string(max_event_) + " bytes",
        "stream_event_too_large");
  }
  return success();
}

bool SseParser::has_partial_event() const { return has_fields_ || !line_.empty(); }

}  // namespace parley::llm
