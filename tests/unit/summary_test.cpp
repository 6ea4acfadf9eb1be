// Summaries without a model (summary/extractive.hpp): what they keep, in what order, within
// what budget.
#include "summary/extractive.hpp"
#include "summary/plan.hpp"
#include "summary/summarize.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace parley::summary {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

const std::vector<SaidMessage> kOrder = {
    {"user", "Hi there! I'd like to order two large pizzas. Delivery to 12 Baker Street, please."},
    {"assistant", "Sure. Which toppings would you like on the two large pizzas?"},
    {"user", "One margherita and one pepperoni. Oh, and my phone is 555-0142."},
    {"assistant", "Got it: a margherita and a pepperoni, to 12 Baker Street. Anything else?"},
    {"system", "Internal note: never shown."},
};

TEST(ExtractiveSummary, OneLinePerMessageInOrderWithWhoSaidIt) {
  const std::string summary = extractive_summary("", kOrder, 400);
  const auto lines = lines_of(summary);
  ASSERT_EQ(lines.size(), 4u) << summary;
  EXPECT_EQ(lines[0].rfind("- User: ", 0), 0u);
  EXPECT_EQ(lines[1].rfind("- Assistant: ", 0), 0u);
  EXPECT_EQ(lines[2].rfind("- User: ", 0), 0u);
  EXPECT_EQ(lines[3].rfind("- Assistant: ", 0), 0u);
  EXPECT_EQ(summary.find("Internal note"), std::string::npos);
  EXPECT_EQ(summary.find("Hi there"), std::string::npos) << "a greeting says nothing";
}

TEST(ExtractiveSummary, KeepsTheSentencesWithNumbersAndNames) {
  const std::string summary = extractive_summary("", kOrder, 400);
  EXPECT_NE(summary.find("12 Baker Street"), std::string::npos) << summary;
  EXPECT_NE(summary.find("555-0142"), std::string::npos) << summary;
}

TEST(ExtractiveSummary, StaysWithinItsBudgetDroppingTheWeakestLinesFirst) {
  for (int64_t budget : {10, 25, 40, 60, 400}) {
    const std::string summary = extractive_summary("", kOrder, budget);
    EXPECT_LE(estimated_tokens(summary), budget) << budget << ": " << summary;
  }
  const std::string tight = extractive_summary("", kOrder, 25);
  EXPECT_FALSE(tight.empty());
  EXPECT_NE(tight.find("12 Baker Street"), std::string::npos) << tight;
  EXPECT_TRUE(extractive_summary("", kOrder, 0).empty());
}

TEST(ExtractiveSummary, ARollingSummaryStartsFromThePreviousOne) {
  const std::string first = extractive_summary("", kOrder, 400);
  const std::vector<SaidMessage> later = {
      {"user", "Actually, make the pepperoni a veggie pizza instead."},
      {"assistant", "Done: one margherita and one veggie pizza."},
  };
  const std::string rolled = extractive_summary(first, later, 400);
  const auto lines = lines_of(rolled);
  ASSERT_EQ(lines.size(), 6u) << rolled;
  EXPECT_EQ(lines_of(first)[0], lines[0]);
  EXPECT_NE(lines[4].find("veggie"), std::string::npos);
  // Short of room, what is older gives way before what was just said.
  const std::string tight = extractive_summary(first, later, 45);
  EXPECT_NE(tight.find("veggie"), std::string::npos) << tight;
  EXPECT_LE(estimated_tokens(tight), 45);
}

TEST(ExtractiveSummary, LongSentencesAreCutAtAWordAndBadBytesRepaired) {
  std::string rambling = "I ";
  for (int i = 0; i < 100; ++i) rambling += "really ";
  rambling += "want a refund for order 4471.";
  const std::string summary =
      extractive_summary("", {{"user", rambling}, {"user", "caf\xC3 \xFF ordered 3 items"}}, 400);
  for (const auto& line : lines_of(summary)) EXPECT_LE(line.size(), 260u) << line;
  EXPECT_NE(summary.find("\u2026"), std::string::npos);
  EXPECT_NE(summary.find("ordered 3 items"), std::string::npos) << summary;
}

TEST(ExtractiveSummary, RepeatedTextIsNeitherWhatItIsAboutNorSaidTwice) {
  std::string filler;
  for (int i = 0; i < 12; ++i) filler += " Some more words about the weather and the trip.";
  const std::string summary = extractive_summary(
      "", {{"user", "My order number is 4471." + filler}, {"user", "I paid 23 euros." + filler}},
      400);
  EXPECT_NE(summary.find("4471"), std::string::npos) << summary;
  EXPECT_NE(summary.find("23 euros"), std::string::npos) << summary;
  const auto lines = lines_of(summary);
  for (size_t i = 0; i < lines.size(); ++i) {
    for (size_t j = i + 1; j < lines.size(); ++j) EXPECT_NE(lines[i], lines[j]) << summary;
  }
}

TEST(ExtractiveSummary, NothingToSayIsEmpty) {
  EXPECT_TRUE(extractive_summary("", {}, 100).empty());
  EXPECT_TRUE(extractive_summary("", {{"user", "  \n ... !!"}}, 100).empty());
}

// Messages of about `tokens` each (as the prompt counts them), alternating user and reply.
std::vector<store::Message> conversation(int count, int64_t tokens) {
  std::vector<store::Message> out;
  for (int i = 0; i < count; ++i) {
    store::Message m;
    m.id = "msg_" + std::to_string(i);
    m.seq = i + 1;
    m.role = i % 2 == 0 ? "user" : "assistant";
    m.content = std::string(static_cast<size_t>((tokens - 4) * 4), 'x');
    out.push_back(std::move(m));
  }
  return out;
}

TEST(SummaryFold, LeavesTheNewestThatFitInTheKeptShareAndEndsAfterAReply) {
  SummarySettings settings;
  settings.keep_ratio = 0.5;
  settings.keep_recent = 2;
  // 10 messages of 100 tokens, 1000 of room: the newest 5 fit in 500; the fold ends after the
  // reply before them (messages 0..3), so a question and its answer stay together.
  EXPECT_EQ(messages_to_fold(conversation(10, 100), 1000, settings), 4u);
  // Never fewer than keep_recent left, whatever the room.
  EXPECT_EQ(messages_to_fold(conversation(10, 100), 0, settings), 8u);
  settings.keep_recent = 9;
  EXPECT_EQ(messages_to_fold(conversation(10, 100), 0, settings), 0u);
  // Everything fits: nothing to fold.
  settings.keep_recent = 2;
  EXPECT_EQ(messages_to_fold(conversation(4, 100), 1000, settings), 0u);
  EXPECT_EQ(messages_to_fold({}, 1000, settings), 0u);
}

TEST(SummaryFold, AReplysReportedTokensCountAsThePromptCountsThem) {
  SummarySettings settings;
  settings.keep_ratio = 0.5;
  settings.keep_recent = 0;
  auto messages = conversation(4, 10);
  messages[3].output_tokens = 1000;  // a short text the provider counted as long
  EXPECT_EQ(messages_to_fold(messages, 200, settings), 4u);
}

TEST(SummaryDue, WhenTheHistoryNearsItsRoomOrNoLongerFits) {
  SummarySettings settings;
  settings.trigger_ratio = 0.75;
  chat::StoredTurn turn;
  turn.history_budget = 1000;
  turn.history_tokens = 700;
  EXPECT_FALSE(due(turn, settings));
  turn.history_tokens = 750;
  EXPECT_TRUE(due(turn, settings));
  turn.history_tokens = 10;
  turn.history_truncated = true;
  EXPECT_TRUE(due(turn, settings));
  turn.history_budget = 0;  // no prompt was built
  EXPECT_FALSE(due(turn, settings));
}

TEST(SummaryRequest, AnOverlongMessageIsCutNotLeftOut) {
  auto folded = conversation(2, 10);
  folded[0].content = std::string(20'000, 'a');
  const auto request = summary_request("", folded, 400);
  const std::string& shown = request[1].content;
  EXPECT_LT(shown.size(), 9'000u);
  EXPECT_NE(shown.find("User: aaaa"), std::string::npos);
  EXPECT_NE(shown.find("\u2026\nAssistant: "), std::string::npos) << shown.substr(8'000);
}

TEST(SummaryRequest, AsksForTheNewSummaryFromThePreviousAndTheFoldedMessages) {
  auto folded = conversation(2, 10);
  folded[0].content = "My order is 4471.";
  folded[1].content = "I will check it.";
  const auto request = summary_request("- User: earlier", folded, 400);
  ASSERT_EQ(request.size(), 2u);
  EXPECT_EQ(request[0].role, "system");
  EXPECT_NE(request[0].content.find("300 words"), std::string::npos) << request[0].content;
  EXPECT_EQ(request[1].role, "user");
  EXPECT_EQ(request[1].content,
            "Previous summary:\n- User: earlier\n\nNew messages:\nUser: My order is 4471.\n"
            "Assistant: I will check it.\n");
}

}  // namespace
}  // namespace parley::summary
