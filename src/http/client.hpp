// Outbound HTTP (model providers now, webhooks later) over libcurl, driven by the I/O threads'
// own event loops: curl's multi-socket API tells us which sockets to watch and when to call it
// back, and Asio watches them. No thread blocks on the network, a response body streams as it
// arrives, and libcurl brings what a gateway needs and we should not write ourselves: TLS with
// certificate verification, HTTP/2, proxies (http_proxy/https_proxy/no_proxy are honoured, or a
// proxy per request), DNS caching and connection reuse.
//
// One curl multi handle per I/O context, so a transfer and the request it serves share a
// thread: no locks, no hops between threads, and each context keeps its own pool of warm
// connections to the upstreams.
//
// Thread-safety: an HttpClient is shared by all I/O threads; start() uses the calling
// coroutine's context. A ClientTransfer belongs to the coroutine that started it and must be
// used and destroyed on that context's thread.
//
// Lifetime: destroy every ClientTransfer before the HttpClient, and the HttpClient before the
// io_contexts it was given (the app declares it after the IoPool; by the time the pool stops,
// every request, and so every transfer, has ended).
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/task.hpp"
#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace parley {
class IoPool;
}

namespace parley::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  HeaderList headers;
  std::string body;
  // Until the TCP (and TLS) connection is up; counts DNS too.
  std::chrono::milliseconds connect_timeout{10'000};
  // The whole transfer; zero means none (callers bound reads with their own deadlines).
  std::chrono::milliseconds total_timeout{0};
  // Empty: libcurl's default, which reads http_proxy, https_proxy and no_proxy.
  std::string proxy;
  // Empty: the system's certificate store.
  std::string ca_file;
};

using Deadline = std::chrono::steady_clock::time_point;

// One request and its response, in progress. Errors are values:
//   kUnavailable ("upstream_unreachable"): DNS, connect or TLS handshake failed; nothing was
//       sent, so a retry is always safe;
//   kDeadlineExceeded ("upstream_timeout"): a deadline passed;
//   kBadGateway ("upstream_broken"): the connection broke after the request went out;
//   kCancelled: cancel() was called.
class ClientTransfer {
 public:
  virtual ~ClientTransfer() = default;  // aborts the transfer if it is still running

  // Waits for the response head (the final one, after any 1xx) and returns its status.
  virtual Task<Result<int>> head(Deadline deadline) = 0;
  // A response header (the first with that name, case-insensitive); valid after head().
  virtual std::optional<std::string> header(std::string_view name) const = 0;
  // Waits for body bytes and appends all that have arrived to `out`. True while more may
  // come, false once the body is complete (then `out` got the last bytes, if any).
  virtual Task<Result<bool>> read(std::string& out, Deadline deadline) = 0;
  // The rest of the body, at most `max_bytes` (kBadGateway "upstream_too_large" beyond).
  virtual Task<Result<std::string>> read_all(Deadline deadline, size_t max_bytes) = 0;
  // Aborts now: a waiting head()/read() returns kCancelled. Safe to call more than once.
  virtual void cancel() = 0;
};

class HttpClient {
 public:
  // One curl multi handle per context of `io`.
  explicit HttpClient(IoPool& io);
  // For tests and tools: one context.
  explicit HttpClient(boost::asio::io_context& context);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request (the body, if any, is copied). The transfer runs on the calling
  // coroutine's context, which must be one of this client's. A request that cannot start
  // comes back as an Error with reason "upstream_request_failed", never an exception:
  // kUnavailable when curl refuses it or the calling context is not one of this client's,
  // kBadGateway when its URL or a header would not make a well-formed HTTP request (a line
  // break in a header value would smuggle another header). Both count against the target's
  // circuit breaker, like any failure to reach it.
  Task<Result<std::unique_ptr<ClientTransfer>>> start(ClientRequest request);

  // Transfers running now, across all contexts (for diagnostics).
  int64_t active() const;

  struct Multi;  // one context's curl multi handle (client.cpp)

 private:
  std::vector<std::unique_ptr<Multi>> multis_;
};

}  // namespace parley::http
