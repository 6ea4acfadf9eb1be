// libpq connections, parameters, rows and the pool (see connection.hpp).
#include "store/postgres/connection.hpp"

#include <poll.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace parley::store::postgres {
namespace {

// Beyond this many distinct statement texts a connection runs the rest unprepared, so
// generated SQL (usage grouped by any combination of fields) cannot grow it without bound.
constexpr size_t kMaxPrepared = 256;

// SQLSTATE classes (https://www.postgresql.org/docs/15/errcodes-appendix.html).
bool starts_with(const char* state, const char* prefix) {
  return state && std::strncmp(state, prefix, std::strlen(prefix)) == 0;
}

std::string first_line(const char* text) {
  std::string s = text ? text : "";
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

}  // namespace

// --- Rows ------------------------------------------------------------------------------

int64_t Rows::affected() const {
  const char* n = PQcmdTuples(result_);
  int64_t value = 0;
  if (n && *n) std::from_chars(n, n + std::strlen(n), value);
  return value;
}

std::string Rows::text(int row, int column) const {
  if (is_null(row, column)) return {};
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

std::optional<std::string> Rows::optional_text(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return text(row, column);
}

int64_t Rows::integer(int row, int column) const {
  if (is_null(row, column)) return 0;
  const char* v = PQgetvalue(result_, row, column);
  int64_t value = 0;
  std::from_chars(v, v + PQgetlength(result_, row, column), value);
  return value;
}

std::optional<int64_t> Rows::optional_integer(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return integer(row, column);
}

double Rows::number(int row, int column) const {
  if (is_null(row, column)) return 0;
  // PostgreSQL 12 and later print float8 in the shortest form that reads back exactly.
  return std::strtod(PQgetvalue(result_, row, column), nullptr);
}

bool Rows::boolean(int row, int column) const {
  return !is_null(row, column) && PQgetvalue(result_, row, column)[0] == 't';
}

std::string Rows::bytes(int row, int column) const {
  if (is_null(row, column)) return {};
  size_t length = 0;
  unsigned char* raw = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, column)), &length);
  if (!raw) return {};
  std::string out(reinterpret_cast<const char*>(raw), length);
  PQfreemem(raw);
  return out;
}

// --- Params ----------------------------------------------------------------------------

Params& Params::text(std::string_view value) {
  values_.emplace_back(std::string(value));
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::integer(int64_t value) { return text(std::to_string(value)); }

Params& Params::number(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return text(std::string_view(buf, static_cast<size_t>(end - buf)));
}

Params& Params::boolean(bool value) { return text(value ? "true" : "false"); }

Params& Params::null() {
  values_.emplace_back(std::nullopt);
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::optional_text(const std::optional<std::string>& value) {
  return value ? text(*value) : null();
}

Params& Params::optional_integer(const std::optional<int64_t>& value) {
  return value ? integer(*value) : null();
}

Params& Params::bytes(std::string_view value) {
  values_.emplace_back(std::string(value));
  lengths_.push_back(static_cast<int>(value.size()));
  formats_.push_back(1);
  return *this;
}

Params& Params::text_or_null(std::string_view value) {
  return value.empty() ? null() : text(value);
}

const char* const* Params::values() const {
  pointers_.clear();
  for (const auto& v : values_) pointers_.push_back(v ? v->c_str() : nullptr);
  return pointers_.data();
}

// --- Connection ------------------------------------------------------------------------

std::string describe(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  if (!options) {
    PQfreemem(err);
    return "postgresql (unparsable URL)";
  }
  std::string host, port, dbname;
  for (auto* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    if (std::strcmp(o->keyword, "host") == 0) host = o->val;
    if (std::strcmp(o->keyword, "hostaddr") == 0 && host.empty()) host = o->val;
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
    if (std::strcmp(o->keyword, "dbname") == 0) dbname = o->val;
  }
  PQconninfoFree(options);
  std::string out = "postgresql://" + (host.empty() ? std::string("localhost") : host);
  if (!port.empty()) out += ":" + port;
  out += "/" + dbname;
  return out;
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& url,
                                                     const ConnectOptions& options) {
  // Defaults first: whatever the URL says (connect_timeout, application_name, sslmode, ...)
  // comes after them and wins.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"5", "parley", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!conn) return Error::unavailable("out of memory connecting to PostgreSQL", "storage_down");
  if (PQstatus(conn) != CONNECTION_OK) {
    // libpq's message names host and port, never the password.
    std::string message =
        "cannot connect to " + describe(url) + ": " + first_line(PQerrorMessage(conn));
    PQfinish(conn);
    return Error::unavailable(std::move(message), "storage_down");
  }
  // libpq prints the server's notices to stderr by default; ours are not for the terminal
  // (the errors that matter come back as values).
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  std::unique_ptr<Connection> out(new Connection(conn));
  const std::string settings =
      "SET statement_timeout = " + std::to_string(options.statement_timeout.count()) +
      "; SET lock_timeout = " + std::to_string(options.lock_timeout.count()) +
      "; SET idle_in_transaction_session_timeout = " +
      std::to_string(std::max<int64_t>(options.statement_timeout.count() * 2, 60'000));
  if (auto r = out->exec(settings); !r) return std::move(r).error();
  out->idle_since = std::chrono::steady_clock::now();
  return out;
}

Connection::~Connection() { PQfinish(conn_); }

Error Connection::error_of(PGresult* result, std::string_view what) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // The primary message only: DETAIL may quote row values (a duplicate key's value).
  std::string message = first_line(result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)
                                          : PQerrorMessage(conn_));
  if (message.empty()) message = first_line(PQerrorMessage(conn_));
  message = std::string(what) + ": " + message;
  if (PQstatus(conn_) != CONNECTION_OK || starts_with(state, "08") || starts_with(state, "57P")) {
    broken_ = true;  // lost, or the server is shutting down: never lend it again
    return Error::unavailable("database unreachable: " + message, "storage_down");
  }
  if (starts_with(state, "57014") || starts_with(state, "55P03")) {
    return Error::unavailable("database call timed out: " + message, "storage_timeout");
  }
  if (starts_with(state, "40") || starts_with(state, "53")) {
    return Error::unavailable("database busy: " + message, "storage_busy");
  }
  if (starts_with(state, "23505")) return Error::conflict(message, "conflict");
  return Error::internal(message);
}

Result<Rows> Connection::query(std::string_view sql, const Params& params) {
  PGresult* result = nullptr;
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end() && prepared_.size() < kMaxPrepared) {
    // Appended, not "p" + to_string(): g++ 12 -O3 reports a false -Wstringop-overflow.
    std::string name = "p";
    name += std::to_string(prepared_.size() + 1);
    PGresult* prepared = PQprepare(conn_, name.c_str(), key.c_str(), 0, nullptr);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) {
      Error e = error_of(prepared, "prepare");
      PQclear(prepared);
      return e;
    }
    PQclear(prepared);
    it = prepared_.emplace(key, std::move(name)).first;
  }
  if (it != prepared_.end()) {
    result = PQexecPrepared(conn_, it->second.c_str(), params.size(), params.values(),
                            params.lengths(), params.formats(), 0);
  } else {
    result = PQexecParams(conn_, key.c_str(), params.size(), nullptr, params.values(),
                          params.lengths(), params.formats(), 0);
  }
  const auto status = PQresultStatus(result);
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return Rows(result);
  Error e = error_of(result, "query");
  PQclear(result);
  return e;
}

Result<void> Connection::exec(std::string_view sql) {
  std::string text(sql);
  PGresult* result = PQexec(conn_, text.c_str());
  const auto status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    PQclear(result);
    return success();
  }
  Error e = error_of(result, "statement");
  PQclear(result);
  return e;
}

bool Connection::closed_by_server() {
  if (broken()) return true;
  const int fd = PQsocket(conn_);
  if (fd < 0) return true;
  pollfd p{fd, POLLIN, 0};
  // An idle pool connection (never LISTENing) has nothing to read: anything there is the
  // server's goodbye ("terminating connection ...") or the end of the stream.
  return ::poll(&p, 1, 0) != 0;
}

// --- Pool ------------------------------------------------------------------------------

Pool::Pool(std::string url, ConnectOptions options, int size, std::chrono::milliseconds wait)
    : url_(std::move(url)), options_(options), size_(std::max(1, size)), wait_(wait) {}

int Pool::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}

Result<Pool::Lease> Pool::borrow() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + wait_;
  for (;;) {
    if (closed_) return Error::unavailable("storage is closed", "storage_closed");
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (!conn->closed_by_server()) return Lease(this, std::move(conn));
      --open_;  // dropped; the loop may open a fresh one below
    }
    if (open_ < size_) break;
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= size_) {
      return Error::unavailable("no database connection free within " +
                                    std::to_string(wait_.count()) + " ms (storage.pool_size " +
                                    std::to_string(size_) + ")",
                                "storage_busy");
    }
  }
  ++open_;
  lock.unlock();
  auto conn = Connection::open(url_, options_);
  if (!conn) {
    lock.lock();
    --open_;
    available_.notify_one();
    return std::move(conn).error();
  }
  return Lease(this, std::move(*conn));
}

void Pool::give_back(std::unique_ptr<Connection> conn) {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || conn->broken()) {
      --open_;
      conn.reset();
    } else {
      conn->idle_since = std::chrono::steady_clock::now();
      idle_.push_back(std::move(conn));
    }
  }
  available_.notify_one();
}

void Pool::close() {
  std::vector<std::unique_ptr<Connection>> idle;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    open_ -= static_cast<int>(idle_.size());
    idle.swap(idle_);
  }
  available_.notify_all();
}

}  // namespace parley::store::postgres
