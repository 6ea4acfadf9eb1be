// The sessions resource end to end over HTTP: create (defaults, Location, content-type rules),
// read, update, delete, listing newest-first with cursor pagination that neither skips nor
// repeats, and validation errors (400 invalid_field naming the param; a body that is not an
// object).
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

const std::regex kTimestamp(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");

// A session read by id, less the summary only that answer carries (null until the session is
// long enough to have one).
json without_summary(json session) {
  EXPECT_TRUE(session.contains("summary") && session["summary"].is_null()) << session.dump();
  session.erase("summary");
  return session;
}

json create(int port, const std::string& body) {
  auto r = http("POST", port, "/api/v1/sessions", body);
  EXPECT_EQ(r.status, 201) << r.describe();
  return r.json_or_discarded();
}

TEST(Sessions, CreateWithAllFields) {
  ParleyProcess p;
  auto r = http("POST", p.port(), "/api/v1/sessions",
                R"({"user_id":"u1","assistant":"default","title":"t","metadata":{"k":"v","n":1}})");
  ASSERT_EQ(r.status, 201) << r.describe();
  EXPECT_TRUE(icontains(r.header("Content-Type").value_or(""), "application/json"));
  auto s = r.json_or_discarded();
  ASSERT_TRUE(s.is_object()) << r.describe();
  ASSERT_TRUE(s.contains("id") && s["id"].is_string()) << r.body;
  const std::string id = s["id"];
  EXPECT_TRUE(id.starts_with("sess_")) << id;
  EXPECT_GT(id.size(), 5u);
  EXPECT_EQ(s["user_id"], "u1");
  EXPECT_EQ(s["assistant"], "default");
  EXPECT_EQ(s["title"], "t");
  EXPECT_EQ(s["metadata"], json::parse(R"({"k":"v","n":1})"));
  ASSERT_TRUE(s["created_at"].is_string() && s["updated_at"].is_string()) << r.body;
  EXPECT_TRUE(std::regex_match(s["created_at"].get<std::string>(), kTimestamp)) << r.body;
  EXPECT_TRUE(std::regex_match(s["updated_at"].get<std::string>(), kTimestamp)) << r.body;

  auto loc = r.header("Location");
  ASSERT_TRUE(loc.has_value()) << r.describe();
  EXPECT_TRUE(loc->ends_with("/api/v1/sessions/" + id)) << "Location: " << *loc;

  // Reading it back gives the same representation, with the summary in use (none yet).
  auto g = http("GET", p.port(), "/api/v1/sessions/" + id);
  ASSERT_EQ(g.status, 200) << g.describe();
  EXPECT_EQ(without_summary(g.json_or_discarded()), s);
}

TEST(Sessions, CreateDefaults) {
  ParleyProcess p;
  auto s = create(p.port(), "{}");
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["user_id"], "anonymous") << s.dump();
  EXPECT_EQ(s["assistant"], "default") << s.dump();
  EXPECT_TRUE(s.contains("title") && s["title"].is_null()) << s.dump();
  EXPECT_TRUE(s.contains("metadata") && (s["metadata"].is_object() || s["metadata"].is_null()))
      << s.dump();
}

TEST(Sessions, IdsAreUnique) {
  ParleyProcess p;
  std::set<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    auto s = create(p.port(), "{}");
    ASSERT_TRUE(s.is_object());
    ids.insert(s.value("id", ""));
  }
  EXPECT_EQ(ids.size(), 30u);
}

TEST(Sessions, ContentTypeRules) {
  ParleyProcess p;
  // Parameters on application/json are fine.
  auto ok = http("POST", p.port(), "/api/v1/sessions", R"({"title":"cs"})",
                 {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(ok.status, 201) << ok.describe();
  // No Content-Type at all on a body: still not JSON by declaration.
  auto none =
      http("POST", p.port(), "/api/v1/sessions", R"({"title":"x"})", {{"Content-Type", ""}});
  EXPECT_TRUE(is_error(none, 415, "unsupported_media_type"));
  // PATCH follows the same rule.
  auto id = ok.json_or_discarded().value("id", "");
  auto patch = http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"title":"y"})",
                    {{"Content-Type", "text/plain"}});
  EXPECT_TRUE(is_error(patch, 415, "unsupported_media_type"));
}

TEST(Sessions, GetUnknownIs404) {
  ParleyProcess p;
  auto r = http("GET", p.port(), "/api/v1/sessions/sess_doesnotexist");
  EXPECT_TRUE(is_error(r, 404, "session_not_found"));
}

TEST(Sessions, PatchUpdatesTitleAndMetadata) {
  ParleyProcess p;
  auto s = create(p.port(), R"({"user_id":"u2","title":"before","metadata":{"k":"v"}})");
  const std::string id = s.value("id", "");
  ASSERT_FALSE(id.empty());
  std::this_thread::sleep_for(Millis{20});

  auto r = http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"title":"after"})");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto u = r.json_or_discarded();
  EXPECT_EQ(u["id"], id);
  EXPECT_EQ(u["title"], "after");
  EXPECT_EQ(u["metadata"], json::parse(R"({"k":"v"})")) << "title-only PATCH touched metadata";
  EXPECT_EQ(u["user_id"], "u2");
  EXPECT_EQ(u["created_at"], s["created_at"]) << "PATCH changed created_at";
  EXPECT_GE(u.value("updated_at", ""), s.value("created_at", ""));

  auto r2 = http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"metadata":{"k":"v2"}})");
  ASSERT_EQ(r2.status, 200) << r2.describe();
  auto u2 = r2.json_or_discarded();
  EXPECT_EQ(u2["metadata"]["k"], "v2") << r2.body;
  EXPECT_EQ(u2["title"], "after") << "metadata-only PATCH touched the title";

  auto g = http("GET", p.port(), "/api/v1/sessions/" + id);
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(without_summary(g.json_or_discarded()), u2)
      << "GET after PATCH differs from the PATCH response";
}

TEST(Sessions, PatchErrors) {
  ParleyProcess p;
  auto missing = http("PATCH", p.port(), "/api/v1/sessions/sess_nope", R"({"title":"x"})");
  EXPECT_TRUE(is_error(missing, 404, "session_not_found"));

  auto s = create(p.port(), "{}");
  const std::string id = s.value("id", "");
  auto bad_title = http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"title":5})");
  ASSERT_TRUE(is_error(bad_title, 400, "invalid_field"));
  EXPECT_EQ(bad_title.json()["error"].value("param", ""), "title");
  auto bad_meta = http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"metadata":[1]})");
  ASSERT_TRUE(is_error(bad_meta, 400, "invalid_field"));
  EXPECT_EQ(bad_meta.json()["error"].value("param", ""), "metadata");
  auto malformed = http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"title":)");
  EXPECT_TRUE(is_error(malformed, 400, "malformed_json"));

  // A rejected PATCH changes nothing.
  auto g = http("GET", p.port(), "/api/v1/sessions/" + id);
  EXPECT_EQ(without_summary(g.json_or_discarded()), s);
}

TEST(Sessions, DeleteThenGone) {
  ParleyProcess p;
  auto s = create(p.port(), R"({"title":"doomed"})");
  const std::string id = s.value("id", "");
  auto d = http("DELETE", p.port(), "/api/v1/sessions/" + id);
  EXPECT_EQ(d.status, 204) << d.describe();
  EXPECT_TRUE(d.body.empty()) << d.describe();
  EXPECT_TRUE(is_error(http("GET", p.port(), "/api/v1/sessions/" + id), 404, "session_not_found"));
  EXPECT_TRUE(
      is_error(http("DELETE", p.port(), "/api/v1/sessions/" + id), 404, "session_not_found"));
  EXPECT_TRUE(is_error(http("PATCH", p.port(), "/api/v1/sessions/" + id, R"({"title":"z"})"), 404,
                       "session_not_found"));
}

TEST(Sessions, ListNewestFirstWithPagination) {
  ParleyProcess p;
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) {
    auto s = create(p.port(), R"({"user_id":"pager","title":"n)" + std::to_string(i) + R"("})");
    created.push_back(s.value("id", ""));
    // Distinct creation instants, so "newest first" has exactly one right answer.
    std::this_thread::sleep_for(Millis{15});
  }
  create(p.port(), R"({"user_id":"someone-else"})");

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  while (pages < 10) {
    std::string path = "/api/v1/sessions?user_id=pager&limit=2";
    if (!cursor.empty()) path += "&cursor=" + cursor;
    auto r = http("GET", p.port(), path);
    ASSERT_EQ(r.status, 200) << path << "\n" << r.describe();
    auto j = r.json_or_discarded();
    ASSERT_TRUE(j.is_object() && j.contains("data") && j["data"].is_array()) << r.body;
    ASSERT_TRUE(j.contains("next_cursor")) << r.body;
    ++pages;
    EXPECT_LE(j["data"].size(), 2u) << "page larger than limit: " << r.body;
    for (const auto& s : j["data"]) {
      EXPECT_EQ(s.value("user_id", ""), "pager") << "other user's session listed: " << s.dump();
      seen.push_back(s.value("id", ""));
    }
    if (j["next_cursor"].is_null()) break;
    ASSERT_TRUE(j["next_cursor"].is_string()) << r.body;
    EXPECT_EQ(j["data"].size(), 2u) << "a short page still has a next_cursor: " << r.body;
    cursor = j["next_cursor"].get<std::string>();
    ASSERT_FALSE(cursor.empty());
  }
  std::vector<std::string> expected(created.rbegin(), created.rend());
  EXPECT_EQ(seen, expected) << "pagination did not return the 5 sessions newest first";
  EXPECT_EQ(pages, 3) << "5 items at limit=2 should take 3 pages";
}

TEST(Sessions, ListWithoutMatchesIsEmpty) {
  ParleyProcess p;
  create(p.port(), R"({"user_id":"a"})");
  auto r = http("GET", p.port(), "/api/v1/sessions?user_id=nobody");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto j = r.json_or_discarded();
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j["data"], json::array()) << r.body;
  EXPECT_TRUE(j["next_cursor"].is_null()) << r.body;
}

TEST(Sessions, ListQueryValidation) {
  ParleyProcess p;
  for (const char* q : {"limit=0", "limit=-1", "limit=abc"}) {
    SCOPED_TRACE(q);
    auto r = http("GET", p.port(), std::string("/api/v1/sessions?user_id=u&") + q);
    ASSERT_TRUE(is_error(r, 400, "invalid_field"));
    EXPECT_EQ(r.json()["error"].value("param", ""), "limit") << r.body;
  }
  // A cursor the server never issued. The spec names no code for this case: a 400 envelope
  // naming the cursor param is what a client needs (invalid_field or a more specific code).
  auto r = http("GET", p.port(), "/api/v1/sessions?user_id=u&cursor=not_a_valid_cursor");
  ASSERT_TRUE(is_error(r, 400));
  EXPECT_EQ(r.json()["error"].value("param", ""), "cursor") << r.body;
}

TEST(Sessions, CreateValidation) {
  ParleyProcess p;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"user_id":5})", "user_id"},        {R"({"user_id":["u"]})", "user_id"},
      {R"({"assistant":true})", "assistant"}, {R"({"title":3})", "title"},
      {R"({"metadata":"x"})", "metadata"},    {R"({"metadata":[1,2]})", "metadata"},
  };
  for (const auto& [body, param] : cases) {
    SCOPED_TRACE(body);
    auto r = http("POST", p.port(), "/api/v1/sessions", body);
    ASSERT_TRUE(is_error(r, 400, "invalid_field"));
    EXPECT_EQ(r.json()["error"].value("param", ""), param) << r.body;
  }
  // The body must be a JSON object.
  for (const char* body : {"[1,2]", "\"str\"", "42", "null"}) {
    SCOPED_TRACE(body);
    auto r = http("POST", p.port(), "/api/v1/sessions", body);
    EXPECT_TRUE(is_error(r, 400));
  }
  // Nothing was created by the rejected requests.
  auto list = http("GET", p.port(), "/api/v1/sessions?user_id=anonymous");
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_EQ(list.json_or_discarded()["data"].size(), 0u) << list.body;
}

}  // namespace
}  // namespace parley_it
