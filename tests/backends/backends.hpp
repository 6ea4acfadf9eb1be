// The storage backends the typed conformance suites run every case against, and the
// assertion they share.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"
#include "support/test_postgres.hpp"
#include "temp_dir.hpp"

namespace parley::testing {

struct SqliteBackend {
  static constexpr const char* kName = "sqlite";
  TempDir dir{"parley-conformance"};
  std::string url() const { return "sqlite://" + dir.path() + "/parley.db"; }
};

struct PostgresBackend {
  static constexpr const char* kName = "postgresql";
  PostgresDatabase db;
  std::string url() const { return db.url(); }
};

// Test names read Suite/sqlite.X and Suite/postgresql.X.
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

// Opens (and migrates) the store at `url` with `clock`; a failed assertion and null when it
// cannot. An empty URL means the test server is missing: a broken environment, not a skip.
inline std::unique_ptr<store::Storage> open_test_store(const std::string& url, const Clock& clock) {
  EXPECT_FALSE(url.empty()) << "no test database";
  if (url.empty()) return nullptr;
  store::StorageSettings settings;
  settings.url = url;
  store::OpenOptions options;
  options.clock = &clock;
  auto opened = store::open(settings, options);
  EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
  return opened.ok() ? std::move(opened).value() : nullptr;
}

// Checks a failed Result's code and reason together, so a failure says what came back instead.
template <typename T>
::testing::AssertionResult FailsWith(const Result<T>& r, ErrorCode code,
                                     const std::string& reason = "") {
  if (r.ok()) return ::testing::AssertionFailure() << "succeeded; expected an error";
  if (r.error().code != code) {
    return ::testing::AssertionFailure()
           << "code " << static_cast<int>(r.error().code) << ", expected " << static_cast<int>(code)
           << " (" << r.error().message << ")";
  }
  if (!reason.empty() && r.error().reason != reason) {
    return ::testing::AssertionFailure()
           << "reason '" << r.error().reason << "', expected '" << reason << "'";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace parley::testing
