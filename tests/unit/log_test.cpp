// Structured log lines (obs/log.hpp), tested through format_line and append_json_escaped
// without init(). Covers: every line parses as one JSON object with time (RFC 3339 UTC, ms),
// level, message and typed fields; escaping of quotes, backslashes and control bytes; invalid
// UTF-8 (stray continuation bytes, overlong forms, surrogates, truncated sequences, bytes that
// can never start a sequence) replaced by U+FFFD so the line stays valid JSON while valid
// multi-byte text passes through; secret redaction in message, field values and keys,
// including the JSON-escaped form of a secret, longest-first replacement and replacement of
// the list; run-time field lists (std::span); level names and enabled().
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "obs/log.hpp"

namespace {

namespace log = parley::log;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Redaction state is process-wide; every test starts and ends with no secrets.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { log::set_secrets({}); }
  void TearDown() override {
    log::set_secrets({});
    log::set_level(log::Level::kInfo);
  }
};

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1))
    ++n;
  return n;
}

// Parses a line strictly (nlohmann rejects invalid UTF-8 by default).
json parse_line(const std::string& line) { return json::parse(line); }

TEST_F(LogTest, LineIsOneJsonObjectWithTimeLevelMessageAndFields) {
  auto line = log::format_line(log::Level::kInfo, "ready",
                               {{"port", 8080},
                                {"bytes", 123456789012ULL},
                                {"delta", -5},
                                {"ok", true},
                                {"name", "parley"},
                                {"ratio", 0.25}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  json j;
  ASSERT_NO_THROW(j = parse_line(line)) << line;
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["message"], "ready");
  EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")))
      << j["time"];
  EXPECT_EQ(j["port"], 8080);
  EXPECT_TRUE(j["port"].is_number_integer());
  EXPECT_EQ(j["bytes"], 123456789012ULL);
  EXPECT_EQ(j["delta"], -5);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["name"], "parley");
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), 0.25);
  EXPECT_EQ(j.size(), 9u);
  // time comes first, so lines sort and grep well.
  EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u);
}

TEST_F(LogTest, RuntimeFieldListsFormatLikeLiteralOnes) {
  // The access log appends a route's path parameters at run time.
  std::vector<log::Field> fields{{"route", "/api/v1/sessions/{id}"}, {"status", 200}};
  const std::string id = "sess_0123456789abcdefghjkmnpqrs";
  fields.emplace_back("id", id);
  auto j = parse_line(
      log::format_line(log::Level::kInfo, "request", std::span<const log::Field>(fields)));
  EXPECT_EQ(j["route"], "/api/v1/sessions/{id}");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["message"], "request");
}

TEST_F(LogTest, LevelNames) {
  EXPECT_EQ(parse_line(log::format_line(log::Level::kTrace, "m", {}))["level"], "trace");
  EXPECT_EQ(parse_line(log::format_line(log::Level::kDebug, "m", {}))["level"], "debug");
  EXPECT_EQ(parse_line(log::format_line(log::Level::kWarn, "m", {}))["level"], "warn");
  EXPECT_EQ(parse_line(log::format_line(log::Level::kError, "m", {}))["level"], "error");
}

TEST_F(LogTest, SpecialCharactersRoundTrip) {
  const std::string message =
      "quote \" backslash \\ newline \n tab \t cr \r bell \x07 del \x7f nul";
  const std::string value = std::string("with\0zero", 9) + " and \x1f";
  auto line = log::format_line(log::Level::kWarn, message, {{"v", value}, {"key \"q\"", 1}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  json j;
  ASSERT_NO_THROW(j = parse_line(line)) << line;
  EXPECT_EQ(j["message"], message);
  EXPECT_EQ(j["v"], value);
  EXPECT_EQ(j["key \"q\""], 1);
}

TEST_F(LogTest, AppendJsonEscapedControlBytes) {
  std::string out;
  parley::append_json_escaped(out, std::string("a\x01"
                                               "b\x7f"
                                               "c\"\\",
                                               7));
  EXPECT_EQ(out, "a\\u0001b\\u007fc\\\"\\\\");
  out.clear();
  parley::append_json_escaped(out, "\n\r\t");
  EXPECT_EQ(out, "\\n\\r\\t");
}

TEST_F(LogTest, ValidUtf8PassesThrough) {
  const std::string text =
      "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad";  // héllo € 😀 中
  std::string out;
  parley::append_json_escaped(out, text);
  EXPECT_EQ(out, text);
  EXPECT_EQ(parse_line(log::format_line(log::Level::kInfo, text, {}))["message"], text);
}

TEST_F(LogTest, InvalidUtf8BecomesReplacementCharacter) {
  std::string out;
  parley::append_json_escaped(out,
                              "a\xff"
                              "b");
  EXPECT_EQ(out, "a\\ufffdb");

  const std::string replacement = "\xef\xbf\xbd";  // U+FFFD as UTF-8
  auto j = parse_line(log::format_line(log::Level::kInfo, "bad \xfe\xff byte", {}));
  EXPECT_EQ(j["message"], "bad " + replacement + replacement + " byte");
}

TEST_F(LogTest, EveryKindOfInvalidUtf8YieldsValidJson) {
  const std::vector<std::string> cases{
      "\x80",                  // stray continuation byte
      "\xbf\xbf",              // more stray continuation bytes
      "\xc0\xaf",              // overlong '/'
      "\xc1\xbf",              // overlong
      "\xe0\x80\xaf",          // overlong three-byte
      "\xed\xa0\x80",          // UTF-16 surrogate
      "\xf0\x80\x80\xaf",      // overlong four-byte
      "\xf4\x90\x80\x80",      // above U+10FFFF
      "\xe2\x82",              // truncated at the end
      "\xf0\x9f\x98",          // truncated four-byte
      "\xc3(",                 // lead byte followed by ASCII
      "\xf5\x80\x80\x80",      // 0xF5..0xFF never start a sequence
      "\xf8\x88\x80\x80\x80",  // old five-byte form
      "\xfe\x80\x80",
      "\xff\xbf\xbf",
  };
  for (const auto& bytes : cases) {
    auto line = log::format_line(log::Level::kInfo, "x" + bytes + "y", {{"field", bytes}});
    json j;
    EXPECT_NO_THROW(j = parse_line(line)) << ::testing::PrintToString(bytes);
    if (j.is_object()) {
      EXPECT_THAT(j["message"].get<std::string>(), HasSubstr("\xef\xbf\xbd"))
          << ::testing::PrintToString(bytes);
    }
  }
}

TEST_F(LogTest, SecretsAreRedactedEverywhere) {
  log::set_secrets({"hunter2-secret-token"});
  auto line = log::format_line(
      log::Level::kInfo, "token is hunter2-secret-token",
      {{"authorization", "Bearer hunter2-secret-token"}, {"hunter2-secret-token", "as a key"}});
  EXPECT_THAT(line, Not(HasSubstr("hunter2")));
  EXPECT_EQ(count(line, "[REDACTED]"), 3u);
  json j;
  ASSERT_NO_THROW(j = parse_line(line)) << line;
  EXPECT_EQ(j["message"], "token is [REDACTED]");
  EXPECT_EQ(j["authorization"], "Bearer [REDACTED]");
}

TEST_F(LogTest, SecretIsRedactedInItsJsonEscapedForm) {
  const std::string secret = "pa\"ss\\wo\nrd-42";
  log::set_secrets({secret});
  auto line = log::format_line(log::Level::kInfo, "login", {{"password", secret}});
  json j;
  ASSERT_NO_THROW(j = parse_line(line)) << line;
  EXPECT_EQ(j["password"], "[REDACTED]");
  EXPECT_THAT(line, Not(HasSubstr("wo\\nrd")));
}

TEST_F(LogTest, RedactionPrefersTheLongerSecret) {
  log::set_secrets({"abcd1234", "abcd1234efgh5678"});
  auto line = log::format_line(log::Level::kInfo, "k=abcd1234efgh5678 and abcd1234", {});
  auto j = parse_line(line);
  EXPECT_EQ(j["message"], "k=[REDACTED] and [REDACTED]");
}

TEST_F(LogTest, SetSecretsReplacesThePreviousList) {
  log::set_secrets({"first-secret-value"});
  EXPECT_THAT(log::format_line(log::Level::kInfo, "first-secret-value", {}),
              Not(HasSubstr("first-secret")));
  log::set_secrets({"second-secret-value"});
  auto line = log::format_line(log::Level::kInfo, "first-secret-value second-secret-value", {});
  EXPECT_EQ(parse_line(line)["message"], "first-secret-value [REDACTED]");
}

TEST_F(LogTest, WithoutSecretsNothingIsRedacted) {
  auto line = log::format_line(log::Level::kInfo, "plain text", {{"k", "v"}});
  EXPECT_THAT(line, Not(HasSubstr("[REDACTED]")));
}

TEST_F(LogTest, ParseLevel) {
  EXPECT_EQ(log::parse_level("trace"), log::Level::kTrace);
  EXPECT_EQ(log::parse_level("debug"), log::Level::kDebug);
  EXPECT_EQ(log::parse_level("info"), log::Level::kInfo);
  EXPECT_EQ(log::parse_level("warn"), log::Level::kWarn);
  EXPECT_EQ(log::parse_level("warning"), log::Level::kWarn);
  EXPECT_EQ(log::parse_level("error"), log::Level::kError);
  EXPECT_EQ(log::parse_level("off"), log::Level::kOff);
  EXPECT_EQ(log::parse_level("bogus"), log::Level::kInfo);
}

TEST_F(LogTest, EnabledFollowsTheLevel) {
  log::set_level(log::Level::kWarn);
  EXPECT_FALSE(log::enabled(log::Level::kDebug));
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kWarn));
  EXPECT_TRUE(log::enabled(log::Level::kError));
  log::set_level(log::Level::kTrace);
  EXPECT_TRUE(log::enabled(log::Level::kTrace));
  log::set_level(log::Level::kOff);
  EXPECT_FALSE(log::enabled(log::Level::kError));
  EXPECT_FALSE(log::enabled(log::Level::kOff));
}

}  // namespace
