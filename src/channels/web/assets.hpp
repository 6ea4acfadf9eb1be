// The web chat's files, built from web/ by esbuild when Parley is built and compiled into the
// binary (web/build.mjs writes the table), so serving it needs no other server, no CDN and no
// network.
#pragma once

#include <span>
#include <string_view>

namespace parley::channels::web {

struct Asset {
  std::string_view path;  // as requested: "/" or "/assets/app-3F2A9C1D.js"
  std::string_view content_type;
  std::string_view body;  // as built
  std::string_view gzip;  // the body gzipped; empty where that would not be smaller
  std::string_view etag;  // a strong validator of the body, quotes included
  // Its name carries a hash of its content, so a new build never reuses it: cached for a year.
  bool immutable = false;
};

// Every file of the web chat, in no particular order.
std::span<const Asset> embedded_assets();

}  // namespace parley::channels::web
