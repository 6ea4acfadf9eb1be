// The outbound HTTP client (libcurl on Asio) against Parley's own server, both real, over
// loopback: plain and streamed bodies, connection reuse, timeouts, cancellation, back-pressure.
// The same tests prove the server's streaming side: chunked bodies, the watch that notices a
// client leaving, HTTP/1.0 streams, and pipelined requests kept across a streamed response.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/io_pool.hpp"
#include "core/signal.hpp"
#include "core/sleep.hpp"
#include "http/client.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "obs/metrics.hpp"
#include "run_on.hpp"
#include "support/raw_http.hpp"

namespace {

namespace asio = boost::asio;
using parley::Error;
using parley::ErrorCode;
using parley::Result;
using parley::Task;
using parley::http::ClientRequest;
using parley::http::HttpClient;
using parley::http::Method;
using parley::http::Request;
using parley::http::Response;
using namespace std::chrono_literals;
using parley::sleep_for;

parley::http::Deadline in(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

// State the server-side handlers report to the test thread.
struct Observed {
  std::atomic<bool> client_gone{false};
  std::atomic<int> stall_handlers_done{0};
  std::atomic<int> watch_saw_gone{0};
};

class HttpClientTest : public ::testing::Test {
 protected:
  HttpClientTest() : io_(1), metrics_({"test", "none", "g++", "Debug"}), client_(context_) {
    router_.add(Method::kGet, "/json", parley::http::kPublic, [](Request&) -> Task<Response> {
      Response r;
      r.body = R"({"ok":true})";
      r.header("X-Upstream", "fake");
      co_return r;
    });
    router_.add(Method::kPost, "/echo", parley::http::kPublic, [](Request& req) -> Task<Response> {
      Response r;
      r.content_type = "text/plain";
      r.body = std::string(req.header("x-tag").value_or("")) + "|" + req.body;
      co_return r;
    });
    router_.add(Method::kGet, "/remote", parley::http::kPublic, [](Request& req) -> Task<Response> {
      Response r;
      r.content_type = "text/plain";
      r.body = req.remote;
      co_return r;
    });
    router_.add(Method::kGet, "/stream", parley::http::kPublic, [](Request& req) -> Task<Response> {
      // Built outside the co_await: g++ 12 rejects string-literal arrays in a coroutine's
      // temporaries.
      const parley::http::HeaderList headers{
          {std::string("Cache-Control"), std::string("no-cache")}};
      co_await req.channel->begin_stream(200, "text/event-stream", headers);
      uint64_t bytes = 0;
      static constexpr std::array<std::string_view, 3> kEvents{"data: 1\n\n", "data: 2\n\n",
                                                               "data: 3\n\n"};
      for (std::string_view event : kEvents) {
        co_await req.channel->write(event);
        bytes += event.size();
        co_await sleep_for(30ms);
      }
      co_return Response::streamed(200, bytes);
    });
    // Sends one event, then waits for the client to leave (or 5 s).
    router_.add(Method::kGet, "/stall", parley::http::kPublic,
                [this](Request& req) -> Task<Response> {
                  co_await req.channel->begin_stream(200, "text/event-stream", {});
                  co_await req.channel->write("data: first\n\n");
                  parley::Signal gone(co_await asio::this_coro::executor);
                  req.channel->watch([&] {
                    observed_.client_gone = true;
                    gone.notify();
                  });
                  co_await gone.wait_until(in(5s));
                  ++observed_.stall_handlers_done;
                  co_return Response::streamed(200, 13);
                });
    // Answers after 1.5 s, or gives up as soon as the client leaves.
    router_.add(Method::kGet, "/slow-head", parley::http::kPublic,
                [](Request& req) -> Task<Response> {
                  parley::Signal gone(co_await asio::this_coro::executor);
                  req.channel->watch([&] { gone.notify(); });
                  co_await gone.wait_until(in(1500ms));
                  co_return Response::empty(204);
                });
    // Waits `?ms` (default 300) before watching, then up to 300 ms for the client to leave;
    // answers whether it did.
    router_.add(Method::kGet, "/watch", parley::http::kPublic,
                [this](Request& req) -> Task<Response> {
                  const int delay = std::atoi(req.query_param("ms").value_or("0").c_str());
                  co_await sleep_for(std::chrono::milliseconds(delay));
                  parley::Signal gone(co_await asio::this_coro::executor);
                  bool left = false;
                  req.channel->watch([&] {
                    left = true;
                    gone.notify();
                  });
                  co_await gone.wait_until(in(300ms));
                  if (left) ++observed_.watch_saw_gone;
                  Response r;
                  r.content_type = "text/plain";
                  r.body = left ? "gone" : "present";
                  co_return r;
                });
    // 2 MiB in 64 KiB writes; byte i is 'a' + i % 26.
    router_.add(Method::kGet, "/big", parley::http::kPublic, [](Request& req) -> Task<Response> {
      co_await req.channel->begin_stream(200, "application/octet-stream", {});
      std::string piece(64 * 1024, ' ');
      size_t offset = 0;
      for (int n = 0; n < 32; ++n) {
        for (size_t i = 0; i < piece.size(); ++i)
          piece[i] = static_cast<char>('a' + (offset + i) % 26);
        offset += piece.size();
        const bool sent = co_await req.channel->write(piece);
        if (!sent) break;
      }
      co_return Response::streamed(200, offset);
    });
    server_ = std::make_unique<parley::http::Server>(io_, parley::http::ServerOptions{}, router_,
                                                     metrics_);
    auto port = server_->listen("127.0.0.1", 0);
    EXPECT_TRUE(port.ok());
    port_ = port.ok() ? port.value() : 0;
    server_->start();
    runner_ = std::thread([this] { io_.run(); });
  }
  ~HttpClientTest() override {
    server_->begin_drain([this] { io_.stop(); });
    runner_.join();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Runs a coroutine on the client's context until it finishes.
  template <typename T>
  T run(Task<T> task) {
    return parley::testing::run_on(context_, std::move(task));
  }

  ClientRequest get(const std::string& path) const {
    ClientRequest r;
    r.url = url(path);
    return r;
  }

  parley::IoPool io_;
  parley::obs::Metrics metrics_;
  parley::http::Router router_;
  std::unique_ptr<parley::http::Server> server_;
  uint16_t port_ = 0;
  std::thread runner_;
  Observed observed_;
  asio::io_context context_;
  HttpClient client_;
};

struct Fetched {
  int status = 0;
  std::string body;
  std::optional<std::string> header;
  int reads = 0;
  std::optional<Error> error;
};

Task<Fetched> fetch(HttpClient& client, ClientRequest request, std::string header_name = {}) {
  Fetched out;
  auto started = co_await client.start(std::move(request));
  if (!started) {
    out.error = started.error();
    co_return out;
  }
  auto transfer = std::move(*started);
  auto status = co_await transfer->head(in(5s));
  if (!status) {
    out.error = status.error();
    co_return out;
  }
  out.status = *status;
  if (!header_name.empty()) out.header = transfer->header(header_name);
  while (true) {
    auto more = co_await transfer->read(out.body, in(5s));
    if (!more) {
      out.error = more.error();
      break;
    }
    ++out.reads;
    if (!*more) break;
  }
  co_return out;
}

TEST_F(HttpClientTest, FetchesStatusHeadersAndBody) {
  auto got = run(fetch(client_, get("/json"), "x-upstream"));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.header, "fake");
  EXPECT_EQ(got.body, R"({"ok":true})");
}

TEST_F(HttpClientTest, PostsABodyWithHeaders) {
  ClientRequest req;
  req.method = "POST";
  req.url = url("/echo");
  req.headers = {{"X-Tag", "t1"}, {"Content-Type", "application/json"}};
  req.body = std::string(5000, 'x');  // over curl's Expect: 100-continue threshold
  auto got = run(fetch(client_, req));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "t1|" + std::string(5000, 'x'));
}

TEST_F(HttpClientTest, ARequestThatCannotStartIsAnErrorValueAndNothingIsSent) {
  // A line break in a header value would smuggle a header; a space in the URL is no URL.
  ClientRequest smuggling = get("/json");
  smuggling.headers = {{"X-Corp-Token", "abc\r\nX-Injected: 1"}};
  auto refused = run(fetch(client_, smuggling));
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code, parley::ErrorCode::kBadGateway);
  EXPECT_EQ(refused.error->reason, "upstream_request_failed");
  EXPECT_EQ(refused.status, 0);
  ClientRequest bad_name = get("/json");
  bad_name.headers = {{"X Corp", "v"}};
  EXPECT_TRUE(run(fetch(client_, bad_name)).error);
  ClientRequest spaced = get("/json");
  spaced.url += " HTTP/1.1";
  EXPECT_TRUE(run(fetch(client_, spaced)).error);
  EXPECT_EQ(client_.active(), 0);
  // The client is unharmed: the next request goes through.
  auto fine = run(fetch(client_, get("/json")));
  ASSERT_FALSE(fine.error) << fine.error->message;
  EXPECT_EQ(fine.status, 200);
}

TEST_F(HttpClientTest, StartingOutsideTheClientsContextsIsAnErrorValue) {
  asio::io_context elsewhere;
  auto got = parley::testing::run_on(elsewhere, fetch(client_, get("/json")));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->code, parley::ErrorCode::kUnavailable);
  EXPECT_EQ(got.error->reason, "upstream_request_failed");
}

TEST_F(HttpClientTest, StreamedBodyArrivesPieceByPieceAndTheConnectionIsReused) {
  auto first = run(fetch(client_, get("/stream")));
  ASSERT_FALSE(first.error) << first.error->message;
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
  // Three writes 30 ms apart are three reads, not one body at the end.
  EXPECT_GE(first.reads, 3);
  // The chunked body ended cleanly, so the same connection serves the next request.
  auto a = run(fetch(client_, get("/remote")));
  auto b = run(fetch(client_, get("/remote")));
  ASSERT_FALSE(a.error);
  ASSERT_FALSE(b.error);
  EXPECT_FALSE(a.body.empty());
  EXPECT_EQ(a.body, b.body) << "a new connection per request";
}

TEST_F(HttpClientTest, RefusedConnectionIsUnreachable) {
  // A port that was free a moment ago and has nobody listening.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  auto got = run(fetch(client_, req));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->code, ErrorCode::kUnavailable);
  EXPECT_EQ(got.error->reason, "upstream_unreachable");
}

TEST_F(HttpClientTest, HeadDeadlineIsATimeout) {
  auto got = run([](HttpClient& client, ClientRequest req) -> Task<Fetched> {
    Fetched out;
    auto started = co_await client.start(std::move(req));
    if (!started) {
      out.error = started.error();
      co_return out;
    }
    auto transfer = std::move(*started);
    auto status = co_await transfer->head(in(100ms));
    if (!status) out.error = status.error();
    co_return out;
  }(client_, get("/slow-head")));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(got.error->reason, "upstream_timeout");
}

TEST_F(HttpClientTest, StalledStreamTimesOutAndCancelReachesTheServer) {
  auto got = run([](HttpClient& client, ClientRequest req) -> Task<Fetched> {
    Fetched out;
    auto started = co_await client.start(std::move(req));
    if (!started) {
      out.error = started.error();
      co_return out;
    }
    auto transfer = std::move(*started);
    (void)co_await transfer->head(in(5s));
    auto first = co_await transfer->read(out.body, in(5s));
    EXPECT_TRUE(first.ok());
    // Nothing more comes: the deadline ends the wait, the transfer is still alive.
    auto stalled = co_await transfer->read(out.body, in(150ms));
    if (!stalled) out.error = stalled.error();
    transfer->cancel();
    auto after = co_await transfer->read(out.body, in(5s));
    EXPECT_FALSE(after.ok());
    if (!after) {
      EXPECT_EQ(after.error().code, ErrorCode::kCancelled);
    }
    co_return out;
  }(client_, get("/stall")));
  EXPECT_EQ(got.body, "data: first\n\n");
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->code, ErrorCode::kDeadlineExceeded);
  // The server's watch saw the connection close and its handler stopped waiting at once.
  for (int i = 0; i < 200 && observed_.stall_handlers_done.load() == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(observed_.client_gone.load());
  EXPECT_EQ(observed_.stall_handlers_done.load(), 1);
}

TEST_F(HttpClientTest, SlowReaderGetsEveryByteOfALargeStream) {
  auto got = run([](HttpClient& client, ClientRequest req) -> Task<Fetched> {
    Fetched out;
    auto started = co_await client.start(std::move(req));
    if (!started) {
      out.error = started.error();
      co_return out;
    }
    auto transfer = std::move(*started);
    auto status = co_await transfer->head(in(5s));
    out.status = status.ok() ? *status : 0;
    while (true) {
      // Reading late lets curl's buffer pass the pause mark, then resume.
      co_await sleep_for(5ms);
      auto more = co_await transfer->read(out.body, in(5s));
      if (!more) {
        out.error = more.error();
        break;
      }
      if (!*more) break;
    }
    co_return out;
  }(client_, get("/big")));
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_EQ(got.body.size(), 2u * 1024 * 1024);
  for (size_t i = 0; i < got.body.size(); i += 4099) {
    ASSERT_EQ(got.body[i], static_cast<char>('a' + i % 26)) << "at " << i;
  }
}

TEST_F(HttpClientTest, ReadAllRefusesAnOversizedBody) {
  auto got = run([](HttpClient& client, ClientRequest req) -> Task<Fetched> {
    Fetched out;
    auto started = co_await client.start(std::move(req));
    if (!started) {
      out.error = started.error();
      co_return out;
    }
    auto transfer = std::move(*started);
    (void)co_await transfer->head(in(5s));
    auto all = co_await transfer->read_all(in(5s), 100'000);
    if (!all) out.error = all.error();
    co_return out;
  }(client_, get("/big")));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->reason, "upstream_too_large");
}

// --- The server's streaming side, seen from a raw socket ---------------------------------

using parley::testing::raw_exchange;

TEST_F(HttpClientTest, StreamToHttp11IsChunkedAndPipelinedRequestIsServedAfter) {
  std::string response = raw_exchange(port_,
                                      "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                                      "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  auto head_end = response.find("\r\n\r\n");
  std::string head = response.substr(0, head_end);
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream"), std::string::npos) << head;
  EXPECT_NE(head.find("Cache-Control: no-cache"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_NE(response.find("9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n"),
            std::string::npos)
      << response;
  // The second request, sent before the stream began, was kept and answered after it.
  EXPECT_NE(response.find("0\r\n\r\nHTTP/1.1 200 OK"), std::string::npos) << response;
  EXPECT_NE(response.find(R"({"ok":true})"), std::string::npos) << response;
}

TEST_F(HttpClientTest, WatchSeesAClientThatLeftBeforeItStarted) {
  // The client sends its request and closes at once; the handler starts watching 200 ms later,
  // when the end of the stream is already waiting in the socket (no new event will come).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = "GET /watch?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
  for (int i = 0; i < 200 && observed_.watch_saw_gone.load() == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(observed_.watch_saw_gone.load(), 1);
}

TEST_F(HttpClientTest, PipelinedRequestIsNotMistakenForALeavingClient) {
  std::string response = raw_exchange(port_,
                                      "GET /watch HTTP/1.1\r\nHost: t\r\n\r\n"
                                      "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_NE(response.find("present"), std::string::npos) << response;
  EXPECT_EQ(response.find("gone"), std::string::npos) << response;
  EXPECT_NE(response.find(R"({"ok":true})"), std::string::npos) << "the pipelined request was lost";
  EXPECT_EQ(observed_.watch_saw_gone.load(), 0);
}

TEST_F(HttpClientTest, StreamToHttp10EndsWithTheConnection) {
  std::string response = raw_exchange(port_, "GET /stream HTTP/1.0\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << response;
  auto head_end = response.find("\r\n\r\n");
  EXPECT_EQ(response.substr(0, head_end).find("chunked"), std::string::npos) << response;
  EXPECT_EQ(response.substr(head_end + 4), "data: 1\n\ndata: 2\n\ndata: 3\n\n");
}

}  // namespace
