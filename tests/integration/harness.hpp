// Harness for Parley's black-box integration tests.
//
// Everything here treats the product as an opaque binary (PARLEY_BINARY, overridable at run
// time with the PARLEY_IT_BINARY environment variable): it spawns `parley serve` in a fresh
// temporary data directory, learns the port from the JSON "ready" log line, and talks to it over
// libcurl or raw TCP sockets. One-shot commands (`parley version`, `check-config`, `migrate`, a
// `serve` expected to fail) run through run_parley(). The fake provider (PARLEY_FAKE_UPSTREAM)
// runs the same way, as a child process scripted over HTTP (FakeProvider). Every wait in this
// file is bounded, so a misbehaving server makes a test fail, never hang.
//
// Threading: a ParleyProcess, Child or RawConnection belongs to one thread at a time; http() may
// be called from any number of threads at once. Processes must be spawned from a thread that
// outlives them (the child asks for SIGKILL when the spawning thread exits: PR_SET_PDEATHSIG),
// which in practice means the test's main thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace parley_it {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using EnvVars = std::vector<std::pair<std::string, std::string>>;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Path of the product binary under test.
std::string parley_binary();

// Milliseconds elapsed since `start`.
long long elapsed_ms(Clock::time_point start);

// Polls `condition` every `step` until it returns true or `timeout` passes. Returns the last
// value of `condition` (checked once more at the deadline).
bool eventually(const std::function<bool()>& condition, Millis timeout, Millis step = Millis{20});

// ---------------------------------------------------------------------------------------------
// Temporary directories and files.

// A directory made with mkdtemp under /tmp; removed recursively when destroyed.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "parley-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `path()/name`.
  std::string file(std::string_view name) const;
  // Writes `contents` to `path()/name` and returns the full path.
  std::string write_file(std::string_view name, std::string_view contents) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
bool file_exists(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Child processes.

struct ExitStatus {
  int code = -1;   // exit code when the process exited normally
  int signal = 0;  // terminating signal when it was killed (code is then -1)
  bool exited_with(int c) const { return signal == 0 && code == c; }
  std::string describe() const;
};

// A spawned program with its stdout and stderr collected, line by line, by a background thread.
// The environment is the test runner's minus every PARLEY_* variable (so the developer's shell
// cannot leak configuration into a test), plus `env`. Destruction SIGKILLs and reaps the process
// if it is still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const EnvVars& env, const std::string& cwd,
        std::string stdin_data);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // Reaps the process if it has exited, without waiting.
  std::optional<ExitStatus> poll_exit();
  // Waits up to `timeout` for the process to exit; nullopt if it is still running.
  std::optional<ExitStatus> wait_exit(Millis timeout);
  bool running() { return !poll_exit().has_value(); }
  bool send_signal(int sig);
  // SIGKILL (if still running) and reap.
  void kill9();
  // Waits (bounded) until both output pipes reached EOF, so all output is collected.
  bool wait_output_closed(Millis timeout);

  std::vector<std::string> stdout_lines() const;
  std::vector<std::string> stderr_lines() const;
  std::string stdout_text() const;
  std::string stderr_text() const;
  // Waits until a stdout line at index >= `from` satisfies `pred`; returns that line's index.
  std::optional<size_t> wait_stdout_line(const std::function<bool(const std::string&)>& pred,
                                         size_t from, Millis timeout);

 private:
  void reader_loop();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int in_fd_ = -1;
  std::string stdin_data_;
  std::thread reader_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> out_lines_;
  std::vector<std::string> err_lines_;
  std::string out_partial_;
  std::string err_partial_;
  bool out_eof_ = false;
  bool err_eof_ = false;

  std::mutex reap_mu_;
  std::optional<ExitStatus> exit_;
};

// Members all have initializers so tests can name just the ones they set ({.env = ...}).
struct CommandOptions {
  EnvVars env{};
  std::string cwd{};         // empty: a fresh temporary directory, removed afterwards
  std::string stdin_data{};  // written to the program's stdin, which is then closed
  Millis timeout{15000};
};

struct CommandResult {
  std::optional<ExitStatus> status;  // nullopt when the command timed out (it was SIGKILLed)
  bool timed_out = false;
  std::string out;
  std::string err;
  long long elapsed_ms = 0;
  // Exit code; -1 when killed by a signal or timed out.
  int exit_code() const { return status && status->signal == 0 ? status->code : -1; }
  std::string describe() const;
};

// Runs `argv` (argv[0] is a path) to completion, bounded by opts.timeout.
CommandResult run_program(const std::vector<std::string>& argv, const CommandOptions& opts = {});
// Runs the product binary with `args` as a one-shot command.
CommandResult run_parley(const std::vector<std::string>& args, const CommandOptions& opts = {});

// ---------------------------------------------------------------------------------------------
// A running `parley serve` (or `parley worker`).

struct ServeOptions {
  // "serve", or "worker" (a `parley worker`, its probes on worker.listen: port()).
  std::string command = "serve";
  // Appended after `serve --data-dir DIR --listen 127.0.0.1:0` (a worker:
  // `worker --data-dir DIR --set worker.listen=127.0.0.1:0`).
  std::vector<std::string> args{};
  EnvVars env{};
  // Data directory shared with another ParleyProcess (restart); null: a fresh temp directory.
  std::shared_ptr<TempDir> shared_data_dir{};
  // An existing directory this process must never delete; takes precedence when non-empty.
  std::string existing_data_dir{};
  Millis ready_timeout{15000};
};

class ParleyProcess {
 public:
  // Spawns the server and waits for its "ready" log line. Throws std::runtime_error (with the
  // process's output) when it exits or does not become ready within opts.ready_timeout.
  explicit ParleyProcess(ServeOptions opts = {});
  ~ParleyProcess() = default;
  ParleyProcess(const ParleyProcess&) = delete;
  ParleyProcess& operator=(const ParleyProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  const std::string& data_dir() const { return data_dir_; }
  // The data directory handle, for starting another process on the same data.
  std::shared_ptr<TempDir> shared_data_dir() const { return owned_dir_; }
  // The JSON "ready" line.
  const nlohmann::json& ready_line() const { return ready_; }

  // stdout lines so far (the JSON log).
  std::vector<std::string> logs() const { return child_->stdout_lines(); }
  std::vector<std::string> stderr_lines() const { return child_->stderr_lines(); }
  // stdout lines that parse as JSON objects.
  std::vector<nlohmann::json> json_logs() const;
  // Waits for a JSON log line satisfying `pred`.
  std::optional<nlohmann::json> wait_for_log(const std::function<bool(const nlohmann::json&)>& pred,
                                             Millis timeout) const;
  // Both streams, for failure messages.
  std::string output_dump() const;

  bool send_signal(int sig) { return child_->send_signal(sig); }
  std::optional<ExitStatus> wait_exit(Millis timeout) { return child_->wait_exit(timeout); }
  bool running() { return child_->running(); }
  void kill9() { child_->kill9(); }
  // Waits (bounded) for all output after the process exited.
  void drain_output() { child_->wait_output_closed(Millis{3000}); }

  // Starts a new server on this one's data directory (which stays alive as long as either process
  // holds it). `opts.shared_data_dir`/`existing_data_dir` are overridden. Stop this one first.
  std::unique_ptr<ParleyProcess> restart(ServeOptions opts = {}) const;

 private:
  std::shared_ptr<TempDir> owned_dir_;
  std::string data_dir_;
  std::unique_ptr<Child> child_;
  nlohmann::json ready_;
  int port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// HTTP.

struct Response {
  long status = 0;
  HeaderList headers;  // of the final response, in received order
  std::string body;
  std::string error;  // non-empty when the transfer failed (curl's message)

  // Case-insensitive lookup of the first header called `name`.
  std::optional<std::string> header(std::string_view name) const;
  // The body parsed as JSON; throws nlohmann::json::parse_error when it is not JSON.
  nlohmann::json json() const;
  // Parsed body, or a discarded value when it is not JSON.
  nlohmann::json json_or_discarded() const;
  std::string describe() const;
};

// One HTTP/1.1 request over a fresh connection with libcurl. When `body` is non-empty and no
// Content-Type is given, it is sent as application/json; a header given with an empty value (e.g.
// {"Content-Type", ""}) is removed from the request. Never follows redirects.
Response http(std::string_view method, int port, std::string_view path, std::string_view body = "",
              const HeaderList& headers = {}, Millis timeout = Millis{10000});

// Polls GET /api/v1/admin/jobs/{id} (with `admin`'s credentials) until the job is done or dead,
// or `timeout` passes; answers the last job object seen (null when none could be read).
nlohmann::json wait_for_job(int port, const std::string& job_id, const HeaderList& admin,
                            Millis timeout = Millis{20000});

// Checks the error envelope `{"error":{"type","message","code","request_id"}}`: status, JSON
// content type, non-empty type and message, the expected code (any non-empty code when `code` is
// empty), and request_id equal to the response's X-Request-Id header.
::testing::AssertionResult is_error(const Response& r, long status, std::string_view code = "");

// Case-insensitive ASCII comparison and search.
bool iequals(std::string_view a, std::string_view b);
bool icontains(std::string_view haystack, std::string_view needle);
// Splits a comma-separated header value into trimmed items.
std::vector<std::string> split_list(std::string_view value);

// Parses one HTTP/1.x response from the front of `buf`. Returns nullopt while incomplete; on
// success sets `consumed` to its length. `peer_closed` lets a body delimited by close complete.
std::optional<Response> parse_http_response(std::string_view buf, size_t* consumed,
                                            bool head_request, bool peer_closed);

// Builds "METHOD PATH HTTP/1.1\r\nHost: 127.0.0.1\r\n<headers>\r\n<body>" adding Content-Length
// when a body is given.
std::string raw_request(std::string_view method, std::string_view path,
                        const HeaderList& headers = {}, std::string_view body = "",
                        bool add_content_length = true);

// ---------------------------------------------------------------------------------------------
// Server-sent events.

// The events of a server-sent-events body, in order: (event name, data parsed as JSON). An event
// without an "event:" line has the name ""; the data "[DONE]" becomes the JSON string "[DONE]",
// other data that is not JSON a discarded value. An unterminated last event is left out.
std::vector<std::pair<std::string, nlohmann::json>> sse_events(const std::string& body);

// ---------------------------------------------------------------------------------------------
// The fake provider.

// parley_fake_upstream as a child process: a real HTTP server on a loopback port that speaks
// OpenAI's and Anthropic's JSON and SSE (chat completions, messages, embeddings, moderations),
// with healthy default answers. enqueue() scripts the next reply (the spec is read by
// FakeUpstream::reply_from_json in tests/support/fake_upstream.cpp: status, headers, body,
// pieces, openai_stream, split, delays, stall, path_suffix). The constructor waits for the fake
// to print its port and throws std::runtime_error when it does not start; destruction kills it.
class FakeProvider {
 public:
  FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port>" (a provider's base_url adds "/v1" for the OpenAI format).
  std::string base_url() const;
  // The start of a configuration in front of it: `memory:` and `summary:` (off: they would call
  // the fake after replies), `llm:` (default model fake/fake-model, quick retries, then the
  // lines of `llm_extra`) and `providers:` with "fake" (OpenAI format, model fake-model). More
  // providers' entries, then other sections, may follow.
  std::string base_config(const std::string& llm_extra = "") const;
  // The entry of a second provider on the fake, "fakeant" (Anthropic format, model
  // claude-fake), to follow base_config().
  std::string anthropic_provider() const;

  // Queues a scripted reply; a test assertion fails when the fake refuses the spec.
  void enqueue(const nlohmann::json& spec);
  // Every request received, oldest first: {"method", "path", "headers", "body"} with the body
  // parsed (null when it was not JSON).
  nlohmann::json requests() const;
  int calls() const;
  // Streamed replies whose client (Parley) left before they ended.
  int disconnects() const;

 private:
  TempDir dir_{"parley-fake"};
  std::unique_ptr<Child> child_;
  int port_ = 0;
};

// Bodies for the fake provider and for Parley's chat routes.

// An OpenAI chat.completion the fake can answer with (enqueue({{"body", ...}})).
nlohmann::json openai_completion_body(const std::string& content, int prompt_tokens = 11,
                                      int completion_tokens = 6);
// A one-message /v1/chat/completions request for model fake-model; `user` when non-empty.
std::string openai_chat_request(const std::string& text, bool stream = false,
                                const std::string& user = "");
// POST /api/v1/sessions for `user`, expecting 201 (no credentials: local mode); the new id.
std::string new_session(int port, const std::string& user = "u1");

// ---------------------------------------------------------------------------------------------
// Raw TCP.

enum class ReadOutcome { kData, kTimeout, kClosed, kReset, kError };
const char* to_string(ReadOutcome o);

// A non-blocking TCP connection to 127.0.0.1:port with bounded reads and writes.
class RawConnection {
 public:
  explicit RawConnection(int port, Millis connect_timeout = Millis{5000});
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  // errno of a failed connect (ECONNREFUSED, ETIMEDOUT...), 0 when connected.
  int connect_errno() const { return connect_errno_; }
  int last_errno() const { return last_errno_; }

  // Sends everything within `timeout`; false on error (EPIPE, ECONNRESET) or timeout.
  bool send_all(std::string_view data, Millis timeout = Millis{5000});
  // Waits up to `timeout` for bytes and appends what arrives to buffer().
  ReadOutcome read_some(Millis timeout);
  // Reads until one full response is buffered, the peer closes, or `timeout` passes.
  std::optional<Response> read_response(Millis timeout, bool head_request = false);
  // Reads (keeping data in buffer()) until the peer closes (EOF or reset); true if it did.
  bool wait_closed(Millis timeout);
  // Sends `pieces` one after another, checking after each for bytes from the server (so the test
  // stops sending once the server answered instead of provoking a reset by sending more).
  // Returns true when the server sent something or closed.
  bool send_pieces_until_answer(const std::vector<std::string>& pieces, Millis per_piece_wait);
  void shutdown_write();
  // Shrinks the kernel's receive buffer (SO_RCVBUF), so that a client that stops reading
  // stalls the server's writes quickly.
  void set_receive_buffer(int bytes);
  void close();

  std::string& buffer() { return buf_; }
  bool peer_closed() const { return closed_; }
  bool was_reset() const { return reset_; }

 private:
  int fd_ = -1;
  int connect_errno_ = 0;
  int last_errno_ = 0;
  std::string buf_;
  bool closed_ = false;
  bool reset_ = false;
};

// True when a connect to 127.0.0.1:port is refused (nothing listening).
bool connect_refused(int port);

// A plain GET over a raw connection: "GET path HTTP/1.1" with a Host header.
std::string simple_get(std::string_view path, const HeaderList& extra = {});

// ---------------------------------------------------------------------------------------------
// Prometheus text format.

struct MetricSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  std::optional<std::string> label(std::string_view key) const;
};

// Parses sample lines (comments skipped); returns nullopt on a line it cannot parse.
std::optional<std::vector<MetricSample>> parse_prometheus(std::string_view text,
                                                          std::string* error);

// ---------------------------------------------------------------------------------------------
// SQLite (for checking the product's database from outside).

using Rows = std::vector<std::vector<std::string>>;

// Runs `sql` against the existing database file `path` (never creates one) and returns every row
// as text (NULL as ""). nullopt on error, with the reason in `error`.
std::optional<Rows> sqlite_query(const std::string& path, const std::string& sql,
                                 std::string* error);

}  // namespace parley_it
