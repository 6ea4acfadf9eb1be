// The error contract at the HTTP edge: every error is the JSON envelope
// {"error":{"type","message","code","request_id"}} with the right status and code (404, 405 with
// Allow, 413 for a declared or a chunked body over the limit, 415, 400 malformed JSON with the
// byte offset, 431, 400 invalid_field), and the X-Request-Id rules (a well-formed client id is
// echoed, anything else is replaced by a fresh id). After each error the server keeps serving.
#include <regex>
#include <set>
#include <string>

#include "harness.hpp"

namespace parley_it {
namespace {

const std::regex kRequestIdPattern("^[A-Za-z0-9._:-]{1,128}$");

// The server answers a fresh request normally (used after every error case).
void expect_still_serving(int port) {
  auto r = http("GET", port, "/health");
  EXPECT_EQ(r.status, 200) << "server stopped serving after the error case\n" << r.describe();
}

TEST(Errors, UnknownRouteIs404Envelope) {
  ParleyProcess p;
  auto r = http("GET", p.port(), "/no/such/route");
  EXPECT_TRUE(is_error(r, 404, "route_not_found"));
  auto r2 = http("POST", p.port(), "/api/v1/nothing-here", "{}");
  EXPECT_TRUE(is_error(r2, 404, "route_not_found"));
  expect_still_serving(p.port());
}

TEST(Errors, WrongMethodIs405WithAllow) {
  ParleyProcess p;
  auto r = http("DELETE", p.port(), "/health");
  ASSERT_TRUE(is_error(r, 405, "method_not_allowed"));
  auto allow = r.header("Allow");
  ASSERT_TRUE(allow.has_value()) << r.describe();
  auto methods = split_list(*allow);
  std::set<std::string> set(methods.begin(), methods.end());
  EXPECT_TRUE(set.count("GET")) << "Allow: " << *allow;
  EXPECT_FALSE(set.count("DELETE")) << "Allow: " << *allow;

  // A collection route: GET and POST are allowed there, PUT is not.
  auto r2 = http("PUT", p.port(), "/api/v1/sessions", "{}");
  ASSERT_TRUE(is_error(r2, 405, "method_not_allowed"));
  auto allow2 = r2.header("Allow");
  ASSERT_TRUE(allow2.has_value()) << r2.describe();
  auto m2 = split_list(*allow2);
  std::set<std::string> set2(m2.begin(), m2.end());
  EXPECT_TRUE(set2.count("GET") && set2.count("POST")) << "Allow: " << *allow2;
  EXPECT_FALSE(set2.count("PUT")) << "Allow: " << *allow2;

  // An item route: POST is not allowed there.
  auto r3 = http("POST", p.port(), "/api/v1/sessions/sess_x", "{}");
  ASSERT_TRUE(is_error(r3, 405, "method_not_allowed"));
  auto allow3 = r3.header("Allow");
  ASSERT_TRUE(allow3.has_value()) << r3.describe();
  auto m3 = split_list(*allow3);
  std::set<std::string> set3(m3.begin(), m3.end());
  EXPECT_TRUE(set3.count("GET") && set3.count("PATCH") && set3.count("DELETE"))
      << "Allow: " << *allow3;
  expect_still_serving(p.port());
}

TEST(Errors, DeclaredContentLengthTooLargeRejectedWithoutReadingBody) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  // 10 MiB declared against the default 1 MiB limit; no body byte is ever sent, so an answer can
  // only come from looking at Content-Length.
  ASSERT_TRUE(c.send_all(
      raw_request("POST", "/api/v1/sessions",
                  {{"Content-Type", "application/json"}, {"Content-Length", "10485760"}})));
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value()) << "no response to an oversized Content-Length within 5 s (outcome: "
                             << (c.peer_closed() ? "closed" : "open") << ")";
  EXPECT_TRUE(is_error(*r, 413, "body_too_large"));
  expect_still_serving(p.port());
}

TEST(Errors, ChunkedBodyTooLargeIs413) {
  ParleyProcess p({.args = {"--set", "server.max_body_size=1KiB"}});
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  std::vector<std::string> pieces;
  pieces.push_back(raw_request(
      "POST", "/api/v1/sessions",
      {{"Content-Type", "application/json"}, {"Transfer-Encoding", "chunked"}}, "", false));
  // 512-byte chunks of a JSON string: the third one passes 1 KiB. Sent one at a time, stopping
  // as soon as the server answers, so we never provoke a reset by sending what it will not read.
  std::string chunk_data(512, 'a');
  pieces.push_back("200\r\n{\"title\":\"" + chunk_data.substr(10) + "\r\n");
  for (int i = 0; i < 30; ++i) pieces.push_back("200\r\n" + chunk_data + "\r\n");
  pieces.push_back("0\r\n\r\n");
  c.send_pieces_until_answer(pieces, Millis{30});
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value()) << "no response to a 16 KiB chunked body over a 1 KiB limit; got: "
                             << c.buffer().substr(0, 500);
  EXPECT_TRUE(is_error(*r, 413, "body_too_large"));
  expect_still_serving(p.port());
}

// A JSON object of exactly `size` bytes: {"metadata":{"pad":"xxx..."}}.
std::string body_of_size(size_t size) {
  const std::string head = R"({"metadata":{"pad":")";
  const std::string tail = R"("}})";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

TEST(Errors, BodyLimitBoundary) {
  ParleyProcess p({.args = {"--set", "server.max_body_size=1KiB"}});
  // Exactly the limit is accepted...
  auto at = http("POST", p.port(), "/api/v1/sessions", body_of_size(1024));
  EXPECT_EQ(at.status, 201) << at.describe();
  // ...one byte more is not.
  auto over = http("POST", p.port(), "/api/v1/sessions", body_of_size(1025));
  EXPECT_TRUE(is_error(over, 413, "body_too_large"));
  auto far_over = http("POST", p.port(), "/api/v1/sessions", body_of_size(64 * 1024));
  EXPECT_TRUE(is_error(far_over, 413, "body_too_large"));
  expect_still_serving(p.port());
}

TEST(Errors, HeadIsServedWithoutBody) {
  ParleyProcess p;
  auto r = http("HEAD", p.port(), "/health");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(r.body.empty()) << r.describe();
  EXPECT_TRUE(r.header("X-Request-Id").has_value()) << r.describe();
}

TEST(Errors, NonJsonContentTypeIs415) {
  ParleyProcess p;
  auto r = http("POST", p.port(), "/api/v1/sessions", "{}", {{"Content-Type", "text/plain"}});
  EXPECT_TRUE(is_error(r, 415, "unsupported_media_type"));
  auto r2 = http("POST", p.port(), "/api/v1/sessions", "user_id=u1",
                 {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_TRUE(is_error(r2, 415, "unsupported_media_type"));
  expect_still_serving(p.port());
}

TEST(Errors, MalformedJsonIs400WithByteOffset) {
  ParleyProcess p;
  // The first byte that cannot continue valid JSON is the 'x' at offset 17 (0-based).
  const std::string body = R"({"user_id":"u1", x})";
  const size_t bad_offset = body.find('x');
  auto r = http("POST", p.port(), "/api/v1/sessions", body);
  ASSERT_TRUE(is_error(r, 400, "malformed_json"));
  auto msg = r.json()["error"]["message"].get<std::string>();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(msg, m, std::regex("at byte ([0-9]+)"))) << msg;
  const size_t reported = std::stoul(m[1].str());
  // Accept a 0-based or 1-based offset of the offending byte, nothing farther away.
  EXPECT_TRUE(reported == bad_offset || reported == bad_offset + 1)
      << "reported byte " << reported << ", offending byte is at " << bad_offset << ": " << msg;

  // Truncated input: the error is at the end.
  const std::string truncated = R"({"user_id":)";
  auto r2 = http("POST", p.port(), "/api/v1/sessions", truncated);
  ASSERT_TRUE(is_error(r2, 400, "malformed_json"));
  auto msg2 = r2.json()["error"]["message"].get<std::string>();
  ASSERT_TRUE(std::regex_search(msg2, m, std::regex("at byte ([0-9]+)"))) << msg2;
  const size_t reported2 = std::stoul(m[1].str());
  EXPECT_TRUE(reported2 >= truncated.size() - 1 && reported2 <= truncated.size() + 1)
      << "reported byte " << reported2 << " for a " << truncated.size() << "-byte body";
  expect_still_serving(p.port());
}

TEST(Errors, HeadersTooLargeIs431) {
  ParleyProcess p;
  RawConnection c(p.port());
  ASSERT_TRUE(c.ok());
  // 32 KiB of header against the default 16 KiB limit, sent 1 KiB at a time.
  std::vector<std::string> pieces{"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "};
  for (int i = 0; i < 32; ++i) pieces.push_back(std::string(1024, 'b'));
  pieces.push_back("\r\n\r\n");
  c.send_pieces_until_answer(pieces, Millis{30});
  auto r = c.read_response(Millis{5000});
  ASSERT_TRUE(r.has_value()) << "no response to a 32 KiB header; got: "
                             << c.buffer().substr(0, 300);
  EXPECT_TRUE(is_error(*r, 431, "headers_too_large"));
  expect_still_serving(p.port());
}

TEST(Errors, HeadersJustUnderLimitAccepted) {
  ParleyProcess p;
  // ~12 KiB of headers is under the 16 KiB default.
  auto r = http("GET", p.port(), "/health", "", {{"X-Filler", std::string(12 * 1024, 'f')}});
  EXPECT_EQ(r.status, 200) << r.describe();
}

TEST(Errors, ClientRequestIdEchoed) {
  ParleyProcess p;
  const std::string id = "client-Req_1.2:3";
  auto ok = http("GET", p.port(), "/health", "", {{"X-Request-Id", id}});
  ASSERT_EQ(ok.status, 200) << ok.describe();
  EXPECT_EQ(ok.header("X-Request-Id").value_or(""), id);

  auto err = http("GET", p.port(), "/nope", "", {{"X-Request-Id", id}});
  ASSERT_TRUE(is_error(err, 404, "route_not_found"));
  EXPECT_EQ(err.json()["error"]["request_id"], id);

  // 128 characters is still well-formed.
  const std::string longest(128, 'a');
  auto r128 = http("GET", p.port(), "/health", "", {{"X-Request-Id", longest}});
  EXPECT_EQ(r128.header("X-Request-Id").value_or(""), longest);
}

TEST(Errors, MalformedRequestIdReplaced) {
  ParleyProcess p;
  const std::vector<std::string> bad_ids = {"has space",  std::string(129, 'a'),
                                            "semi;colon", "slash/id",
                                            "quote\"id",  "\xc3\xa9t\xc3\xa9"};
  for (const auto& bad : bad_ids) {
    SCOPED_TRACE("X-Request-Id: " + bad);
    auto r = http("GET", p.port(), "/nope", "", {{"X-Request-Id", bad}});
    ASSERT_TRUE(is_error(r, 404, "route_not_found"));
    auto rid = r.header("X-Request-Id").value_or("");
    EXPECT_NE(rid, bad);
    EXPECT_TRUE(std::regex_match(rid, kRequestIdPattern)) << "generated id '" << rid << "'";
  }
}

TEST(Errors, GeneratedRequestIdsAreUniqueAndWellFormed) {
  ParleyProcess p;
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto r = http("GET", p.port(), "/health");
    ASSERT_EQ(r.status, 200);
    auto rid = r.header("X-Request-Id");
    ASSERT_TRUE(rid.has_value()) << r.describe();
    EXPECT_TRUE(std::regex_match(*rid, kRequestIdPattern)) << *rid;
    ids.insert(*rid);
  }
  EXPECT_EQ(ids.size(), 20u) << "generated request ids repeat";
}

TEST(Errors, InvalidFieldNamesParam) {
  ParleyProcess p;
  auto r = http("POST", p.port(), "/api/v1/sessions", R"({"user_id": 5})");
  ASSERT_TRUE(is_error(r, 400, "invalid_field"));
  EXPECT_EQ(r.json()["error"].value("param", ""), "user_id") << r.body;
}

}  // namespace
}  // namespace parley_it
