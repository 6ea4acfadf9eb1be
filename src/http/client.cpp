// libcurl's multi-socket API on Asio. curl says which sockets it wants watched and for what
// (on_socket) and when it next needs a call for its own timeouts (on_timer); Asio waits on
// those sockets and that timer, and each readiness becomes a curl_multi_socket_action() call.
// Transfers that finish are collected from curl_multi_info_read().
#include "http/client.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/io_pool.hpp"
#include "core/signal.hpp"
#include "http/message.hpp"

namespace parley::http {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor::rebind_executor<IoExecutor>::other;
using Timer = asio::steady_timer::rebind_executor<IoExecutor>::other;

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A socket curl asked us to watch.
struct Watch {
  Watch(const IoExecutor& ex, curl_socket_t s) : fd(s), descriptor(ex, s) {}
  curl_socket_t fd;
  Descriptor descriptor;
  int wanted = 0;  // CURL_POLL_IN / _OUT / _INOUT, or 0
  bool reading = false;
  bool writing = false;
  bool closed = false;
};

// Once the bytes waiting in curl's hands reach this, the transfer pauses until the reader
// catches up: a slow client slows its upstream instead of filling our memory.
constexpr size_t kPauseAbove = size_t{256} * 1024;

}  // namespace

class Transfer;

struct HttpClient::Multi {
  explicit Multi(asio::io_context& ctx) : context(ctx), timer(ctx.get_executor()) {}

  // The multi handle is made on the context's first transfer: curl's global initialisation
  // (OpenSSL's, mostly) costs megabytes of resident memory that a server whose model is the
  // built-in one never needs.
  void ensure_handle() {
    if (handle) return;
    global_init();
    handle = curl_multi_init();
    curl_multi_setopt(handle, CURLMOPT_SOCKETFUNCTION, &Multi::on_socket);
    curl_multi_setopt(handle, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(handle, CURLMOPT_TIMERFUNCTION, &Multi::on_timer);
    curl_multi_setopt(handle, CURLMOPT_TIMERDATA, this);
    // Idle connections kept for reuse (per context); the default scales with the number of
    // transfers added, which under a burst closes the warm connections we want to keep.
    curl_multi_setopt(handle, CURLMOPT_MAXCONNECTS, 512L);
  }
  ~Multi() {
    timer.cancel();
    for (CURL* easy : idle_handles) curl_easy_cleanup(easy);
    if (handle) curl_multi_cleanup(handle);  // closes cached connections through on_close
    for (auto& [fd, watch] : watches) {
      watch->closed = true;
      boost::system::error_code ec;
      watch->descriptor.cancel(ec);
      (void)watch->descriptor.release();
    }
  }
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;

  asio::io_context& context;
  CURLM* handle = nullptr;
  Timer timer;
  std::unordered_map<curl_socket_t, std::shared_ptr<Watch>> watches;
  std::atomic<int64_t> active{0};
  bool timeout_posted = false;
  // Easy handles of finished transfers, reset and kept for the next ones: creating one is a
  // large allocation and much initialisation, per request otherwise.
  std::vector<CURL*> idle_handles;

  CURL* take_handle() {
    if (idle_handles.empty()) return curl_easy_init();
    CURL* easy = idle_handles.back();
    idle_handles.pop_back();
    return easy;
  }
  void give_back(CURL* easy) {
    constexpr size_t kKeep = 256;
    if (idle_handles.size() >= kKeep) {
      curl_easy_cleanup(easy);
      return;
    }
    curl_easy_reset(easy);
    idle_handles.push_back(easy);
  }

  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket_data);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static int on_close(void* self, curl_socket_t fd);

  void arm(const std::shared_ptr<Watch>& watch);
  void action(curl_socket_t fd, int events);
  void collect_finished();
};

class Transfer final : public ClientTransfer {
 public:
  Transfer(HttpClient::Multi& multi, ClientRequest request)
      : multi_(multi), request_(std::move(request)), signal_(multi.context.get_executor()) {}

  ~Transfer() override {
    detach();
    if (easy_) multi_.give_back(easy_);
    if (header_list_) curl_slist_free_all(header_list_);
  }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  Result<void> begin() {
    easy_ = multi_.take_handle();
    if (!easy_) return Error::internal("curl_easy_init failed");
    curl_easy_setopt(easy_, CURLOPT_PRIVATE, this);
    curl_easy_setopt(easy_, CURLOPT_URL, request_.url.c_str());
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    // Smaller than curl's 16 KiB default: replies arrive in small pieces, and thousands of
    // streams held at once each keep one of these.
    curl_easy_setopt(easy_, CURLOPT_BUFFERSIZE, 8192L);
    curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, request_.method.c_str());
    if (request_.method == "HEAD") curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
    if (!request_.body.empty() || request_.method == "POST" || request_.method == "PUT" ||
        request_.method == "PATCH") {
      curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, request_.body.data());
      curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request_.body.size()));
    }
    bool has_expect = false;
    for (const auto& [name, value] : request_.headers) {
      std::string line = name;
      line.append(": ").append(value);
      has_expect = has_expect || iequals(name, "expect");
      header_list_ = curl_slist_append(header_list_, line.c_str());
    }
    // curl would send "Expect: 100-continue" for bodies over 1 KiB and wait for the answer: a
    // round trip that providers never need.
    if (!has_expect) header_list_ = curl_slist_append(header_list_, "Expect:");
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, header_list_);
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request_.connect_timeout.count()));
    if (request_.total_timeout.count() > 0) {
      curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(request_.total_timeout.count()));
    }
    if (!request_.proxy.empty()) curl_easy_setopt(easy_, CURLOPT_PROXY, request_.proxy.c_str());
    if (!request_.ca_file.empty())
      curl_easy_setopt(easy_, CURLOPT_CAINFO, request_.ca_file.c_str());
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy_, CURLOPT_CLOSESOCKETFUNCTION, &HttpClient::Multi::on_close);
    curl_easy_setopt(easy_, CURLOPT_CLOSESOCKETDATA, &multi_);
    if (CURLMcode rc = curl_multi_add_handle(multi_.handle, easy_); rc != CURLM_OK) {
      return Error::internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
    }
    attached_ = true;
    multi_.active.fetch_add(1, std::memory_order_relaxed);
    return success();
  }

  Task<Result<int>> head(Deadline deadline) override { return head_of(*this, deadline); }

  std::optional<std::string> header(std::string_view name) const override {
    for (const auto& [n, v] : headers_) {
      if (iequals(n, name)) return v;
    }
    return std::nullopt;
  }

  Task<Result<bool>> read(std::string& out, Deadline deadline) override {
    return read_into(*this, out, deadline);
  }

  Task<Result<std::string>> read_all(Deadline deadline, size_t max_bytes) override {
    return read_everything(*this, deadline, max_bytes);
  }

  void cancel() override {
    if (finished_) return;
    cancelled_ = true;
    finished_ = true;
    detach();
    signal_.notify();
  }

  // curl: the transfer is over (result says how it went).
  void finish(CURLcode result) {
    result_ = result;
    finished_ = true;
    detach();
    signal_.notify();
  }

 private:
  static Task<Result<int>> head_of(Transfer& t, Deadline deadline) {
    while (!t.head_done_ && !t.finished_) {
      const bool notified = co_await t.signal_.wait_until(deadline);
      if (!notified && !t.head_done_ && !t.finished_) {
        co_return timeout("no response head");
      }
    }
    if (t.head_done_) co_return t.status_;
    co_return t.failure();
  }

  static Task<Result<bool>> read_into(Transfer& t, std::string& out, Deadline deadline) {
    while (t.body_.empty() && !t.finished_) {
      const bool notified = co_await t.signal_.wait_until(deadline);
      if (!notified && t.body_.empty() && !t.finished_) {
        co_return timeout("the response body stalled");
      }
    }
    if (!t.body_.empty()) {
      out.append(t.body_);
      t.body_.clear();
      t.resume_if_paused();
      co_return true;
    }
    if (t.result_ != CURLE_OK || t.cancelled_) co_return t.failure();
    co_return false;
  }

  static Task<Result<std::string>> read_everything(Transfer& t, Deadline deadline,
                                                   size_t max_bytes) {
    std::string all;
    while (true) {
      auto more = co_await read_into(t, all, deadline);
      if (!more) co_return std::move(more).error();
      if (all.size() > max_bytes) {
        t.cancel();
        co_return Error::bad_gateway(
            "the upstream response is larger than " + std::to_string(max_bytes) + " bytes",
            "upstream_too_large");
      }
      if (!*more) co_return all;
    }
  }

  static size_t on_header(char* data, size_t size, size_t count, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const size_t n = size * count;
    std::string_view line(data, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.rfind("HTTP/", 0) == 0) {
      // A new status line: a 1xx interim response or the final one. Start over.
      t->headers_.clear();
      auto space = line.find(' ');
      t->status_ = space == std::string_view::npos
                       ? 0
                       : std::atoi(std::string(line.substr(space + 1, 3)).c_str());
    } else if (line.empty()) {
      if (t->status_ >= 200 && !t->head_done_) {
        t->head_done_ = true;
        t->signal_.notify();
      }
    } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      t->headers_.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    return n;
  }

  static size_t on_body(char* data, size_t size, size_t count, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const size_t n = size * count;
    if (t->body_.size() >= kPauseAbove) {
      t->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // curl keeps these bytes and offers them again on resume
    }
    t->body_.append(data, n);
    t->head_done_ = true;
    t->signal_.notify();
    return n;
  }

  void resume_if_paused() {
    if (!paused_ || !easy_ || finished_) return;
    paused_ = false;
    curl_easy_pause(easy_, CURLPAUSE_CONT);
  }

  void detach() {
    if (!attached_) return;
    attached_ = false;
    curl_multi_remove_handle(multi_.handle, easy_);
    multi_.active.fetch_sub(1, std::memory_order_relaxed);
  }

  static Error timeout(const std::string& what) {
    return Error::deadline("upstream timed out: " + what, "upstream_timeout");
  }

  Error failure() const {
    if (cancelled_) return Error::cancelled("the upstream request was cancelled");
    std::string detail = curl_easy_strerror(result_);
    switch (result_) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION:
        return Error::unavailable("upstream unreachable: " + detail, "upstream_unreachable");
      case CURLE_OPERATION_TIMEDOUT:
        return Error::deadline("upstream timed out: " + detail, "upstream_timeout");
      default:
        return Error::bad_gateway("upstream connection failed: " + detail, "upstream_broken");
    }
  }

  HttpClient::Multi& multi_;
  ClientRequest request_;
  CURL* easy_ = nullptr;
  curl_slist* header_list_ = nullptr;
  bool attached_ = false;
  int status_ = 0;
  HeaderList headers_;
  bool head_done_ = false;
  std::string body_;  // received, not yet read
  bool paused_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  CURLcode result_ = CURLE_OK;
  Signal signal_;
};

int HttpClient::Multi::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
  auto* multi = static_cast<Multi*>(self);
  auto it = multi->watches.find(fd);
  if (what == CURL_POLL_REMOVE) {
    // curl may reuse the socket later (a kept-alive connection); it stays assigned until
    // on_close, only the waits stop.
    if (it != multi->watches.end()) {
      it->second->wanted = 0;
      boost::system::error_code ec;
      it->second->descriptor.cancel(ec);
    }
    return 0;
  }
  if (it == multi->watches.end()) {
    auto watch = std::make_shared<Watch>(multi->context.get_executor(), fd);
    it = multi->watches.emplace(fd, std::move(watch)).first;
  }
  it->second->wanted = what;
  multi->arm(it->second);
  return 0;
}

int HttpClient::Multi::on_timer(CURLM*, long timeout_ms, void* self) {
  auto* multi = static_cast<Multi*>(self);
  if (timeout_ms < 0) {
    multi->timer.cancel();
    return 0;
  }
  if (timeout_ms == 0) {
    // "Now": a posted call, not a timer (curl asks for this for every new transfer, and a
    // timer would re-arm the reactor's timerfd each time). Posted rather than called: curl
    // must not be re-entered from its own callback.
    multi->timer.cancel();
    if (!multi->timeout_posted) {
      multi->timeout_posted = true;
      asio::post(multi->context, [multi] {
        multi->timeout_posted = false;
        multi->action(CURL_SOCKET_TIMEOUT, 0);
      });
    }
    return 0;
  }
  multi->timer.expires_after(std::chrono::milliseconds(timeout_ms));
  multi->timer.async_wait([multi](const boost::system::error_code& ec) {
    if (ec) return;  // replaced by a newer timeout, or the client is being destroyed
    multi->action(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

int HttpClient::Multi::on_close(void* self, curl_socket_t fd) {
  auto* multi = static_cast<Multi*>(self);
  if (auto it = multi->watches.find(fd); it != multi->watches.end()) {
    auto& watch = *it->second;
    watch.closed = true;
    boost::system::error_code ec;
    watch.descriptor.cancel(ec);
    (void)watch.descriptor.release();  // deregisters from the reactor without closing
    multi->watches.erase(it);
  }
  return ::close(fd);
}

void HttpClient::Multi::arm(const std::shared_ptr<Watch>& watch) {
  // Bytes that arrived before a wait (curl does not always read a socket empty: a paused
  // transfer) still wake it: Asio starts every wait with EPOLL_CTL_MOD, which reports a
  // descriptor that is ready already, so no poll() of our own is needed first.
  for (const bool read : {true, false}) {
    const int poll = read ? CURL_POLL_IN : CURL_POLL_OUT;
    bool& waiting = read ? watch->reading : watch->writing;
    if (!(watch->wanted & poll) || waiting) continue;
    waiting = true;
    watch->descriptor.async_wait(read ? Descriptor::wait_read : Descriptor::wait_write,
                                 [this, watch, read, poll](const boost::system::error_code& ec) {
                                   (read ? watch->reading : watch->writing) = false;
                                   if (ec || watch->closed || !(watch->wanted & poll)) return;
                                   action(watch->fd, read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
                                   if (!watch->closed) arm(watch);
                                 });
  }
}

void HttpClient::Multi::action(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(handle, fd, events, &running);
  collect_finished();
}

void HttpClient::Multi::collect_finished() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(handle, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* transfer = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &transfer);
    // Read the result before finish(): removing the handle invalidates `msg`.
    const CURLcode result = msg->data.result;
    if (transfer) transfer->finish(result);
  }
}

HttpClient::HttpClient(IoPool& io) {
  for (int i = 0; i < io.size(); ++i) multis_.push_back(std::make_unique<Multi>(io.context(i)));
}

HttpClient::HttpClient(asio::io_context& context) {
  multis_.push_back(std::make_unique<Multi>(context));
}

HttpClient::~HttpClient() = default;

int64_t HttpClient::active() const {
  int64_t n = 0;
  for (const auto& m : multis_) n += m->active.load(std::memory_order_relaxed);
  return n;
}

namespace {

bool has_control_char(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// What curl would otherwise send as is: a URL with spaces or control characters, a header
// name that is not a token, a value with a line break.
std::optional<Error> malformed(const ClientRequest& request) {
  if (request.url.empty() || has_control_char(request.url) ||
      request.url.find(' ') != std::string::npos) {
    return Error::bad_gateway("the upstream URL is empty or has spaces or control characters",
                              "upstream_request_failed");
  }
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || has_control_char(name) || name.find_first_of(" :") != std::string::npos) {
      return Error::bad_gateway("an outbound header name is empty or not a token",
                                "upstream_request_failed");
    }
    if (has_control_char(value)) {
      return Error::bad_gateway("the value of outbound header '" + name +
                                    "' has a line break or another control character",
                                "upstream_request_failed");
    }
  }
  return std::nullopt;
}

}  // namespace

Task<Result<std::unique_ptr<ClientTransfer>>> HttpClient::start(ClientRequest request) {
  auto executor = co_await asio::this_coro::executor;
  Multi* multi = nullptr;
  for (auto& m : multis_) {
    if (&m->context == &executor.context()) multi = m.get();
  }
  if (!multi) {
    co_return Error::unavailable("an outbound request was started outside the client's threads",
                                 "upstream_request_failed");
  }
  if (auto bad = malformed(request)) co_return std::move(*bad);
  multi->ensure_handle();
  auto transfer = std::make_unique<Transfer>(*multi, std::move(request));
  if (auto r = transfer->begin(); !r) {
    co_return Error::unavailable("the outbound request could not start: " + r.error().message,
                                 "upstream_request_failed");
  }
  co_return std::unique_ptr<ClientTransfer>(std::move(transfer));
}

}  // namespace parley::http
