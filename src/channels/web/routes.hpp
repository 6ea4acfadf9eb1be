// The web chat, served by the binary (see web/ for the application itself):
//   GET /                  the page; revalidated on every load (ETag, 304)
//   GET /assets/{name}     its script, styles and icon, named by content hash: cached for a year
// Public routes: the files hold nothing secret; the application signs in to the API with an
// API key or a token, like any other client. `web.enabled: false` serves none of it.
#pragma once

#include <string_view>

#include "channels/web/settings.hpp"
#include "http/message.hpp"
#include "http/router.hpp"

namespace parley::channels::web {

struct Asset;

void add_web_routes(http::Router& router, const WebSettings& settings);

// The answer to a request for `asset`: 304 when the client holds this version, else the body,
// gzipped when the client accepts it. Its headers say how long it may be cached and, for the
// page, which sources it may load (no inline script, no eval).
http::Response asset_response(const Asset& asset, const http::Request& req);

// Whether an Accept-Encoding header admits gzip (a q of 0 refuses it).
bool accepts_gzip(std::string_view accept_encoding);

// Whether an If-None-Match header names `etag` (or is "*").
bool etag_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace parley::channels::web
