// The Telegram channel's pure parts: Markdown to Telegram HTML in pieces (checked with the
// same HTML rules the fake Bot API applies, which are Telegram's), and reading Updates.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "channels/telegram/format.hpp"
#include "channels/telegram/update.hpp"
#include "support/fake_telegram.hpp"

namespace {

using nlohmann::json;
using parley::channels::telegram::format_reply;
using parley::channels::telegram::parse_update;
using parley::channels::telegram::shown_length;
using parley::channels::telegram::Update;
using parley::channels::telegram::without_mention;
using parley::testing::FakeTelegram;

void expect_valid(const std::vector<std::string>& pieces, size_t limit) {
  for (const auto& p : pieces) {
    EXPECT_EQ(FakeTelegram::html_problem(p), "") << p;
    EXPECT_LE(shown_length(p), limit) << p;
    EXPECT_FALSE(p.empty());
  }
}

TEST(TelegramFormat, MarkdownBecomesTelegramsHtmlWithEverythingElseEscaped) {
  const auto pieces = format_reply(
      "# Plan\n\nUse **bold**, *italic*, `a < b && c`, ~~old~~ and "
      "[docs](https://x.io/a?b=1&c=2).\n"
      "- first\n- second\n\nsnake_case_names and 2 * 3 * 4 stay as written; <script> too.");
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0],
            "<b>Plan</b>\n\nUse <b>bold</b>, <i>italic</i>, <code>a &lt; b &amp;&amp; c</code>, "
            "<s>old</s> and <a href=\"https://x.io/a?b=1&amp;c=2\">docs</a>.\n• first\n• "
            "second\n\nsnake_case_names and 2 * 3 * 4 stay as written; &lt;script&gt; too.");
  expect_valid(pieces, 4096);
}

TEST(TelegramFormat, CodeBlocksStayCodeAndUnsafeLinksStayText) {
  const auto pieces =
      format_reply("```python\nif a < b:\n    print('&')\n```\n[x](javascript:alert(1))");
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0],
            "<pre><code class=\"language-python\">if a &lt; b:\n    print('&amp;')</code></pre>\n\n"
            "[x](javascript:alert(1))");
  // An unclosed fence (a reply cut short) still closes its tags.
  const auto cut = format_reply("```\nint x;");
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0], "<pre><code>int x;</code></pre>");
}

TEST(TelegramFormat, LongRepliesAreCutBetweenParagraphsThenLinesThenWords) {
  std::string text;
  for (int i = 0; i < 60; ++i)
    text += "Paragraph " + std::to_string(i) + " " + std::string(90, 'x') + "\n\n";
  const auto pieces = format_reply(text, 1000);
  ASSERT_GT(pieces.size(), 5u);
  expect_valid(pieces, 1000);
  // No paragraph is split: each piece starts with a paragraph's beginning.
  for (const auto& p : pieces) EXPECT_EQ(p.rfind("Paragraph ", 0), 0u) << p;

  const std::string words(3000, 'a');
  const auto long_word = format_reply("start " + words + " end", 1000);
  expect_valid(long_word, 1000);
  std::string joined;
  for (const auto& p : long_word) joined += p;
  EXPECT_EQ(std::count(joined.begin(), joined.end(), 'a'), 3001);  // every character kept

  std::string code = "```\n";
  for (int i = 0; i < 400; ++i) code += "line " + std::to_string(i) + " <tag>\n";
  code += "```";
  const auto code_pieces = format_reply(code, 1000);
  ASSERT_GT(code_pieces.size(), 2u);
  expect_valid(code_pieces, 1000);
  for (const auto& p : code_pieces) EXPECT_EQ(p.rfind("<pre><code>", 0), 0u) << p;
}

TEST(TelegramFormat, EmojiCountAsTelegramCountsThem) {
  // An emoji outside the BMP is two UTF-16 units, as Telegram measures.
  std::string text;
  for (int i = 0; i < 600; ++i) text += "\xF0\x9F\x98\x80 ";
  const auto pieces = format_reply(text, 1000);
  expect_valid(pieces, 1000);
  EXPECT_GE(pieces.size(), 2u);
  EXPECT_EQ(shown_length("\xF0\x9F\x98\x80"), 2u);
  EXPECT_EQ(shown_length("<b>&lt;</b>"), 1u);
}

TEST(TelegramFormat, NothingButWhitespaceIsNoMessage) {
  EXPECT_TRUE(format_reply("").empty());
  EXPECT_TRUE(format_reply("\n\n   \n").empty());
  EXPECT_TRUE(format_reply("```\n```").empty());
}

TEST(TelegramFormat, RandomTextAlwaysGivesValidPieces) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab <>&*_`~[]()#-\n \xC3\xA9\xF0\x9F\x98\x80:/h.";
  for (int round = 0; round < 300; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 400);
    for (int i = 0; i < n; ++i) {
      if (rng() % 9 == 0) {
        text += "```";
      } else if (rng() % 11 == 0) {
        text += "[l](https://e.x/?q=<&>)";
      } else {
        text += alphabet[rng() % alphabet.size()];
      }
    }
    expect_valid(format_reply(text, 64), 64);
  }
}

json message(int64_t update_id, const std::string& text, const std::string& chat_type = "private") {
  return {{"update_id", update_id},
          {"message",
           {{"message_id", 10},
            {"from", {{"id", 77}, {"first_name", "Ana"}}},
            {"chat", {{"id", chat_type == "private" ? 77 : -100}, {"type", chat_type}}},
            {"text", text}}}};
}

TEST(TelegramUpdate, MessagesCommandsAndButtonsAreRead) {
  auto u = parse_update(message(5, "/start@parley_test_bot hi"), "parley_test_bot", 4242);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->kind, Update::Kind::kMessage);
  EXPECT_EQ(u->update_id, 5);
  EXPECT_EQ(u->chat_id, 77);
  EXPECT_EQ(u->command, "start");
  EXPECT_EQ(u->from_name, "Ana");
  EXPECT_TRUE(u->addressed);

  json press = {{"update_id", 6},
                {"callback_query",
                 {{"id", "cb1"},
                  {"data", "forget:yes"},
                  {"from", {{"id", 77}}},
                  {"message", {{"message_id", 11}, {"chat", {{"id", 77}, {"type", "private"}}}}}}}};
  auto b = parse_update(press, "parley_test_bot", 4242);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->kind, Update::Kind::kButton);
  EXPECT_EQ(b->callback_data, "forget:yes");
  EXPECT_EQ(b->message_id, 11);

  EXPECT_FALSE(parse_update(json::object(), "x", 1));
  EXPECT_FALSE(parse_update(json::array(), "x", 1));
  auto edited = parse_update({{"update_id", 9}, {"edited_message", json::object()}}, "x", 1);
  ASSERT_TRUE(edited);
  EXPECT_EQ(edited->kind, Update::Kind::kOther);
  auto photo = parse_update({{"update_id", 9}, {"message", {{"chat", {{"id", 1}}}}}}, "x", 1);
  EXPECT_EQ(photo->kind, Update::Kind::kOther);  // nothing to answer: no text
}

TEST(TelegramUpdate, InGroupsOnlyWhatIsAddressedToTheBotIsAnswered) {
  EXPECT_FALSE(parse_update(message(1, "hello all", "group"), "parley_test_bot", 4242)->addressed);
  EXPECT_TRUE(
      parse_update(message(2, "@Parley_Test_Bot what time is it", "group"), "parley_test_bot", 4242)
          ->addressed);
  EXPECT_FALSE(parse_update(message(3, "@parley_test_bot_fan hi", "group"), "parley_test_bot", 4242)
                   ->addressed);
  json reply = message(4, "and you?", "supergroup");
  reply["message"]["reply_to_message"] = {{"message_id", 3}, {"from", {{"id", 4242}}}};
  EXPECT_TRUE(parse_update(reply, "parley_test_bot", 4242)->addressed);
  // A command for another bot is not a command of ours.
  auto other = parse_update(message(5, "/help@other_bot", "group"), "parley_test_bot", 4242);
  EXPECT_EQ(other->command, "");
  EXPECT_FALSE(other->addressed);
  EXPECT_EQ(without_mention("@parley_test_bot  what is 2+2?", "parley_test_bot"), "what is 2+2?");
}

}  // namespace
