// A thin RAII layer over the SQLite C API: a connection with a cache of prepared statements,
// and a statement cursor. Not thread-safe: one thread uses a Connection at a time (the pools
// in sqlite_store.cpp guarantee it).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"

namespace parley::store::sqlite {

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  // Statements are cached by the connection; leaving scope resets, it does not finalize.
  ~Statement();

  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, int64_t value);
  Statement& bind_optional(int index, const std::optional<std::string>& text);
  Statement& bind_null(int index);
  Statement& bind_double(int index, double value);
  Statement& bind_optional_int(int index, const std::optional<int64_t>& value);
  Statement& bind_blob(int index, std::string_view bytes);

  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int step();

  std::string column_text(int index) const;
  std::optional<std::string> column_optional_text(int index) const;
  int64_t column_int(int index) const;
  std::optional<int64_t> column_optional_int(int index) const;
  double column_double(int index) const;
  bool column_is_null(int index) const;

 private:
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  // Opens (creating if asked) and applies the pragmas every connection needs.
  static Result<std::unique_ptr<Connection>> open(const std::string& path, bool create,
                                                  int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Result<void> exec(const char* sql);
  Result<Statement> prepare(const char* sql);  // cached by the address of `sql`
  int64_t changes() const;
  sqlite3* raw() { return db_; }

  // A storage Error for the connection's last failure: kUnavailable for busy/locked,
  // kInternal otherwise.
  Error last_error(std::string_view what) const;

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

}  // namespace parley::store::sqlite
