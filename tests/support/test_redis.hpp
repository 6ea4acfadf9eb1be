// Redis for tests: the server the test run shares (started by the ctest fixture
// services_start, tests/services/services.sh, which writes its URL to
// PARLEY_TEST_SERVICES_DIR/redis.url), and servers of a test's own for the tests that stop
// and restart Redis under the code being tested.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace parley::testing {

// The shared server's URL, or "" with a test failure recorded when none runs. Tests sharing
// it keep apart by key prefix (unique_redis_prefix()).
std::string redis_server_url();
std::string unique_redis_prefix();

// For tests that wait for a write sent after an answer, on the server at url
// ("redis://127.0.0.1:PORT"): the keys matching a glob pattern, and a string key's value
// ("" when it is missing or the server cannot be asked).
std::vector<std::string> redis_keys(const std::string& url, const std::string& pattern);
std::string redis_get(const std::string& url, const std::string& key);

// A redis-server of this test's own on a free loopback port; stop() and start() keep the
// port, so clients reconnect to the same address.
class RedisProcess {
 public:
  RedisProcess();  // started; url() is "" (and a failure recorded) when it cannot start
  ~RedisProcess();
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  bool start();
  void stop();   // SIGKILL: as a crash or a network loss looks to clients
  void pause();  // SIGSTOP: the server holds connections and answers nothing
  void resume();

 private:
  int port_ = 0;
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace parley::testing
