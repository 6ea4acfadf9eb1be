// A thin RAII layer over libpq: a connection that prepares each statement once (by its text)
// and reuses it, the rows of a result, typed parameters, and a bounded pool of connections.
// Blocking, like every storage call (store/store.hpp): used from the blocking pool only.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"

namespace parley::store::postgres {

// The rows of one statement's result, read as text (the default wire format) and converted.
class Rows {
 public:
  explicit Rows(PGresult* result) : result_(result) {}
  Rows(Rows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Rows& operator=(Rows&& other) noexcept {
    if (this != &other) {
      PQclear(result_);
      result_ = other.result_;
      other.result_ = nullptr;
    }
    return *this;
  }
  Rows(const Rows&) = delete;
  ~Rows() { PQclear(result_); }

  int size() const { return PQntuples(result_); }
  bool empty() const { return size() == 0; }
  // Rows an INSERT, UPDATE or DELETE touched.
  int64_t affected() const;

  bool is_null(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }
  std::string text(int row, int column) const;  // "" for NULL
  std::optional<std::string> optional_text(int row, int column) const;
  int64_t integer(int row, int column) const;  // 0 for NULL
  std::optional<int64_t> optional_integer(int row, int column) const;
  double number(int row, int column) const;
  bool boolean(int row, int column) const;
  std::string bytes(int row, int column) const;  // a bytea column, unescaped

 private:
  PGresult* result_;
};

// Parameters $1, $2, ... in order. Text format except bytes(), which goes in binary so any
// byte survives.
class Params {
 public:
  Params& text(std::string_view value);
  Params& integer(int64_t value);
  Params& number(double value);
  Params& boolean(bool value);
  Params& null();
  Params& optional_text(const std::optional<std::string>& value);
  Params& optional_integer(const std::optional<int64_t>& value);
  Params& bytes(std::string_view value);
  // Empty text as NULL (columns where "none" is stored as NULL).
  Params& text_or_null(std::string_view value);

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const;
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  mutable std::vector<const char*> pointers_;
};

struct ConnectOptions {
  std::chrono::milliseconds statement_timeout{30'000};
  std::chrono::milliseconds lock_timeout{5'000};
};

class Connection {
 public:
  // `url` is a libpq connection URI (postgresql://...). Failures name the server (host, port,
  // database) but never the password.
  static Result<std::unique_ptr<Connection>> open(const std::string& url,
                                                  const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with parameters, prepared on this connection the first time its text is
  // seen (up to a bounded number of texts; beyond that it runs unprepared).
  Result<Rows> query(std::string_view sql, const Params& params = {});
  // Statements without parameters, several allowed (migrations, BEGIN, COMMIT).
  Result<void> exec(std::string_view sql);

  // True once the connection to the server is lost; the pool then drops it.
  bool broken() const { return PQstatus(conn_) != CONNECTION_OK || broken_; }
  // Without blocking: whether the server closed this idle connection (it restarted, or an
  // administrator ended it). Such a connection is dropped before it is lent.
  bool closed_by_server();

  std::chrono::steady_clock::time_point idle_since;

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  Error error_of(PGresult* result, std::string_view what);
  PGconn* conn_;
  bool broken_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // text -> statement name
};

// At most `size` connections, opened when first needed and lent one at a time. A caller that
// finds none free waits up to `wait`, then gets kUnavailable. A broken connection is dropped
// when it comes back, and a new one opened on the next borrow: when the server restarts,
// service resumes without a restart of ours.
class Pool {
 public:
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ && conn_) pool_->give_back(std::move(conn_));
    }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  Pool(std::string url, ConnectOptions options, int size, std::chrono::milliseconds wait);
  Result<Lease> borrow();
  int size() const { return size_; }
  int open_connections() const;
  // Closes the idle connections and refuses new borrows.
  void close();

 private:
  void give_back(std::unique_ptr<Connection> conn);
  const std::string url_;
  const ConnectOptions options_;
  const int size_;
  const std::chrono::milliseconds wait_;
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // lent + idle + being opened
  bool closed_ = false;
};

// BEGIN on a leased connection; ROLLBACK unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& conn, std::string_view begin = "BEGIN")
      : conn_(conn), begun_(conn.exec(begin)) {}
  ~Transaction() {
    if (begun_ && !committed_) (void)conn_.exec("ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const Result<void>& begun() const { return begun_; }
  Result<void> commit() {
    auto r = conn_.exec("COMMIT");
    committed_ = r.ok();
    return r;
  }

 private:
  Connection& conn_;
  Result<void> begun_;
  bool committed_ = false;
};

// host:port/database of a PostgreSQL URL, for messages and stats (never the password).
std::string describe(const std::string& url);

}  // namespace parley::store::postgres
