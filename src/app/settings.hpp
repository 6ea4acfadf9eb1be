// The process's own settings (where to listen, how many threads, how long a drain may take)
// and the schema of every module's settings: the one list of modules whose settings a
// Parley binary reads. A new module adds one line to settings_schema().
#pragma once

#include <chrono>
#include <string>

#include "config/settings.hpp"

namespace parley::app {

struct ProcessSettings {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port
  int threads = 0;                        // I/O threads; 0 = one per core
  int blocking_threads = 0;               // storage and CPU-heavy work; 0 = max(2, cores)
  std::chrono::milliseconds shutdown_grace{25'000};
};

// Every module's declarations, built once.
const config::Schema& settings_schema();

// "host:port" split; nullopt when malformed. IPv6 hosts are written in brackets: [::1]:8080.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace parley::app
