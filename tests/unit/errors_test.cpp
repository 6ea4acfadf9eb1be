// The JSON error envelope (http/errors.hpp). Covers the envelope's exact shape
// ({"error":{type,message,code,request_id[,param]}}), the HTTP status for every ErrorCode, the
// `type` family for each status, that a 500 never reveals the internal message, that `param`
// appears only when set, the default code for an empty reason, the explicit-status overload
// used for protocol errors, and that invalid UTF-8 in a message still yields valid JSON.
// Also the request-id rules (core/ids.hpp; ids end up in every envelope and log line) and
// the Result<T>/Result<void> carrier (core/result.hpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"
#include "http/errors.hpp"

namespace {

using nlohmann::json;
using parley::Error;
using parley::ErrorCode;
using parley::http::error_response;
using parley::http::status_for;
using parley::http::type_for_status;
using ::testing::HasSubstr;
using ::testing::Not;

json body_of(const parley::http::Response& r) { return json::parse(r.body); }

TEST(ErrorEnvelope, HasExactlyTheDocumentedShape) {
  auto r =
      error_response(Error::not_found("no session with id 'x'", "session_not_found"), "req-123");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  auto body = body_of(r);
  ASSERT_TRUE(body.is_object());
  ASSERT_EQ(body.size(), 1u);
  ASSERT_TRUE(body.contains("error"));
  const auto& e = body["error"];
  EXPECT_EQ(e, json({{"type", "not_found_error"},
                     {"message", "no session with id 'x'"},
                     {"code", "session_not_found"},
                     {"request_id", "req-123"}}));
  EXPECT_FALSE(e.contains("param"));
}

TEST(ErrorEnvelope, StatusForEveryCode) {
  const std::vector<std::pair<ErrorCode, int>> expected{
      {ErrorCode::kInvalidArgument, 400},  {ErrorCode::kUnauthenticated, 401},
      {ErrorCode::kPermissionDenied, 403}, {ErrorCode::kNotFound, 404},
      {ErrorCode::kConflict, 409},         {ErrorCode::kTooLarge, 413},
      {ErrorCode::kUnsupportedMedia, 415}, {ErrorCode::kUnavailable, 503},
      {ErrorCode::kDeadlineExceeded, 504}, {ErrorCode::kInternal, 500},
      {ErrorCode::kTooManyRequests, 429},  {ErrorCode::kBadGateway, 502},
      {ErrorCode::kCancelled, 499},
  };
  for (const auto& [code, status] : expected) {
    EXPECT_EQ(status_for(code), status) << static_cast<int>(code);
    Error error{code, "m", "r", {}, {}};
    EXPECT_EQ(error_response(error, "id").status, status) << static_cast<int>(code);
  }
}

TEST(ErrorEnvelope, TypeFamilyForEachStatus) {
  EXPECT_EQ(type_for_status(400), "invalid_request_error");
  EXPECT_EQ(type_for_status(405), "invalid_request_error");
  EXPECT_EQ(type_for_status(415), "invalid_request_error");
  EXPECT_EQ(type_for_status(422), "invalid_request_error");
  EXPECT_EQ(type_for_status(401), "authentication_error");
  EXPECT_EQ(type_for_status(403), "permission_error");
  EXPECT_EQ(type_for_status(404), "not_found_error");
  EXPECT_EQ(type_for_status(409), "conflict_error");
  EXPECT_EQ(type_for_status(413), "request_too_large");
  EXPECT_EQ(type_for_status(431), "request_too_large");
  EXPECT_EQ(type_for_status(429), "rate_limit_error");
  EXPECT_EQ(type_for_status(500), "api_error");
  EXPECT_EQ(type_for_status(502), "api_error");
  EXPECT_EQ(type_for_status(503), "overloaded_error");
  EXPECT_EQ(type_for_status(504), "timeout_error");
}

TEST(ErrorEnvelope, InternalErrorHidesItsMessage) {
  const std::string secret_detail = "database error (prepare: no such table: users_secret_xyz)";
  auto r = error_response(Error::internal(secret_detail), "req-500");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, Not(HasSubstr("users_secret_xyz")));
  auto e = body_of(r)["error"];
  EXPECT_EQ(e["type"], "api_error");
  EXPECT_EQ(e["code"], "internal");
  EXPECT_EQ(e["request_id"], "req-500");
  EXPECT_NE(e["message"], secret_detail);
  EXPECT_FALSE(e["message"].get<std::string>().empty());
}

TEST(ErrorEnvelope, NonInternalMessagesAreKept) {
  auto r = error_response(Error::unavailable("database is busy", "storage_busy"), "rid");
  EXPECT_EQ(r.status, 503);
  auto e = body_of(r)["error"];
  EXPECT_EQ(e["message"], "database is busy");
  EXPECT_EQ(e["type"], "overloaded_error");
  EXPECT_EQ(e["code"], "storage_busy");
}

TEST(ErrorEnvelope, ParamIsIncludedWhenSet) {
  auto r = error_response(Error::invalid_field("metadata.tags[2]", "must be a string"), "rid");
  EXPECT_EQ(r.status, 400);
  auto e = body_of(r)["error"];
  EXPECT_EQ(e["param"], "metadata.tags[2]");
  EXPECT_EQ(e["code"], "invalid_field");
  EXPECT_EQ(e["message"], "must be a string");
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["request_id"], "rid");
}

TEST(ErrorEnvelope, EmptyReasonGetsAGenericCode) {
  Error error{ErrorCode::kConflict, "already exists", "", {}, {}};
  auto e = body_of(error_response(error, "rid"))["error"];
  EXPECT_EQ(e["code"], "error");
  EXPECT_EQ(e["type"], "conflict_error");
}

TEST(ErrorEnvelope, ProtocolOverloadUsesTheGivenStatusAndCode) {
  auto r = error_response(431, "headers_too_large", "request head exceeds 16KiB", "rid-431");
  EXPECT_EQ(r.status, 431);
  auto body = body_of(r);
  EXPECT_EQ(body, json({{"error",
                         {{"type", "request_too_large"},
                          {"message", "request head exceeds 16KiB"},
                          {"code", "headers_too_large"},
                          {"request_id", "rid-431"}}}}));
}

TEST(ErrorEnvelope, InvalidUtf8InMessageStillGivesValidJson) {
  // Client-supplied text (an id, a header) can end up in a message.
  auto r = error_response(Error::not_found("no session with id 'a\xff\xfe'"), "rid\xc3");
  json body;
  ASSERT_NO_THROW(body = json::parse(r.body)) << r.body;
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("no session with id 'a"));
}

TEST(ErrorEnvelope, SpecialCharactersAreEscaped) {
  auto r = error_response(Error::invalid("bad \"quote\" and \\ and\nnewline"), "rid");
  EXPECT_EQ(body_of(r)["error"]["message"], "bad \"quote\" and \\ and\nnewline");
}

TEST(Responses, EmptyResponseHasNoContentType) {
  auto r = parley::http::Response::empty(204);
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.content_type.empty());
  EXPECT_TRUE(r.body.empty());

  auto j = parley::http::Response::json(201, json{{"id", "x"}});
  EXPECT_EQ(j.status, 201);
  EXPECT_EQ(j.content_type, "application/json");
  EXPECT_EQ(json::parse(j.body), json({{"id", "x"}}));
}

// --- Request ids (they travel in every envelope) and Result --------------------------------

TEST(RequestIds, ValidationAcceptsOnlySafeCharacters) {
  EXPECT_TRUE(parley::is_valid_request_id("abc-123_X.y:z"));
  EXPECT_TRUE(parley::is_valid_request_id(std::string(128, 'a')));
  EXPECT_FALSE(parley::is_valid_request_id(""));
  EXPECT_FALSE(parley::is_valid_request_id(std::string(129, 'a')));
  EXPECT_FALSE(parley::is_valid_request_id("has space"));
  EXPECT_FALSE(parley::is_valid_request_id("line\nbreak"));
  EXPECT_FALSE(parley::is_valid_request_id("quote\""));
  EXPECT_FALSE(parley::is_valid_request_id("caf\xc3\xa9"));
}

TEST(RequestIds, GeneratedIdsAreWellFormedAndDistinct) {
  auto a = parley::random_hex128();
  auto b = parley::random_hex128();
  EXPECT_THAT(a, ::testing::MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(a, b);
  EXPECT_TRUE(parley::is_valid_request_id(a));
  auto id = parley::new_resource_id("msg");
  EXPECT_THAT(id, ::testing::MatchesRegex("msg_[0-9a-hjkmnp-tv-z]{26}"));
  EXPECT_NE(id, parley::new_resource_id("msg"));
}

TEST(ResultType, CarriesAValueOrAnError) {
  parley::Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(*good, 7);

  parley::Result<int> bad = Error::conflict("taken", "name_taken");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kConflict);
  EXPECT_EQ(bad.error().reason, "name_taken");

  parley::Result<void> done = parley::success();
  EXPECT_TRUE(done.ok());
  parley::Result<void> failed = Error::unavailable("down");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "down");
  EXPECT_EQ(status_for(failed.error().code), 503);
}

}  // namespace
