// The process's settings and the schema of every module (see settings.hpp).
#include "app/settings.hpp"

#include <charconv>

#include "api/health.hpp"
#include "auth/authenticator.hpp"
#include "cache/settings.hpp"
#include "channels/telegram/settings.hpp"
#include "channels/web/settings.hpp"
#include "chat/settings.hpp"
#include "http/server.hpp"
#include "idempotency/idempotency.hpp"
#include "intent/settings.hpp"
#include "jobs/job_pool.hpp"
#include "knowledge/settings.hpp"
#include "limits/settings.hpp"
#include "llm/settings.hpp"
#include "memory/settings.hpp"
#include "moderation/settings.hpp"
#include "obs/log.hpp"
#include "queue/settings.hpp"
#include "redis/settings.hpp"
#include "store/settings.hpp"
#include "summary/settings.hpp"

namespace parley::app {
namespace {

void declare_process_settings(config::Schema& schema) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  schema.group<ProcessSettings>("server")
      .text("listen", &ProcessSettings::listen,
            "Address to serve HTTP on, HOST:PORT (port 0: any free port).",
            [](const std::string& text) -> std::optional<std::string> {
              if (!parse_host_port(text))
                return "not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)";
              return std::nullopt;
            })
      .integer("threads", &ProcessSettings::threads, "I/O threads; 0 means one per CPU core.", 0,
               256)
      .integer("blocking_threads", &ProcessSettings::blocking_threads,
               "Threads for storage and CPU-heavy work; 0 means max(2, cores).", 0, 256)
      .duration("shutdown_grace", &ProcessSettings::shutdown_grace,
                "On SIGTERM, how long requests in progress may take to finish.", milliseconds(0),
                hours(1));
}

}  // namespace

const config::Schema& settings_schema() {
  static const config::Schema kSchema = [] {
    config::Schema schema;
    // The order here is the order of the README's table and of --help.
    store::declare_settings(schema);
    redis::declare_settings(schema);
    auth::declare_settings(schema);  // admin_key
    declare_process_settings(schema);
    http::declare_settings(schema);
    log::declare_settings(schema);
    api::declare_settings(schema);  // health, diagnostics
    limits::declare_settings(schema);
    idempotency::declare_settings(schema);
    jobs::declare_settings(schema);
    queue::declare_settings(schema);
    llm::declare_settings(schema);
    chat::declare_settings(schema);
    moderation::declare_settings(schema);
    knowledge::declare_settings(schema);
    cache::declare_settings(schema);
    memory::declare_settings(schema);
    summary::declare_settings(schema);
    intent::declare_settings(schema);
    channels::web::declare_settings(schema);
    channels::telegram::declare_settings(schema);
    return schema;
  }();
  return kSchema;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
    port_text = text.substr(colon + 1);
  }
  if (hp.host.empty() || port_text.empty()) return std::nullopt;
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535)
    return std::nullopt;
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

}  // namespace parley::app
