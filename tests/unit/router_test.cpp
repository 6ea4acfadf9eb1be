// Routing and request helpers (http/router.hpp, http/message.hpp). Covers literal and
// {param} segments, percent-decoded parameters (and malformed escapes flagged, not fatal),
// 404 versus 405 with an Allow list that is sorted, deduplicated and adds HEAD for GET routes,
// HEAD answered by GET routes, exact matching (no trailing-slash or empty-segment leniency),
// that the matched handler is the registered one, and the helpers handlers rely on:
// percent_decode, Request::query_param, Request::header, Request::param, method parsing.
#include <gtest/gtest.h>

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <string>

#include "http/message.hpp"
#include "http/router.hpp"

namespace {

using parley::Task;
using parley::http::Match;
using parley::http::Method;
using parley::http::Request;
using parley::http::Response;
using parley::http::Router;

Task<Response> ok_handler(Request&) { co_return Response{}; }

Task<Response> created_handler(Request&) {
  Response r;
  r.status = 201;
  r.body = "created";
  co_return r;
}

Task<Response> echo_id_handler(Request& request) {
  Response r;
  r.status = 200;
  r.body = std::string(request.param("id"));
  co_return r;
}

// Runs a matched route's handler to completion on a private io_context.
Response run_handler(const parley::http::Route& route, Request& request) {
  boost::asio::io_context io;
  std::optional<Response> out;
  std::exception_ptr error;
  boost::asio::co_spawn(io, route.handler(request), [&](std::exception_ptr e, Response r) {
    error = e;
    out = std::move(r);
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return out.value();
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router.add(Method::kGet, "/health", parley::http::kPublic, ok_handler);
    router.add(Method::kGet, "/api/v1/sessions", parley::http::kPublic, ok_handler);
    router.add(Method::kPost, "/api/v1/sessions", parley::http::kPublic, created_handler);
    router.add(Method::kGet, "/api/v1/sessions/{id}", parley::http::kPublic, echo_id_handler);
    router.add(Method::kPatch, "/api/v1/sessions/{id}", parley::http::kPublic, ok_handler);
    router.add(Method::kDelete, "/api/v1/sessions/{id}", parley::http::kPublic, ok_handler);
    router.add(Method::kGet, "/api/v1/users/{user}/sessions/{id}", parley::http::kPublic,
               ok_handler);
    router.add(Method::kPost, "/api/v1/submit", parley::http::kPublic, ok_handler);
  }
  Router router;
};

TEST_F(RouterTest, RouteIdsFollowRegistrationOrder) {
  ASSERT_EQ(router.routes().size(), 8u);
  for (size_t i = 0; i < router.routes().size(); ++i) {
    EXPECT_EQ(router.routes()[i].id, static_cast<int>(i));
  }
  EXPECT_EQ(router.routes()[3].pattern, "/api/v1/sessions/{id}");
  EXPECT_EQ(router.routes()[3].segments,
            (std::vector<std::string>{"api", "v1", "sessions", "{id}"}));
}

TEST_F(RouterTest, LiteralRouteMatches) {
  auto m = router.match(Method::kGet, "/health");
  ASSERT_EQ(m.kind, Match::Kind::kFound);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/health");
  EXPECT_TRUE(m.params.empty());
  EXPECT_FALSE(m.bad_escape);
}

TEST_F(RouterTest, MethodSelectsAmongRoutesWithTheSamePattern) {
  auto get = router.match(Method::kGet, "/api/v1/sessions");
  auto post = router.match(Method::kPost, "/api/v1/sessions");
  ASSERT_EQ(get.kind, Match::Kind::kFound);
  ASSERT_EQ(post.kind, Match::Kind::kFound);
  EXPECT_EQ(get.route->id, 1);
  EXPECT_EQ(post.route->id, 2);
  Request request;
  EXPECT_EQ(run_handler(*post.route, request).status, 201);
  EXPECT_EQ(run_handler(*get.route, request).status, 200);
}

TEST_F(RouterTest, ParameterIsCapturedAndReachesTheHandler) {
  auto m = router.match(Method::kGet, "/api/v1/sessions/sess_abc123");
  ASSERT_EQ(m.kind, Match::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/api/v1/sessions/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "sess_abc123");

  Request request;
  request.params = m.params;
  EXPECT_EQ(run_handler(*m.route, request).body, "sess_abc123");
}

TEST_F(RouterTest, SeveralParametersInOrder) {
  auto m = router.match(Method::kGet, "/api/v1/users/u-1/sessions/s-2");
  ASSERT_EQ(m.kind, Match::Kind::kFound);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0].first, "user");
  EXPECT_EQ(m.params[0].second, "u-1");
  EXPECT_EQ(m.params[1].first, "id");
  EXPECT_EQ(m.params[1].second, "s-2");
}

TEST_F(RouterTest, ParametersArePercentDecodedButPlusStaysPlus) {
  auto m = router.match(Method::kGet, "/api/v1/sessions/a%20b%2Fc+d");
  ASSERT_EQ(m.kind, Match::Kind::kFound);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].second, "a b/c+d");
  EXPECT_FALSE(m.bad_escape);
}

TEST_F(RouterTest, MalformedEscapeIsFlaggedAndKeptRaw) {
  for (const char* raw : {"a%zz", "abc%4", "%"}) {
    auto m = router.match(Method::kGet, std::string("/api/v1/sessions/") + raw);
    ASSERT_EQ(m.kind, Match::Kind::kFound) << raw;
    EXPECT_TRUE(m.bad_escape) << raw;
    ASSERT_EQ(m.params.size(), 1u);
    EXPECT_EQ(m.params[0].second, raw);
  }
}

TEST_F(RouterTest, UnknownPathIsNotFound) {
  for (const char* path : {"/nope", "/api/v1", "/api/v1/sessions/x/extra", "/HEALTH", "health", "",
                           "/api/v1/users/u/sessions"}) {
    auto m = router.match(Method::kGet, path);
    EXPECT_EQ(m.kind, Match::Kind::kNotFound) << path;
    EXPECT_EQ(m.route, nullptr) << path;
    EXPECT_TRUE(m.allow.empty()) << path;
  }
}

TEST_F(RouterTest, TrailingSlashAndEmptySegmentsDoNotMatch) {
  EXPECT_EQ(router.match(Method::kGet, "/health/").kind, Match::Kind::kNotFound);
  EXPECT_EQ(router.match(Method::kGet, "/api/v1/sessions/").kind, Match::Kind::kNotFound);
  EXPECT_EQ(router.match(Method::kGet, "//health").kind, Match::Kind::kNotFound);
  EXPECT_EQ(router.match(Method::kGet, "/api//sessions").kind, Match::Kind::kNotFound);
  // Empty {id} between slashes.
  EXPECT_EQ(router.match(Method::kGet, "/api/v1/users//sessions/x").kind, Match::Kind::kNotFound);
}

TEST_F(RouterTest, WrongMethodOnGetRouteIs405WithGetAndHead) {
  auto m = router.match(Method::kPost, "/health");
  EXPECT_EQ(m.kind, Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET, HEAD");
}

TEST_F(RouterTest, AllowListIsSortedAndCoversEveryRouteForThePath) {
  auto m = router.match(Method::kPut, "/api/v1/sessions/sess_1");
  EXPECT_EQ(m.kind, Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD, PATCH");

  auto post_only = router.match(Method::kGet, "/api/v1/submit");
  EXPECT_EQ(post_only.kind, Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(post_only.allow, "POST");
}

TEST_F(RouterTest, HeadIsAnsweredByGetRoutes) {
  auto m = router.match(Method::kHead, "/api/v1/sessions/sess_9");
  ASSERT_EQ(m.kind, Match::Kind::kFound);
  EXPECT_EQ(m.route->method, Method::kGet);
  EXPECT_EQ(m.route->pattern, "/api/v1/sessions/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].second, "sess_9");

  // ...but not by routes of other methods.
  auto post_only = router.match(Method::kHead, "/api/v1/submit");
  EXPECT_EQ(post_only.kind, Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(post_only.allow, "POST");
}

TEST(Router, AllowListIsDeduplicated) {
  Router router;
  router.add(Method::kGet, "/items/{a}", parley::http::kPublic, ok_handler);
  router.add(Method::kGet, "/items/{b}", parley::http::kPublic, ok_handler);
  router.add(Method::kDelete, "/items/{c}", parley::http::kPublic, ok_handler);
  router.add(Method::kDelete, "/items/special", parley::http::kPublic, ok_handler);
  auto m = router.match(Method::kPost, "/items/special");
  EXPECT_EQ(m.kind, Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD");
}

TEST(Router, LiteralSegmentsMustMatchExactly) {
  Router router;
  router.add(Method::kGet, "/files/{name}/raw", parley::http::kPublic, ok_handler);
  EXPECT_EQ(router.match(Method::kGet, "/files/x/raw").kind, Match::Kind::kFound);
  EXPECT_EQ(router.match(Method::kGet, "/files/x/Raw").kind, Match::Kind::kNotFound);
  EXPECT_EQ(router.match(Method::kGet, "/files/x/raw2").kind, Match::Kind::kNotFound);
  EXPECT_EQ(router.match(Method::kGet, "/files/raw").kind, Match::Kind::kNotFound);
}

TEST(Router, EmptyRouterFindsNothing) {
  Router router;
  auto m = router.match(Method::kGet, "/");
  EXPECT_EQ(m.kind, Match::Kind::kNotFound);
}

// --- message.hpp helpers -----------------------------------------------------------------

TEST(PercentDecode, DecodesEscapesAndOptionallyPlus) {
  using parley::http::percent_decode;
  EXPECT_EQ(percent_decode("%41%62c", false), std::optional<std::string>("Abc"));
  EXPECT_EQ(percent_decode("%e2%82%ac", false), std::optional<std::string>("\xe2\x82\xac"));
  EXPECT_EQ(percent_decode("a+b", false), std::optional<std::string>("a+b"));
  EXPECT_EQ(percent_decode("a+b", true), std::optional<std::string>("a b"));
  EXPECT_EQ(percent_decode("%2B", true), std::optional<std::string>("+"));
  EXPECT_EQ(percent_decode("", false), std::optional<std::string>(""));
  EXPECT_EQ(percent_decode("%00", false), std::optional<std::string>(std::string(1, '\0')));
}

TEST(PercentDecode, RejectsMalformedEscapes) {
  using parley::http::percent_decode;
  for (const char* bad : {"%", "%4", "abc%", "ab%4", "%g1", "%1g", "%%41"}) {
    EXPECT_FALSE(percent_decode(bad, false)) << bad;
  }
}

TEST(RequestHelpers, QueryParamDecodesAndFindsTheFirst) {
  Request request;
  request.query = "limit=10&q=hello+world%21&flag&cursor=&limit=20&bad=%zz";
  EXPECT_EQ(request.query_param("limit"), std::optional<std::string>("10"));
  EXPECT_EQ(request.query_param("q"), std::optional<std::string>("hello world!"));
  EXPECT_EQ(request.query_param("flag"), std::optional<std::string>(""));
  EXPECT_EQ(request.query_param("cursor"), std::optional<std::string>(""));
  EXPECT_EQ(request.query_param("missing"), std::nullopt);
  EXPECT_EQ(request.query_param("lim"), std::nullopt);
  EXPECT_EQ(request.query_param("bad"), std::nullopt);
}

TEST(RequestHelpers, HeaderLookupIsCaseInsensitiveAndParamByName) {
  Request request;
  request.headers = {{"Content-Type", "application/json"}, {"X-Request-Id", "abc"}};
  EXPECT_EQ(request.header("content-type"), std::optional<std::string_view>("application/json"));
  EXPECT_EQ(request.header("X-REQUEST-ID"), std::optional<std::string_view>("abc"));
  EXPECT_EQ(request.header("Accept"), std::nullopt);

  request.params = {{"id", "s1"}, {"user", "u1"}};
  EXPECT_EQ(request.param("user"), "u1");
  EXPECT_EQ(request.param("id"), "s1");
  EXPECT_EQ(request.param("other"), "");
}

TEST(Methods, ParseAndNameRoundTrip) {
  using parley::http::method_name;
  using parley::http::parse_method;
  for (Method m : {Method::kGet, Method::kHead, Method::kPost, Method::kPut, Method::kPatch,
                   Method::kDelete, Method::kOptions}) {
    EXPECT_EQ(parse_method(method_name(m)), m) << method_name(m);
  }
  EXPECT_EQ(parse_method("get"), Method::kOther);
  EXPECT_EQ(parse_method("BREW"), Method::kOther);
  EXPECT_EQ(parse_method(""), Method::kOther);
}

}  // namespace

namespace {

// Matching splits the path into a fixed number of segments without allocating; deeper paths
// must simply not match (not crash, not match a route by their first 32 segments).
TEST(RouterDepth, PathsDeeperThanAnyRouteDoNotMatch) {
  Router router;
  std::string pattern;
  for (int i = 0; i < 32; ++i) pattern += "/{p" + std::to_string(i) + "}";
  router.add(Method::kGet, pattern, parley::http::kPublic, ok_handler);

  std::string path32;
  for (int i = 0; i < 32; ++i) path32 += "/x";
  EXPECT_EQ(router.match(Method::kGet, path32).kind, Match::Kind::kFound);

  std::string deep = path32;
  for (int i = 0; i < 1000; ++i) deep += "/y";
  EXPECT_EQ(router.match(Method::kGet, deep).kind, Match::Kind::kNotFound);
  EXPECT_EQ(router.match(Method::kGet, path32 + "/y").kind, Match::Kind::kNotFound);
}

}  // namespace

namespace {

// The guard goes around routes registered before it was set and after, and sees each route's
// policy: no route escapes it by being added late.
TEST(RouterGuard, GuardsRoutesAddedBeforeAndAfterItWithTheirPolicies) {
  Router router;
  router.add(Method::kGet, "/early", parley::http::kAdminOnly, ok_handler);
  std::vector<std::string> guarded;
  router.guard([&guarded](const parley::http::Route& route) -> parley::http::Handler {
    guarded.push_back(route.pattern + ":" +
                      std::string(parley::http::audience_name(route.policy.audience)));
    return [](Request&) -> Task<Response> {
      Response refused;
      refused.status = 403;
      co_return refused;
    };
  });
  router.add(Method::kGet, "/late", parley::http::kAuthenticated, ok_handler);
  EXPECT_EQ(guarded, (std::vector<std::string>{"/early:admin", "/late:authenticated"}));
  for (const char* path : {"/early", "/late"}) {
    auto m = router.match(Method::kGet, path);
    ASSERT_EQ(m.kind, Match::Kind::kFound) << path;
    Request req;
    EXPECT_EQ(run_handler(*m.route, req).status, 403) << path;
  }
}

}  // namespace
