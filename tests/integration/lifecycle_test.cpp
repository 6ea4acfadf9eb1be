// Process lifecycle under signals: SIGTERM/SIGINT on an idle server exit 0 promptly; a graceful
// drain (readiness turns 503 "draining", the listener closes, idle keep-alive connections are
// closed, requests still arriving are allowed to finish and answer with Connection: close, and the
// completed write is durable); shutdown_grace bounds how long an unfinished request can hold the
// process; and a second signal ends the process at once.
#include <csignal>
#include <string>

#include "harness.hpp"

namespace parley_it {
namespace {

TEST(Shutdown, IdleServerExitsZeroOnSigterm) {
  ParleyProcess p;
  ASSERT_EQ(http("GET", p.port(), "/health").status, 200);
  const auto start = Clock::now();
  ASSERT_TRUE(p.send_signal(SIGTERM));
  auto st = p.wait_exit(Millis{5000});
  ASSERT_TRUE(st.has_value()) << "idle server still running 5 s after SIGTERM\n" << p.output_dump();
  EXPECT_TRUE(st->exited_with(0)) << st->describe() << "\n" << p.output_dump();
  EXPECT_LT(elapsed_ms(start), 3000) << "an idle server waited for nothing";
}

TEST(Shutdown, IdleServerExitsZeroOnSigint) {
  ParleyProcess p;
  ASSERT_TRUE(p.send_signal(SIGINT));
  auto st = p.wait_exit(Millis{5000});
  ASSERT_TRUE(st.has_value()) << "idle server still running 5 s after SIGINT";
  EXPECT_TRUE(st->exited_with(0)) << st->describe() << "\n" << p.output_dump();
}

TEST(Shutdown, GracefulDrainFinishesInFlightRequests) {
  ParleyProcess p;  // default shutdown_grace: 25 s, far longer than this test
  const int port = p.port();

  // A: a session POST whose body is only half sent.
  const std::string body = R"({"user_id":"drain","title":"written during shutdown"})";
  const size_t half = body.size() / 2;
  RawConnection a(port);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a.send_all(raw_request("POST", "/api/v1/sessions",
                                     {{"Content-Type", "application/json"},
                                      {"Content-Length", std::to_string(body.size())}},
                                     "", false) +
                         body.substr(0, half)));
  // B: a readiness request whose header block is not finished yet.
  RawConnection b(port);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b.send_all("GET /api/v1/health/readiness HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  // C: an idle keep-alive connection that has completed one request.
  RawConnection c(port);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send_all(simple_get("/health")));
  auto rc = c.read_response(Millis{5000});
  ASSERT_TRUE(rc.has_value());
  ASSERT_EQ(rc->status, 200);
  // Give the server time to read the partial requests (their first bytes start them).
  std::this_thread::sleep_for(Millis{200});

  ASSERT_TRUE(p.send_signal(SIGTERM));

  // The listener closes: new connections are refused.
  EXPECT_TRUE(eventually([&] { return connect_refused(port); }, Millis{3000}, Millis{50}))
      << "new connections still accepted 3 s after SIGTERM";
  // The idle keep-alive connection is closed.
  EXPECT_TRUE(c.wait_closed(Millis{3000})) << "idle keep-alive connection not closed on shutdown";
  // Requests in progress hold the process open.
  EXPECT_TRUE(p.running()) << "exited with requests in progress\n" << p.output_dump();

  // B completes now: readiness says draining, and the connection will close.
  ASSERT_TRUE(b.send_all("\r\n")) << "half-sent readiness request's connection was dropped";
  auto rb = b.read_response(Millis{5000});
  ASSERT_TRUE(rb.has_value()) << "no response to the readiness request completed after SIGTERM";
  EXPECT_EQ(rb->status, 503) << rb->describe();
  auto jb = rb->json_or_discarded();
  EXPECT_EQ(jb.value("status", ""), "not_ready") << rb->describe();
  EXPECT_EQ(jb["checks"]["draining"].value("status", ""), "draining") << rb->describe();
  EXPECT_TRUE(icontains(rb->header("Connection").value_or(""), "close")) << rb->describe();

  // A completes now: the session is created, and the connection will close.
  ASSERT_TRUE(a.send_all(body.substr(half))) << "half-sent POST's connection was dropped";
  auto ra = a.read_response(Millis{5000});
  ASSERT_TRUE(ra.has_value()) << "no response to the POST completed after SIGTERM";
  EXPECT_EQ(ra->status, 201) << ra->describe();
  EXPECT_TRUE(icontains(ra->header("Connection").value_or(""), "close")) << ra->describe();
  const std::string id = ra->json_or_discarded().value("id", "");

  // With nothing left in progress the process exits 0 (well before the 25 s grace).
  auto st = p.wait_exit(Millis{10000});
  ASSERT_TRUE(st.has_value()) << "still running after the in-flight requests finished\n"
                              << p.output_dump();
  EXPECT_TRUE(st->exited_with(0)) << st->describe() << "\n" << p.output_dump();

  // The 201 given during the drain is durable.
  ASSERT_FALSE(id.empty());
  auto again = p.restart();
  auto g = http("GET", again->port(), "/api/v1/sessions/" + id);
  EXPECT_EQ(g.status, 200) << g.describe();
}

TEST(Shutdown, GraceExpiryBoundsUnfinishedRequest) {
  ParleyProcess p({.args = {"--set", "server.shutdown_grace=1s"}});
  RawConnection a(p.port());
  ASSERT_TRUE(a.ok());
  // A request whose body never finishes.
  ASSERT_TRUE(
      a.send_all("POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ti"));
  std::this_thread::sleep_for(Millis{200});
  const auto start = Clock::now();
  ASSERT_TRUE(p.send_signal(SIGTERM));
  auto st = p.wait_exit(Millis{8000});
  const auto took = elapsed_ms(start);
  ASSERT_TRUE(st.has_value()) << "still running 8 s after SIGTERM with shutdown_grace=1s\n"
                              << p.output_dump();
  EXPECT_TRUE(st->exited_with(0)) << st->describe() << "\n" << p.output_dump();
  // The unfinished request was given its grace, and no more than a little beyond it.
  EXPECT_GE(took, 800) << "exited before shutdown_grace expired";
  EXPECT_LE(took, 4000) << "took far longer than shutdown_grace";
  EXPECT_TRUE(a.wait_closed(Millis{1000}));
}

TEST(Shutdown, SecondSignalExitsAtOnce) {
  ParleyProcess p;  // 25 s grace
  RawConnection a(p.port());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(
      a.send_all("POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ti"));
  std::this_thread::sleep_for(Millis{200});
  ASSERT_TRUE(p.send_signal(SIGTERM));
  std::this_thread::sleep_for(Millis{500});
  // The unfinished request keeps it draining...
  ASSERT_TRUE(p.running()) << "exited on the first signal despite a request in progress\n"
                           << p.output_dump();
  // ...until a second signal.
  const auto start = Clock::now();
  ASSERT_TRUE(p.send_signal(SIGINT));
  auto st = p.wait_exit(Millis{5000});
  ASSERT_TRUE(st.has_value()) << "second signal did not end the process\n" << p.output_dump();
  EXPECT_LT(elapsed_ms(start), 1500) << "second signal did not exit at once";
}

}  // namespace
}  // namespace parley_it
