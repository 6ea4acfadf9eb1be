// A PostgreSQL database of its own for one test, on the server the test run shares.
//
// The server is a real PostgreSQL 15 that the ctest fixture `services_start` starts
// (tests/services/services.sh: initdb and pg_ctl as the postgres user, on a free loopback
// port, in a temporary directory) and `services_stop` stops. It writes the server's URL to
// PARLEY_TEST_SERVICES_DIR/postgres.url, where this reads it. Each PostgresDatabase creates
// a fresh, empty database there and drops it at destruction, so tests never see each other's
// rows and can run in parallel.
#pragma once

#include <string>

namespace parley::testing {

// The shared server's URL (its `postgres` database), or "" with a test failure recorded when
// no server runs.
std::string postgres_server_url();

class PostgresDatabase {
 public:
  PostgresDatabase();
  ~PostgresDatabase();
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  // postgresql://postgres@127.0.0.1:PORT/NAME; empty when the database could not be created.
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs `sql` on this database over a connection of its own (independent of the code under
  // test) and returns the first column of the first row as text ("" for none or NULL). A
  // failing statement is a test failure.
  std::string query(const std::string& sql) const;

 private:
  std::string name_;
  std::string url_;
};

// A PostgreSQL server of the test's own (initdb in a temporary directory, as the postgres user
// when root), for the tests that stop and restart the database under the code being tested.
// stop() and start() keep the port and the data.
class PostgresServer {
 public:
  PostgresServer();  // started; url() is "" (and a failure recorded) when it cannot start
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://postgres@127.0.0.1:PORT/postgres
  const std::string& url() const { return url_; }
  bool start();
  void stop();  // immediate: as a crash or a lost network looks to clients

 private:
  std::string bin_;
  std::string dir_;
  int port_ = 0;
  std::string url_;
};

}  // namespace parley::testing
