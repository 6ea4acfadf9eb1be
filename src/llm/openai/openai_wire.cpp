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

std::string request_text(const ChatRequest& request, bool stream, bool stream_usage) {
  if (!request.openai_body) {
    return request_body(request, stream, stream_usage)
        .dump(-1, ' ', false, json::error_handler_t::replace);
  }
  const json& body = *request.openai_body;
  auto flag = [&](const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_boolean() && it->get<bool>();
  };
  const auto model = body.find("model");
  const bool same_model = model != body.end() && model->is_string() && *model == request.model;
  bool same_stream = flag(body, "stream") == stream;
  if (stream && stream_usage) {
    const auto options = body.find("stream_options");
    same_stream = same_stream && options != body.end() && options->is_object() &&
                  flag(*options, "include_usage");
  }
  if (!stream) same_stream = same_stream && !body.contains("stream_options");
  if (same_model && same_stream) return std::string(request.openai_text);
  json copy = body;
  copy["model"] = request.model;
  copy["stream"] = stream;
  if (stream && stream_usage) {
    if (!copy["stream_options"].is_object()) copy["stream_options"] = json::object();
    copy["stream_options"]["include_usage"] = true;
  } else if (!stream) {
    copy.erase("stream_options");
  }
  return copy.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// Reads a chat completion with nlohmann's SAX interface: the fields Parley needs go straight
// into the Completion, and the rest is skipped without building a tree (the tree's small
// allocations were most of the parsing cost on the proxy path, where the body itself is passed
// on as received).
class CompletionReader final : public json::json_sax_t {
 public:
  explicit CompletionReader(Completion& out) : out_(out) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool) override { return value(nullptr); }
  bool number_integer(json::number_integer_t v) override { return integer(v); }
  bool number_unsigned(json::number_unsigned_t v) override {
    return integer(v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
  }
  bool number_float(json::number_float_t, const std::string&) override { return value(nullptr); }
  bool binary(json::binary_t&) override { return value(nullptr); }
  bool string(std::string& text) override { return value(&text); }
  bool start_object(std::size_t) override {
    if (stack_.empty()) top_is_object_ = true;
    if (at({"error"})) error_ = true;
    if (at({"choices", "0", "message"})) has_message_ = true;
    if (at({"choices", "0", "message", "tool_calls", "*"})) out_.tool_calls.emplace_back();
    stack_.push_back({false, 0, {}});
    return true;
  }
  bool end_object() override { return end(); }
  bool start_array(std::size_t) override {
    if (at({"choices"})) has_choices_ = true;
    stack_.push_back({true, 0, {}});
    return true;
  }
  bool end_array() override { return end(); }
  bool key(std::string& k) override {
    stack_.back().key = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  bool top_is_object() const { return top_is_object_; }
  bool error() const { return error_; }
  const std::string& error_message() const { return error_message_; }
  bool complete() const { return has_choices_ && has_message_; }

 private:
  struct Frame {
    bool array;
    size_t index;
    std::string key;
  };

  // Whether the value now being read sits at `path` ("*" matches any array index).
  bool at(std::initializer_list<std::string_view> path) const {
    if (path.size() != stack_.size()) return false;
    size_t i = 0;
    for (auto part : path) {
      const Frame& f = stack_[i++];
      if (f.array) {
        if (part != "*" && part != std::to_string(f.index)) return false;
      } else if (f.key != part) {
        return false;
      }
    }
    return true;
  }

  bool integer(int64_t v) {
    if (at({"usage", "prompt_tokens"})) {
      out_.usage.input_tokens = v;
      out_.usage.reported = true;
    } else if (at({"usage", "completion_tokens"})) {
      out_.usage.output_tokens = v;
      out_.usage.reported = true;
    }
    return value(nullptr);
  }

  bool value(std::string* text) {
    if (text) {
      if (at({"id"}))
        out_.id = std::move(*text);
      else if (at({"model"}))
        out_.model = std::move(*text);
      else if (at({"choices", "0", "message", "content"}))
        out_.content = std::move(*text);
      else if (at({"choices", "0", "finish_reason"}))
        out_.finish_reason = std::move(*text);
      else if (at({"choices", "0", "message", "tool_calls", "*", "id"}))
        out_.tool_calls.back().id = std::move(*text);
      else if (at({"choices", "0", "message", "tool_calls", "*", "function", "name"}))
        out_.tool_calls.back().name = std::move(*text);
      else if (at({"choices", "0", "message", "tool_calls", "*", "function", "arguments"}))
        out_.tool_calls.back().arguments = std::move(*text);
      else if (at({"error", "message"}))
        error_message_ = std::move(*text);
      else if (at({"error"})) {
        error_ = true;
        error_message_ = std::move(*text);
      }
    }
    advance();
    return true;
  }
  bool end() {
    stack_.pop_back();
    advance();
    return true;
  }
  void advance() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
  }

  Completion& out_;
  std::vector<Frame> stack_;
  bool top_is_object_ = false;
  bool has_choices_ = false;
  bool has_message_ = false;
  bool error_ = false;
  std::string error_message_;
};

}  // namespace

Result<void> parse_completion(std::string_view text, Completion& out) {
  auto bad = [](std::string_view what) {
    std::string message = "the provider's reply is not a chat completion: ";
    message.append(what);
    return Error::bad_gateway(std::move(message), "upstream_malformed");
  };
  CompletionReader reader(out);
  const bool parsed = json::sax_parse(text.begin(), text.end(), &reader,
                                      nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (!parsed || !reader.top_is_object()) return bad("not a JSON object");
  if (reader.error()) {
    return Error::bad_gateway(
        "the provider answered with an error" +
            (reader.error_message().empty() ? std::string() : ": " + reader.error_message()),
        "upstream_error");
  }
  if (!reader.complete()) return bad("no choices with a message");
  if (out.finish_reason.empty()) out.finish_reason = finish::kStop;
  // Tool calls listed but not objects are dropped, as the tree reader did.
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

Result<Moderations> parse_moderations(std::string_view body, size_t inputs) {
  auto bad = [](const std::string& why) {
    return Error::bad_gateway("the moderation response is not the expected JSON: " + why,
                              "upstream_malformed");
  };
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_object()) return bad("not a JSON object");
  auto results = parsed.find("results");
  if (results == parsed.end() || !results->is_array()) return bad("no results array");
  if (results->size() != inputs) {
    return bad(std::to_string(results->size()) + " results for " + std::to_string(inputs) +
               " inputs");
  }
  Moderations out;
  if (auto m = parsed.find("model"); m != parsed.end() && m->is_string()) {
    out.model = m->get<std::string>();
  }
  for (const auto& r : *results) {
    if (!r.is_object()) return bad("a result is not an object");
    ModerationScore score;
    auto flagged = r.find("flagged");
    if (flagged == r.end() || !flagged->is_boolean()) return bad("a result has no 'flagged'");
    score.flagged = flagged->get<bool>();
    if (auto c = r.find("categories"); c != r.end()) {
      if (!c->is_object()) return bad("'categories' is not an object");
      for (const auto& [name, value] : c->items()) {
        // OpenAI sends null for categories a model does not score.
        if (value.is_null()) continue;
        if (!value.is_boolean()) return bad("category '" + name + "' is not a boolean");
        if (value.get<bool>()) score.categories.push_back(name);
      }
    }
    if (auto c = r.find("category_scores"); c != r.end()) {
      if (!c->is_object()) return bad("'category_scores' is not an object");
      for (const auto& [name, value] : c->items()) {
        if (value.is_null()) continue;
        if (!value.is_number()) return bad("the score of '" + name + "' is not a number");
        score.scores.emplace_back(name, value.get<double>());
      }
    }
    // Flagged without a category named: still flagged, under the provider's own word.
    if (score.flagged && score.categories.empty()) score.categories.emplace_back("flagged");
    out.results.push_back(std::move(score));
  }
  return out;
}

}  // namespace openai_wire

}  // namespace parley::llm
