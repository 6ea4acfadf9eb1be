// Route matching: split the path once, compare segment by segment with each route.
// Linear in the number of routes, which stays in the dozens; cheaper than any hashing here.
#include "http/router.hpp"

#include <algorithm>
#include <array>

namespace parley::http {
namespace {

// A path's segments, without allocating: matching runs on every request. Paths deeper than
// any route can be are cut short, and then match nothing.
struct Segments {
  static constexpr size_t kMax = 32;
  std::array<std::string_view, kMax> items;
  size_t count = 0;
  bool too_deep = false;

  size_t size() const { return count; }
  std::string_view operator[](size_t i) const { return items[i]; }
};

Segments split_path(std::string_view path) {
  Segments out;
  if (path.empty() || path.front() != '/') return out;
  size_t start = 1;
  while (start <= path.size()) {
    if (out.count == Segments::kMax) {
      out.too_deep = true;
      break;
    }
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.items[out.count++] = path.substr(start, slash - start);
    start = slash + 1;
  }
  return out;
}

bool is_param(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

bool path_matches(const Route& route, const Segments& parts) {
  if (parts.too_deep || route.segments.size() != parts.size()) return false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& seg = route.segments[i];
    if (is_param(seg)) {
      if (parts[i].empty()) return false;
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view audience_name(Audience audience) {
  switch (audience) {
    case Audience::kPublic:
      return "public";
    case Audience::kAuthenticated:
      return "authenticated";
    case Audience::kAdmin:
      return "admin";
  }
  return "admin";
}

void Router::add(Method method, std::string_view pattern, RoutePolicy policy, Handler handler,
                 uint64_t max_body) {
  Route route;
  route.policy = policy;
  route.max_body = max_body;
  largest_body_limit_ = std::max(largest_body_limit_, max_body);
  route.id = static_cast<int>(routes_.size());
  route.method = method;
  route.pattern = std::string(pattern);
  auto segments = split_path(pattern);
  for (size_t i = 0; i < segments.size(); ++i) route.segments.emplace_back(segments[i]);
  route.handler = std::move(handler);
  if (guard_) route.handler = guard_(route);
  routes_.push_back(std::move(route));
}

uint64_t Router::body_limit(Method method, std::string_view path) const {
  const Match m = match(method, path);
  return m.kind == Match::Kind::kFound ? m.route->max_body : 0;
}

void Router::guard(std::function<Handler(const Route&)> guard) {
  guard_ = std::move(guard);
  for (auto& route : routes_) route.handler = guard_(route);
}

Match Router::match(Method method, std::string_view path) const {
  Match m;
  if (path.empty() || path.front() != '/') return m;
  auto parts = split_path(path);
  std::vector<std::string_view> allowed;  // only filled on the 405 path
  for (const auto& route : routes_) {
    if (!path_matches(route, parts)) continue;
    bool method_ok =
        route.method == method || (method == Method::kHead && route.method == Method::kGet);
    if (!method_ok) {
      allowed.push_back(method_name(route.method));
      if (route.method == Method::kGet) allowed.push_back("HEAD");
      continue;
    }
    m.kind = Match::Kind::kFound;
    m.route = &route;
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto& seg = route.segments[i];
      if (!is_param(seg)) continue;
      auto decoded = percent_decode(parts[i], false);
      if (!decoded) {
        m.bad_escape = true;
        decoded = std::string(parts[i]);
      }
      m.params.emplace_back(std::string_view(seg).substr(1, seg.size() - 2), std::move(*decoded));
    }
    return m;
  }
  if (!allowed.empty()) {
    m.kind = Match::Kind::kMethodNotAllowed;
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    for (auto a : allowed) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += a;
    }
  }
  return m;
}

}  // namespace parley::http
