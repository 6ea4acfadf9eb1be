// Anthropic's Messages API, read and written (see anthropic_format.hpp).
#include "api/anthropic_format.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>

#include "http/errors.hpp"

namespace parley::api::anthropic_format {
namespace {

using nlohmann::json;

constexpr size_t kMaxMessages = 10'000;
constexpr size_t kMaxStopSequences = 16;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Error invalid(std::string param, std::string message) {
  return Error::invalid_field(std::move(param), std::move(message));
}

// Fields Anthropic documents that Parley does not honour: refused by name rather than ignored.
Error unsupported(const std::string& param, const std::string& what) {
  return invalid(param, what + " is not supported here");
}

bool is_one_of(std::string_view value, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), value) != options.end();
}

std::string string_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An optional boolean: absent or null is false; anything but true or false is refused.
Result<bool> flag(const json& j, const char* key, const std::string& param) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return invalid(param, std::string(key) + " is true or false");
  return it->get<bool>();
}

// An image block ({"source": base64 data or a URL}) as an OpenAI image_url part.
Result<json> image_part(const json& block, const std::string& path) {
  auto source = block.find("source");
  if (source == block.end() || !source->is_object()) {
    return invalid(path + ".source", "an image needs a source");
  }
  const std::string type = string_or_empty(*source, "type");
  if (type == "base64") {
    const std::string media = string_or_empty(*source, "media_type");
    const std::string data = string_or_empty(*source, "data");
    if (media.empty() || data.empty()) {
      return invalid(path + ".source", "a base64 image needs media_type and data");
    }
    return json{{"type", "image_url"},
                {"image_url", {{"url", "data:" + media + ";base64," + data}}}};
  }
  if (type == "url") {
    const std::string url = string_or_empty(*source, "url");
    if (url.empty()) return invalid(path + ".source.url", "an image URL is required");
    return json{{"type", "image_url"}, {"image_url", {{"url", url}}}};
  }
  return invalid(path + ".source.type", "an image source is base64 or url");
}

// A tool_result's content: a string, or text blocks, as text. (Images in a tool result are
// refused: Parley's chat request carries a tool result as text only.)
Result<std::string> tool_result_text(const json& block, const std::string& path) {
  auto content = block.find("content");
  if (content == block.end() || content->is_null()) return std::string();
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) {
    return invalid(path + ".content", "a tool result's content is a string or blocks");
  }
  std::string text;
  for (size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string type = part.is_object() ? string_or_empty(part, "type") : "";
    if (type == "image") {
      return unsupported(path + ".content[" + std::to_string(i) + "]", "an image in a tool result");
    }
    if (type != "text") {
      return invalid(path + ".content[" + std::to_string(i) + "]",
                     "a tool result holds text blocks");
    }
    if (!text.empty()) text += "\n";
    text += string_or_empty(part, "text");
  }
  return text;
}

// One message of the conversation, as Parley's messages (tool results become tool messages,
// ahead of the rest of the user's turn, as OpenAI's order wants them).
Result<void> read_message(const json& m, size_t index, std::vector<llm::Message>& out) {
  const std::string path = "messages[" + std::to_string(index) + "]";
  if (!m.is_object()) return invalid(path, "a message is an object with role and content");
  const std::string role = string_or_empty(m, "role");
  if (role != "user" && role != "assistant") {
    return invalid(path + ".role", "role is user or assistant");
  }
  for (const auto& [key, value] : m.items()) {
    if (key != "role" && key != "content") {
      std::string param = path;
      param += '.';
      param += key;
      return invalid(std::move(param), "a message has only role and content");
    }
  }
  auto content = m.find("content");
  if (content == m.end()) return invalid(path + ".content", "content is required");
  llm::Message message;
  message.role = role;
  if (content->is_string()) {
    message.content = content->get<std::string>();
    out.push_back(std::move(message));
    return success();
  }
  if (!content->is_array()) return invalid(path + ".content", "content is a string or blocks");
  json parts = json::array();
  bool has_image = false;
  for (size_t i = 0; i < content->size(); ++i) {
    const json& block = (*content)[i];
    const std::string at = path + ".content[" + std::to_string(i) + "]";
    if (!block.is_object()) return invalid(at, "a content block is an object");
    const std::string type = string_or_empty(block, "type");
    if (type == "text") {
      auto text = block.find("text");
      if (text == block.end() || !text->is_string()) {
        return invalid(at + ".text", "a text block needs text");
      }
      if (!message.content.empty()) message.content += "\n";
      message.content += text->get<std::string>();
      parts.push_back({{"type", "text"}, {"text", *text}});
    } else if (type == "image") {
      if (role != "user") return invalid(at, "images come in user messages");
      auto part = image_part(block, at);
      if (!part) return std::move(part).error();
      parts.push_back(std::move(*part));
      has_image = true;
    } else if (type == "tool_use") {
      if (role != "assistant") return invalid(at, "tool_use blocks come in assistant messages");
      llm::ToolCall call;
      call.id = string_or_empty(block, "id");
      call.name = string_or_empty(block, "name");
      if (call.id.empty() || call.name.empty()) {
        return invalid(at, "a tool_use block needs an id and a name");
      }
      auto input = block.find("input");
      call.arguments = input != block.end() && input->is_object() ? dump(*input) : "{}";
      message.tool_calls.push_back(std::move(call));
    } else if (type == "tool_result") {
      if (role != "user") return invalid(at, "tool_result blocks come in user messages");
      llm::Message result;
      result.role = "tool";
      result.tool_call_id = string_or_empty(block, "tool_use_id");
      if (result.tool_call_id.empty()) {
        return invalid(at + ".tool_use_id", "a tool_result needs the tool_use_id it answers");
      }
      auto text = tool_result_text(block, at);
      if (!text) return std::move(text).error();
      result.content = std::move(*text);
      auto is_error = flag(block, "is_error", at + ".is_error");
      if (!is_error) return std::move(is_error).error();
      if (*is_error) result.content = "Error: " + result.content;
      out.push_back(std::move(result));
    } else if (is_one_of(type, {"thinking", "redacted_thinking"})) {
      // Never produced here (Parley does not offer extended thinking): nothing to send back.
      continue;
    } else {
      return unsupported(at + ".type", "a \"" + type + "\" content block");
    }
  }
  if (has_image) message.parts = std::move(parts);
  if (!message.content.empty() || !message.tool_calls.empty() || has_image) {
    out.push_back(std::move(message));
  }
  return success();
}

// `system`: a string, or text blocks.
Result<std::string> read_system(const json& system) {
  if (system.is_string()) return system.get<std::string>();
  if (!system.is_array()) return invalid("system", "system is a string or text blocks");
  std::string text;
  for (size_t i = 0; i < system.size(); ++i) {
    const json& block = system[i];
    if (!block.is_object() || string_or_empty(block, "type") != "text") {
      return invalid("system[" + std::to_string(i) + "]", "system blocks are text blocks");
    }
    if (!text.empty()) text += "\n\n";
    text += string_or_empty(block, "text");
  }
  return text;
}

// Anthropic's tools ({name, description, input_schema}) as OpenAI's function tools.
Result<json> read_tools(const json& tools) {
  if (!tools.is_array()) return invalid("tools", "tools is an array");
  json out = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& tool = tools[i];
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (!tool.is_object()) return invalid(at, "a tool is an object");
    const std::string type = string_or_empty(tool, "type");
    if (!type.empty() && type != "custom") {
      return unsupported(at + ".type", "the server tool \"" + type + "\"");
    }
    const std::string name = string_or_empty(tool, "name");
    if (name.empty()) return invalid(at + ".name", "a tool needs a name");
    auto schema = tool.find("input_schema");
    if (schema == tool.end() || !schema->is_object()) {
      return invalid(at + ".input_schema", "a tool needs an input_schema object");
    }
    json function = {{"name", name}, {"parameters", *schema}};
    if (auto d = tool.find("description"); d != tool.end() && d->is_string()) {
      function["description"] = *d;
    }
    out.push_back({{"type", "function"}, {"function", std::move(function)}});
  }
  return out;
}

// {type: auto | any | tool | none} as OpenAI's tool_choice.
Result<json> read_tool_choice(const json& choice) {
  if (!choice.is_object()) return invalid("tool_choice", "tool_choice is an object with a type");
  const std::string type = string_or_empty(choice, "type");
  auto serial = flag(choice, "disable_parallel_tool_use", "tool_choice.disable_parallel_tool_use");
  if (!serial) return std::move(serial).error();
  if (*serial) {
    return unsupported("tool_choice.disable_parallel_tool_use", "disable_parallel_tool_use");
  }
  if (type == "auto") return json("auto");
  if (type == "any") return json("required");
  if (type == "none") return json("none");
  if (type == "tool") {
    const std::string name = string_or_empty(choice, "name");
    if (name.empty()) return invalid("tool_choice.name", "a tool choice names the tool");
    return json{{"type", "function"}, {"function", {{"name", name}}}};
  }
  return invalid("tool_choice.type", "tool_choice.type is auto, any, tool or none");
}

constexpr std::array<std::string_view, 14> kFields = {
    "model",    "max_tokens", "messages",       "system",      "temperature",
    "top_p",    "top_k",      "stop_sequences", "tools",       "tool_choice",
    "metadata", "stream",     "thinking",       "service_tier"};

}  // namespace

Result<ParsedMessages> parse_request(const json& body, bool for_count) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(kFields.begin(), kFields.end(), key) == kFields.end()) {
      return invalid(key, key + ": extra inputs are not permitted");
    }
  }
  ParsedMessages p;
  p.model = string_or_empty(body, "model");
  if (p.model.empty()) return invalid("model", "model is required");
  if (!for_count) {
    auto max_tokens = body.find("max_tokens");
    if (max_tokens == body.end() || !max_tokens->is_number_integer() ||
        max_tokens->get<int64_t>() < 1) {
      return invalid("max_tokens", "max_tokens is required: a positive integer");
    }
    p.request.max_tokens = max_tokens->get<int64_t>();
    if (auto stream = body.find("stream"); stream != body.end() && !stream->is_null()) {
      if (!stream->is_boolean()) return invalid("stream", "stream is true or false");
      p.stream = stream->get<bool>();
    }
  }
  if (auto system = body.find("system"); system != body.end() && !system->is_null()) {
    auto text = read_system(*system);
    if (!text) return std::move(text).error();
    if (!text->empty()) {
      llm::Message message;
      message.role = "system";
      message.content = std::move(*text);
      p.request.messages.push_back(std::move(message));
    }
  }
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty()) {
    return invalid("messages", "messages must be a non-empty array");
  }
  if (messages->size() > kMaxMessages) {
    return invalid("messages", "at most " + std::to_string(kMaxMessages) + " messages");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    if (auto r = read_message((*messages)[i], i, p.request.messages); !r) {
      return std::move(r).error();
    }
  }
  const auto number = [&](const char* name, double max) -> Result<std::optional<double>> {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::optional<double>();
    if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > max) {
      return invalid(name, std::string(name) + " is a number from 0 to " +
                               std::to_string(static_cast<int>(max)));
    }
    return std::optional<double>(it->get<double>());
  };
  auto temperature = number("temperature", 1);
  if (!temperature) return std::move(temperature).error();
  p.request.temperature = *temperature;
  auto top_p = number("top_p", 1);
  if (!top_p) return std::move(top_p).error();
  p.request.top_p = *top_p;
  if (auto top_k = body.find("top_k"); top_k != body.end() && !top_k->is_null()) {
    if (!top_k->is_number_integer() || top_k->get<int64_t>() < 1) {
      return invalid("top_k", "top_k is a positive integer");
    }
    p.request.top_k = top_k->get<int64_t>();
  }
  if (auto stop = body.find("stop_sequences"); stop != body.end() && !stop->is_null()) {
    if (!stop->is_array() || stop->size() > kMaxStopSequences) {
      return invalid("stop_sequences", "stop_sequences is an array of up to 16 strings");
    }
    for (const auto& s : *stop) {
      if (!s.is_string()) return invalid("stop_sequences", "each stop sequence is a string");
      p.request.stop.push_back(s.get<std::string>());
    }
  }
  if (auto tools = body.find("tools"); tools != body.end() && !tools->is_null()) {
    auto converted = read_tools(*tools);
    if (!converted) return std::move(converted).error();
    if (!converted->empty()) p.request.tools = std::move(*converted);
  }
  if (auto choice = body.find("tool_choice"); choice != body.end() && !choice->is_null()) {
    auto converted = read_tool_choice(*choice);
    if (!converted) return std::move(converted).error();
    p.request.tool_choice = std::move(*converted);
  }
  if (auto metadata = body.find("metadata"); metadata != body.end() && !metadata->is_null()) {
    if (!metadata->is_object()) return invalid("metadata", "metadata is an object");
    for (const auto& [key, value] : metadata->items()) {
      if (key != "user_id") return invalid("metadata." + key, "metadata has only user_id");
      if (!value.is_null() &&
          (!value.is_string() || value.get_ref<const std::string&>().size() > 256)) {
        return invalid("metadata.user_id", "metadata.user_id is a string of up to 256 bytes");
      }
      if (value.is_string()) p.request.user = value.get<std::string>();
    }
  }
  if (auto thinking = body.find("thinking"); thinking != body.end() && !thinking->is_null()) {
    if (!(thinking->is_object() && string_or_empty(*thinking, "type") == "disabled")) {
      return unsupported("thinking", "extended thinking");
    }
  }
  if (auto tier = body.find("service_tier"); tier != body.end() && !tier->is_null()) {
    if (!tier->is_string() ||
        !is_one_of(tier->get_ref<const std::string&>(), {"auto", "standard_only"})) {
      return invalid("service_tier", "service_tier is auto or standard_only");
    }
  }
  return p;
}

std::string stop_reason(std::string_view finish_reason) {
  if (finish_reason == llm::finish::kLength) return "max_tokens";
  if (finish_reason == llm::finish::kToolCalls) return "tool_use";
  if (finish_reason == llm::finish::kContentFilter) return "refusal";
  return "end_turn";
}

std::string tool_use_id(const std::string& upstream_id, int index) {
  return upstream_id.empty() ? "toolu_parley_" + std::to_string(index) : upstream_id;
}

json tool_input(std::string_view arguments) {
  json input = json::parse(arguments, nullptr, false);
  return input.is_object() ? input : json::object();
}

json message_json(const std::string& id, const std::string& model,
                  const llm::Completion& completion) {
  json content = json::array();
  if (!completion.content.empty()) {
    content.push_back({{"type", "text"}, {"text", completion.content}});
  }
  for (size_t i = 0; i < completion.tool_calls.size(); ++i) {
    const auto& call = completion.tool_calls[i];
    content.push_back({{"type", "tool_use"},
                       {"id", tool_use_id(call.id, static_cast<int>(i))},
                       {"name", call.name},
                       {"input", tool_input(call.arguments)}});
  }
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model},
          {"content", std::move(content)},
          {"stop_reason", stop_reason(completion.finish_reason)},
          {"stop_sequence", nullptr},
          {"usage",
           {{"input_tokens", completion.usage.input_tokens},
            {"output_tokens", completion.usage.output_tokens}}}};
}

AnthropicError error_json(const Error& error) {
  // Worded as Parley's envelope words it (an internal error's details stay in the log).
  http::Response res = to_anthropic_error(http::error_response(error, ""));
  return {res.status, json::parse(res.body, nullptr, false)};
}

http::Response to_anthropic_error(http::Response response) {
  if (response.status < 400 || response.already_sent ||
      response.content_type.rfind("application/json", 0) != 0) {
    return response;
  }
  json body = json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object() ||
      body.contains("type")) {
    return response;
  }
  const json& e = body["error"];
  const std::string code = string_or_empty(e, "code");
  if (code == "model_not_found") response.status = 404;  // as Anthropic answers it
  const int status = response.status;
  std::string type = "api_error";
  if (code == "upstream_overloaded") {
    response.status = 529;  // Anthropic's "overloaded", which its SDKs retry
    type = "overloaded_error";
  } else if (status == 504) {
    type = "timeout_error";
  } else if (status == 401) {
    type = "authentication_error";
  } else if (status == 403) {
    type = "permission_error";
  } else if (status == 404) {
    type = "not_found_error";
  } else if (status == 413) {
    type = "request_too_large";
  } else if (status == 429) {
    type = "rate_limit_error";
  } else if (status < 500) {
    type = "invalid_request_error";
  }
  // The field at fault leads the message, as Anthropic writes it ("messages.0.content: ...").
  std::string message = string_or_empty(e, "message");
  const std::string param = string_or_empty(e, "param");
  if (!param.empty() && message.rfind(param, 0) != 0) message = param + ": " + message;
  response.body = dump({{"type", "error"}, {"error", {{"type", type}, {"message", message}}}});
  return response;
}

std::string event(std::string_view type, const json& data) {
  std::string out = "event: ";
  out += type;
  out += "\ndata: ";
  out += dump(data);
  out += "\n\n";
  return out;
}

std::string stream_start(const std::string& id, const std::string& model, int64_t input_tokens) {
  json message = {{"id", id},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", model},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", {{"input_tokens", input_tokens}, {"output_tokens", 0}}}};
  return event("message_start", {{"type", "message_start"}, {"message", std::move(message)}}) +
         event("ping", {{"type", "ping"}});
}

std::string stream_end(const llm::Completion& completion) {
  return event("message_delta", {{"type", "message_delta"},
                                 {"delta",
                                  {{"stop_reason", stop_reason(completion.finish_reason)},
                                   {"stop_sequence", nullptr}}},
                                 {"usage",
                                  {{"input_tokens", completion.usage.input_tokens},
                                   {"output_tokens", completion.usage.output_tokens}}}}) +
         event("message_stop", {{"type", "message_stop"}});
}

std::string stream_error(const Error& error) { return event("error", error_json(error).body); }

void StreamWriter::close(std::string& out) {
  if (open_index_ < 0) return;
  out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", open_index_}});
  open_index_ = -1;
  open_tool_ = -1;
  open_is_text_ = false;
}

void StreamWriter::delta(const llm::Delta& delta, std::string& out) {
  if (!delta.content.empty()) {
    if (open_index_ < 0 || !open_is_text_) {
      close(out);
      open_index_ = next_index_++;
      open_is_text_ = true;
      out += event("content_block_start", {{"type", "content_block_start"},
                                           {"index", open_index_},
                                           {"content_block", {{"type", "text"}, {"text", ""}}}});
    }
    out += event("content_block_delta",
                 {{"type", "content_block_delta"},
                  {"index", open_index_},
                  {"delta", {{"type", "text_delta"}, {"text", delta.content}}}});
  }
  for (const auto& call : delta.tool_calls) {
    if (open_index_ < 0 || open_is_text_ || open_tool_ != call.index) {
      close(out);
      open_index_ = next_index_++;
      open_tool_ = call.index;
      out += event("content_block_start", {{"type", "content_block_start"},
                                           {"index", open_index_},
                                           {"content_block",
                                            {{"type", "tool_use"},
                                             {"id", tool_use_id(call.id, call.index)},
                                             {"name", call.name},
                                             {"input", json::object()}}}});
    }
    if (!call.arguments.empty()) {
      out += event("content_block_delta",
                   {{"type", "content_block_delta"},
                    {"index", open_index_},
                    {"delta", {{"type", "input_json_delta"}, {"partial_json", call.arguments}}}});
    }
  }
}

}  // namespace parley::api::anthropic_format
