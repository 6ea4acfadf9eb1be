// `redis.*`: the Redis that replicas share their counters, leases, claims and broadcasts
// through. Empty `redis.url` (and no REDIS_URL) means one process keeps them in memory.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace parley::config {
class Schema;
}

namespace parley::redis {

struct RedisSettings {
  std::string url;  // redis://[USER:PASSWORD@]HOST[:PORT][/DB]; its userinfo is secret
  std::chrono::milliseconds timeout{1'000};          // a command's answer, then reconnect
  std::chrono::milliseconds connect_timeout{2'000};  // the TCP connect and AUTH
  std::string key_prefix = "parley:";                // every key and channel starts with it
};

void declare_settings(config::Schema& schema);

// Where a redis:// URL points.
struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // Redis 6 ACL user; empty: the default user
  std::string password;
  int db = 0;
  std::string describe() const;  // "redis://host:port/db", never the password
};

// kInvalidArgument with what is wrong (rediss:// needs a TLS-capable hiredis, which Debian
// 12's 0.14 is not).
Result<Endpoint> parse_url(std::string_view url);

}  // namespace parley::redis
