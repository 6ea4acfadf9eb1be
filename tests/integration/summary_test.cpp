// Rolling summaries of long sessions against the real binary: a session that outgrows its
// model's context gets a summary from a job after the reply (extractive offline, written by the
// model when one is configured); later prompts carry it in place of the messages it covers,
// and the sessions API shows it.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

json say(int port, const std::string& session, const std::string& text) {
  auto r = http("POST", port, "/api/v1/sessions/" + session + "/messages",
                json{{"content", text}, {"max_tokens", 100}}.dump());
  EXPECT_EQ(r.status, 200) << r.describe();
  return r.json_or_discarded();
}

// The session's summary once one is stored (null if none comes within 20 s).
json summary_of(int port, const std::string& session, int64_t covering_at_least = 1) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    const json s = http("GET", port, "/api/v1/sessions/" + session).json_or_discarded();
    if (s.is_object() && s["summary"].is_object() &&
        s["summary"]["covers"]["messages"].get<int64_t>() >= covering_at_least) {
      return s["summary"];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return nullptr;
}

std::string padded(const std::string& fact) {
  std::string out = fact;
  while (out.size() < 700) out += " And some more words about the weather and the trip.";
  return out;
}

TEST(Summary, OfflineALongSessionIsSummarisedExtractivelyAndShown) {
  // No model configured: the built-in provider, given a small window.
  TempDir config_dir{"parley-config"};
  const std::string file =
      config_dir.write_file("parley.yaml", "models:\n  parley-builtin:\n    context_window: 900\n");
  ParleyProcess p({.args = {"--config", file, "--set", "worker.poll_interval=50ms"}});
  const int port = p.port();
  const std::string session = new_session(port, "ana");
  const json short_one = say(port, session, "Hello!");
  EXPECT_TRUE(http("GET", port, "/api/v1/sessions/" + session).json()["summary"].is_null())
      << "a short session needs no summary";
  say(port, session, padded("My order number is 4471 and it never arrived."));
  say(port, session, padded("I paid 23 euros for delivery to Porto."));
  say(port, session, padded("Please send the replacement to my office instead."));
  const json summary = summary_of(port, session);
  ASSERT_TRUE(summary.is_object()) << "no summary came";
  EXPECT_EQ(summary["method"], "extractive");
  EXPECT_TRUE(summary["model"].is_null());
  EXPECT_EQ(summary["id"].get<std::string>().rfind("sum_", 0), 0u);
  EXPECT_GE(summary["covers"]["messages"].get<int64_t>(), 2);
  EXPECT_EQ(summary["covers"]["first_message_id"].get<std::string>().rfind("msg_", 0), 0u);
  const std::string text = summary["text"];
  EXPECT_NE(text.find("- User: "), std::string::npos) << text;
  EXPECT_NE(text.find("4471"), std::string::npos) << text;
  EXPECT_LE(summary["tokens"].get<int64_t>(), 400);

  // Listed with the session's other summaries; the session goes on.
  auto listed = http("GET", port, "/api/v1/sessions/" + session + "/summaries");
  ASSERT_EQ(listed.status, 200) << listed.describe();
  ASSERT_GE(listed.json()["data"].size(), 1u);
  EXPECT_EQ(listed.json()["data"][0]["id"], summary["id"]);
  const json later = say(port, session, "Where is my order?");
  EXPECT_EQ(later["reply"]["status"], "complete");
  EXPECT_EQ(short_one["reply"]["status"], "complete");

  // The user's export carries the summaries with their sessions: they hold the user's words.
  const json exported = http("GET", port, "/api/v1/users/ana/export").json();
  ASSERT_EQ(exported["sessions"].size(), 1u) << exported.dump();
  const json exported_summaries = exported["sessions"][0]["summaries"];
  ASSERT_GE(exported_summaries.size(), 1u) << exported.dump();
  EXPECT_EQ(exported_summaries[0]["text"], listed.json()["data"][0]["text"]);
}

TEST(Summary, WithAModelTheSummaryIsWrittenByItAndStandsInForTheMessagesItCovers) {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  const std::string file = config_dir.write_file(
      "parley.yaml", fake.base_config() + "models:\n  fake-model:\n    context_window: 900\n");
  ParleyProcess p({.args = {"--config", file, "--set", "worker.poll_interval=50ms", "--set",
                            "summary.enabled=true"}});
  const int port = p.port();
  const std::string session = new_session(port, "ana");
  const std::string first = padded("My order number is 4471.");
  say(port, session, first);
  say(port, session, padded("It was two large pizzas."));
  say(port, session, padded("Deliver them to 12 Baker Street."));
  say(port, session, padded("Ring twice, the bell is broken."));
  // Unscripted, the fake answers everything (the summary too) with its greeting.
  const json summary = summary_of(port, session);
  ASSERT_TRUE(summary.is_object()) << "no summary came";
  EXPECT_EQ(summary["method"], "model");
  EXPECT_EQ(summary["model"], "fake-model");
  EXPECT_EQ(summary["text"], "Hello from the fake upstream.");

  // The summary call: the summarising instructions, and the messages it folds.
  const json calls = fake.requests();
  json summarising;
  for (const auto& c : calls) {
    const std::string system = c["body"]["messages"][0].value("content", "");
    if (system.find("running summary") != std::string::npos) summarising = c["body"];
  }
  ASSERT_TRUE(summarising.is_object()) << calls.dump();
  EXPECT_NE(summarising["messages"][1]["content"].get<std::string>().find("4471"),
            std::string::npos);

  // The next prompt: the summary in the system message, and not the messages it covers.
  say(port, session, "When will it arrive?");
  json chat;
  for (const auto& c : fake.requests()) {
    const std::string system = c["body"]["messages"][0].value("content", "");
    if (system.find("running summary") == std::string::npos) chat = c["body"];
  }
  const json& sent = chat["messages"];
  ASSERT_GE(sent.size(), 2u) << chat.dump();
  const std::string system = sent[0]["content"];
  EXPECT_NE(system.find("Summary of the earlier part of this conversation"), std::string::npos)
      << system;
  EXPECT_NE(system.find("Hello from the fake upstream."), std::string::npos);
  for (const auto& m : sent) EXPECT_NE(m["content"], first) << "a covered message was sent";
  EXPECT_EQ(sent.back()["content"], "When will it arrive?");

  // The usage of the summary is booked as such.
  auto usage = http("GET", port, "/api/v1/usage?group_by=source").json_or_discarded();
  EXPECT_NE(usage.dump().find("summary"), std::string::npos) << usage.dump();
}

}  // namespace
}  // namespace parley_it
