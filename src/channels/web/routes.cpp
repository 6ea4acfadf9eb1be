// Serving the embedded web chat (see routes.hpp).
#include "channels/web/routes.hpp"

#include <algorithm>
#include <string>

#include "channels/web/assets.hpp"
#include "http/errors.hpp"

namespace parley::channels::web {
namespace {

// The page loads only its own files and talks only to its own origin: no inline script, no
// eval, no inline styles, nothing from elsewhere.
constexpr std::string_view kPagePolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "a, b ,c" at commas, trimmed, empty items skipped.
template <typename F>
void for_each_item(std::string_view list, F&& f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// The q of "gzip;q=0.5" (1 when absent, 0 when unreadable: a client that says something odd
// about an encoding gets the plain body).
double quality(std::string_view params) {
  while (!params.empty()) {
    const size_t semi = params.find(';');
    std::string_view p = trim(params.substr(0, semi));
    if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      const std::string value(trim(p.substr(2)));
      if (value.empty() || value.size() > 5) return 0;
      char* end = nullptr;
      const double q = std::strtod(value.c_str(), &end);
      if (end != value.c_str() + value.size() || !(q >= 0 && q <= 1)) return 0;
      return q;
    }
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
  return 1;
}

bool same_token(std::string_view a, std::string_view b) { return http::iequals(a, b); }

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  std::optional<double> gzip;
  std::optional<double> any;
  for_each_item(accept_encoding, [&](std::string_view item) {
    const size_t semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    const double q = semi == std::string_view::npos ? 1 : quality(item.substr(semi + 1));
    if (same_token(coding, "gzip") || same_token(coding, "x-gzip")) gzip = q;
    if (coding == "*") any = q;
  });
  if (gzip) return *gzip > 0;
  return any && *any > 0;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  bool found = false;
  for_each_item(if_none_match, [&](std::string_view tag) {
    if (tag == "*") found = true;
    // If-None-Match compares weakly: W/"x" matches "x".
    if (tag.size() > 2 && tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) found = true;
  });
  return found;
}

http::Response asset_response(const Asset& asset, const http::Request& req) {
  auto accept = req.header("accept-encoding");
  const bool zipped = !asset.gzip.empty() && accept && accepts_gzip(*accept);
  // Each encoding is its own representation, so each has its own strong validator.
  std::string etag(asset.etag);
  if (zipped) etag.insert(etag.size() - 1, "-gz");
  http::Response res;
  res.header("ETag", etag);
  res.header("Cache-Control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  res.header("Vary", "Accept-Encoding");
  if (asset.content_type.starts_with("text/html")) {
    res.header("Content-Security-Policy", std::string(kPagePolicy));
  }
  if (auto tag = req.header("if-none-match"); tag && etag_matches(*tag, etag)) {
    res.status = 304;
    res.content_type.clear();
    return res;
  }
  res.content_type = std::string(asset.content_type);
  if (zipped) {
    res.header("Content-Encoding", "gzip");
    res.body.assign(asset.gzip);
  } else {
    res.body.assign(asset.body);
  }
  return res;
}

void add_web_routes(http::Router& router, const WebSettings& settings) {
  if (!settings.enabled) return;
  const std::span<const Asset> assets = embedded_assets();
  const auto find = [assets](std::string_view path) -> const Asset* {
    auto it = std::find_if(assets.begin(), assets.end(),
                           [path](const Asset& a) { return a.path == path; });
    return it == assets.end() ? nullptr : &*it;
  };
  const Asset* page = find("/");
  if (page) {
    router.add(http::Method::kGet, "/", http::kPublic,
               [page](http::Request& req) -> Task<http::Response> {
                 co_return asset_response(*page, req);
               });
  }
  router.add(http::Method::kGet, "/assets/{name}", http::kPublic,
             [find](http::Request& req) -> Task<http::Response> {
               const std::string path = "/assets/" + std::string(req.param("name"));
               if (const Asset* asset = find(path)) co_return asset_response(*asset, req);
               co_return http::error_response(
                   Error::not_found("no such file of the web chat: " + path, "asset_not_found"),
                   req.request_id);
             });
}

}  // namespace parley::channels::web
