// The HTTP server in-process, with routes that only a test would have: a handler that throws
// must cost the client a 500 envelope that reveals nothing, never the process or the
// connection's neighbours; the in-flight gauge must come back to zero either way.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/io_pool.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "obs/metrics.hpp"
#include "support/raw_http.hpp"

namespace {

using parley::Task;
using parley::http::Method;
using parley::http::Request;
using parley::http::Response;

Task<Response> throws_std(Request&) {
  throw std::runtime_error("secret internal detail: /var/lib/parley/db");
  co_return Response{};
}

Task<Response> throws_other(Request&) {
  throw 42;
  co_return Response{};
}

Task<Response> ok(Request&) {
  Response r;
  r.body = R"({"ok":true})";
  co_return r;
}

Task<Response> no_content(Request&) { co_return Response::empty(204); }

// A header value that carries a line break, as one built from client input might.
Task<Response> splitting(Request&) {
  Response r;
  r.header("X-Echo", "a\r\nSet-Cookie: stolen=1\nX-Other: b");
  r.body = "{}";
  co_return r;
}

// The header block of a raw response, and whether it has the named header (case-sensitive
// name, as the server writes it).
std::string head_of(const std::string& response) {
  return response.substr(0, response.find("\r\n\r\n") + 2);
}
bool has_header_line(const std::string& response, const std::string& line) {
  return head_of(response).find("\r\n" + line + "\r\n") != std::string::npos;
}

// One request on a fresh connection; returns the raw response (the server closes or we stop
// reading at the end of the body, which is small).
std::string roundtrip(uint16_t port, const std::string& request) {
  return parley::testing::raw_exchange(port, request);
}

std::string get(uint16_t port, const std::string& path) {
  return roundtrip(port, "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
}

nlohmann::json body_of(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  if (at == std::string::npos) return nlohmann::json();
  return nlohmann::json::parse(response.substr(at + 4), nullptr, false);
}

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : io_(1), metrics_({"test", "none", "g++", "Debug"}) {
    router_.add(Method::kGet, "/throws/std", parley::http::kPublic, throws_std);
    router_.add(Method::kGet, "/throws/other", parley::http::kPublic, throws_other);
    router_.add(Method::kGet, "/ok", parley::http::kPublic, ok);
    router_.add(Method::kGet, "/no-content", parley::http::kPublic, no_content);
    router_.add(Method::kGet, "/splitting", parley::http::kPublic, splitting);
    server_ = std::make_unique<parley::http::Server>(io_, parley::http::ServerOptions{}, router_,
                                                     metrics_);
    auto port = server_->listen("127.0.0.1", 0);
    EXPECT_TRUE(port.ok());
    port_ = port.ok() ? port.value() : 0;
    server_->start();
    runner_ = std::thread([this] { io_.run(); });
  }
  ~ServerTest() override {
    server_->begin_drain([this] { io_.stop(); });
    runner_.join();
  }

  parley::IoPool io_;
  parley::obs::Metrics metrics_;
  parley::http::Router router_;
  std::unique_ptr<parley::http::Server> server_;
  uint16_t port_ = 0;
  std::thread runner_;
};

TEST_F(ServerTest, ThrowingHandlerGetsA500EnvelopeWithoutInternals) {
  for (const char* path : {"/throws/std", "/throws/other"}) {
    SCOPED_TRACE(path);
    std::string response = get(port_, path);
    ASSERT_EQ(response.rfind("HTTP/1.1 500", 0), 0u) << response;
    EXPECT_EQ(response.find("secret internal detail"), std::string::npos) << response;
    auto body = body_of(response);
    ASSERT_TRUE(body.is_object()) << response;
    EXPECT_EQ(body["error"]["type"], "api_error");
    EXPECT_EQ(body["error"]["code"], "internal");
    EXPECT_FALSE(body["error"]["request_id"].get<std::string>().empty());
  }
  // The process and the server are still there for everyone else.
  std::string after = get(port_, "/ok");
  EXPECT_EQ(after.rfind("HTTP/1.1 200", 0), 0u) << after;
  EXPECT_EQ(metrics_.requests_in_flight().Value(), 0.0);
}

TEST_F(ServerTest, FailedRequestsAreCountedUnderTheirRouteTemplate) {
  (void)get(port_, "/throws/std");
  std::string text = metrics_.serialize();
  EXPECT_NE(text.find(R"(http_requests_total{method="GET",route="/throws/std",status="500"} 1)"),
            std::string::npos)
      << text;
}

TEST_F(ServerTest, ResponseHeadCarriesStatusDateLengthTypeAndRequestId) {
  std::string response = roundtrip(
      port_, "GET /ok HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_TRUE(has_header_line(response, "Content-Length: 11")) << response;
  EXPECT_TRUE(has_header_line(response, "Content-Type: application/json")) << response;
  EXPECT_TRUE(has_header_line(response, "X-Request-Id: abc-123")) << response;
  EXPECT_TRUE(has_header_line(response, "Connection: close")) << response;
  EXPECT_NE(head_of(response).find("\r\nDate: "), std::string::npos) << response;
  EXPECT_EQ(response.substr(response.find("\r\n\r\n") + 4), R"({"ok":true})");
}

TEST_F(ServerTest, HeadGetsTheLengthOfGetButNoBody) {
  std::string response =
      roundtrip(port_, "HEAD /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_TRUE(has_header_line(response, "Content-Length: 11")) << response;
  EXPECT_EQ(response.size(), response.find("\r\n\r\n") + 4) << "HEAD response has a body";
}

TEST_F(ServerTest, NoContentHasNeitherLengthNorBody) {
  std::string response = get(port_, "/no-content");
  ASSERT_EQ(response.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << response;
  EXPECT_EQ(head_of(response).find("Content-Length"), std::string::npos) << response;
  EXPECT_EQ(response.size(), response.find("\r\n\r\n") + 4) << response;
}

TEST_F(ServerTest, Http10KeepAliveIsConfirmedAndDefaultCloseIsHonoured) {
  std::string kept = roundtrip(port_,
                               "GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                               "GET /ok HTTP/1.0\r\n\r\n");
  ASSERT_EQ(kept.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << kept;
  EXPECT_TRUE(has_header_line(kept, "Connection: keep-alive")) << kept;
  // The second request had no keep-alive: its response is the last; the server closed.
  auto second = kept.find("HTTP/1.0 200 OK", 1);
  ASSERT_NE(second, std::string::npos) << kept;
  EXPECT_EQ(kept.find("Connection: keep-alive", second), std::string::npos) << kept;
}

TEST_F(ServerTest, LineBreaksInHeaderValuesCannotSplitTheResponse) {
  std::string response = get(port_, "/splitting");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  std::string head = head_of(response);
  EXPECT_EQ(head.find("\r\nSet-Cookie"), std::string::npos) << head;
  EXPECT_EQ(head.find("\r\nX-Other"), std::string::npos) << head;
  EXPECT_TRUE(has_header_line(response, "X-Echo: a  Set-Cookie: stolen=1 X-Other: b")) << head;
}

}  // namespace
