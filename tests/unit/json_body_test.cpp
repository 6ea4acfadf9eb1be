// JSON request bodies (http/json_body.hpp). Covers parse_json: valid documents, malformed
// input reported as kInvalidArgument/"malformed_json" with the 0-based byte offset of the
// failure, comments and trailing garbage refused, and the nesting limit (64 levels accepted,
// 65 refused, a hostile 100k-deep body refused without crashing). Covers
// parse_json_object_body: empty body without Content-Type is {}, 415 for missing or non-JSON
// types (text/plain, application/jsonp), parameters and case in the type, +json types, and
// non-object bodies refused as "invalid_body".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "http/errors.hpp"
#include "http/json_body.hpp"

namespace {

using parley::ErrorCode;
using parley::http::kMaxJsonDepth;
using parley::http::parse_json;
using parley::http::parse_json_object_body;
using parley::http::Request;
using ::testing::HasSubstr;

std::string nested_arrays(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

std::string nested_objects(int depth) {
  std::string out;
  for (int i = 0; i < depth; ++i) out += "{\"a\":";
  out += "1";
  out += std::string(static_cast<size_t>(depth), '}');
  return out;
}

Request json_request(std::string body, std::string_view content_type) {
  Request r;
  r.method = parley::http::Method::kPost;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", content_type);
  return r;
}

TEST(ParseJson, ParsesValidDocuments) {
  auto v = parse_json(R"({"title":"hi","tags":["a","b"],"n":1.5,"ok":true,"none":null})");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ((*v)["title"], "hi");
  EXPECT_EQ((*v)["tags"].size(), 2u);
  EXPECT_TRUE((*v)["none"].is_null());

  auto scalar = parse_json("  42 ");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(*scalar, 42);
}

TEST(ParseJson, MalformedInputNamesTheByteOffset) {
  // Offsets are 0-based: in `{"a": x}` the bad literal starts at byte 6.
  auto v = parse_json(R"({"a": x})");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(v.error().reason, "malformed_json");
  EXPECT_THAT(v.error().message, HasSubstr("at byte 6"));
  EXPECT_THAT(v.error().message, ::testing::StartsWith("malformed JSON"));

  auto w = parse_json(R"({"a":1,,"b":2})");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.error().message, HasSubstr("at byte 7"));
}

TEST(ParseJson, OffsetMovesWithTheError) {
  auto early = parse_json("[1, 2, x]");
  auto late = parse_json("[1, 2, 3, 4, 5, 6, x]");
  ASSERT_FALSE(early.ok());
  ASSERT_FALSE(late.ok());
  EXPECT_THAT(early.error().message, HasSubstr("at byte 7"));
  EXPECT_THAT(late.error().message, HasSubstr("at byte 19"));
}

TEST(ParseJson, MessageDoesNotCarryLibraryBoilerplate) {
  auto v = parse_json("{");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.error().message, ::testing::Not(HasSubstr("[json.exception")));
}

TEST(ParseJson, RejectsEmptyTrailingGarbageAndComments) {
  for (const char* bad : {"", "   ", "{} x", "{}{}", "{/* c */}", "// c\n{}", "{'a':1}",
                          "{\"a\":1,}", "[1,]", "nul", "\"unterminated"}) {
    auto v = parse_json(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.error().reason, "malformed_json") << bad;
    EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(ParseJson, DepthLimitIs64Levels) {
  ASSERT_EQ(kMaxJsonDepth, 64);
  auto at_limit = parse_json(nested_arrays(64));
  EXPECT_TRUE(at_limit.ok()) << at_limit.error().message;
  auto objects_at_limit = parse_json(nested_objects(64));
  EXPECT_TRUE(objects_at_limit.ok()) << objects_at_limit.error().message;

  auto over = parse_json(nested_arrays(65));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().reason, "malformed_json");
  EXPECT_THAT(over.error().message, HasSubstr("64"));

  auto objects_over = parse_json(nested_objects(65));
  ASSERT_FALSE(objects_over.ok());
  EXPECT_THAT(objects_over.error().message, HasSubstr("deeper than 64"));
}

TEST(ParseJson, DeepNestingInsideAWideDocumentIsCaught) {
  std::string doc = R"({"ok":[1,2,3],"deep":)" + nested_arrays(70) + R"(,"after":true})";
  auto v = parse_json(doc);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.error().message, HasSubstr("deeper than 64"));
}

TEST(ParseJson, HostileDepthIsRefusedWithoutCrashing) {
  auto v = parse_json(nested_arrays(100'000));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().reason, "malformed_json");
}

TEST(JsonObjectBody, EmptyBodyWithoutContentTypeIsEmptyObject) {
  Request r;
  r.method = parley::http::Method::kPost;
  auto v = parse_json_object_body(r);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_TRUE(v->is_object());
  EXPECT_TRUE(v->empty());
}

TEST(JsonObjectBody, WrongOrMissingContentTypeIs415) {
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "application/jsonp",
                           "text/json", "text/x+json", "application/xml", ""}) {
    auto v = parse_json_object_body(json_request(R"({"a":1})", type));
    ASSERT_FALSE(v.ok()) << type;
    EXPECT_EQ(v.error().code, ErrorCode::kUnsupportedMedia) << type;
    EXPECT_EQ(v.error().reason, "unsupported_media_type") << type;
    EXPECT_EQ(parley::http::status_for(v.error().code), 415);
  }
  Request no_type;
  no_type.body = R"({"a":1})";
  auto v = parse_json_object_body(no_type);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kUnsupportedMedia);
}

TEST(JsonObjectBody, JsonTypesWithParametersCaseAndSuffixAreAccepted) {
  for (const char* type :
       {"application/json", "application/json; charset=utf-8", "Application/JSON",
        "application/json ;charset=UTF-8", "application/vnd.api+json",
        "application/merge-patch+json", "application/problem+JSON; q=1"}) {
    auto v = parse_json_object_body(json_request(R"({"title":"t"})", type));
    ASSERT_TRUE(v.ok()) << type << ": " << v.error().message;
    EXPECT_EQ((*v)["title"], "t") << type;
  }
}

TEST(JsonObjectBody, ContentTypeHeaderNameIsCaseInsensitive) {
  Request r;
  r.body = R"({"x":2})";
  r.headers.emplace_back("content-TYPE", "application/json");
  auto v = parse_json_object_body(r);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ((*v)["x"], 2);
}

TEST(JsonObjectBody, NonObjectBodiesAreRefused) {
  for (const char* body : {"[1,2]", "\"text\"", "42", "null", "true"}) {
    auto v = parse_json_object_body(json_request(body, "application/json"));
    ASSERT_FALSE(v.ok()) << body;
    EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument) << body;
    EXPECT_EQ(v.error().reason, "invalid_body") << body;
  }
}

TEST(JsonObjectBody, MalformedBodyKeepsTheParseError) {
  auto v = parse_json_object_body(json_request(R"({"title": })", "application/json"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().reason, "malformed_json");
  EXPECT_THAT(v.error().message, HasSubstr("at byte 10"));
}

TEST(JsonObjectBody, TooDeepBodyIsRefused) {
  auto v =
      parse_json_object_body(json_request("{\"a\":" + nested_arrays(80) + "}", "application/json"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().reason, "malformed_json");
}

}  // namespace
