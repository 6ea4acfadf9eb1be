#include "support/test_postgres.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace parley::testing {
namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Runs one statement on `url`; "" and a test failure when it fails.
std::string run(const std::string& url, const std::string& sql, bool* ok = nullptr) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::string out;
  bool good = PQstatus(conn) == CONNECTION_OK;
  if (!good) {
    ADD_FAILURE() << "cannot connect to the test PostgreSQL at " << url << ": "
                  << PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(r);
    good = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
    if (!good) {
      ADD_FAILURE() << "test SQL failed: " << sql << ": " << PQresultErrorMessage(r);
    } else if (status == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
  }
  PQfinish(conn);
  if (ok) *ok = good;
  return out;
}

// The server URL without its database: postgresql://postgres@127.0.0.1:PORT
std::string server_base(const std::string& url) { return url.substr(0, url.rfind('/')); }

}  // namespace

std::string postgres_server_url() {
  const std::string file = std::string(PARLEY_TEST_SERVICES_DIR) + "/postgres.url";
  std::string url = read_first_line(file);
  if (url.empty()) {
    ADD_FAILURE() << "no test PostgreSQL: " << file
                  << " is missing. Run the test through ctest (its fixture services_start starts "
                     "one), or start one with tests/services/services.sh start "
                  << PARLEY_TEST_SERVICES_DIR;
  }
  return url;
}

PostgresDatabase::PostgresDatabase() {
  const std::string server = postgres_server_url();
  if (server.empty()) return;
  static std::atomic<int> counter{0};
  std::random_device random;
  std::ostringstream name;
  name << "t_" << ::getpid() << "_" << counter++ << "_" << (random() % 1'000'000);
  bool ok = false;
  run(server, "CREATE DATABASE " + name.str(), &ok);
  if (!ok) return;
  name_ = name.str();
  url_ = server_base(server) + "/" + name_;
}

PostgresDatabase::~PostgresDatabase() {
  if (name_.empty()) return;
  // FORCE ends connections a failed test may have left open.
  run(postgres_server_url(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

namespace {

// As the postgres user when root (PostgreSQL refuses to run as root).
int as_postgres(const std::string& command) {
  const std::string full =
      (::geteuid() == 0 ? "runuser -u postgres -- " : "") + command + " >/dev/null 2>&1";
  return std::system(full.c_str());
}

std::string newest_bin() {
  std::string best;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = e.path().string() + "/bin";
    if (std::filesystem::exists(bin + "/pg_ctl") && bin > best) best = bin;
  }
  return best;
}

}  // namespace

PostgresServer::PostgresServer() {
  bin_ = newest_bin();
  if (bin_.empty()) {
    ADD_FAILURE() << "PostgreSQL is not installed (scripts/bootstrap.sh installs postgresql-15)";
    return;
  }
  char tmpl[] = "/tmp/parley-test-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) return;
  dir_ = tmpl;
  if (::geteuid() == 0) std::system(("chown postgres: " + dir_).c_str());
  if (as_postgres(bin_ + "/initdb -D " + dir_ + "/cluster -U postgres -A trust --no-sync") != 0) {
    ADD_FAILURE() << "initdb failed in " << dir_;
    return;
  }
  std::random_device random;
  for (int attempt = 0; attempt < 8; ++attempt) {
    port_ = 20000 + static_cast<int>(random() % 40000);
    if (start()) {
      url_ = "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
      return;
    }
  }
  ADD_FAILURE() << "cannot start a PostgreSQL of the test's own";
}

PostgresServer::~PostgresServer() {
  stop();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

bool PostgresServer::start() {
  return as_postgres(
             bin_ + "/pg_ctl -D " + dir_ + "/cluster -l " + dir_ +
             "/server.log -w -t 30 start -o \"-p " + std::to_string(port_) +
             " -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off\"") == 0;
}

void PostgresServer::stop() {
  if (dir_.empty()) return;
  as_postgres(bin_ + "/pg_ctl -D " + dir_ + "/cluster -m immediate -w stop");
}

std::string PostgresDatabase::query(const std::string& sql) const { return run(url_, sql); }

}  // namespace parley::testing
