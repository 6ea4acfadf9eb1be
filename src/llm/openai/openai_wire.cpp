// OpenAI Chat Completions wire format (see openai_wire.hpp).
#include "llm/openai/openai_wire.hpp"

namespace parley::llm {
namespace {

using nlohmann::json;

std::string string_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

namespace openai_wire {

void read_usage(const json& usage, Usage& out) {
  if (!usage.is_object()) return;
  auto in = usage.find("prompt_tokens");
  auto gen = usage.find("completion_tokens");
  if (in != usage.end() && in->is_number_integer()) {
    out.input_tokens = in->get<int64_t>();
    out.reported = true;
  }
  if (gen != usage.end() && gen->is_number_integer()) {
    out.output_tokens = gen->get<int64_t>();
    out.reported = true;
  }
}

json request_body(const ChatRequest& request, bool stream, bool stream_usage) {
  json body = request.extra.is_object() ? request.extra : json::object();
  body["model"] = request.model;
  json messages = json::array();
  for (const auto& m : request.messages) {
    json msg = {{"role", m.role}};
    if (!m.parts.is_null()) {
      msg["content"] = m.parts;
    } else if (m.content.empty() && !m.tool_calls.empty()) {
      msg["content"] = nullptr;
    } else {
      msg["content"] = m.content;
    }
    if (!m.name.empty()) msg["name"] = m.name;
    if (!m.tool_call_id.empty()) msg["tool_call_id"] = m.tool_call_id;
    if (!m.tool_calls.empty()) {
      json calls = json::array();
      for (const auto& c : m.tool_calls) {
        calls.push_back({{"id", c.id},
                         {"type", "function"},
                         {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      }
      msg["tool_calls"] = std::move(calls);
    }
    messages.push_back(std::move(msg));
  }
  body["messages"] = std::move(messages);
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.top_p) body["top_p"] = *request.top_p;
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (!request.tools.is_null()) body["tools"] = request.tools;
  if (!request.tool_choice.is_null()) body["tool_choice"] = request.tool_choice;
  if (!request.user.empty()) body["user"] = request.user;
  body["stream"] = stream;
  if (stream && stream_usage) {
    body["stream_options"] = {{"include_usage", true}};
  } else {
    body.erase("stream_options");
  }
  return body;
}

Result<void> parse_completion(std::string_view text, Completion& out) {
  auto body = json::parse(text, nullptr, false);
  auto bad = [](const char* what) {
    return Error::bad_gateway(std::string("the provider's reply is not a chat completion: ") + what,
                              "upstream_malformed");
  };
  if (!body.is_object()) return bad("not a JSON object");
  if (body.contains("error") && !body["error"].is_null()) {
    return Error::bad_gateway(
        "the provider answered with an error: " +
            body["error"].dump(-1, ' ', false, json::error_handler_t::replace),
        "upstream_error");
  }
  out.id = string_or_empty(body, "id");
  out.model = string_or_empty(body, "model");
  auto choices = body.find("choices");
  if (choices == body.end() || !choices->is_array() || choices->empty()) return bad("no choices");
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return bad("a choice is not an object");
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) return bad("no message");
  out.content = string_or_empty(*message, "content");
  if (auto calls = message->find("tool_calls"); calls != message->end() && calls->is_array()) {
    for (const auto& c : *calls) {
      if (!c.is_object()) continue;
      ToolCall call;
      call.id = string_or_empty(c, "id");
      if (auto fn = c.find("function"); fn != c.end() && fn->is_object()) {
        call.name = string_or_empty(*fn, "name");
        call.arguments = string_or_empty(*fn, "arguments");
      }
      out.tool_calls.push_back(std::move(call));
    }
  }
  out.finish_reason = string_or_empty(choice, "finish_reason");
  if (out.finish_reason.empty()) out.finish_reason = finish::kStop;
  if (auto usage = body.find("usage"); usage != body.end()) read_usage(*usage, out.usage);
  return success();
}

Result<bool> parse_chunk(std::string_view data, Completion& out, Delta& delta) {
  if (data == "[DONE]") return true;
  auto chunk = json::parse(data, nullptr, false);
  if (!chunk.is_object()) {
    return Error::bad_gateway("the provider's stream carried an event that is not JSON",
                              "upstream_malformed");
  }
  if (auto err = chunk.find("error"); err != chunk.end() && !err->is_null()) {
    std::string message = err->is_object() ? string_or_empty(*err, "message") : std::string();
    return Error::bad_gateway(
        "the provider's stream ended with an error" + (message.empty() ? "" : ": " + message),
        "upstream_stream_error");
  }
  if (out.id.empty()) out.id = string_or_empty(chunk, "id");
  if (out.model.empty()) out.model = string_or_empty(chunk, "model");
  if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
    read_usage(*usage, out.usage);
  }
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return false;
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return false;
  if (auto fr = choice.find("finish_reason"); fr != choice.end() && fr->is_string()) {
    out.finish_reason = fr->get<std::string>();
  }
  auto d = choice.find("delta");
  if (d == choice.end() || !d->is_object()) return false;
  if (auto content = d->find("content"); content != d->end() && content->is_string()) {
    delta.content = content->get<std::string>();
    out.content += delta.content;
  }
  if (auto calls = d->find("tool_calls"); calls != d->end() && calls->is_array()) {
    for (const auto& c : *calls) {
      if (!c.is_object()) continue;
      ToolCallDelta td;
      auto index = c.find("index");
      const bool small_integer =
          index == c.end() || (index->is_number_integer() && index->get<int64_t>() >= 0 &&
                               index->get<int64_t>() <= 127);
      if (small_integer && index != c.end()) td.index = static_cast<int>(index->get<int64_t>());
      if (!small_integer) {
        return Error::bad_gateway("the provider's stream has a tool call index out of range",
                                  "upstream_malformed");
      }
      td.id = string_or_empty(c, "id");
      if (auto fn = c.find("function"); fn != c.end() && fn->is_object()) {
        td.name = string_or_empty(*fn, "name");
        td.arguments = string_or_empty(*fn, "arguments");
      }
      if (out.tool_calls.size() <= static_cast<size_t>(td.index)) {
        out.tool_calls.resize(static_cast<size_t>(td.index) + 1);
      }
      auto& call = out.tool_calls[static_cast<size_t>(td.index)];
      if (!td.id.empty()) call.id = td.id;
      call.name += td.name;
      call.arguments += td.arguments;
      delta.tool_calls.push_back(std::move(td));
    }
  }
  return false;
}

}  // namespace openai_wire

}  // namespace parley::llm
