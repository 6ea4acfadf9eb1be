// A fake Telegram Bot API server (see fake_telegram_main.cpp for what it answers), on Parley's
// own HTTP server and a thread of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace parley::testing {

class FakeTelegram {
 public:
  // `port` 0 picks a free one; 0 from port() means it could not listen.
  FakeTelegram(uint16_t port, std::string token);
  ~FakeTelegram();
  FakeTelegram(const FakeTelegram&) = delete;
  FakeTelegram& operator=(const FakeTelegram&) = delete;

  uint16_t port() const { return port_; }

  // Whether `html` is text Telegram's HTML parse mode accepts: only its tags, balanced, and
  // every & < > escaped; "" when it is, else Telegram's kind of complaint.
  static std::string html_problem(const std::string& html);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace parley::testing
