// Implementation of the integration-test harness (see harness.hpp): process spawning with
// fork/exec and piped output, a libcurl HTTP client, raw non-blocking sockets, the fake provider
// as a child process, and small parsers for HTTP/1.1 responses, server-sent events and the
// Prometheus text format.
#include "harness.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#ifndef PARLEY_BINARY
#error "PARLEY_BINARY must be defined by the build (path of the parley executable)"
#endif
#ifndef PARLEY_FAKE_UPSTREAM
#error "PARLEY_FAKE_UPSTREAM must be defined by the build (path of parley_fake_upstream)"
#endif

extern char** environ;

namespace parley_it {
namespace {

// Process-wide setup that must happen before any test thread exists: curl's global state, and
// ignoring SIGPIPE so a server closing a socket or pipe on us is an error value, not a crash.
struct GlobalInit {
  GlobalInit() {
    curl_global_init(CURL_GLOBAL_ALL);
    ::signal(SIGPIPE, SIG_IGN);
  }
};
const GlobalInit global_init;

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

std::string parley_binary() {
  if (const char* over = std::getenv("PARLEY_IT_BINARY"); over != nullptr && *over != '\0') {
    return over;
  }
  return PARLEY_BINARY;
}

long long elapsed_ms(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start).count();
}

bool eventually(const std::function<bool()>& condition, Millis timeout, Millis step) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(step);
  }
  return condition();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (iequals(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    auto item = trim(value.substr(start, comma - start));
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// TempDir

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl = "/tmp/" + std::string(prefix) + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  // Restore permissions a test may have removed, so removal cannot fail half-way.
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(std::string_view name) const { return path_ + "/" + std::string(name); }

std::string TempDir::write_file(std::string_view name, std::string_view contents) const {
  std::string p = file(name);
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!f) throw std::runtime_error("cannot write " + p);
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// ---------------------------------------------------------------------------------------------
// Child

std::string ExitStatus::describe() const {
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit code " + std::to_string(code);
}

Child::Child(const std::vector<std::string>& argv, const EnvVars& env, const std::string& cwd,
             std::string stdin_data)
    : stdin_data_(std::move(stdin_data)) {
  if (argv.empty()) throw std::invalid_argument("Child: empty argv");

  // Everything the child needs is prepared before fork: after fork only async-signal-safe calls
  // are allowed, because other threads of this process may hold locks (malloc's included).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("PARLEY_")) continue;  // never leak the runner's configuration
    auto eq = entry.find('=');
    auto key = entry.substr(0, eq);
    bool overridden =
        std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == key; });
    if (!overridden) env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  std::vector<char*> argvp;
  for (auto& s : argv_copy) argvp.push_back(s.data());
  argvp.push_back(nullptr);
  const char* cwd_c = cwd.empty() ? nullptr : cwd.c_str();

  int out[2];
  int err[2];
  int in[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Child. Die with the spawning thread, so an aborted test run leaves no server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    // Close every other descriptor (sockets and pipes of other tests must not leak in).
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
    // Ignored signals and the signal mask survive exec: give the product a clean slate.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (cwd_c != nullptr && ::chdir(cwd_c) != 0) ::_exit(126);
    ::execve(argvp[0], argvp.data(), envp.data());
    const char msg[] = "harness: execve failed\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    ::_exit(127);
  }

  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  in_fd_ = in[1];
  set_nonblocking(out_fd_);
  set_nonblocking(err_fd_);
  set_nonblocking(in_fd_);
  if (stdin_data_.empty()) {
    ::close(in_fd_);
    in_fd_ = -1;
  }
  reader_ = std::thread([this] { reader_loop(); });
}

Child::~Child() {
  kill9();
  wait_output_closed(Millis{2000});
  stop_ = true;
  if (reader_.joinable()) reader_.join();
  for (int fd : {out_fd_, err_fd_, in_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void Child::reader_loop() {
  size_t in_off = 0;
  std::vector<char> buf(1 << 16);
  auto append = [this](std::string& partial, std::vector<std::string>& lines, const char* data,
                       size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    partial.append(data, n);
    size_t pos;
    while ((pos = partial.find('\n')) != std::string::npos) {
      std::string line = partial.substr(0, pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
      partial.erase(0, pos + 1);
    }
    cv_.notify_all();
  };
  auto finish = [this](int& fd, std::string& partial, std::vector<std::string>& lines, bool& eof) {
    ::close(fd);
    fd = -1;
    std::lock_guard<std::mutex> lock(mu_);
    if (!partial.empty()) lines.push_back(std::move(partial));
    partial.clear();
    eof = true;
    cv_.notify_all();
  };

  while (!stop_) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1;
    int err_i = -1;
    int in_i = -1;
    if (out_fd_ >= 0) {
      out_i = n;
      fds[n++] = {out_fd_, POLLIN, 0};
    }
    if (err_fd_ >= 0) {
      err_i = n;
      fds[n++] = {err_fd_, POLLIN, 0};
    }
    if (in_fd_ >= 0) {
      in_i = n;
      fds[n++] = {in_fd_, POLLOUT, 0};
    }
    if (n == 0) break;
    int r = ::poll(fds, static_cast<nfds_t>(n), 50);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) continue;
    auto drain = [&](int idx, int& fd, std::string& partial, std::vector<std::string>& lines,
                     bool& eof) {
      if (idx < 0 || fds[idx].revents == 0) return;
      while (true) {
        ssize_t got = ::read(fd, buf.data(), buf.size());
        if (got > 0) {
          append(partial, lines, buf.data(), static_cast<size_t>(got));
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
        finish(fd, partial, lines, eof);  // EOF or error
        return;
      }
    };
    drain(out_i, out_fd_, out_partial_, out_lines_, out_eof_);
    drain(err_i, err_fd_, err_partial_, err_lines_, err_eof_);
    if (in_i >= 0 && fds[in_i].revents != 0) {
      ssize_t w = ::write(in_fd_, stdin_data_.data() + in_off, stdin_data_.size() - in_off);
      if (w > 0) in_off += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off >= stdin_data_.size()) {
        ::close(in_fd_);
        in_fd_ = -1;
      }
    }
  }
}

std::optional<ExitStatus> Child::poll_exit() {
  std::lock_guard<std::mutex> lock(reap_mu_);
  if (exit_) return exit_;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    ExitStatus es;
    if (WIFEXITED(st)) es.code = WEXITSTATUS(st);
    if (WIFSIGNALED(st)) es.signal = WTERMSIG(st);
    exit_ = es;
  }
  return exit_;
}

std::optional<ExitStatus> Child::wait_exit(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (auto st = poll_exit()) return st;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Millis{5});
  }
}

bool Child::send_signal(int sig) {
  if (poll_exit()) return false;  // never signal a reaped pid: it may have been reused
  return ::kill(pid_, sig) == 0;
}

void Child::kill9() {
  if (poll_exit()) return;
  ::kill(pid_, SIGKILL);
  wait_exit(Millis{10000});
}

bool Child::wait_output_closed(Millis timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return out_eof_ && err_eof_; });
}

std::vector<std::string> Child::stdout_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_lines_;
}

std::vector<std::string> Child::stderr_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto lines = err_lines_;
  if (!err_partial_.empty()) lines.push_back(err_partial_);
  return lines;
}

std::string Child::stdout_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  for (const auto& l : out_lines_) s += l + "\n";
  return s + out_partial_;
}

std::string Child::stderr_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  for (const auto& l : err_lines_) s += l + "\n";
  return s + err_partial_;
}

std::optional<size_t> Child::wait_stdout_line(const std::function<bool(const std::string&)>& pred,
                                              size_t from, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  size_t next = from;
  while (true) {
    for (; next < out_lines_.size(); ++next) {
      if (pred(out_lines_[next])) return next;
    }
    if (out_eof_) return std::nullopt;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (; next < out_lines_.size(); ++next) {
        if (pred(out_lines_[next])) return next;
      }
      return std::nullopt;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One-shot commands

std::string CommandResult::describe() const {
  std::ostringstream ss;
  ss << (timed_out ? std::string("TIMED OUT")
         : status  ? status->describe()
                   : std::string("?"))
     << " after " << elapsed_ms << " ms\n--- stdout ---\n"
     << out.substr(0, 8000) << "\n--- stderr ---\n"
     << err.substr(0, 8000) << "\n";
  return ss.str();
}

CommandResult run_program(const std::vector<std::string>& argv, const CommandOptions& opts) {
  std::unique_ptr<TempDir> tmp;
  std::string cwd = opts.cwd;
  if (cwd.empty()) {
    tmp = std::make_unique<TempDir>("parley-cwd");
    cwd = tmp->path();
  }
  CommandResult r;
  const auto start = Clock::now();
  Child child(argv, opts.env, cwd, opts.stdin_data);
  r.status = child.wait_exit(opts.timeout);
  if (!r.status) {
    r.timed_out = true;
    child.kill9();
  }
  r.elapsed_ms = elapsed_ms(start);
  child.wait_output_closed(Millis{3000});
  r.out = child.stdout_text();
  r.err = child.stderr_text();
  return r;
}

CommandResult run_parley(const std::vector<std::string>& args, const CommandOptions& opts) {
  std::vector<std::string> argv{parley_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, opts);
}

// ---------------------------------------------------------------------------------------------
// ParleyProcess

namespace {

bool is_ready_line(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  const std::string message = j.is_object() ? j.value("message", "") : "";
  return (message == "ready" || message == "worker ready") && j.contains("port") &&
         j["port"].is_number_integer() && j["port"].get<int>() > 0;
}

}  // namespace

ParleyProcess::ParleyProcess(ServeOptions opts) {
  if (!opts.existing_data_dir.empty()) {
    data_dir_ = opts.existing_data_dir;
  } else {
    owned_dir_ =
        opts.shared_data_dir ? opts.shared_data_dir : std::make_shared<TempDir>("parley-data");
    data_dir_ = owned_dir_->path();
  }
  std::vector<std::string> argv{parley_binary(), opts.command, "--data-dir", data_dir_};
  if (opts.command == "serve") {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  } else {
    argv.insert(argv.end(), {"--set", "worker.listen=127.0.0.1:0"});
  }
  argv.insert(argv.end(), opts.args.begin(), opts.args.end());
  child_ = std::make_unique<Child>(argv, opts.env, data_dir_, "");

  const auto deadline = Clock::now() + opts.ready_timeout;
  while (true) {
    if (auto idx = child_->wait_stdout_line(is_ready_line, 0, Millis{50})) {
      ready_ = nlohmann::json::parse(child_->stdout_lines().at(*idx));
      port_ = ready_["port"].get<int>();
      return;
    }
    // wait_stdout_line returns at once after stdout closed; do not spin.
    std::this_thread::sleep_for(Millis{5});
    if (auto st = child_->poll_exit()) {
      child_->wait_output_closed(Millis{2000});
      throw std::runtime_error("parley " + opts.command + " exited before ready (" +
                               st->describe() + ")\n" + output_dump());
    }
    if (Clock::now() >= deadline) {
      throw std::runtime_error("parley " + opts.command + " not ready within " +
                               std::to_string(opts.ready_timeout.count()) + " ms\n" +
                               output_dump());
    }
  }
}

std::vector<nlohmann::json> ParleyProcess::json_logs() const {
  std::vector<nlohmann::json> out;
  for (const auto& line : logs()) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::optional<nlohmann::json> ParleyProcess::wait_for_log(
    const std::function<bool(const nlohmann::json&)>& pred, Millis timeout) const {
  auto idx = child_->wait_stdout_line(
      [&](const std::string& line) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        return j.is_object() && pred(j);
      },
      0, timeout);
  if (!idx) return std::nullopt;
  return nlohmann::json::parse(child_->stdout_lines().at(*idx));
}

std::string ParleyProcess::output_dump() const {
  std::string s = "--- parley stdout ---\n";
  auto out = child_->stdout_text();
  s += out.size() > 12000 ? "..." + out.substr(out.size() - 12000) : out;
  s += "\n--- parley stderr ---\n";
  auto err = child_->stderr_text();
  s += err.size() > 6000 ? "..." + err.substr(err.size() - 6000) : err;
  return s;
}

std::unique_ptr<ParleyProcess> ParleyProcess::restart(ServeOptions opts) const {
  opts.shared_data_dir = owned_dir_;
  opts.existing_data_dir = owned_dir_ ? std::string() : data_dir_;
  return std::make_unique<ParleyProcess>(std::move(opts));
}

// ---------------------------------------------------------------------------------------------
// HTTP over libcurl

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

nlohmann::json Response::json() const { return nlohmann::json::parse(body); }

nlohmann::json Response::json_or_discarded() const {
  return nlohmann::json::parse(body, nullptr, false);
}

std::string Response::describe() const {
  std::ostringstream ss;
  ss << "HTTP " << status;
  if (!error.empty()) ss << " (transfer error: " << error << ")";
  ss << "\n";
  for (const auto& [k, v] : headers) ss << "  " << k << ": " << v << "\n";
  ss << "  body: " << body.substr(0, 3000) << (body.size() > 3000 ? "..." : "") << "\n";
  return ss.str();
}

namespace {

size_t curl_write(char* ptr, size_t size, size_t nmemb, void* userdata) {
  static_cast<std::string*>(userdata)->append(ptr, size * nmemb);
  return size * nmemb;
}

size_t curl_header(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* r = static_cast<Response*>(userdata);
  std::string_view line(buffer, size * nitems);
  line = trim(line);
  if (line.starts_with("HTTP/")) {
    r->headers.clear();  // a new response starts (e.g. after "100 Continue")
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    r->headers.emplace_back(std::string(trim(line.substr(0, colon))),
                            std::string(trim(line.substr(colon + 1))));
  }
  return size * nitems;
}

}  // namespace

nlohmann::json wait_for_job(int port, const std::string& job_id, const HeaderList& admin,
                            Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json job;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = http("GET", port, "/api/v1/admin/jobs/" + job_id, "", admin);
    if (r.status == 200) {
      job = r.json();
      if (job["state"] == "done" || job["state"] == "dead") return job;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return job;
}

Response http(std::string_view method, int port, std::string_view path, std::string_view body,
              const HeaderList& headers, Millis timeout) {
  Response r;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    r.error = "curl_easy_init failed";
    return r;
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port) + std::string(path);
  std::string method_s(method);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, curl_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, curl_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r);

  bool has_content_type = false;
  bool has_expect = false;
  curl_slist* list = nullptr;
  for (const auto& [k, v] : headers) {
    if (iequals(k, "Content-Type")) has_content_type = true;
    if (iequals(k, "Expect")) has_expect = true;
    // "Name:" with nothing after it tells curl to drop the header.
    std::string line = v.empty() ? k + ":" : k + ": " + v;
    list = curl_slist_append(list, line.c_str());
  }
  if (!body.empty() && !has_content_type) {
    list = curl_slist_append(list, "Content-Type: application/json");
  }
  // No "Expect: 100-continue" round trip: requests go out in one piece, like most clients'.
  if (!has_expect) list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

  if (method_s == "GET" && body.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method_s == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_s.c_str());
    if (!body.empty() || method_s == "POST" || method_s == "PUT" || method_s == "PATCH") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }

  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  if (rc != CURLE_OK) {
    r.error = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? ": " + std::string(errbuf) : "");
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return r;
}

::testing::AssertionResult is_error(const Response& r, long status, std::string_view code) {
  auto fail = [&r]() { return ::testing::AssertionFailure() << "\n" << r.describe(); };
  if (!r.error.empty()) return fail() << "transfer failed";
  if (r.status != status) return fail() << "status " << r.status << ", expected " << status;
  auto ct = r.header("Content-Type");
  if (!ct || !icontains(*ct, "application/json")) {
    return fail() << "error response Content-Type is not application/json";
  }
  auto j = r.json_or_discarded();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) {
    return fail() << "body is not {\"error\":{...}}";
  }
  const auto& e = j["error"];
  for (const char* field : {"type", "message", "code", "request_id"}) {
    if (!e.contains(field) || !e[field].is_string() || e[field].get<std::string>().empty()) {
      return fail() << "error." << field << " missing, empty or not a string";
    }
  }
  if (!code.empty() && e["code"].get<std::string>() != code) {
    return fail() << "error.code is \"" << e["code"].get<std::string>() << "\", expected \"" << code
                  << "\"";
  }
  auto rid = r.header("X-Request-Id");
  if (!rid) return fail() << "no X-Request-Id header";
  if (*rid != e["request_id"].get<std::string>()) {
    return fail() << "error.request_id differs from the X-Request-Id header";
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP parsing

namespace {

std::optional<long long> parse_decimal(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// Parses a chunked body starting at `pos`; returns the offset just past it or nullopt.
std::optional<size_t> parse_chunked(std::string_view buf, size_t pos, std::string* body) {
  while (true) {
    size_t eol = buf.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view size_line = buf.substr(pos, eol - pos);
    if (auto semi = size_line.find(';'); semi != std::string_view::npos) {
      size_line = size_line.substr(0, semi);
    }
    size_line = trim(size_line);
    if (size_line.empty()) return std::nullopt;
    size_t size = 0;
    for (char c : size_line) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
      size = size * 16 + static_cast<size_t>(std::isdigit(static_cast<unsigned char>(c))
                                                 ? c - '0'
                                                 : lower(c) - 'a' + 10);
    }
    pos = eol + 2;
    if (size == 0) {
      // Trailers, then an empty line.
      while (true) {
        size_t end = buf.find("\r\n", pos);
        if (end == std::string_view::npos) return std::nullopt;
        bool empty = end == pos;
        pos = end + 2;
        if (empty) return pos;
      }
    }
    if (buf.size() < pos + size + 2) return std::nullopt;
    body->append(buf.substr(pos, size));
    pos += size + 2;
  }
}

}  // namespace

std::optional<Response> parse_http_response(std::string_view buf, size_t* consumed,
                                            bool head_request, bool peer_closed) {
  size_t start = 0;
  while (true) {
    size_t end = buf.find("\r\n\r\n", start);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view head = buf.substr(start, end - start);
    size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) return std::nullopt;
    auto code = parse_decimal(status_line.substr(9, 3));
    if (!code) return std::nullopt;
    Response r;
    r.status = static_cast<long>(*code);
    if (line_end != std::string_view::npos) {
      std::string_view rest = head.substr(line_end + 2);
      while (!rest.empty()) {
        size_t eol = rest.find("\r\n");
        std::string_view line = rest.substr(0, eol);
        if (auto colon = line.find(':'); colon != std::string_view::npos) {
          r.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                                 std::string(trim(line.substr(colon + 1))));
        }
        if (eol == std::string_view::npos) break;
        rest = rest.substr(eol + 2);
      }
    }
    size_t body_start = end + 4;
    if (r.status >= 100 && r.status < 200 && r.status != 101) {
      start = body_start;  // interim response: the real one follows
      continue;
    }
    if (head_request || r.status == 204 || r.status == 304) {
      *consumed = body_start;
      return r;
    }
    auto te = r.header("Transfer-Encoding");
    if (te && icontains(*te, "chunked")) {
      auto past = parse_chunked(buf, body_start, &r.body);
      if (!past) return std::nullopt;
      *consumed = *past;
      return r;
    }
    if (auto cl = r.header("Content-Length")) {
      auto len = parse_decimal(*cl);
      if (!len) return std::nullopt;
      if (buf.size() < body_start + static_cast<size_t>(*len)) return std::nullopt;
      r.body = std::string(buf.substr(body_start, static_cast<size_t>(*len)));
      *consumed = body_start + static_cast<size_t>(*len);
      return r;
    }
    if (!peer_closed) return std::nullopt;  // body delimited by connection close
    r.body = std::string(buf.substr(body_start));
    *consumed = buf.size();
    return r;
  }
}

std::string raw_request(std::string_view method, std::string_view path, const HeaderList& headers,
                        std::string_view body, bool add_content_length) {
  std::string s;
  s.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [k, v] : headers) s.append(k).append(": ").append(v).append("\r\n");
  if (!body.empty() && add_content_length) {
    s.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  s.append("\r\n").append(body);
  return s;
}

std::string simple_get(std::string_view path, const HeaderList& extra) {
  return raw_request("GET", path, extra);
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

std::vector<std::pair<std::string, nlohmann::json>> sse_events(const std::string& body) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    std::string name, data;
    size_t line_start = 0;
    while (line_start <= block.size()) {
      auto nl = block.find('\n', line_start);
      std::string line =
          block.substr(line_start, nl == std::string::npos ? std::string::npos : nl - line_start);
      if (line.rfind("event: ", 0) == 0) name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
      if (nl == std::string::npos) break;
      line_start = nl + 1;
    }
    out.emplace_back(name, data == "[DONE]" ? nlohmann::json("[DONE]")
                                            : nlohmann::json::parse(data, nullptr, false));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// FakeProvider

FakeProvider::FakeProvider() {
  child_ = std::make_unique<Child>(std::vector<std::string>{PARLEY_FAKE_UPSTREAM}, EnvVars{},
                                   dir_.path(), "");
  auto line = child_->wait_stdout_line(
      [](const std::string& l) { return l.find("\"port\"") != std::string::npos; }, 0,
      Millis{10000});
  if (!line) throw std::runtime_error("fake upstream did not start: " + child_->stderr_text());
  port_ = nlohmann::json::parse(child_->stdout_lines().at(*line))["port"].get<int>();
}

std::string FakeProvider::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FakeProvider::enqueue(const nlohmann::json& spec) {
  auto r = http("POST", port_, "/_fake/replies", spec.dump());
  ASSERT_EQ(r.status, 200) << r.describe();
}

nlohmann::json openai_completion_body(const std::string& content, int prompt_tokens,
                                      int completion_tokens) {
  return {{"id", "chatcmpl-fake"},
          {"object", "chat.completion"},
          {"created", 1},
          {"model", "fake-model"},
          {"choices",
           {{{"index", 0},
             {"message", {{"role", "assistant"}, {"content", content}}},
             {"finish_reason", "stop"}}}},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}}}};
}

std::string openai_chat_request(const std::string& text, bool stream, const std::string& user) {
  nlohmann::json body = {{"model", "fake-model"},
                         {"messages", {{{"role", "user"}, {"content", text}}}}};
  if (stream) body["stream"] = true;
  if (!user.empty()) body["user"] = user;
  return body.dump();
}

std::string new_session(int port, const std::string& user) {
  auto r = http("POST", port, "/api/v1/sessions", R"({"user_id":")" + user + R"("})");
  EXPECT_EQ(r.status, 201) << r.describe();
  return r.json_or_discarded().value("id", "");
}

std::string FakeProvider::base_config(const std::string& llm_extra) const {
  // Memory extraction and summaries off: with a model configured each is one more call to the
  // fake after a reply, which would take replies a test queued for its next turn. Their own
  // tests turn them on (--set memory.enabled=true, --set summary.enabled=true).
  return "memory:\n"
         "  enabled: false\n"
         "summary:\n"
         "  enabled: false\n"
         "llm:\n"
         "  default_model: fake/fake-model\n"
         "  retry_backoff: 5ms\n"
         "  retry_backoff_max: 20ms\n" +
         llm_extra +
         "providers:\n"
         "  fake:\n"
         "    type: openai\n"
         "    base_url: " +
         base_url() +
         "/v1\n"
         "    api_key: sk-fake-key\n"
         "    models: [fake-model]\n";
}

std::string FakeProvider::anthropic_provider() const {
  return "  fakeant:\n"
         "    type: anthropic\n"
         "    base_url: " +
         base_url() +
         "\n"
         "    api_key: sk-ant-fake\n"
         "    models: [claude-fake]\n";
}

nlohmann::json FakeProvider::requests() const {
  return http("GET", port_, "/_fake/requests").json()["requests"];
}

int FakeProvider::calls() const { return static_cast<int>(requests().size()); }

int FakeProvider::disconnects() const {
  return http("GET", port_, "/_fake/requests").json()["client_disconnects"].get<int>();
}

// ---------------------------------------------------------------------------------------------
// RawConnection

const char* to_string(ReadOutcome o) {
  switch (o) {
    case ReadOutcome::kData:
      return "data";
    case ReadOutcome::kTimeout:
      return "timeout";
    case ReadOutcome::kClosed:
      return "closed";
    case ReadOutcome::kReset:
      return "reset";
    case ReadOutcome::kError:
      return "error";
  }
  return "?";
}

RawConnection::RawConnection(int port, Millis connect_timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    connect_errno_ = errno;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd_, POLLOUT, 0};
    int pr = ::poll(&p, 1, static_cast<int>(connect_timeout.count()));
    if (pr <= 0) {
      connect_errno_ = pr == 0 ? ETIMEDOUT : errno;
    } else {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      connect_errno_ = err;
    }
  } else if (rc != 0) {
    connect_errno_ = errno;
  }
  if (connect_errno_ != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() { close(); }

void RawConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawConnection::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void RawConnection::set_receive_buffer(int bytes) {
  if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

bool RawConnection::send_all(std::string_view data, Millis timeout) {
  if (fd_ < 0) return false;
  const auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      int left = remaining_ms(deadline);
      if (left == 0) {
        last_errno_ = ETIMEDOUT;
        return false;
      }
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, left);
      continue;
    }
    last_errno_ = errno;
    if (errno == ECONNRESET || errno == EPIPE) {
      closed_ = true;
      reset_ = reset_ || errno == ECONNRESET;
    }
    return false;
  }
  return true;
}

ReadOutcome RawConnection::read_some(Millis timeout) {
  if (fd_ < 0) return ReadOutcome::kError;
  if (closed_) return reset_ ? ReadOutcome::kReset : ReadOutcome::kClosed;
  const auto deadline = Clock::now() + timeout;
  char tmp[65536];
  while (true) {
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return ReadOutcome::kData;
    }
    if (n == 0) {
      closed_ = true;
      return ReadOutcome::kClosed;
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) {
      closed_ = reset_ = true;
      return ReadOutcome::kReset;
    }
    if (errno != EAGAIN) {
      last_errno_ = errno;
      return ReadOutcome::kError;
    }
    int left = remaining_ms(deadline);
    if (left == 0) return ReadOutcome::kTimeout;
    pollfd p{fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, left);
    if (pr == 0) return ReadOutcome::kTimeout;
  }
}

std::optional<Response> RawConnection::read_response(Millis timeout, bool head_request) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    size_t consumed = 0;
    if (auto r = parse_http_response(buf_, &consumed, head_request, closed_)) {
      buf_.erase(0, consumed);
      return r;
    }
    if (closed_) return std::nullopt;
    int left = remaining_ms(deadline);
    if (left == 0) return std::nullopt;
    auto o = read_some(Millis{left});
    if (o == ReadOutcome::kError) return std::nullopt;
  }
}

bool RawConnection::wait_closed(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    auto o = read_some(Millis{remaining_ms(deadline)});
    if (o == ReadOutcome::kClosed || o == ReadOutcome::kReset || o == ReadOutcome::kError) {
      return true;
    }
    if (o == ReadOutcome::kTimeout && remaining_ms(deadline) == 0) return false;
  }
}

bool RawConnection::send_pieces_until_answer(const std::vector<std::string>& pieces,
                                             Millis per_piece_wait) {
  for (const auto& piece : pieces) {
    if (!send_all(piece)) return true;  // the server closed (or reset) on us: that is an answer
    auto o = read_some(per_piece_wait);
    if (o != ReadOutcome::kTimeout) return true;
  }
  return false;
}

bool connect_refused(int port) {
  RawConnection c(port, Millis{2000});
  return !c.ok() && c.connect_errno() == ECONNREFUSED;
}

// ---------------------------------------------------------------------------------------------
// Prometheus

std::optional<std::string> MetricSample::label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::optional<std::vector<MetricSample>> parse_prometheus(std::string_view text,
                                                          std::string* error) {
  std::vector<MetricSample> out;
  size_t line_no = 0;
  auto is_name_start = [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  };
  auto is_name_char = [&](char c) {
    return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c));
  };
  while (!text.empty()) {
    ++line_no;
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& why) {
      if (error) *error = "line " + std::to_string(line_no) + ": " + why + ": " + std::string(line);
      return std::nullopt;
    };
    MetricSample s;
    size_t i = 0;
    if (!is_name_start(line[0])) return bad("bad metric name");
    while (i < line.size() && is_name_char(line[i])) ++i;
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        while (i < line.size() && line[i] == ' ') ++i;
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t k0 = i;
        while (i < line.size() && is_name_char(line[i])) ++i;
        if (i == k0) return bad("bad label name");
        std::string key(line.substr(k0, i - k0));
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
          return bad("expected =\"");
        i += 2;
        std::string val;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            char n = line[i + 1];
            val.push_back(n == 'n' ? '\n' : n);
            i += 2;
          } else {
            val.push_back(line[i++]);
          }
        }
        if (i >= line.size()) return bad("unterminated label value");
        ++i;
        s.labels.emplace_back(std::move(key), std::move(val));
        if (i < line.size() && line[i] == ',') ++i;
      }
    }
    if (i >= line.size() || line[i] != ' ') return bad("expected space before value");
    while (i < line.size() && line[i] == ' ') ++i;
    size_t v0 = i;
    while (i < line.size() && line[i] != ' ') ++i;
    std::string value(line.substr(v0, i - v0));
    if (value == "+Inf") {
      s.value = std::numeric_limits<double>::infinity();
    } else if (value == "-Inf") {
      s.value = -std::numeric_limits<double>::infinity();
    } else if (value == "NaN") {
      s.value = std::numeric_limits<double>::quiet_NaN();
    } else {
      char* endp = nullptr;
      s.value = std::strtod(value.c_str(), &endp);
      if (value.empty() || endp == nullptr || *endp != '\0') return bad("bad value");
    }
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// SQLite

std::optional<Rows> sqlite_query(const std::string& path, const std::string& sql,
                                 std::string* error) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc != SQLITE_OK) {
    if (error) *error = "open " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return std::nullopt;
  }
  sqlite3_busy_timeout(db, 5000);
  Rows rows;
  char* errmsg = nullptr;
  rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* ud, int n, char** vals, char**) {
        auto* out = static_cast<Rows*>(ud);
        std::vector<std::string> row;
        for (int i = 0; i < n; ++i) row.emplace_back(vals[i] ? vals[i] : "");
        out->push_back(std::move(row));
        return 0;
      },
      &rows, &errmsg);
  std::optional<Rows> result;
  if (rc == SQLITE_OK) {
    result = std::move(rows);
  } else if (error) {
    *error = sql + ": " + (errmsg ? errmsg : sqlite3_errstr(rc));
  }
  sqlite3_free(errmsg);
  sqlite3_close(db);
  return result;
}

}  // namespace parley_it
