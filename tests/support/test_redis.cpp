#include "support/test_redis.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

namespace parley::testing {
namespace {

bool answers(int port) {
  timeval tv{0, 200'000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c && !c->err) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
  }
  if (c) redisFree(c);
  return ok;
}

}  // namespace

std::string redis_server_url() {
  const std::string file = std::string(PARLEY_TEST_SERVICES_DIR) + "/redis.url";
  std::ifstream in(file);
  std::string url;
  std::getline(in, url);
  if (url.empty()) {
    ADD_FAILURE() << "no test Redis: " << file
                  << " is missing. Run the test through ctest (its fixture services_start starts "
                     "one), or start one with tests/services/services.sh start "
                  << PARLEY_TEST_SERVICES_DIR;
  }
  return url;
}

std::string unique_redis_prefix() {
  static std::atomic<int> counter{0};
  std::random_device random;
  std::string prefix = "t";
  prefix += std::to_string(::getpid());
  prefix += "_";
  prefix += std::to_string(counter++);
  prefix += "_";
  prefix += std::to_string(random() % 1'000'000);
  prefix += ":";
  return prefix;
}

namespace {

// One command on a fresh connection; the reply goes to `read` (null when none came).
void redis_ask(const std::string& url, const std::vector<std::string>& command,
               const std::function<void(const redisReply*)>& read) {
  const auto colon = url.rfind(':');
  if (colon == std::string::npos) return read(nullptr);
  timeval tv{1, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", std::stoi(url.substr(colon + 1)), tv);
  redisReply* r = nullptr;
  if (c && !c->err) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& part : command) {
      argv.push_back(part.data());
      lengths.push_back(part.size());
    }
    r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()));
  }
  read(r);
  if (r) freeReplyObject(r);
  if (c) redisFree(c);
}

}  // namespace

std::vector<std::string> redis_keys(const std::string& url, const std::string& pattern) {
  std::vector<std::string> keys;
  redis_ask(url, {"KEYS", pattern}, [&](const redisReply* r) {
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; ++i)
      keys.emplace_back(r->element[i]->str, r->element[i]->len);
  });
  return keys;
}

std::string redis_get(const std::string& url, const std::string& key) {
  std::string value;
  redis_ask(url, {"GET", key}, [&](const redisReply* r) {
    if (r != nullptr && r->type == REDIS_REPLY_STRING) value.assign(r->str, r->len);
  });
  return value;
}

RedisProcess::RedisProcess() {
  std::random_device random;
  for (int attempt = 0; attempt < 8 && url_.empty(); ++attempt) {
    port_ = 20000 + static_cast<int>(random() % 40000);
    if (start()) {
      url_ = "redis://127.0.0.1:" + std::to_string(port_);
      return;
    }
  }
  ADD_FAILURE() << "cannot start a redis-server of the test's own";
}

RedisProcess::~RedisProcess() { stop(); }

bool RedisProcess::start() {
  stop();
  pid_ = ::fork();
  if (pid_ == 0) {
    const std::string port = std::to_string(port_);
    // Its start-up banner and warnings are not the test's output.
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(),
             "--save", "", "--appendonly", "no", "--loglevel", "warning", nullptr);
    ::_exit(127);
  }
  if (pid_ < 0) return false;
  for (int i = 0; i < 100; ++i) {
    if (answers(port_)) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port was taken
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
  return false;
}

void RedisProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisProcess::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisProcess::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

}  // namespace parley::testing
