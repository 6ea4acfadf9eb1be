// Long-term memory against the real binary with no model configured (what `make run` serves):
// what a user states about themselves in one session is extracted by the job after the reply,
// then recalled in their next session, shown on the reply and answered with by the built-in
// provider; another user never sees it.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

// Active memories of `user`, read from the database file past the server.
int64_t memories_of(const std::string& db_path, const std::string& user) {
  sqlite3* db = nullptr;
  int64_t count = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(*) FROM memories WHERE user_id = ? AND status = 'active'",
                           -1, &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(stmt, 1, user.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(stmt) == SQLITE_ROW) count = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return count;
}

json say(int port, const std::string& session, const std::string& text) {
  auto r = http("POST", port, "/api/v1/sessions/" + session + "/messages",
                json{{"content", text}}.dump());
  EXPECT_EQ(r.status, 200) << r.describe();
  return r.json_or_discarded();
}

TEST(Memory, WhatAUserSaysInOneSessionIsRecalledInTheNextAndNotForOthers) {
  ParleyProcess p({.args = {"--set", "worker.poll_interval=50ms"}});
  const std::string db = p.data_dir() + "/parley.db";
  const std::string first = new_session(p.port(), "ana");
  const json opening = say(p.port(), first, "Hi! My name is Ana, and I'm allergic to peanuts.");
  EXPECT_TRUE(opening["reply"]["memories"].empty()) << "nothing was remembered yet";

  // The reply did not wait for the extraction; the job follows it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (memories_of(db, "ana") < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(memories_of(db, "ana"), 2);

  const std::string second = new_session(p.port(), "ana");
  const json turn = say(p.port(), second, "Which snacks without peanuts do you suggest?");
  const json& recalled = turn["reply"]["memories"];
  ASSERT_EQ(recalled.size(), 2u) << turn.dump();
  std::set<std::string> texts;
  for (const auto& m : recalled) {
    texts.insert(m["text"].get<std::string>());
    EXPECT_EQ(m["id"].get<std::string>().rfind("mem_", 0), 0u);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"Name is Ana", "Is allergic to peanuts"}));
  // No model: the built-in provider says what it remembers.
  const std::string content = turn["reply"]["content"];
  EXPECT_NE(content.find("What I remember about you:"), std::string::npos) << content;
  EXPECT_NE(content.find("- Name is Ana"), std::string::npos) << content;
  // The stored reply keeps which memories it used.
  auto listed = http("GET", p.port(), "/api/v1/sessions/" + second + "/messages").json();
  ASSERT_EQ(listed["data"].size(), 2u) << listed.dump();
  EXPECT_EQ(listed["data"][1]["memories"].size(), 2u);

  // A question that bears on neither fact still knows who is asking, and only that.
  const json weather = say(p.port(), second, "Will it rain tomorrow?");
  ASSERT_EQ(weather["reply"]["memories"].size(), 1u) << weather.dump();
  EXPECT_EQ(weather["reply"]["memories"][0]["text"], "Name is Ana");

  // Another user remembers nothing of Ana.
  const std::string theirs = new_session(p.port(), "bob");
  const json bob = say(p.port(), theirs, "Which snacks without peanuts do you suggest?");
  EXPECT_TRUE(bob["reply"]["memories"].empty()) << bob.dump();
  EXPECT_EQ(bob["reply"]["content"].get<std::string>().find("Ana"), std::string::npos);
}

}  // namespace
}  // namespace parley_it
