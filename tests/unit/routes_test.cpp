// Every route the server registers, enumerated from the real composition (app::ServerApp,
// composed but not listening), with the access policy it must have. A route is registered
// together with its policy (http::Router::add has no overload without one); this test pins
// what each policy is, so that a new route needs a conscious entry here and a changed policy
// shows up in review.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "app/server_app.hpp"
#include "app/settings.hpp"
#include "config/settings.hpp"
#include "http/router.hpp"
#include "temp_dir.hpp"

namespace {

using parley::http::Audience;
using parley::http::Method;

struct Expected {
  Audience audience;
  bool idempotent;
  bool names_user = false;        // its handler counts a service key's quotas with the user's
  bool anthropic_errors = false;  // its errors are in Anthropic's envelope
};

TEST(Routes, EveryRegisteredRouteHasTheAccessPolicyItShould) {
  // Probes and metrics are public (no user data); everything a model answers or that creates
  // something honours Idempotency-Key; operations on the server itself are admin-only.
  const std::map<std::pair<std::string, std::string>, Expected> expected = {
      {{"GET", "/health"}, {Audience::kPublic, false}},
      {{"GET", "/api/v1/health/liveness"}, {Audience::kPublic, false}},
      {{"GET", "/api/v1/health/readiness"}, {Audience::kPublic, false}},
      {{"GET", "/metrics"}, {Audience::kPublic, false}},
      {{"GET", "/api/v1/health/diagnostics"}, {Audience::kAdmin, false}},
      {{"POST", "/api/v1/sessions"}, {Audience::kAuthenticated, true, true}},
      {{"GET", "/api/v1/sessions"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/sessions/{id}"}, {Audience::kAuthenticated, false}},
      {{"PATCH", "/api/v1/sessions/{id}"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/api/v1/sessions/{id}"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/sessions/{id}/messages"}, {Audience::kAuthenticated, false}},
      {{"POST", "/api/v1/sessions/{id}/messages"}, {Audience::kAuthenticated, true, true}},
      {{"POST", "/api/v1/chat"}, {Audience::kAuthenticated, true, true}},
      {{"GET", "/api/v1/assistants"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/usage"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/users/{id}/export"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/api/v1/users/{id}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/v1/chat/completions"}, {Audience::kAuthenticated, true, true}},
      {{"POST", "/v1/embeddings"}, {Audience::kAuthenticated, true, true}},
      {{"GET", "/v1/models"}, {Audience::kAuthenticated, false}},
      {{"GET", "/v1/models/{model}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/v1/moderations"}, {Audience::kAuthenticated, false, true}},
      // Anthropic's Messages API, its errors in Anthropic's envelope.
      {{"POST", "/v1/messages"}, {Audience::kAuthenticated, true, true, true}},
      {{"POST", "/v1/messages/count_tokens"}, {Audience::kAuthenticated, false, false, true}},
      // Not idempotent on purpose: a stored answer would keep the new key's secret.
      {{"POST", "/api/v1/admin/keys"}, {Audience::kAdmin, false}},
      {{"GET", "/api/v1/admin/keys"}, {Audience::kAdmin, false}},
      {{"GET", "/api/v1/admin/keys/{id}"}, {Audience::kAdmin, false}},
      {{"DELETE", "/api/v1/admin/keys/{id}"}, {Audience::kAdmin, false}},
      {{"GET", "/api/v1/admin/moderation/logs"}, {Audience::kAdmin, false}},
      {{"GET", "/api/v1/admin/jobs"}, {Audience::kAdmin, false}},
      {{"GET", "/api/v1/admin/jobs/{id}"}, {Audience::kAdmin, false}},
      {{"POST", "/api/v1/admin/jobs/{id}/retry"}, {Audience::kAdmin, false}},
      // Knowledge bases: any key of the tenant reads the shared ones; the handlers let a
      // user's key change only its own (knowledge_write_denied otherwise).
      {{"POST", "/api/v1/knowledge-bases"}, {Audience::kAuthenticated, true}},
      {{"GET", "/api/v1/knowledge-bases"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/knowledge-bases/{id}"}, {Audience::kAuthenticated, false}},
      {{"PATCH", "/api/v1/knowledge-bases/{id}"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/api/v1/knowledge-bases/{id}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/api/v1/knowledge-bases/{id}/documents"}, {Audience::kAuthenticated, true}},
      {{"GET", "/api/v1/knowledge-bases/{id}/documents"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/knowledge-bases/{id}/documents/{document_id}"},
       {Audience::kAuthenticated, false}},
      {{"PUT", "/api/v1/knowledge-bases/{id}/documents/{document_id}"},
       {Audience::kAuthenticated, true}},
      {{"PATCH", "/api/v1/knowledge-bases/{id}/documents/{document_id}"},
       {Audience::kAuthenticated, false}},
      {{"DELETE", "/api/v1/knowledge-bases/{id}/documents/{document_id}"},
       {Audience::kAuthenticated, false}},
      {{"POST", "/api/v1/knowledge-bases/{id}/search"}, {Audience::kAuthenticated, false}},
      // OpenAI's files and vector stores, on the same knowledge bases.
      {{"POST", "/v1/files"}, {Audience::kAuthenticated, true}},
      {{"GET", "/v1/files"}, {Audience::kAuthenticated, false}},
      {{"GET", "/v1/files/{id}"}, {Audience::kAuthenticated, false}},
      {{"GET", "/v1/files/{id}/content"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/v1/files/{id}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/v1/vector_stores"}, {Audience::kAuthenticated, true}},
      {{"GET", "/v1/vector_stores"}, {Audience::kAuthenticated, false}},
      {{"GET", "/v1/vector_stores/{id}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/v1/vector_stores/{id}"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/v1/vector_stores/{id}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/v1/vector_stores/{id}/files"}, {Audience::kAuthenticated, true}},
      {{"GET", "/v1/vector_stores/{id}/files"}, {Audience::kAuthenticated, false}},
      {{"GET", "/v1/vector_stores/{id}/files/{file_id}"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/v1/vector_stores/{id}/files/{file_id}"}, {Audience::kAuthenticated, false}},
      {{"POST", "/v1/vector_stores/{id}/search"}, {Audience::kAuthenticated, false}},
      // Memories: the handlers confine each key to its own users (404 for anyone else's).
      {{"GET", "/api/v1/users/{id}/memories"}, {Audience::kAuthenticated, false}},
      {{"POST", "/api/v1/users/{id}/memories"}, {Audience::kAuthenticated, true}},
      {{"DELETE", "/api/v1/users/{id}/memories"}, {Audience::kAuthenticated, false}},
      {{"POST", "/api/v1/users/{id}/memories/search"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/users/{id}/memories/{memory_id}"}, {Audience::kAuthenticated, false}},
      {{"PATCH", "/api/v1/users/{id}/memories/{memory_id}"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/api/v1/users/{id}/memories/{memory_id}"}, {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/users/{id}/memories/{memory_id}/history"},
       {Audience::kAuthenticated, false}},
      {{"GET", "/api/v1/sessions/{id}/summaries"}, {Audience::kAuthenticated, false}},
      {{"POST", "/mem0/memories"}, {Audience::kAuthenticated, true}},
      {{"GET", "/mem0/memories"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/mem0/memories"}, {Audience::kAuthenticated, false}},
      {{"POST", "/mem0/search"}, {Audience::kAuthenticated, false}},
      {{"GET", "/mem0/memories/{memory_id}"}, {Audience::kAuthenticated, false}},
      {{"PUT", "/mem0/memories/{memory_id}"}, {Audience::kAuthenticated, false}},
      {{"DELETE", "/mem0/memories/{memory_id}"}, {Audience::kAuthenticated, false}},
      {{"GET", "/mem0/memories/{memory_id}/history"}, {Audience::kAuthenticated, false}},
      // Who the caller is, for clients such as the web chat.
      {{"GET", "/api/v1/me"}, {Audience::kAuthenticated, false}},
      // The web chat's files: public, they hold nothing of anyone's (the page signs in to the
      // API like any client).
      {{"GET", "/"}, {Audience::kPublic, false}},
      {{"GET", "/assets/{name}"}, {Audience::kPublic, false}},
  };

  parley::testing::TempDir dir;
  parley::config::Sources sources;
  sources.overrides = {{"data_dir", dir.path()}, {"server.listen", "127.0.0.1:0"}};
  auto loaded = parley::config::load(parley::app::settings_schema(), sources);
  ASSERT_TRUE(loaded.ok());
  parley::app::ServerApp app(loaded.settings, {}, std::chrono::steady_clock::now());
  auto failed = app.compose();
  ASSERT_FALSE(failed) << failed->phase << ": " << failed->cause;

  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& route : app.router().routes()) {
    const auto key =
        std::make_pair(std::string(parley::http::method_name(route.method)), route.pattern);
    EXPECT_TRUE(seen.insert(key).second) << "registered twice: " << key.first << " " << key.second;
    auto it = expected.find(key);
    if (it == expected.end()) {
      ADD_FAILURE() << "a route this test does not know: " << key.first << " " << key.second << " ("
                    << parley::http::audience_name(route.policy.audience)
                    << "); add it to the table with the policy it must have";
      continue;
    }
    EXPECT_EQ(route.policy.audience, it->second.audience)
        << key.first << " " << key.second << " is "
        << parley::http::audience_name(route.policy.audience);
    EXPECT_EQ(route.policy.idempotent, it->second.idempotent) << key.first << " " << key.second;
    EXPECT_EQ(route.policy.names_user, it->second.names_user) << key.first << " " << key.second;
    EXPECT_EQ(route.policy.errors == parley::http::ErrorFormat::kAnthropic,
              it->second.anthropic_errors)
        << key.first << " " << key.second;
    // Belt and braces over the table: nothing under /admin/ is ever less than admin, and
    // only probes, metrics and the web chat's files are public.
    if (key.second.find("/admin/") != std::string::npos) {
      EXPECT_EQ(route.policy.audience, Audience::kAdmin) << key.second;
    }
    if (route.policy.audience == Audience::kPublic) {
      EXPECT_TRUE(key.second == "/metrics" || key.second.find("health") != std::string::npos ||
                  key.second == "/" || key.second == "/assets/{name}")
          << key.second << " is public";
    }
  }
  for (const auto& [key, policy] : expected) {
    EXPECT_TRUE(seen.count(key)) << "not registered: " << key.first << " " << key.second;
  }
}

}  // namespace
