// Storage settings and the store factory (see settings.hpp).
#include "store/settings.hpp"

#include "config/settings.hpp"

namespace parley::store {
namespace {

std::optional<std::string> check_storage_url(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0) {
    return "not a database URL (expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or "
           "postgresql://USER:PASSWORD@HOST:PORT/DB)";
  }
  std::string scheme = text.substr(0, colon);
  if (scheme == "sqlite") {
    std::string rest = text.substr(colon + 1);
    if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
    if (rest.empty()) return "sqlite URL names no file";
    return std::nullopt;
  }
  if (scheme == "postgres" || scheme == "postgresql") {
    if (text.find("://") != colon || text.size() <= colon + 3) {
      return "malformed postgresql URL (expected postgresql://USER:PASSWORD@HOST:PORT/DB)";
    }
    return std::nullopt;
  }
  return "unsupported scheme '" + scheme + "' (expected sqlite or postgresql)";
}

}  // namespace

void declare_settings(config::Schema& schema) {
  schema.group<StorageSettings>("").text("data_dir", &StorageSettings::data_dir,
                                         "Directory for the SQLite database and other data files.",
                                         [](const std::string& t) -> std::optional<std::string> {
                                           if (t.empty()) return "must not be empty";
                                           return std::nullopt;
                                         });
  schema.group<StorageSettings>("storage")
      .url("url", &StorageSettings::url,
           "Database URL; empty means the SQLite file `<data_dir>/parley.db` (or `DATABASE_URL` "
           "when set); or `sqlite:PATH`, `sqlite:///ABSOLUTE/PATH`, "
           "`postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require&connect_timeout=5`.",
           check_storage_url)
      .duration("busy_timeout", &StorageSettings::busy_timeout,
                "How long a database call waits for a lock.", std::chrono::milliseconds(0),
                std::chrono::minutes(10))
      .integer("read_connections", &StorageSettings::read_connections,
               "SQLite connections kept for concurrent reads.", 1, 64)
      .integer("pool_size", &StorageSettings::pool_size,
               "PostgreSQL connections each process may hold (opened as needed); a call that "
               "finds none free waits up to `busy_timeout`.",
               1, 1000)
      .duration("statement_timeout", &StorageSettings::statement_timeout,
                "PostgreSQL: the longest one statement may run before the server cancels it.",
                std::chrono::milliseconds(100), std::chrono::hours(1))
      .duration("replica_timeout", &StorageSettings::replica_timeout,
                "A replica silent this long (it heartbeats every quarter of it) is taken for "
                "dead: another marks the replies it left unfinished as interrupted.",
                std::chrono::milliseconds(1000), std::chrono::hours(1));
  // The ecosystem's name for the database (Heroku, Render, Fly, Railway and most PaaS set it);
  // storage.url, when set anywhere, wins.
  schema.environment<StorageSettings>(
      {"DATABASE_URL"}, [](StorageSettings& s, const std::map<std::string, std::string>& env,
                           config::Problems& problems) {
        auto it = env.find("DATABASE_URL");
        if (it == env.end() || !s.url.empty()) return;
        if (auto problem = check_storage_url(it->second)) {
          problems.push_back(
              {"DATABASE_URL", config::redact_url(it->second), "env DATABASE_URL", *problem});
          return;
        }
        s.url = it->second;
      });
}

std::optional<std::string> sqlite_path(const StorageSettings& settings) {
  const std::string& url = settings.url;
  if (url.empty()) {
    std::string dir = settings.data_dir;
    if (!dir.empty() && dir.back() == '/') dir.pop_back();
    return dir + "/parley.db";
  }
  if (url.rfind("sqlite:", 0) != 0) return std::nullopt;
  std::string rest = url.substr(7);
  if (rest.rfind("//", 0) == 0) rest = rest.substr(2);  // sqlite:///abs -> /abs
  return rest;
}

}  // namespace parley::store
