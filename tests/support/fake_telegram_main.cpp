// parley_fake_telegram: a fake of the Telegram Bot API as its own process, for the integration
// tests and the Telegram load test.
//
//   parley_fake_telegram [--port N] [--token TOKEN]
//
// Prints {"port": N} on one line once listening, then serves until SIGINT or SIGTERM. The Bot
// API is at /bot<TOKEN>/<method> (getMe, sendMessage, editMessageText, sendChatAction,
// setWebhook, deleteWebhook, getUpdates, answerCallbackQuery); every call is recorded, and
// the next answers of a method can be scripted with Telegram's documented failures. Control:
//   GET  /_fake/calls       every call so far: {"calls": [{"method", "params", "at_ms", "status",
//                           "message_id" (of a sendMessage)}]}
//   POST /_fake/fail        {"method", "status", "description", "retry_after"?, "times"?}
//   POST /_fake/updates     {"updates": [...]}: what getUpdates hands out
//   POST /_fake/reset
// Messages are validated as Telegram validates HTML (allowed tags, balanced, escaped), and
// a text over 4096 characters is refused as Telegram refuses it.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fake_telegram.hpp"

int main(int argc, char** argv) {
  uint16_t port = 0;
  std::string token = "123456:TEST-token";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--token") == 0) token = argv[i + 1];
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  parley::testing::FakeTelegram telegram(port, token);
  if (telegram.port() == 0) {
    std::fprintf(stderr, "parley_fake_telegram: cannot listen\n");
    return 1;
  }
  std::printf("{\"port\": %d}\n", telegram.port());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}
