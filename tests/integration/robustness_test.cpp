// Connection-level robustness over raw sockets: keep-alive and pipelining, unparsable requests
// (400 then close), the slow-loris read timeout, the keep-alive idle timeout, absurd headers
// (10,000 of them; a single 1 MB line), random garbage on several connections, and the
// max_connections limit. After each abuse the process must still be alive and serving.
#include <signal.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

void expect_alive_and_serving(ParleyProcess& p) {
  EXPECT_TRUE(p.running()) << "server process died\n" << p.output_dump();
  auto r = http("GET", p.port(), "/health");
  EXPECT_EQ(r.status, 200) << r.describe();
}

TEST(Robustness, KeepAliveServesSeveralRequestsOnOneConnection) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    ASSERT_TRUE(c.send_all(simple_get("/health", {{"X-Request-Id", "ka-" + std::to_string(i)}})));
    auto r = c.read_response(Millis{5000});
    ASSERT_TRUE(r.has_value()) << "no response; connection "
                               << (c.peer_closed() ? "closed" : "open");
    EXPECT_EQ(r->status, 200) << r->describe();
    EXPECT_EQ(r->header("X-Request-Id").value_or(""), "ka-" + std::to_string(i));
    EXPECT_FALSE(icontains(r->header("Connection").value_or(""), "close")) << r->describe();
  }
  // Different routes and an error on the same connection do not break it either.
  ASSERT_TRUE(c.send_all(simple_get("/nope")));
  auto e = c.read_response(Millis{5000});
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(is_error(*e, 404, "route_not_found"));
  ASSERT_TRUE(c.send_all(raw_request("POST", "/api/v1/sessions",
                                     {{"Content-Type", "application/json"}}, R"({"title":"ka"})")));
  auto created = c.read_response(Millis{5000});
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->status, 201) << created->describe();
  EXPECT_FALSE(c.peer_closed());
}

TEST(Robustness, PipelinedRequestsAnsweredInOrder) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  // Three requests in one write: HTTP/1.1 requires the responses in request order.
  std::string batch;
  for (int i = 0; i < 3; ++i)
    batch += simple_get("/health", {{"X-Request-Id", "pipe-" + std::to_string(i)}});
  ASSERT_TRUE(c.send_all(batch));
  for (int i = 0; i < 3; ++i) {
    auto r = c.read_response(Millis{5000});
    ASSERT_TRUE(r.has_value()) << "missing pipelined response " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Request-Id").value_or(""), "pipe-" + std::to_string(i));
  }
}

TEST(Robustness, ConnectionCloseHonoured) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send_all(simple_get("/health", {{"Connection", "close"}})));
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(icontains(r->header("Connection").value_or(""), "close")) << r->describe();
  EXPECT_TRUE(c.wait_closed(Millis{3000})) << "server kept a Connection: close connection open";
}

TEST(Robustness, Http10ClosesAfterResponse) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send_all("GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value()) << c.buffer().substr(0, 200);
  EXPECT_EQ(r->status, 200);
  // HTTP/1.0 without keep-alive: the response ends the connection.
  EXPECT_TRUE(c.wait_closed(Millis{3000})) << "HTTP/1.0 connection left open";
}

TEST(Robustness, UnparsableRequestGets400ThenClose) {
  ParleyProcess p;
  const std::vector<std::string> bad = {
      "THIS IS NOT HTTP\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nNo colon in this header line\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
  };
  for (const auto& req : bad) {
    SCOPED_TRACE(req);
    RawConnection c(p.port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send_all(req));
    auto r = c.read_response(Millis{5000});
    ASSERT_TRUE(r.has_value()) << "no 400 response; received: " << c.buffer().substr(0, 200)
                               << (c.peer_closed() ? " (closed)" : " (open)");
    // Error bodies are always the envelope, with the request id header.
    EXPECT_TRUE(is_error(*r, 400));
    EXPECT_TRUE(c.wait_closed(Millis{3000})) << "connection left open after an unparsable request";
  }
  expect_alive_and_serving(p);
}

TEST(Robustness, SlowLorisClosedAfterReadTimeout) {
  ParleyProcess p({.args = {"--set", "server.read_timeout=1s"}});
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  const auto start = Clock::now();
  ASSERT_TRUE(c.send_all("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  // Keep dribbling one byte every 200 ms: activity must not extend the deadline, which runs from
  // the request's first byte.
  bool closed = false;
  while (elapsed_ms(start) < 5000) {
    auto o = c.read_some(Millis{200});
    if (o == ReadOutcome::kClosed || o == ReadOutcome::kReset || o == ReadOutcome::kError) {
      closed = true;
      break;
    }
    if (!c.send_all("z")) {
      closed = true;
      break;
    }
  }
  const auto took = elapsed_ms(start);
  ASSERT_TRUE(closed) << "a request dribbled for 5 s was not cut off by a 1 s read_timeout";
  EXPECT_GE(took, 800) << "closed before read_timeout could have expired";
  EXPECT_LE(took, 3500) << "closed long after read_timeout";
  // If the server said something first, it must be an error, never a 200.
  if (!c.buffer().empty()) {
    EXPECT_FALSE(c.buffer().starts_with("HTTP/1.1 200")) << c.buffer().substr(0, 200);
  }
  expect_alive_and_serving(p);
}

TEST(Robustness, SlowBodyClosedAfterReadTimeout) {
  ParleyProcess p({.args = {"--set", "server.read_timeout=1s"}});
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  const auto start = Clock::now();
  // Headers complete, body promised but never finished.
  ASSERT_TRUE(
      c.send_all("POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ti"));
  ASSERT_TRUE(c.wait_closed(Millis{5000})) << "incomplete body not cut off by read_timeout=1s";
  const auto took = elapsed_ms(start);
  EXPECT_GE(took, 800);
  EXPECT_LE(took, 3500);
  expect_alive_and_serving(p);
}

TEST(Robustness, IdleKeepAliveClosedAfterIdleTimeout) {
  ParleyProcess p({.args = {"--set", "server.idle_timeout=1s"}});
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send_all(simple_get("/health")));
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200);
  const auto start = Clock::now();
  ASSERT_TRUE(c.wait_closed(Millis{5000})) << "idle keep-alive connection still open after 5 s";
  const auto took = elapsed_ms(start);
  EXPECT_GE(took, 800) << "idle connection closed before idle_timeout";
  EXPECT_LE(took, 3500) << "idle connection closed long after idle_timeout";
  expect_alive_and_serving(p);
}

TEST(Robustness, IdleTimeoutDoesNotCutActiveKeepAlive) {
  ParleyProcess p({.args = {"--set", "server.idle_timeout=1s"}});
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  // A request every 400 ms for 2.4 s: the connection is never idle for 1 s, so it must survive
  // well past the idle timeout.
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(c.send_all(simple_get("/health"))) << "request " << i;
    auto r = c.read_response(Millis{3000});
    ASSERT_TRUE(r.has_value()) << "request " << i << ": connection closed while in use";
    EXPECT_EQ(r->status, 200);
    std::this_thread::sleep_for(Millis{400});
  }
}

TEST(Robustness, ClientThatStopsReadingIsCutOffAfterWriteTimeout) {
  ParleyProcess p({.args = {"--set", "server.write_timeout=1s"}});
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  c.set_receive_buffer(4096);
  // Thousands of pipelined requests whose answers (a few KiB of metrics each) far exceed what
  // the socket buffers hold; the client reads none of them, so the server's write stalls.
  constexpr int kRequests = 3000;
  std::string batch;
  for (int i = 0; i < kRequests; ++i) batch += simple_get("/metrics");
  ASSERT_TRUE(c.send_all(batch, Millis{10000}));
  std::this_thread::sleep_for(Millis{3000});
  // By now the stalled write has passed its 1 s deadline and the server has closed the
  // connection: reading drains what was buffered, then ends. Without the deadline, reading
  // would unblock the server and the connection would stay open for keep-alive.
  ASSERT_TRUE(c.wait_closed(Millis{10000})) << "a stalled write was not cut off by write_timeout";
  size_t answered = 0;
  for (size_t at = c.buffer().find("HTTP/1.1 200"); at != std::string::npos;
       at = c.buffer().find("HTTP/1.1 200", at + 1)) {
    ++answered;
  }
  EXPECT_LT(answered, static_cast<size_t>(kRequests)) << "every response was delivered";
  expect_alive_and_serving(p);
}

TEST(Robustness, TenThousandHeadersRejected) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  std::vector<std::string> pieces{"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"};
  std::string piece;
  for (int i = 0; i < 10000; ++i) {
    piece += "X-H-" + std::to_string(i) + ": v\r\n";
    if (piece.size() >= 4096) pieces.push_back(std::move(piece)), piece.clear();
  }
  pieces.push_back(piece + "\r\n");
  c.send_pieces_until_answer(pieces, Millis{10});
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value()) << "no response to 10,000 headers; got " << c.buffer().substr(0, 200);
  EXPECT_TRUE(is_error(*r, 431, "headers_too_large"));
  expect_alive_and_serving(p);
}

TEST(Robustness, OneMegabyteHeaderLineRejected) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  std::vector<std::string> pieces{"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: "};
  for (int i = 0; i < 256; ++i) pieces.push_back(std::string(4096, 'h'));
  pieces.push_back("\r\n\r\n");
  c.send_pieces_until_answer(pieces, Millis{10});
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value()) << "no response to a 1 MB header line; got "
                             << c.buffer().substr(0, 200);
  EXPECT_TRUE(is_error(*r, 431, "headers_too_large"));
  expect_alive_and_serving(p);
}

TEST(Robustness, RandomGarbageConnections) {
  ParleyProcess p;
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int conn = 0; conn < 8; ++conn) {
    SCOPED_TRACE("garbage connection " + std::to_string(conn));
    RawConnection c(p.port());
    ASSERT_TRUE(c.ok());
    std::string junk(4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(byte(rng));
    if (conn % 2 == 1) junk[0] = 'G';  // half start like a method, to reach deeper parser states
    c.send_all(junk);                  // the server may close before taking it all: not an error
    // The server must end the connection (with or without a 400) rather than wait forever.
    EXPECT_TRUE(c.wait_closed(Millis{5000})) << "garbage connection left open";
    if (!c.buffer().empty()) {
      EXPECT_TRUE(c.buffer().starts_with("HTTP/1.1 400") || c.buffer().starts_with("HTTP/1.0 400"))
          << "garbage answered with: " << c.buffer().substr(0, 100);
    }
  }
  // Garbage that never contains a line end: bounded by the read timeout or header limit, not
  // answered yet; a normal request on a second connection is served meanwhile.
  RawConnection lingering(p.port());
  ASSERT_TRUE(lingering.ok());
  lingering.send_all(std::string(2000, '\x01'));
  expect_alive_and_serving(p);
  auto created = http("POST", p.port(), "/api/v1/sessions", R"({"title":"after garbage"})");
  EXPECT_EQ(created.status, 201) << created.describe();
}

TEST(Robustness, MaxConnectionsEnforced) {
  ParleyProcess p({.args = {"--set", "server.max_connections=2"}});
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 2; ++i) {
    auto c = std::make_unique<RawConnection>(p.port());
    ASSERT_TRUE(c->ok());
    // A served request proves the server accepted and counts this connection.
    ASSERT_TRUE(c->send_all(simple_get("/health")));
    auto r = c->read_response(Millis{5000});
    ASSERT_TRUE(r.has_value()) << "connection " << i << " within the limit was not served";
    ASSERT_EQ(r->status, 200);
    held.push_back(std::move(c));
  }

  // A third connection is over the limit: it must get a 503 (code overloaded) or be closed,
  // never be served and never hang.
  {
    RawConnection third(p.port());
    if (third.ok()) {
      third.send_all(simple_get("/health"));
      auto r = third.read_response(Millis{5000});
      if (r.has_value()) {
        EXPECT_TRUE(is_error(*r, 503, "overloaded"));
      } else {
        EXPECT_TRUE(third.peer_closed())
            << "third connection neither answered nor closed within 5 s; got: "
            << third.buffer().substr(0, 200);
      }
    }
  }

  // Free a slot: a new connection is served again (the server needs a moment to notice).
  held.pop_back();
  bool served = eventually(
      [&] {
        RawConnection c(p.port());
        if (!c.ok() || !c.send_all(simple_get("/health"))) return false;
        auto r = c.read_response(Millis{2000});
        return r.has_value() && r->status == 200;
      },
      Millis{5000}, Millis{100});
  EXPECT_TRUE(served) << "after closing one of two connections, a new one is still refused";
  // The held connection keeps working throughout.
  ASSERT_TRUE(held[0]->send_all(simple_get("/health")));
  auto r = held[0]->read_response(Millis{5000});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(p.running());
}

}  // namespace
}  // namespace parley_it
