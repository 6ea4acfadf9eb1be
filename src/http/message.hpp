// HTTP request and response as handlers see them: plain structs, no Boost.Beast, so that
// only http/server.cpp pays Beast's compile cost and handlers stay easy to test.
//
// A Request's header names and values are views into the server's parsed message; they are
// valid for the duration of the handler call, which is the only place a Request exists.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/task.hpp"

namespace parley::auth {
struct Principal;
}

namespace parley::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

Method parse_method(std::string_view text);
std::string_view method_name(Method method);

bool iequals(std::string_view a, std::string_view b);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A copy of what a streaming handler sends, for replaying it later (Idempotency-Key): the
// status and type of the head and every byte of the body, including bytes the client no
// longer received. Stops copying past `limit` bytes and says so.
struct Recording {
  size_t limit = 0;
  int status = 0;
  std::string content_type;
  std::string body;
  bool truncated = false;
};

// The client's connection, for handlers that stream their response (server-sent events) or
// must notice the client leaving while they wait on something slow (a model). Implemented by
// the server; valid only during the handler call, on the connection's thread.
class ClientChannel {
 public:
  virtual ~ClientChannel() = default;

  // Sends the response head now; the body follows through write(). HTTP/1.1 clients get a
  // chunked body (the connection stays usable), HTTP/1.0 clients an unframed one that ends
  // when the connection closes. Once this is called the handler must return
  // Response::streamed(). False when the client is gone.
  virtual Task<bool> begin_stream(int status, std::string_view content_type,
                                  const HeaderList& headers) = 0;
  // Sends one piece of the body at once (no buffering: each call is a flush). False when the
  // client is gone or did not take the bytes within the server's write timeout.
  virtual Task<bool> write(std::string_view data) = 0;
  // Starts watching the connection: when the client closes it or it breaks, `on_gone` runs
  // once, on the connection's thread, even while the handler is waiting on something else.
  // Bytes of a pipelined next request are kept, not mistaken for a disconnect.
  virtual void watch(std::function<void()> on_gone) = 0;
  // True once the client is known to be gone (seen by watch() or a failed write).
  virtual bool gone() const = 0;
  // From now on, copies the streamed head and body into `into` (null stops). `into` must
  // outlive the handler call.
  virtual void record(Recording* into) = 0;
};

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
  // The connection, for streaming handlers; set by the server (null in handler unit tests).
  ClientChannel* channel = nullptr;
  // Who is calling (auth/principal.hpp); set by the access guard (api/access.hpp) before the
  // handler runs, null on public routes.
  const auth::Principal* principal = nullptr;
  // Added to whatever response this request gets, streamed or not (rate-limit headers).
  HeaderList response_headers;
  // The end user the request acts for, once a handler has resolved it (api/access.hpp): whose
  // data a stored idempotent response is.
  std::string actor_tenant;
  std::string actor_user;
  // The key's request quotas are still to be taken, with the user's, when the handler names
  // the user (RoutePolicy::names_user); the guard takes them after the handler otherwise.
  bool key_quota_pending = false;

  std::optional<std::string_view> header(std::string_view name) const;
  // The named path parameter; empty when the route has none by that name.
  std::string_view param(std::string_view name) const;
  // The first query parameter with that name, percent-decoded ('+' is a space).
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  HeaderList headers;
  std::string body;
  // The handler already sent this response through ClientChannel::begin_stream()/write(); the
  // server only ends the body. `status` and `body_bytes` are then for the log and metrics.
  bool already_sent = false;
  uint64_t body_bytes = 0;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  static Response json(int status, const nlohmann::json& body);
  static Response empty(int status);
  // What a streaming handler returns after ClientChannel::begin_stream().
  static Response streamed(int status, uint64_t body_bytes);
};

// Decodes %XX (and '+' when `plus_is_space`); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace parley::http
