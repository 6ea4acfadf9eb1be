// The HTTP server's settings: `server.*` limits and timeouts, CORS, HSTS, and whether each
// request is logged (`log.access_log`), bound to http::ServerOptions.
#include "config/settings.hpp"
#include "http/server.hpp"

namespace parley::http {

void declare_settings(config::Schema& schema) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  schema.group<ServerOptions>("server")
      .size("max_body_size", &ServerOptions::max_body_size,
            "Largest request body accepted (413 above).", 1024, 1024ULL * 1024 * 1024)
      .size("max_header_size", &ServerOptions::max_header_size,
            "Largest request head (request line + headers) accepted (431 above).", 1024,
            1024ULL * 1024)
      .duration("read_timeout", &ServerOptions::read_timeout,
                "Time for a whole request to arrive once its first byte has (slow clients are "
                "cut off).",
                milliseconds(100), hours(1))
      .duration("idle_timeout", &ServerOptions::idle_timeout,
                "How long an idle keep-alive connection is kept open.", milliseconds(100),
                hours(24))
      .duration("write_timeout", &ServerOptions::write_timeout,
                "Time allowed for writing a response to a slow reader.", milliseconds(100),
                hours(1))
      .integer("max_connections", &ServerOptions::max_connections,
               "Open connections at most; more get 503.", 1, 1'000'000)
      .list("cors_origins", &ServerOptions::cors_origins,
            "Origins whose browser scripts may call the API, comma-separated (\"*\": any); "
            "empty: none.")
      .integer("hsts_max_age", &ServerOptions::hsts_max_age,
               "Strict-Transport-Security max-age in seconds (behind a TLS terminator); 0 sends "
               "none.",
               0, 1'000'000'000);
  schema.group<ServerOptions>("log").flag("access_log", &ServerOptions::access_log,
                                          "Log one line per HTTP request.");
}

}  // namespace parley::http
