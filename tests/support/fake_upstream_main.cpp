// parley_fake_upstream: the fake provider as its own process, for tests that are not C++ (the
// JavaScript end-to-end tests) and for trying Parley by hand without an API key.
//
//   parley_fake_upstream [--port N]
//
// Prints {"port": N} on one line once listening, then serves until SIGINT or SIGTERM. The
// scripting API is on: POST /_fake/replies, GET /_fake/requests, POST /_fake/reset.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fake_upstream.hpp"

int main(int argc, char** argv) {
  uint16_t port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // Blocked before the server's thread starts, so only sigwait below receives them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  parley::testing::FakeUpstream upstream(port, /*control=*/true);
  if (upstream.port() == 0) {
    std::fprintf(stderr, "parley_fake_upstream: cannot listen\n");
    return 1;
  }
  std::printf("{\"port\": %d}\n", upstream.port());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}
