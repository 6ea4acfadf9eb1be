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

const std::string kAdminKey = "itest-bootstrap-admin-key-0b7d3e19c4a6f258";

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

std::string create_key(int port, const json& spec) {
  auto r = http("POST", port, "/api/v1/admin/keys", spec.dump(), bearer(kAdminKey));
  EXPECT_EQ(r.status, 201) << r.describe();
  return r.json_or_discarded().value("key", "");
}

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
  // Each memory the reply used was marked used with it.
  auto kept = http("GET", p.port(), "/api/v1/users/ana/memories").json();
  ASSERT_EQ(kept["data"].size(), 2u) << kept.dump();
  for (const auto& m : kept["data"]) EXPECT_TRUE(m["last_used_at"].is_string()) << m.dump();

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

TEST(Memory, PeopleListAddEditSearchAndDeleteTheirOwnMemoriesOnly) {
  ParleyProcess p({.env = {{"PARLEY_ADMIN_KEY", kAdminKey}}});
  const int port = p.port();
  const auto ana = bearer(create_key(port, {{"scope", "user"}, {"user_id", "ana"}}));
  const auto bob = bearer(create_key(port, {{"scope", "user"}, {"user_id", "bob"}}));
  const auto other_tenant =
      bearer(create_key(port, {{"scope", "service"}, {"tenant_id", "other"}}));
  const std::string mine = "/api/v1/users/ana/memories";

  auto added = http("POST", port, mine,
                    R"({"text":"Prefers green tea","kind":"preference","importance":0.7})", ana);
  ASSERT_EQ(added.status, 201) << added.describe();
  const json memory = added.json();
  const std::string id = memory["id"];
  EXPECT_EQ(memory["text"], "Prefers green tea");
  EXPECT_EQ(memory["kind"], "preference");
  EXPECT_EQ(memory["retention"], "long");
  EXPECT_TRUE(memory["expires_at"].is_string());
  EXPECT_EQ(memory["created"], true);
  auto again = http("POST", port, mine, R"({"text":"prefers green tea."})", ana);
  ASSERT_EQ(again.status, 200) << again.describe();
  EXPECT_EQ(again.json()["id"], id);
  EXPECT_EQ(again.json()["created"], false);
  ASSERT_EQ(http("POST", port, mine, R"({"text":"Lives in Porto","slot":"location"})", ana).status,
            201);
  EXPECT_TRUE(is_error(http("POST", port, mine, R"({"text":"  "})", ana), 400, "invalid_field"));
  EXPECT_TRUE(is_error(http("POST", port, mine, R"({"text":"x","kind":"secret"})", ana), 400,
                       "invalid_field"));
  EXPECT_TRUE(is_error(http("POST", port, mine, R"({"text":"x","owner":"bob"})", ana), 400));

  auto listed = http("GET", port, mine, "", ana);
  ASSERT_EQ(listed.status, 200) << listed.describe();
  EXPECT_EQ(listed.json()["data"].size(), 2u);
  EXPECT_EQ(http("GET", port, mine + "?kind=preference", "", ana).json()["data"].size(), 1u);

  // Nobody else reaches them: another user, or another tenant's key, sees a user with none.
  EXPECT_TRUE(is_error(http("GET", port, mine, "", bob), 404, "user_not_found"));
  EXPECT_TRUE(is_error(http("GET", port, mine + "/" + id, "", bob), 404));
  EXPECT_TRUE(is_error(http("GET", port, "/api/v1/users/bob/memories/" + id, "", bob), 404,
                       "memory_not_found"));
  EXPECT_TRUE(is_error(http("DELETE", port, "/api/v1/users/bob/memories/" + id, "", bob), 404,
                       "memory_not_found"));
  EXPECT_TRUE(http("GET", port, mine, "", other_tenant).json()["data"].empty());
  EXPECT_TRUE(is_error(http("GET", port, "/api/v1/users/ana/memories/" + id, "", other_tenant), 404,
                       "memory_not_found"));
  // An admin sees them (in the tenant asked for).
  EXPECT_EQ(
      http("GET", port, mine + "?tenant_id=default", "", bearer(kAdminKey)).json()["data"].size(),
      2u);

  auto edited = http("PATCH", port, mine + "/" + id,
                     R"({"text":"Prefers jasmine tea","retention":"permanent"})", ana);
  ASSERT_EQ(edited.status, 200) << edited.describe();
  EXPECT_EQ(edited.json()["text"], "Prefers jasmine tea");
  EXPECT_TRUE(edited.json()["expires_at"].is_null());
  auto history = http("GET", port, mine + "/" + id + "/history", "", ana).json()["data"];
  ASSERT_EQ(history.size(), 2u) << history.dump();
  EXPECT_EQ(history[0]["event"], "ADD");
  EXPECT_EQ(history[1]["event"], "UPDATE");
  EXPECT_EQ(history[1]["old_text"], "Prefers green tea");
  EXPECT_EQ(history[1]["new_text"], "Prefers jasmine tea");
  EXPECT_EQ(history[1]["actor"], "user");

  auto found = http("POST", port, mine + "/search", R"({"query":"which tea do I like?"})", ana);
  ASSERT_EQ(found.status, 200) << found.describe();
  ASSERT_GE(found.json()["data"].size(), 1u);
  EXPECT_EQ(found.json()["data"][0]["id"], id);
  EXPECT_TRUE(found.json()["data"][0]["score"].is_number());

  ASSERT_EQ(http("DELETE", port, mine + "/" + id, "", ana).status, 200);
  EXPECT_TRUE(is_error(http("GET", port, mine + "/" + id, "", ana), 404, "memory_not_found"));
  auto exported = http("GET", port, "/api/v1/users/ana/export", "", ana).json();
  ASSERT_EQ(exported["memories"].size(), 1u) << exported.dump();
  EXPECT_EQ(exported["memories"][0]["text"], "Lives in Porto");
  for (const auto& h : exported["deleted_memory_history"]) {
    EXPECT_TRUE(h["old_text"].is_null() && h["new_text"].is_null()) << h.dump();
  }
  EXPECT_EQ(exported.dump().find("jasmine"), std::string::npos) << "a deleted memory is forgotten";
  // A memory of one conversation goes with it; the user's others stay.
  auto session = http("POST", port, "/api/v1/sessions", R"({"title":"trip"})", ana);
  ASSERT_EQ(session.status, 201) << session.describe();
  const std::string trip = session.json()["id"];
  auto scoped = http("POST", port, mine,
                     json{{"text", "Is packing for Rome"}, {"session_id", trip}}.dump(), ana);
  ASSERT_EQ(scoped.status, 201) << scoped.describe();
  ASSERT_EQ(http("DELETE", port, "/api/v1/sessions/" + trip, "", ana).status, 204);
  EXPECT_TRUE(
      is_error(http("GET", port, mine + "/" + scoped.json()["id"].get<std::string>(), "", ana), 404,
               "memory_not_found"));
  EXPECT_EQ(http("GET", port, mine, "", ana).json()["data"].size(), 1u);
  auto cleared = http("DELETE", port, mine, "", ana);
  ASSERT_EQ(cleared.status, 200) << cleared.describe();
  EXPECT_EQ(cleared.json()["deleted"], 1);
  EXPECT_TRUE(http("GET", port, mine, "", ana).json()["data"].empty());
}

TEST(Memory, WithAModelItExtractsAfterTheReplyAndTheNextPromptCarriesWhatItRemembers) {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  const std::string file = config_dir.write_file("parley.yaml", fake.base_config());
  ParleyProcess p({.args = {"--config", file, "--set", "worker.poll_interval=50ms", "--set",
                            "memory.enabled=true"}});
  const std::string db = p.data_dir() + "/parley.db";
  // The reply, then the extraction job's call (JSON in a code fence, as models answer).
  fake.enqueue({{"body", openai_completion_body("Nice to meet you, Ana!")}});
  const json proposals = {
      {"memories",
       {{{"event", "ADD"}, {"text", "Name is Ana"}, {"kind", "profile"}, {"slot", "name"}},
        {{"event", "ADD"}, {"text", "Is training for a marathon"}, {"kind", "event"}}}}};
  fake.enqueue({{"body", openai_completion_body("```json\n" + proposals.dump() + "\n```")}});
  const std::string first = new_session(p.port(), "ana");
  const json opening = say(p.port(), first, "Hi, I'm Ana and I'm training for a marathon.");
  EXPECT_EQ(opening["reply"]["content"], "Nice to meet you, Ana!");

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (memories_of(db, "ana") < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(memories_of(db, "ana"), 2);
  const json calls = fake.requests();
  ASSERT_EQ(calls.size(), 2u) << calls.dump();
  const json& extraction = calls[1]["body"];
  EXPECT_EQ(extraction["response_format"]["type"], "json_object") << extraction.dump();
  EXPECT_NE(extraction["messages"][1]["content"].get<std::string>().find("training for a marathon"),
            std::string::npos);

  fake.enqueue({{"body", openai_completion_body("Good luck with the race.")}});
  fake.enqueue({{"body", openai_completion_body(R"({"memories":[]})")}});
  const std::string second = new_session(p.port(), "ana");
  const json turn = say(p.port(), second, "How should I pace my marathon training?");
  EXPECT_EQ(turn["reply"]["memories"].size(), 2u) << turn.dump();
  const json sent = fake.requests()[2]["body"];
  const std::string system = sent["messages"][0]["content"];
  EXPECT_NE(system.find("What you remember about this user"), std::string::npos) << system;
  EXPECT_NE(system.find("- Name is Ana"), std::string::npos) << system;
  EXPECT_NE(system.find("- Is training for a marathon"), std::string::npos) << system;
}

}  // namespace
}  // namespace parley_it
