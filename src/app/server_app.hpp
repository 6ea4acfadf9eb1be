// `parley serve`: the composition root, the only place that knows every component. Start-up
// runs in named phases, each building the components of a few modules; each component that
// holds a thread or a queue is registered with its stop, and shutdown stops them in the
// reverse order:
//
//   storage      the database opened and migrated; replies cut by the last run marked
//   models       the outbound HTTP client, providers, routes, the gateway, usage accounting,
//                moderation
//   access       keys, request limits, model-call admission, idempotency
//   pipeline     the pool of long background jobs; the chat pipeline's stages
//   routes       every module's routes, each with its access policy, guarded
//   listen       the socket bound (protected mode refuses a non-loopback address without keys)
//
// A failure in any phase ends start-up at once with one line on stderr naming the phase and
// the cause, and a non-zero exit; nothing is left half-started. SIGTERM/SIGINT drain (see
// http/server.hpp), a second signal exits at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "core/result.hpp"
#include "http/router.hpp"

namespace parley::app {

struct ServeFlags {
  // Serve without credentials on a non-loopback address (protected mode off): only for a
  // network that is itself trusted.
  bool insecure_no_auth = false;
};

// A failure of start-up: the phase it happened in, and why.
struct StartupError {
  std::string phase;
  std::string cause;
};

// One named phase of start-up: its work answers why it failed, or nothing.
struct StartupPhase {
  const char* name;
  std::function<std::optional<std::string>()> run;
};

// Runs `phases` in order, logging each one's duration; stops at the first that fails.
std::optional<StartupError> run_phases(const std::vector<StartupPhase>& phases);

class ServerApp {
 public:
  ServerApp(const config::Settings& settings, ServeFlags flags,
            std::chrono::steady_clock::time_point process_started);
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // Every phase up to routes: the components exist and the router is complete, nothing
  // listens yet (tests inspect the router here).
  std::optional<StartupError> compose();
  // Binds server.listen; returns the port.
  Result<uint16_t> listen();
  // Serves until a signal has drained the server; stops every component. The exit code.
  int run();

  const http::Router& router() const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

// Runs the server until it is told to stop. Returns the process exit code. `process_started`
// is when main() began, for the startup time in the "ready" log line.
int serve(const config::Settings& settings, std::chrono::steady_clock::time_point process_started,
          const ServeFlags& flags = {});

// Prints the one-line startup failure and logs it; returns the exit code to use.
int startup_failure(std::string_view phase, std::string_view cause);

}  // namespace parley::app
