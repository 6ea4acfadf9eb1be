// Anthropic Messages API wire format (see anthropic_wire.hpp).
#include "llm/anthropic/anthropic_wire.hpp"

#include <optional>

namespace parley::llm {
namespace {

using nlohmann::json;

std::string string_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void read_usage(const json& usage, Usage& out) {
  if (!usage.is_object()) return;
  if (auto in = usage.find("input_tokens"); in != usage.end() && in->is_number_integer()) {
    out.input_tokens = in->get<int64_t>();
    out.reported = true;
  }
  if (auto gen = usage.find("output_tokens"); gen != usage.end() && gen->is_number_integer()) {
    out.output_tokens = gen->get<int64_t>();
    out.reported = true;
  }
}

// An OpenAI content part as an Anthropic block: text as text, image_url as an image (inline
// base64 for data: URLs, a URL source otherwise); other kinds are not carried over.
std::optional<json> convert_part(const json& part) {
  if (!part.is_object()) return std::nullopt;
  const std::string type = string_or_empty(part, "type");
  if (type == "text") {
    std::string text = string_or_empty(part, "text");
    if (text.empty()) return std::nullopt;
    return json{{"type", "text"}, {"text", std::move(text)}};
  }
  if (type == "image_url" && part.contains("image_url")) {
    const auto& image = part["image_url"];
    const std::string url =
        image.is_string() ? image.get<std::string>() : string_or_empty(image, "url");
    static constexpr std::string_view kData = "data:";
    if (url.rfind(kData, 0) == 0) {
      const auto semicolon = url.find(';');
      const auto comma = url.find(',');
      if (semicolon == std::string::npos || comma == std::string::npos || comma < semicolon)
        return std::nullopt;
      return json{{"type", "image"},
                  {"source",
                   {{"type", "base64"},
                    {"media_type", url.substr(kData.size(), semicolon - kData.size())},
                    {"data", url.substr(comma + 1)}}}};
    }
    if (url.empty()) return std::nullopt;
    return json{{"type", "image"}, {"source", {{"type", "url"}, {"url", url}}}};
  }
  return std::nullopt;
}

// A content block index: a small non-negative integer, or nothing usable.
std::optional<int> block_index(const json& body) {
  auto it = body.find("index");
  if (it == body.end() || !it->is_number_integer()) return std::nullopt;
  const auto value = it->get<int64_t>();
  if (value < 0 || value > 1024) return std::nullopt;
  return static_cast<int>(value);
}

Error malformed(const char* what) {
  return Error::bad_gateway(
      std::string("the provider's reply is not a Messages API response: ") + what,
      "upstream_malformed");
}

// OpenAI's "tools" entries ({type: function, function: {name, description, parameters}}) as
// Anthropic's ({name, description, input_schema}).
json convert_tools(const json& tools) {
  json out = json::array();
  if (!tools.is_array()) return out;
  for (const auto& t : tools) {
    if (!t.is_object()) continue;
    const json& fn = t.contains("function") ? t["function"] : t;
    if (!fn.is_object()) continue;
    json tool = {{"name", string_or_empty(fn, "name")}};
    if (fn.contains("description")) tool["description"] = fn["description"];
    tool["input_schema"] = fn.contains("parameters")
                               ? fn["parameters"]
                               : json{{"type", "object"}, {"properties", json::object()}};
    out.push_back(std::move(tool));
  }
  return out;
}

json convert_tool_choice(const json& choice) {
  if (choice.is_string()) {
    const auto& s = choice.get_ref<const std::string&>();
    if (s == "required") return {{"type", "any"}};
    if (s == "none") return {{"type", "none"}};
    return {{"type", "auto"}};
  }
  if (choice.is_object() && choice.contains("function") && choice["function"].is_object()) {
    return {{"type", "tool"}, {"name", string_or_empty(choice["function"], "name")}};
  }
  return {{"type", "auto"}};
}

}  // namespace

namespace anthropic_wire {

std::string finish_reason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens") return finish::kLength;
  if (stop_reason == "tool_use") return finish::kToolCalls;
  if (stop_reason == "refusal") return finish::kContentFilter;
  return finish::kStop;  // end_turn, stop_sequence, pause_turn
}

json request_body(const ChatRequest& request, bool stream, int64_t default_max_tokens) {
  json body = json::object();
  body["model"] = request.model;
  body["max_tokens"] = request.max_tokens.value_or(default_max_tokens);
  std::string system;
  json messages = json::array();
  // Anthropic wants alternating user/assistant turns; consecutive messages of one role (a
  // user message after tool results, say) are merged into one turn's content blocks.
  auto append = [&](const std::string& role, json block) {
    if (!messages.empty() && messages.back()["role"] == role) {
      messages.back()["content"].push_back(std::move(block));
    } else {
      messages.push_back({{"role", role}, {"content", json::array({std::move(block)})}});
    }
  };
  for (const auto& m : request.messages) {
    if (m.role == "system" || m.role == "developer") {
      if (!system.empty()) system += "\n\n";
      system += m.content;
    } else if (m.role == "tool") {
      append("user",
             {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.content}});
    } else if (m.role == "assistant") {
      if (!m.content.empty()) append("assistant", {{"type", "text"}, {"text", m.content}});
      for (const auto& c : m.tool_calls) {
        json input = json::parse(c.arguments, nullptr, false);
        if (!input.is_object()) input = json::object();
        append("assistant",
               {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", std::move(input)}});
      }
    } else if (m.parts.is_array()) {
      for (const auto& part : m.parts) {
        if (auto block = convert_part(part)) append("user", std::move(*block));
      }
    } else if (!m.content.empty()) {
      // The Messages API refuses empty text blocks; an empty message adds nothing.
      append("user", {{"type", "text"}, {"text", m.content}});
    }
  }
  if (!system.empty()) body["system"] = system;
  body["messages"] = std::move(messages);
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.top_p) body["top_p"] = *request.top_p;
  if (request.top_k) body["top_k"] = *request.top_k;
  if (!request.stop.empty()) body["stop_sequences"] = request.stop;
  if (request.tools.is_array() && !request.tools.empty()) {
    body["tools"] = convert_tools(request.tools);
    if (!request.tool_choice.is_null())
      body["tool_choice"] = convert_tool_choice(request.tool_choice);
  }
  if (!request.user.empty()) body["metadata"] = {{"user_id", request.user}};
  if (stream) body["stream"] = true;
  return body;
}

Result<void> parse_message(std::string_view text, Completion& out) {
  auto body = json::parse(text, nullptr, false);
  if (!body.is_object()) return malformed("not a JSON object");
  if (string_or_empty(body, "type") == "error") {
    const auto& err = body.contains("error") ? body["error"] : body;
    return Error::bad_gateway(
        "the provider answered with an error: " + string_or_empty(err, "message"),
        "upstream_error");
  }
  out.id = string_or_empty(body, "id");
  out.model = string_or_empty(body, "model");
  auto content = body.find("content");
  if (content == body.end() || !content->is_array()) return malformed("no content");
  for (const auto& block : *content) {
    if (!block.is_object()) continue;
    const std::string type = string_or_empty(block, "type");
    if (type == "text") {
      out.content += string_or_empty(block, "text");
    } else if (type == "tool_use") {
      ToolCall call;
      call.id = string_or_empty(block, "id");
      call.name = string_or_empty(block, "name");
      call.arguments = block.contains("input")
                           ? block["input"].dump(-1, ' ', false, json::error_handler_t::replace)
                           : "{}";
      out.tool_calls.push_back(std::move(call));
    }
  }
  out.finish_reason = finish_reason(string_or_empty(body, "stop_reason"));
  if (auto usage = body.find("usage"); usage != body.end()) read_usage(*usage, out.usage);
  return success();
}

Result<void> parse_event(std::string_view event, std::string_view data, StreamState& state,
                         Completion& out, Delta& delta) {
  if (event == "ping") return success();
  auto body = json::parse(data, nullptr, false);
  if (!body.is_object()) return malformed("a stream event is not JSON");
  std::string type = string_or_empty(body, "type");
  if (type.empty()) type = std::string(event);
  if (type == "error") {
    const auto& err = body.contains("error") && body["error"].is_object() ? body["error"] : body;
    const std::string kind = string_or_empty(err, "type");
    const std::string message =
        "the provider's stream ended with an error: " + (kind.empty() ? "" : kind + ": ") +
        string_or_empty(err, "message");
    if (kind == "overloaded_error") return Error::unavailable(message, "upstream_overloaded");
    if (kind == "rate_limit_error")
      return Error{ErrorCode::kTooManyRequests, message, "upstream_rate_limited", {}, {}};
    return Error::bad_gateway(message, "upstream_stream_error");
  }
  if (type == "message_start") {
    const auto& msg = body.contains("message") ? body["message"] : json::object();
    if (msg.is_object()) {
      out.id = string_or_empty(msg, "id");
      out.model = string_or_empty(msg, "model");
      if (msg.contains("usage")) read_usage(msg["usage"], out.usage);
    }
  } else if (type == "content_block_start") {
    const auto index_field = block_index(body);
    if (!index_field) return malformed("a content block index is not a small integer");
    const int index = *index_field;
    if (state.tool_index_of_block.size() <= static_cast<size_t>(index)) {
      state.tool_index_of_block.resize(static_cast<size_t>(index) + 1, -1);
    }
    const auto& block = body.contains("content_block") ? body["content_block"] : json::object();
    if (block.is_object() && string_or_empty(block, "type") == "tool_use") {
      const int tool_index = static_cast<int>(out.tool_calls.size());
      state.tool_index_of_block[static_cast<size_t>(index)] = tool_index;
      ToolCall call;
      call.id = string_or_empty(block, "id");
      call.name = string_or_empty(block, "name");
      out.tool_calls.push_back(call);
      delta.tool_calls.push_back({tool_index, call.id, call.name, ""});
    } else if (block.is_object() && string_or_empty(block, "type") == "text") {
      const std::string text = string_or_empty(block, "text");
      delta.content = text;
      out.content += text;
    }
  } else if (type == "content_block_delta") {
    const auto index_field = block_index(body);
    if (!index_field) return malformed("a content block index is not a small integer");
    const int index = *index_field;
    const auto& d = body.contains("delta") ? body["delta"] : json::object();
    if (!d.is_object()) return malformed("a delta is not an object");
    const std::string dtype = string_or_empty(d, "type");
    if (dtype == "text_delta") {
      delta.content = string_or_empty(d, "text");
      out.content += delta.content;
    } else if (dtype == "input_json_delta") {
      if (index < 0 || static_cast<size_t>(index) >= state.tool_index_of_block.size() ||
          state.tool_index_of_block[static_cast<size_t>(index)] < 0) {
        return malformed("tool input for a block that is not a tool call");
      }
      const int tool_index = state.tool_index_of_block[static_cast<size_t>(index)];
      const std::string part = string_or_empty(d, "partial_json");
      out.tool_calls[static_cast<size_t>(tool_index)].arguments += part;
      delta.tool_calls.push_back({tool_index, "", "", part});
    }
  } else if (type == "message_delta") {
    if (body.contains("delta") && body["delta"].is_object()) {
      const std::string stop = string_or_empty(body["delta"], "stop_reason");
      if (!stop.empty()) out.finish_reason = finish_reason(stop);
    }
    if (body.contains("usage") && body["usage"].is_object()) {
      // message_delta carries the final output count; input came with message_start.
      const int64_t input = out.usage.input_tokens;
      read_usage(body["usage"], out.usage);
      if (!body["usage"].contains("input_tokens")) out.usage.input_tokens = input;
    }
  } else if (type == "message_stop") {
    state.stopped = true;
  }
  return success();
}

}  // namespace anthropic_wire

}  // namespace parley::llm
