// The Mem0-compatible surface (/mem0) against the real binary: the calls a tool written for
// Mem0's self-hosted server makes, in its shapes, with Mem0's X-API-Key header and with Bearer
// keys; and, unlike Mem0's server, each key reaching only its own users' memories.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

const std::string kAdminKey = "itest-bootstrap-admin-key-5c1e8a7d20b94f36";

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }
HeaderList x_api_key(const std::string& token) { return {{"X-API-Key", token}}; }

std::string create_key(int port, const json& spec) {
  auto r = http("POST", port, "/api/v1/admin/keys", spec.dump(), bearer(kAdminKey));
  EXPECT_EQ(r.status, 201) << r.describe();
  return r.json_or_discarded().value("key", "");
}

std::set<std::string> texts_of(const json& results) {
  std::set<std::string> out;
  for (const auto& m : results) out.insert(m.value("memory", ""));
  return out;
}

// A Mem0 error: Parley's envelope, with Mem0's `detail` beside it.
::testing::AssertionResult is_mem0_error(const Response& r, long status,
                                         std::string_view code = "") {
  auto envelope = is_error(r, status, code);
  if (!envelope) return envelope;
  const json body = r.json_or_discarded();
  if (!body.contains("detail") || !body["detail"].is_string() ||
      body["detail"] != body["error"]["message"]) {
    return ::testing::AssertionFailure() << "no detail: " << r.body;
  }
  return ::testing::AssertionSuccess();
}

TEST(Mem0, ToolsWrittenForMem0WorkAndEachKeyReachesOnlyItsOwnUsers) {
  ParleyProcess p(
      {.args = {"--set", "worker.poll_interval=50ms"}, .env = {{"PARLEY_ADMIN_KEY", kAdminKey}}});
  const int port = p.port();
  // Two tenants' service keys, one by Mem0's header and one by Bearer, both with an "alice".
  const auto acme = x_api_key(create_key(port, {{"scope", "service"}, {"tenant_id", "acme"}}));
  const auto globex = bearer(create_key(port, {{"scope", "service"}, {"tenant_id", "globex"}}));

  // Extracted from a conversation (no model configured: the built-in rules), as Mem0 answers.
  const json conversation = {
      {"messages",
       {{{"role", "system"}, {"content", "You are a travel agent."}},
        {{"role", "user"}, {"content", "Hi, my name is Alice and I'm allergic to peanuts."}},
        {{"role", "assistant"}, {"content", "Noted, Alice!"}}}},
      {"user_id", "alice"}};
  auto added = http("POST", port, "/mem0/memories", conversation.dump(), acme);
  ASSERT_EQ(added.status, 200) << added.describe();
  const json results = added.json()["results"];
  ASSERT_EQ(results.size(), 2u) << added.body;
  for (const auto& r : results) {
    EXPECT_EQ(r["event"], "ADD");
    EXPECT_EQ(r["id"].get<std::string>().rfind("mem_", 0), 0u);
  }
  EXPECT_EQ(texts_of(results), (std::set<std::string>{"Name is Alice", "Is allergic to peanuts"}));
  // Said again, it is remembered once.
  auto again = http("POST", port, "/mem0/memories", conversation.dump(), acme);
  ASSERT_EQ(again.status, 200) << again.describe();
  EXPECT_TRUE(again.json()["results"].empty()) << again.body;
  // A new name retires the old one: Mem0 calls that a deletion.
  auto renamed = http("POST", port, "/mem0/memories",
                      R"({"messages":"My name is Alicia.","user_id":"alice"})", acme);
  ASSERT_EQ(renamed.status, 200) << renamed.describe();
  std::map<std::string, std::string> events;
  const json renamed_results = renamed.json()["results"];
  for (const auto& r : renamed_results) events[r["memory"]] = r["event"];
  EXPECT_EQ(events["Name is Alicia"], "ADD") << renamed.body;
  EXPECT_EQ(events["Name is Alice"], "DELETE") << renamed.body;

  // The other tenant's "alice" is someone else. Kept as said (infer: false), scoped to an agent.
  auto verbatim = http("POST", port, "/mem0/memories",
                       json{{"messages", {{{"role", "user"}, {"content", "I collect vinyl."}}}},
                            {"user_id", "alice"},
                            {"agent_id", "music"},
                            {"metadata", {{"category", "hobby"}}},
                            {"infer", false}}
                           .dump(),
                       globex);
  ASSERT_EQ(verbatim.status, 200) << verbatim.describe();
  ASSERT_EQ(verbatim.json()["results"].size(), 1u);
  const std::string theirs = verbatim.json()["results"][0]["id"];
  EXPECT_EQ(verbatim.json()["results"][0]["memory"], "I collect vinyl.");

  auto acme_list = http("GET", port, "/mem0/memories?user_id=alice", "", acme);
  ASSERT_EQ(acme_list.status, 200) << acme_list.describe();
  EXPECT_EQ(texts_of(acme_list.json()["results"]),
            (std::set<std::string>{"Name is Alicia", "Is allergic to peanuts"}));
  for (const auto& m : acme_list.json()["results"]) {
    EXPECT_EQ(m["user_id"], "alice");
    for (const char* field : {"id", "memory", "hash", "created_at"}) {
      EXPECT_TRUE(m[field].is_string()) << field << " in " << m.dump();
    }
  }
  auto globex_list = http("GET", port, "/mem0/memories?user_id=alice", "", globex).json();
  ASSERT_EQ(globex_list["results"].size(), 1u) << globex_list.dump();
  EXPECT_EQ(globex_list["results"][0]["agent_id"], "music");
  EXPECT_EQ(globex_list["results"][0]["metadata"]["category"], "hobby");
  EXPECT_EQ(globex_list["results"][0]["metadata"]["role"], "user");
  EXPECT_EQ(http("GET", port, "/mem0/memories?user_id=alice&agent_id=music", "", globex)
                .json()["results"]
                .size(),
            1u);
  EXPECT_TRUE(http("GET", port, "/mem0/memories?user_id=alice&agent_id=travel", "", globex)
                  .json()["results"]
                  .empty());

  // Neither key reaches the other's memory by id: to each, it does not exist.
  const std::string mine = acme_list.json()["results"][0]["id"];
  for (const auto& [method, suffix, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "", ""},
           {"PUT", "", R"({"text":"hijacked"})"},
           {"DELETE", "", ""},
           {"GET", "/history", ""}}) {
    EXPECT_TRUE(is_mem0_error(http(method, port, "/mem0/memories/" + mine + suffix, body, globex),
                              404, "memory_not_found"))
        << method << suffix;
    EXPECT_TRUE(is_mem0_error(http(method, port, "/mem0/memories/" + theirs + suffix, body, acme),
                              404, "memory_not_found"))
        << method << suffix;
  }
  const json across =
      http("POST", port, "/mem0/search", R"({"query":"vinyl","user_id":"alice"})", acme)
          .json()["results"];
  EXPECT_EQ(across.dump().find("vinyl"), std::string::npos) << across.dump();

  // Search, with Mem0's filters carrying the user as its newer clients send them.
  auto found =
      http("POST", port, "/mem0/search",
           R"({"query":"what am I allergic to?","filters":{"user_id":"alice"},"top_k":1})", acme);
  ASSERT_EQ(found.status, 200) << found.describe();
  ASSERT_EQ(found.json()["results"].size(), 1u) << found.body;
  EXPECT_EQ(found.json()["results"][0]["memory"], "Is allergic to peanuts");
  EXPECT_TRUE(found.json()["results"][0]["score"].is_number());
  auto filtered = http("POST", port, "/mem0/search",
                       R"({"query":"records","user_id":"alice",
                           "filters":{"AND":[{"category":{"in":["hobby","music"]}},
                                             {"agent_id":"music"}]}})",
                       globex);
  ASSERT_EQ(filtered.status, 200) << filtered.describe();
  ASSERT_EQ(filtered.json()["results"].size(), 1u) << filtered.body;
  EXPECT_TRUE(http("POST", port, "/mem0/search",
                   R"({"query":"vinyl","user_id":"alice","filters":{"category":"food"}})", globex)
                  .json()["results"]
                  .empty());

  // Change, read, history, delete: Mem0's shapes.
  const std::string allergy = found.json()["results"][0]["id"];
  auto put = http("PUT", port, "/mem0/memories/" + allergy,
                  R"({"data":"Is allergic to peanuts and cashews"})", acme);
  ASSERT_EQ(put.status, 200) << put.describe();
  EXPECT_TRUE(put.json()["message"].is_string());
  auto got = http("GET", port, "/mem0/memories/" + allergy, "", acme);
  ASSERT_EQ(got.status, 200) << got.describe();
  EXPECT_EQ(got.json()["memory"], "Is allergic to peanuts and cashews");
  EXPECT_TRUE(got.json()["updated_at"].is_string());
  auto history = http("GET", port, "/mem0/memories/" + allergy + "/history", "", acme);
  ASSERT_EQ(history.status, 200) << history.describe();
  ASSERT_EQ(history.json().size(), 2u) << history.body;
  EXPECT_EQ(history.json()[0]["event"], "ADD");
  EXPECT_EQ(history.json()[1]["event"], "UPDATE");
  EXPECT_EQ(history.json()[1]["old_memory"], "Is allergic to peanuts");
  EXPECT_EQ(history.json()[1]["new_memory"], "Is allergic to peanuts and cashews");
  EXPECT_EQ(history.json()[1]["is_deleted"], false);
  auto deleted = http("DELETE", port, "/mem0/memories/" + allergy, "", acme);
  ASSERT_EQ(deleted.status, 200) << deleted.describe();
  EXPECT_TRUE(deleted.json()["message"].is_string());
  EXPECT_TRUE(is_mem0_error(http("GET", port, "/mem0/memories/" + allergy, "", acme), 404));

  // Deleting "all" of acme's alice leaves globex's alice whole.
  auto cleared = http("DELETE", port, "/mem0/memories?user_id=alice", "", acme);
  ASSERT_EQ(cleared.status, 200) << cleared.describe();
  EXPECT_TRUE(cleared.json()["message"].is_string());
  EXPECT_TRUE(
      http("GET", port, "/mem0/memories?user_id=alice", "", acme).json()["results"].empty());
  EXPECT_EQ(http("GET", port, "/mem0/memories?user_id=alice", "", globex).json()["results"].size(),
            1u);

  // What a request must say, said clearly.
  EXPECT_TRUE(is_mem0_error(http("POST", port, "/mem0/memories", R"({"messages":"hi"})", acme), 400,
                            "invalid_field"));
  EXPECT_TRUE(is_mem0_error(http("GET", port, "/mem0/memories", "", acme), 400, "invalid_field"));
  EXPECT_TRUE(is_mem0_error(
      http("POST", port, "/mem0/memories", R"({"messages":"hi","user_id":"a","prompt":"x"})", acme),
      400));
  EXPECT_TRUE(is_mem0_error(http("POST", port, "/mem0/search",
                                 R"({"query":"x","user_id":"a","filters":{"k":{"near":1}}})", acme),
                            400, "invalid_field"));
  EXPECT_TRUE(is_error(http("GET", port, "/mem0/memories?user_id=alice"), 401));
}

TEST(Mem0, AUserKeyIsItsOwnUserAndAnAsyncAddArrivesLater) {
  ParleyProcess p(
      {.args = {"--set", "worker.poll_interval=50ms"}, .env = {{"PARLEY_ADMIN_KEY", kAdminKey}}});
  const int port = p.port();
  const auto ana = x_api_key(create_key(port, {{"scope", "user"}, {"user_id", "ana"}}));
  // No user_id: the key's own user. Naming another user finds nobody.
  auto added = http("POST", port, "/mem0/memories",
                    R"({"messages":"I prefer window seats.","infer":false})", ana);
  ASSERT_EQ(added.status, 200) << added.describe();
  ASSERT_EQ(added.json()["results"].size(), 1u);
  auto listed = http("GET", port, "/mem0/memories", "", ana).json()["results"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["user_id"], "ana");
  EXPECT_TRUE(is_mem0_error(
      http("POST", port, "/mem0/memories", R"({"messages":"hi","user_id":"bob"})", ana), 404,
      "user_not_found"));
  EXPECT_TRUE(is_mem0_error(http("GET", port, "/mem0/memories?user_id=bob", "", ana), 404));

  // async_mode answers at once with the job; the memory arrives when the job has run.
  auto queued = http("POST", port, "/mem0/memories",
                     R"({"messages":"Remember that I have two cats.","async_mode":true})", ana);
  ASSERT_EQ(queued.status, 202) << queued.describe();
  EXPECT_EQ(queued.json()["status"], "PENDING");
  const std::string job_id = queued.json()["job_id"];
  const json job = wait_for_job(port, job_id, bearer(kAdminKey));
  EXPECT_EQ(job["state"], "done") << job.dump();
  auto after = http("GET", port, "/mem0/memories", "", ana).json()["results"];
  EXPECT_EQ(texts_of(after), (std::set<std::string>{"I prefer window seats.", "Has two cats"}))
      << after.dump();

  // Erasing the user takes their memories and the job that carried their words.
  ASSERT_EQ(http("DELETE", port, "/api/v1/users/ana", "", bearer(kAdminKey)).status, 202);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Response gone;
  while (std::chrono::steady_clock::now() < deadline) {
    gone = http("GET", port, "/api/v1/admin/jobs/" + job_id, "", bearer(kAdminKey));
    if (gone.status == 404) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(gone.status, 404) << gone.describe();
  EXPECT_TRUE(http("GET", port, "/mem0/memories?user_id=ana", "", bearer(kAdminKey))
                  .json()["results"]
                  .empty());
}

TEST(Mem0, WithAModelTheExtractionRefinesWhatItKnowsAndSaysWhatItWas) {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  const std::string file = config_dir.write_file("parley.yaml", fake.base_config());
  ParleyProcess p({.args = {"--config", file, "--set", "worker.poll_interval=50ms"},
                   .env = {{"PARLEY_ADMIN_KEY", kAdminKey}}});
  const int port = p.port();
  const auto admin = bearer(kAdminKey);
  auto kept = http("POST", port, "/mem0/memories?tenant_id=default",
                   R"({"messages":"Likes green tea","user_id":"ana","infer":false})", admin);
  ASSERT_EQ(kept.status, 200) << kept.describe();
  const std::string id = kept.json()["results"][0]["id"];
  // The model is shown ana's memories, numbered, and refines the first.
  const json proposals = {
      {"memories", {{{"event", "UPDATE"}, {"ref", 0}, {"text", "Likes jasmine tea"}}}}};
  fake.enqueue({{"body", openai_completion_body(proposals.dump())}});
  auto refined = http("POST", port, "/mem0/memories",
                      R"({"messages":[{"role":"user","content":"These days I drink jasmine tea."}],
                          "user_id":"ana"})",
                      admin);
  ASSERT_EQ(refined.status, 200) << refined.describe();
  ASSERT_EQ(refined.json()["results"].size(), 1u) << refined.body;
  const json r = refined.json()["results"][0];
  EXPECT_EQ(r["id"], id);
  EXPECT_EQ(r["event"], "UPDATE");
  EXPECT_EQ(r["memory"], "Likes jasmine tea");
  EXPECT_EQ(r["previous_memory"], "Likes green tea");
  // What the model was asked carried the user's words and the memory it refined.
  const json calls = fake.requests();
  ASSERT_FALSE(calls.empty());
  const std::string asked = calls.back()["body"].dump();
  EXPECT_NE(asked.find("jasmine"), std::string::npos) << asked;
  EXPECT_NE(asked.find("Likes green tea"), std::string::npos) << asked;
}

}  // namespace
}  // namespace parley_it
