// SseParser (llm/sse.hpp): the WHATWG event-stream rules both providers' streams rely on. The
// network cuts a stream anywhere (inside a line, between "\r" and "\n", inside the BOM), so
// several tests feed one stream cut in different places and expect the same events.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "llm/sse.hpp"

namespace {

using parley::ErrorCode;
using parley::llm::SseEvent;
using parley::llm::SseParser;

// Feeds `pieces` in order; every feed must succeed.
std::vector<SseEvent> feed_pieces(SseParser& parser, const std::vector<std::string_view>& pieces) {
  std::vector<SseEvent> events;
  for (auto piece : pieces) {
    auto fed = parser.feed(piece, events);
    EXPECT_TRUE(fed.ok()) << "feeding \"" << piece << "\": " << fed.error().message;
  }
  return events;
}

std::vector<SseEvent> feed_whole(std::string_view stream) {
  SseParser parser;
  return feed_pieces(parser, {stream});
}

// Events as text, so that a mismatch prints every field of every event.
std::string describe(const std::vector<SseEvent>& events, bool with_id = true) {
  std::string out;
  for (const auto& e : events) {
    out += "[event=" + e.event + " data=" + e.data;
    if (with_id) out += " id=" + e.id;
    out += "]\n";
  }
  return out;
}

SseEvent event(std::string name, std::string data, std::string id = {}) {
  return SseEvent{std::move(name), std::move(data), std::move(id)};
}

// One stream with every rule a cut could break: a BOM, comments, event names, ids, "retry",
// "\r\n", bare "\r" and bare "\n" line ends, data on several lines, a field with no colon, an
// event with no data (dropped) and multi-byte UTF-8.
const std::string kStream = std::string("\xEF\xBB\xBF") +
                            ": keep-alive\r\n"
                            "event: message_start\r\n"
                            "id: 1\r\n"
                            "data: {\"type\":\"message_start\"}\r\n"
                            "\r\n"
                            ": another comment\n"
                            "data: line one\n"
                            "data:line two\n"
                            "\n"
                            "event: delta\r"
                            "data: x\r"
                            "\r"
                            "retry: 1000\n"
                            "id: 2\n"
                            "data\n"
                            "\n"
                            "event: no-data\r\n"
                            "\r\n"
                            "data: caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\r\n"
                            "\r\n";

TEST(SseParserTest, DispatchesAnEventOnlyAtTheBlankLine) {
  SseParser parser;
  std::vector<SseEvent> events;
  ASSERT_TRUE(parser.feed("event: delta\ndata: hello\n", events).ok());
  EXPECT_TRUE(events.empty()) << "an event is not complete before its blank line";
  ASSERT_TRUE(parser.feed("\n", events).ok());
  EXPECT_EQ(describe(events), describe({event("delta", "hello")}));
}

TEST(SseParserTest, EventFieldsDoNotCarryOverToTheNextEvent) {
  EXPECT_EQ(describe(feed_whole("event: a\ndata: 1\n\ndata: 2\n\n")),
            describe({event("a", "1"), event("", "2")}));
}

TEST(SseParserTest, JoinsDataLinesWithNewlines) {
  EXPECT_EQ(describe(feed_whole("data: first\ndata:\ndata: third\n\n")),
            describe({event("", "first\n\nthird")}));
  // One empty data line is still data: the event is dispatched, with empty data.
  EXPECT_EQ(describe(feed_whole("data:\n\n")), describe({event("", "")}));
}

TEST(SseParserTest, AcceptsLfCrLfAndCrLineEnds) {
  for (std::string eol : {"\n", "\r\n", "\r"}) {
    const std::string stream =
        "event: e" + eol + "data: a" + eol + "data: b" + eol + eol + "data: c" + eol + eol;
    EXPECT_EQ(describe(feed_whole(stream)), describe({event("e", "a\nb"), event("", "c")}))
        << "line end "
        << (eol == "\n"   ? "LF"
            : eol == "\r" ? "CR"
                          : "CRLF");
  }
}

TEST(SseParserTest, CrLfSplitAcrossFeedsIsOneLineEnd) {
  // Were the "\n" that starts the second feed taken for a line end of its own, it would be a
  // blank line and dispatch "a" alone.
  SseParser parser;
  auto events = feed_pieces(parser, {"data: a\r", "\ndata: b\r\n\r", "\n"});
  EXPECT_EQ(describe(events), describe({event("", "a\nb")}));
  EXPECT_FALSE(parser.has_partial_event());
  // The "\n" that ended the last feed belonged to its "\r": the next event starts clean.
  events = feed_pieces(parser, {"data: c\n\n"});
  EXPECT_EQ(describe(events), describe({event("", "c")}));
}

TEST(SseParserTest, LfThenCrIsTwoLineEnds) {
  // "\n\r" is not a line end pair: the "\r" ends a second, empty line, which dispatches.
  EXPECT_EQ(describe(feed_whole("data: a\n\rdata: b\n\n")),
            describe({event("", "a"), event("", "b")}));
  // Likewise a "\r" after a "\r" that ended a feed.
  SseParser parser;
  EXPECT_EQ(describe(feed_pieces(parser, {"data: a\r", "\r"})), describe({event("", "a")}));
}

TEST(SseParserTest, TheRepresentativeStreamGivesTheExpectedEvents) {
  const auto events = feed_whole(kStream);
  // Ids are checked apart: only where the stream sets one (see KeepsTheLastEventId below).
  EXPECT_EQ(describe(events, /*with_id=*/false),
            describe({event("message_start", "{\"type\":\"message_start\"}"),
                      event("", "line one\nline two"), event("delta", "x"), event("", ""),
                      event("", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC")},
                     /*with_id=*/false));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].id, "1");
  EXPECT_EQ(events[3].id, "2");
}

TEST(SseParserTest, CuttingTheStreamAnywhereGivesTheSameEvents) {
  const std::string expected = describe(feed_whole(kStream));
  const std::string_view s(kStream);
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    SseParser parser;
    auto events = feed_pieces(parser, {s.substr(0, cut), s.substr(cut)});
    ASSERT_EQ(describe(events), expected) << "cut at byte " << cut;
    ASSERT_FALSE(parser.has_partial_event()) << "cut at byte " << cut;
  }
  // Two cuts: a piece may hold a "\r\n" or the BOM whole, in part, or not at all.
  for (size_t first = 0; first <= s.size(); ++first) {
    for (size_t second = first; second <= s.size(); ++second) {
      SseParser parser;
      auto events = feed_pieces(
          parser, {s.substr(0, first), s.substr(first, second - first), s.substr(second)});
      ASSERT_EQ(describe(events), expected) << "cuts at bytes " << first << " and " << second;
    }
  }
}

TEST(SseParserTest, OneByteAtATimeGivesTheSameEvents) {
  SseParser parser;
  std::vector<SseEvent> events;
  for (char c : kStream) ASSERT_TRUE(parser.feed(std::string_view(&c, 1), events).ok());
  EXPECT_EQ(describe(events), describe(feed_whole(kStream)));
  EXPECT_FALSE(parser.has_partial_event());
}

TEST(SseParserTest, IgnoresComments) {
  EXPECT_TRUE(feed_whole(": keep-alive\n\n:\n\n").empty());
  // A comment inside an event neither ends it nor adds to its data.
  EXPECT_EQ(describe(feed_whole("data: x\n: keep-alive\ndata: y\n\n")),
            describe({event("", "x\ny")}));
}

TEST(SseParserTest, DropsAnEventWithoutData) {
  SseParser parser;
  auto events = feed_pieces(parser, {"event: ping\n\n", "id: 5\nevent: x\n\n", "retry: 100\n\n"});
  EXPECT_TRUE(events.empty()) << describe(events);
  EXPECT_FALSE(parser.has_partial_event());
  // The dropped event's name does not leak into the next one.
  events = feed_pieces(parser, {"data: z\n\n"});
  EXPECT_EQ(describe(events, /*with_id=*/false), describe({event("", "z")}, false));
}

TEST(SseParserTest, DropsALeadingBom) {
  EXPECT_EQ(describe(feed_whole("\xEF\xBB\xBF"
                                "data: a\n\n")),
            describe({event("", "a")}));
  // Split across feeds, a byte at a time.
  SseParser parser;
  EXPECT_EQ(describe(feed_pieces(parser, {"\xEF", "\xBB", "\xBF", "data: a\n\n"})),
            describe({event("", "a")}));
  // Only one: a second BOM is part of the first field's name, an unknown field.
  EXPECT_TRUE(feed_whole("\xEF\xBB\xBF\xEF\xBB\xBF"
                         "data: a\n\n")
                  .empty());
  // And only at the start of the stream.
  EXPECT_EQ(describe(feed_whole("data: a\n\n\xEF\xBB\xBF"
                                "data: b\n\n")),
            describe({event("", "a")}));
}

TEST(SseParserTest, RemovesOneSpaceAfterTheColon) {
  EXPECT_EQ(feed_whole("data:x\n\n").at(0).data, "x");
  EXPECT_EQ(feed_whole("data: x\n\n").at(0).data, "x");
  EXPECT_EQ(feed_whole("data:  x\n\n").at(0).data, " x");
  EXPECT_EQ(feed_whole("data: x \n\n").at(0).data, "x ");
  EXPECT_EQ(feed_whole("data: \n\n").at(0).data, "");
  // A line without a colon is a field name with an empty value.
  EXPECT_EQ(feed_whole("data\n\n").at(0).data, "");
  // Only the first colon separates: JSON in the value keeps its own.
  EXPECT_EQ(feed_whole("data: {\"a\":1}\n\n").at(0).data, "{\"a\":1}");
  EXPECT_EQ(feed_whole("event:e\ndata: 1\n\n").at(0).event, "e");
  EXPECT_EQ(feed_whole("event:  e\ndata: 1\n\n").at(0).event, " e");
  // Field names are case-sensitive.
  EXPECT_TRUE(feed_whole("Data: x\n\n").empty());
}

TEST(SseParserTest, IgnoresAnIdContainingNul) {
  const std::string stream("id: a\0b\ndata: x\n\n", 17);
  EXPECT_EQ(describe(feed_whole(stream)), describe({event("", "x", "")}));
}

// The spec keeps the last event id in a buffer that dispatch does not reset: an event without
// an "id" field carries the id set before it, until an "id" line (even an empty one) changes it.
// A client resuming with Last-Event-ID depends on this.
TEST(SseParserTest, KeepsTheLastEventIdAcrossEvents) {
  EXPECT_EQ(describe(feed_whole("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")),
            describe({event("", "a", "7"), event("", "b", "7"), event("", "c", "")}));
  // An event dropped for having no data still sets the id.
  EXPECT_EQ(describe(feed_whole("id: 9\n\ndata: d\n\n")), describe({event("", "d", "9")}));
}

TEST(SseParserTest, ALineLongerThanTheLimitFailsTheParserForGood) {
  SseParser parser(32);
  std::vector<SseEvent> events;
  // Neither piece is over the limit; the line they make together is.
  ASSERT_TRUE(parser.feed("data: " + std::string(20, 'x'), events).ok());
  auto fed = parser.feed(std::string(20, 'x'), events);
  ASSERT_FALSE(fed.ok());
  EXPECT_EQ(fed.error().code, ErrorCode::kBadGateway);
  EXPECT_EQ(fed.error().reason, "stream_event_too_large");
  // What follows is not parsed: the stream is out of step.
  fed = parser.feed("\n\ndata: ok\n\n", events);
  EXPECT_FALSE(fed.ok());
  EXPECT_TRUE(events.empty()) << describe(events);
}

TEST(SseParserTest, AnEventLongerThanTheLimitFailsTheParserForGood) {
  SseParser parser(32);
  std::vector<SseEvent> events;
  // Exactly at the limit is fine: three 10-byte lines and their two joins make 32 bytes.
  ASSERT_TRUE(parser.feed("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", events).ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.size(), 32u);
  events.clear();
  // Every line is short; the event they add up to is not.
  auto fed = parser.feed(
      "data: 0123456789\ndata: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", events);
  ASSERT_FALSE(fed.ok());
  EXPECT_EQ(fed.error().code, ErrorCode::kBadGateway);
  EXPECT_EQ(fed.error().reason, "stream_event_too_large");
  EXPECT_TRUE(events.empty()) << describe(events);
  EXPECT_FALSE(parser.feed("data: a\n\n", events).ok());
  EXPECT_TRUE(events.empty()) << describe(events);
}

TEST(SseParserTest, ReportsAPartialEvent) {
  SseParser parser;
  std::vector<SseEvent> events;
  EXPECT_FALSE(parser.has_partial_event()) << "a fresh parser";
  ASSERT_TRUE(parser.feed("data: a\n\n", events).ok());
  EXPECT_FALSE(parser.has_partial_event()) << "after a complete event";
  ASSERT_TRUE(parser.feed("data: b", events).ok());
  EXPECT_TRUE(parser.has_partial_event()) << "inside a line";
  ASSERT_TRUE(parser.feed("\n", events).ok());
  EXPECT_TRUE(parser.has_partial_event()) << "after a data line, before the blank line";
  ASSERT_TRUE(parser.feed("\n", events).ok());
  EXPECT_FALSE(parser.has_partial_event()) << "after the blank line";
  ASSERT_TRUE(parser.feed("event: x\n", events).ok());
  EXPECT_TRUE(parser.has_partial_event()) << "a field other than data is part of an event too";
  ASSERT_TRUE(parser.feed("\n", events).ok());
  EXPECT_FALSE(parser.has_partial_event()) << "after a dropped event";
  ASSERT_TRUE(parser.feed(": keep-alive\n", events).ok());
  EXPECT_FALSE(parser.has_partial_event()) << "a comment starts no event";
  ASSERT_TRUE(parser.feed("data: c\r", events).ok());
  ASSERT_TRUE(parser.feed("\n", events).ok());
  EXPECT_TRUE(parser.has_partial_event()) << "the \"\\n\" of a \"\\r\\n\" is not a blank line";
  ASSERT_TRUE(parser.feed("\r\n", events).ok());
  EXPECT_FALSE(parser.has_partial_event());
  EXPECT_EQ(describe(events, false),
            describe({event("", "a"), event("", "b"), event("", "c")}, false));
}

}  // namespace
