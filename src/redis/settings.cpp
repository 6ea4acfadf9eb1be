// `redis.*` and redis:// URLs (see settings.hpp).
#include "redis/settings.hpp"

#include <charconv>

#include "config/settings.hpp"

namespace parley::redis {
namespace {

// %XX in a URL's userinfo (a password holding '@' or ':' is written %40, %3A).
std::string percent_decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    int value = 0;
    if (in[i] == '%' && i + 2 < in.size() + 0 &&
        std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16).ptr == in.data() + i + 3) {
      out += static_cast<char>(value);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

std::string Endpoint::describe() const {
  return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Result<Endpoint> parse_url(std::string_view url) {
  auto invalid = [](std::string message) {
    return Error::invalid(std::move(message), "invalid_redis_url", "redis.url");
  };
  if (url.rfind("rediss://", 0) == 0) {
    return invalid(
        "rediss:// (TLS) needs hiredis 1.0 or later, and this build links Debian 12's hiredis "
        "0.14; reach a TLS-only Redis through a local TLS tunnel (stunnel, spiped) and use "
        "redis://");
  }
  if (url.rfind("redis://", 0) != 0) {
    return invalid("expected redis://[USER:PASSWORD@]HOST[:PORT][/DB]");
  }
  std::string_view rest = url.substr(8);
  Endpoint e;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      e.username = percent_decode(userinfo.substr(0, colon));
      e.password = percent_decode(userinfo.substr(colon + 1));
    } else {
      e.password = percent_decode(userinfo);  // redis://PASSWORD@host, as many clients accept
    }
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (auto q = db.find('?'); q != std::string_view::npos) db = db.substr(0, q);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), e.db);
      if (ec != std::errc() || p != db.data() + db.size() || e.db < 0) {
        return invalid("the database after the host must be a number (redis://host:6379/0)");
      }
    }
  }
  if (hostport.empty()) return invalid("no host in the URL");
  std::string_view host = hostport;
  if (hostport.front() == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return invalid("unclosed [ in the host");
    host = hostport.substr(1, close - 1);
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport.front() != ':') return invalid("malformed host");
    if (!hostport.empty())
      hostport = hostport.substr(1);
    else
      hostport = {};
    if (!hostport.empty()) {
      auto [p, ec] = std::from_chars(hostport.data(), hostport.data() + hostport.size(), e.port);
      if (ec != std::errc() || p != hostport.data() + hostport.size()) {
        return invalid("the port must be a number");
      }
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    std::string_view port = hostport.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), e.port);
    if (ec != std::errc() || p != port.data() + port.size()) {
      return invalid("the port must be a number");
    }
  }
  if (host.empty()) return invalid("no host in the URL");
  if (e.port <= 0 || e.port > 65535) return invalid("the port must be between 1 and 65535");
  e.host = std::string(host);
  return e;
}

void declare_settings(config::Schema& schema) {
  schema.group<RedisSettings>("redis")
      .url("url", &RedisSettings::url,
           "Redis shared by every replica (`redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, or "
           "`REDIS_URL`): rate limits, stream slots, budgets, idempotency and key changes. "
           "Empty: kept in this process.",
           [](const std::string& text) -> std::optional<std::string> {
             if (text.empty()) return std::nullopt;
             auto parsed = parse_url(text);
             if (!parsed) return parsed.error().message;
             return std::nullopt;
           })
      .duration("timeout", &RedisSettings::timeout,
                "How long a Redis command may take; past it the connection is replaced and "
                "the request gets 503 (or passes, with limits.on_backend_error: allow).",
                std::chrono::milliseconds(10), std::chrono::minutes(1))
      .duration("connect_timeout", &RedisSettings::connect_timeout,
                "How long connecting to Redis may take, at start and on reconnect.",
                std::chrono::milliseconds(10), std::chrono::minutes(1))
      .text("key_prefix", &RedisSettings::key_prefix,
            "Prefix of every Redis key and channel, so installations can share one Redis.");
  schema.environment<RedisSettings>(
      {"REDIS_URL"}, [](RedisSettings& s, const std::map<std::string, std::string>& env,
                        config::Problems& problems) {
        auto it = env.find("REDIS_URL");
        if (it == env.end() || !s.url.empty()) return;
        if (auto parsed = parse_url(it->second); !parsed) {
          problems.push_back({"REDIS_URL", config::redact_url(it->second), "env REDIS_URL",
                              parsed.error().message});
          return;
        }
        s.url = it->second;
      });
}

}  // namespace parley::redis
