// JsonObjectWriter (core/json_text.hpp): what it writes must parse back, with nlohmann, to
// exactly the values given — escaping, null for an absent optional, raw JSON embedded as a
// value, 64-bit numbers. (The escaper itself is covered in log_test.cpp.)
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"

namespace {

using parley::JsonObjectWriter;

TEST(JsonObjectWriterTest, WritesAnObjectThatParsesBackToTheSameValues) {
  std::string out = "prefix:";
  JsonObjectWriter obj(out);
  obj.string("plain", "hello")
      .string("tricky", "quote \" backslash \\ newline \n tab \t bell \x07 é")
      .nullable_string("absent", std::nullopt)
      .nullable_string("present", std::string("x"))
      .number("min", std::numeric_limits<int64_t>::min())
      .number("max", std::numeric_limits<int64_t>::max())
      .raw("nested", R"({"a":[1,2,{"b":null}]})");
  obj.close();

  ASSERT_EQ(out.rfind("prefix:", 0), 0u) << "the writer must append, not overwrite";
  auto j = nlohmann::json::parse(out.substr(7));
  EXPECT_EQ(j["plain"], "hello");
  EXPECT_EQ(j["tricky"], "quote \" backslash \\ newline \n tab \t bell \x07 é");
  EXPECT_TRUE(j["absent"].is_null());
  EXPECT_EQ(j["present"], "x");
  EXPECT_EQ(j["min"].get<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(j["max"].get<int64_t>(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(j["nested"], nlohmann::json::parse(R"({"a":[1,2,{"b":null}]})"));
  EXPECT_EQ(j.size(), 7u);
}

TEST(JsonObjectWriterTest, EmptyObject) {
  std::string out;
  JsonObjectWriter(out).close();
  EXPECT_EQ(out, "{}");
}

TEST(JsonObjectWriterTest, InvalidUtf8InAValueStillGivesValidJson) {
  std::string out;
  JsonObjectWriter obj(out);
  obj.string("bad", std::string("a\xff\xc3(b"));
  obj.close();
  auto j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["bad"], "a\uFFFD\uFFFD(b");
}

}  // namespace
