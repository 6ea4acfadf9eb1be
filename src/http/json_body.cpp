// JSON request-body parsing.
#include "http/json_body.hpp"

namespace parley::http {
namespace {

bool is_json_content_type(std::string_view value) {
  auto semi = value.find(';');
  std::string_view mime = value.substr(0, semi);
  while (!mime.empty() && mime.back() == ' ') mime.remove_suffix(1);
  while (!mime.empty() && mime.front() == ' ') mime.remove_prefix(1);
  if (iequals(mime, "application/json")) return true;
  // application/vnd.foo+json and friends.
  return mime.size() > 5 && iequals(mime.substr(mime.size() - 5), "+json") &&
         iequals(mime.substr(0, 12), "application/");
}

}  // namespace

Result<nlohmann::json> parse_json(std::string_view text) {
  bool too_deep = false;
  // The callback sees every structural event with its depth; refusing deep nesting here stops
  // the parser before it builds anything big.
  nlohmann::json::parser_callback_t limit_depth =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if (depth >= kMaxJsonDepth && !too_deep &&
            (event == nlohmann::json::parse_event_t::object_start ||
             event == nlohmann::json::parse_event_t::array_start)) {
          too_deep = true;
        }
        return !too_deep;
      };
  try {
    auto value =
        nlohmann::json::parse(text.begin(), text.end(), limit_depth, /*allow_exceptions=*/true,
                              /*ignore_comments=*/false);
    if (too_deep) {
      return Error::invalid("JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels",
                            "malformed_json");
    }
    return value;
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based: the byte at which parsing failed. Report the 0-based offset.
    size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    std::string what = e.what();
    // nlohmann's text reads "[json.exception.parse_error.101] parse error at line 1, column 2:
    // syntax error while parsing value - invalid literal; last read: 'x'". Keep the reason.
    auto reason_at = what.find(": ");
    std::string reason = reason_at == std::string::npos ? what : what.substr(reason_at + 2);
    return Error::invalid("malformed JSON at byte " + std::to_string(offset) + ": " + reason,
                          "malformed_json");
  } catch (const nlohmann::json::exception& e) {
    return Error::invalid(std::string("malformed JSON: ") + e.what(), "malformed_json");
  }
}

Result<nlohmann::json> parse_json_object_body(const Request& request) {
  auto content_type = request.header("content-type");
  if (request.body.empty() && !content_type) return nlohmann::json::object();
  if (!content_type || !is_json_content_type(*content_type)) {
    return Error{ErrorCode::kUnsupportedMedia,
                 "request body must be JSON, sent with Content-Type: application/json",
                 "unsupported_media_type",
                 {},
                 {}};
  }
  auto value = parse_json(request.body);
  if (!value) return value;
  if (!value->is_object()) {
    return Error::invalid("request body must be a JSON object", "invalid_body");
  }
  return value;
}

}  // namespace parley::http
