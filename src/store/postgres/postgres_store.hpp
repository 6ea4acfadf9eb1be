// The PostgreSQL implementation of store::Storage: a bounded pool of libpq connections shared
// by every repository, each statement prepared once per connection, and the same contract as
// SQLite (store/store.hpp) so the conformance suite runs unchanged over both. Several
// replicas may share one database: every write is one transaction, and nothing depends on
// being the only writer.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/postgres/connection.hpp"
#include "store/store.hpp"

namespace parley::obs {
class Metrics;
}

namespace parley::store::postgres {

struct Options {
  std::string url;  // postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=...; the password is secret
  int pool_size = 10;
  std::chrono::milliseconds pool_wait{5'000};  // for a free connection, then kUnavailable
  ConnectOptions connect;
  bool migrate = true;              // bring the schema up to date on open
  obs::Metrics* metrics = nullptr;  // optional; not owned, must outlive the store
  const Clock* clock = &Clock::system();
};

// Connects (failing at once, with the server named and the reason, when it cannot), checks or
// brings the schema up to date, and returns the store.
Result<std::unique_ptr<Storage>> open(const Options& options);

struct MigrationSummary {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;
};
Result<MigrationSummary> migrate_database(const Options& options);

}  // namespace parley::store::postgres
