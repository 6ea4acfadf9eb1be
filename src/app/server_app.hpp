// The `parley serve` lifecycle: start in named phases, serve, shut down gracefully.
//
//   configuration -> storage (open + migrate) -> components -> listen -> ready
//
// A failure in any phase ends startup at once with one line on stderr naming the phase and
// the cause, and a non-zero exit; nothing is left half-started. SIGTERM/SIGINT drain (see
// http/server.hpp), a second signal exits at once.
#pragma once

#include <chrono>

#include "config/config.hpp"

namespace parley::app {

// Runs the server until it is told to stop. Returns the process exit code. `process_started`
// is when main() began, for the startup time in the "ready" log line.
struct ServeFlags {
  // Serve without credentials on a non-loopback address (protected mode off): only for a
  // network that is itself trusted.
  bool insecure_no_auth = false;
};
int serve(const config::Config& config, std::chrono::steady_clock::time_point process_started,
          const ServeFlags& flags = {});

// Prints the one-line startup failure and logs it; returns the exit code to use.
int startup_failure(std::string_view phase, std::string_view cause);

}  // namespace parley::app
