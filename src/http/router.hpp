// Route templates to handlers. Templates are literal segments and {name} parameters:
// "/api/v1/sessions/{id}". Matching is exact on segments (no regex, no trailing-slash magic).
// Metrics and logs label requests by the template, never by the raw path, so label sets stay
// bounded whatever clients send.
//
// Build the router at startup, then share it read-only: match() is const and thread-safe.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/task.hpp"
#include "http/message.hpp"

namespace parley::http {

using Handler = std::function<Task<Response>(Request&)>;

// Who may call a route. Every route is registered with one, so no route exists without a
// decision about its access; the access guard (api/access.hpp) enforces it.
enum class Audience {
  kPublic,         // anyone, no credentials (probes, metrics)
  kAuthenticated,  // any valid key or token
  kAdmin,          // admin keys only
};

// The envelope a route's errors are written in, the access guard's refusals included.
enum class ErrorFormat {
  kParley,     // {"error": {"type", "message", "code", "param", "request_id"}}
  kAnthropic,  // {"type": "error", "error": {"type", "message"}} (api/anthropic_format.hpp)
};

struct RoutePolicy {
  Audience audience = Audience::kAdmin;
  bool idempotent = false;  // honours Idempotency-Key (routes that create or call a model)
  // The handler names the end user the request acts for (from the body or the session) and
  // counts the request through Access::actor / count_user_request before any work: a service
  // key's own quotas are then taken in that same step as its user's (one limiter round trip).
  bool names_user = false;
  ErrorFormat errors = ErrorFormat::kParley;
};

inline constexpr RoutePolicy kPublic{Audience::kPublic, false};
inline constexpr RoutePolicy kAuthenticated{Audience::kAuthenticated, false};
inline constexpr RoutePolicy kAuthenticatedIdempotent{Audience::kAuthenticated, true};
inline constexpr RoutePolicy kAuthenticatedForUser{Audience::kAuthenticated, false, true};
inline constexpr RoutePolicy kAuthenticatedIdempotentForUser{Audience::kAuthenticated, true, true};
inline constexpr RoutePolicy kAdminOnly{Audience::kAdmin, false};

std::string_view audience_name(Audience audience);

struct Route {
  int id = -1;  // index in registration order; stable for the router's life
  Method method = Method::kGet;
  std::string pattern;
  RoutePolicy policy;
  uint64_t max_body = 0;  // its own request body limit (uploads); 0: server.max_body_size
  std::vector<std::string> segments;  // "{id}" kept as is
  Handler handler;
};

struct Match {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;
  std::vector<std::pair<std::string_view, std::string>> params;
  std::string allow;        // for kMethodNotAllowed: "GET, HEAD"
  bool bad_escape = false;  // a parameter had a malformed %XX
};

class Router {
 public:
  // Registers a handler with who may call it. A GET route also answers HEAD (the server drops
  // the body).
  // `max_body`, when set, replaces server.max_body_size for this route (file uploads).
  void add(Method method, std::string_view pattern, RoutePolicy policy, Handler handler,
           uint64_t max_body = 0);
  Match match(Method method, std::string_view path) const;
  // The body limit of the route a request would reach; 0 for the server's default.
  uint64_t body_limit(Method method, std::string_view path) const;
  // The largest body limit any route has (0 when none has its own).
  uint64_t largest_body_limit() const { return largest_body_limit_; }
  const std::vector<Route>& routes() const { return routes_; }
  // Puts guard(route) around every route's handler, those registered already and those
  // registered later: how the access guard (api/access.hpp) goes around all of them, whatever
  // the order of registration. One guard per router.
  void guard(std::function<Handler(const Route&)> guard);

 private:
  std::vector<Route> routes_;
  std::function<Handler(const Route&)> guard_;
  uint64_t largest_body_limit_ = 0;
};

}  // namespace parley::http
