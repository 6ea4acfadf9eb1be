// Logging implementation over spdlog. spdlog owns the queue, the writer thread and the sink;
// we own the line format (JSON) and redaction, done before a line is queued.
#include "obs/log.hpp"

#include <atomic>
#include <charconv>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include <condition_variable>
#include <thread>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"

namespace parley::log {
namespace {

constexpr std::string_view kRedacted = "[REDACTED]";

constexpr auto kFlushInterval = std::chrono::milliseconds(100);

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::shared_ptr<spdlog::logger> g_logger;  // set once by init()

// Lines go into stdio's buffer under the sink's mutex (a memcpy, no system call); the buffer
// reaches stdout when it fills, every kFlushInterval, at once for warnings and errors, and on
// flush(). One write(2) per request would cost more than the request itself.
class BufferedStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::fwrite(msg.payload.data(), 1, msg.payload.size(), stdout);
    std::fputc('\n', stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

// Flushes the logger every kFlushInterval so that a quiet server's last lines still appear.
class Flusher {
 public:
  void start() {
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!stop_) {
        wake_.wait_for(lock, kFlushInterval);
        if (g_logger) g_logger->flush();
      }
    });
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};
Flusher g_flusher;

struct Redactor {
  std::shared_mutex mutex;
  // Each secret both as given and as it looks once JSON-escaped, longest first so that a
  // secret containing another is replaced whole.
  std::vector<std::string> needles;
};
Redactor& redactor() {
  static Redactor r;
  return r;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

void append_value(std::string& out, const Field::Value& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          out.push_back('"');
          append_json_escaped(out, v);
          out.push_back('"');
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          char buf[32];
          auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
          out.append(buf, ec == std::errc() ? ptr : buf);
        } else {
          char buf[24];
          auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
          out.append(buf, ptr);
        }
      },
      value);
}

void redact(std::string& line) {
  auto& r = redactor();
  std::shared_lock lock(r.mutex);
  for (const auto& needle : r.needles) {
    size_t pos = 0;
    while ((pos = line.find(needle, pos)) != std::string::npos) {
      line.replace(pos, needle.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

Level parse_level(std::string_view name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return Level::kInfo;
}

namespace {

void append_line(std::string& line, Level level, std::string_view message,
                 std::span<const Field> fields) {
  line += "{\"time\":\"";
  append_utc_ms(line, to_unix_ms(Clock::system().now()));
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"message\":\"";
  append_json_escaped(line, message);
  line.push_back('"');
  for (const auto& f : fields) {
    line += ",\"";
    append_json_escaped(line, f.key);
    line += "\":";
    append_value(line, f.value);
  }
  line.push_back('}');
  redact(line);
}

}  // namespace

std::string format_line(Level level, std::string_view message, std::span<const Field> fields) {
  std::string line;
  line.reserve(160);
  append_line(line, level, message, fields);
  return line;
}

void init(Level level) {
  if (!g_logger) {
    static char buffer[64 * 1024];
    std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
    g_logger = std::make_shared<spdlog::logger>("parley", std::make_shared<BufferedStdoutSink>());
    g_logger->set_level(spdlog::level::trace);
    g_logger->flush_on(spdlog::level::warn);
    g_flusher.start();
  }
  set_level(level);
}

void flush() {
  if (g_logger) g_logger->flush();
}

// Filtering happens once, in write(), against g_level; the spdlog logger passes everything.
void set_level(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool enabled(Level level) {
  return level != Level::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void set_secrets(const std::vector<std::string>& secrets) {
  std::vector<std::string> needles;
  for (const auto& s : secrets) {
    if (s.size() < 4) continue;  // too short to redact without mangling ordinary text
    needles.push_back(s);
    std::string escaped;
    append_json_escaped(escaped, s);
    if (escaped != s) needles.push_back(escaped);
  }
  std::sort(needles.begin(), needles.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  auto& r = redactor();
  std::unique_lock lock(r.mutex);
  r.needles = std::move(needles);
}

void shutdown() {
  if (!g_logger) return;
  g_flusher.stop();
  g_logger->flush();
  g_logger.reset();
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  write(level, message, std::span<const Field>(fields.begin(), fields.size()));
}

void write(Level level, std::string_view message, std::span<const Field> fields) {
  if (!enabled(level)) return;
  // Each thread builds its lines in one buffer that keeps its capacity: no allocation per line.
  thread_local std::string line;
  line.clear();
  append_line(line, level, message, fields);
  if (g_logger) {
    g_logger->log(to_spdlog(level), spdlog::string_view_t(line.data(), line.size()));
  } else {
    // Before init() (or after shutdown()): write straight to stderr so nothing is lost.
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

}  // namespace parley::log
