// Fuzz target: a Messages API request body read by Parley (api/anthropic_format.hpp), from
// untrusted JSON. Whatever it holds, reading it either fails with an error naming a field or
// gives a request whose messages and tools are in OpenAI's shapes; the reply and stream written
// from its text are valid JSON events, and an error response from the input's bytes is
// rewritten without fault.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/anthropic_format.hpp"

namespace {

using nlohmann::json;
namespace format = parley::api::anthropic_format;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const json body = json::parse(text, nullptr, false);
  if (body.is_object()) {
    for (const bool for_count : {false, true}) {
      auto parsed = format::parse_request(body, for_count);
      if (!parsed) {
        check(!parsed.error().message.empty());
        continue;
      }
      check(!parsed->model.empty());
      for (const auto& m : parsed->request.messages) {
        check(m.role == "system" || m.role == "user" || m.role == "assistant" || m.role == "tool");
        check(m.role != "tool" || !m.tool_call_id.empty());
      }
      check(parsed->request.tools.is_null() || parsed->request.tools.is_array());
      // Its text written back as a reply, whole and streamed.
      parley::llm::Completion reply;
      for (const auto& m : parsed->request.messages) reply.content += m.content;
      reply.finish_reason = "stop";
      check(format::message_json("msg_1", parsed->model, reply).is_object());
      format::StreamWriter writer;
      std::string events = format::stream_start("msg_1", parsed->model, 1);
      parley::llm::Delta delta;
      delta.content = reply.content;
      writer.delta(delta, events);
      writer.close(events);
      events += format::stream_end(reply);
      size_t at = 0;
      while ((at = events.find("data: ", at)) != std::string::npos) {
        const size_t end = events.find('\n', at);
        check(end != std::string::npos);
        check(!json::parse(events.substr(at + 6, end - at - 6), nullptr, false).is_discarded());
        at = end;
      }
    }
  }
  parley::http::Response response;
  response.status = 400 + static_cast<int>(size % 200);
  response.body = std::string(text);
  const auto rewritten = format::to_anthropic_error(response);
  check(rewritten.status >= 400);
  return 0;
}
