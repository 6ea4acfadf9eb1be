// HTTP request and response as handlers see them: plain structs, no Boost.Beast, so that
// only http/server.cpp pays Beast's compile cost and handlers stay easy to test.
//
// A Request's header names and values are views into the server's parsed message; they are
// valid for the duration of the handler call, which is the only place a Request exists.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace parley::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

Method parse_method(std::string_view text);
std::string_view method_name(Method method);

bool iequals(std::string_view a, std::string_view b);

struct Request {
  Method method = Method::kGet;
  std::string_view method_text;
  std::string_view target;  // as received: path plus query
  std::string_view path;    // target up to '?'
  std::string_view query;   // after '?', not decoded
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string body;
  std::string request_id;
  std::string remote;  // peer address, "ip:port"
  // Path parameters from the matched route template, percent-decoded: {"id", "sess_..."}.
  std::vector<std::pair<std::string_view, std::string>> params;

  std::optional<std::string_view> header(std::string_view name) const;
  // The named path parameter; empty when the route has none by that name.
  std::string_view param(std::string_view name) const;
  // The first query parameter with that name, percent-decoded ('+' is a space).
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  static Response json(int status, const nlohmann::json& body);
  static Response empty(int status);
};

// Decodes %XX (and '+' when `plus_is_space`); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace parley::http
