// Structured logging: one JSON object per line on stdout,
//   {"time":"2026-11-22T10:00:00.123Z","level":"info","message":"ready","port":8080}
// Lines are buffered and reach stdout in batches (at most 100 ms late; warnings and errors at
// once), so logging a request costs a copy, not a system call. Every line passes through the
// redactor: a configured secret is replaced by "[REDACTED]" wherever it appears, whatever field
// carried it.
//
// Thread-safe. init() must run before the first line; shutdown() flushes and stops the writer.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley::config {
class Schema;
}

namespace parley::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// "trace".."off"; unknown names give kInfo (configuration validates names before this).
Level parse_level(std::string_view name);

struct Field {
  using Value = std::variant<std::string_view, int64_t, uint64_t, double, bool>;
  std::string_view key;
  Value value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, int v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, long v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, long long v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, unsigned v) : key(k), value(static_cast<uint64_t>(v)) {}
  Field(std::string_view k, unsigned long v) : key(k), value(static_cast<uint64_t>(v)) {}
  Field(std::string_view k, unsigned long long v) : key(k), value(static_cast<uint64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};

// `log.level` ("trace", "debug", "info", "warn", "error" or "off").
struct LogSettings {
  std::string level = "info";
};
void declare_settings(config::Schema& schema);

void init(Level level);
void set_level(Level level);
bool enabled(Level level);
// Secrets to redact from every line from now on (replaces the previous list).
void set_secrets(const std::vector<std::string>& secrets);
void shutdown();
// Pushes buffered lines out now (for lifecycle lines a supervisor waits for, like "ready").
void flush();

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
// For lines whose fields are only known at run time (e.g. a route's path parameters).
void write(Level level, std::string_view message, std::span<const Field> fields);

inline void trace(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kTrace, m, f);
}
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kDebug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kInfo, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kWarn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kError, m, f);
}

// Builds the JSON line (without the trailing newline) exactly as write() would print it,
// redaction included; exposed for tests.
std::string format_line(Level level, std::string_view message, std::span<const Field> fields);
inline std::string format_line(Level level, std::string_view message,
                               std::initializer_list<Field> fields) {
  return format_line(level, message, std::span<const Field>(fields.begin(), fields.size()));
}

}  // namespace parley::log
