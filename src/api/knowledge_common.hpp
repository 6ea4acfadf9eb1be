// What the knowledge-base routes (knowledge.cpp) and their OpenAI-compatible counterparts
// (openai_knowledge.cpp: files and vector stores) share: who may see and change knowledge,
// reading an upload, and running a search.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/context.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "http/message.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/index/index_manager.hpp"
#include "knowledge/settings.hpp"
#include "store/knowledge.hpp"

namespace parley::api::knowledge_common {

inline constexpr std::string_view kKnowledgePurpose = "knowledge";

// Who sees and changes a knowledge base:
//   admin    every base of every tenant
//   service  every base of its tenant, the tenant's shared ones and its users' own
//   user     the tenant's shared bases, which it reads and searches, and the bases it created
//            (its own: owner_user_id is its user), which it also changes and uploads to
// A base the caller may not see is a 404, as if it did not exist.

// Whether the caller may see what belongs to `tenant_id` (admins see every tenant).
bool in_tenant(const http::Request& req, std::string_view tenant_id);
bool may_see(const http::Request& req, const store::KnowledgeBase& base);
// 403 "knowledge_write_denied" for a user's key and a base that is not its own.
Result<void> may_change(const http::Request& req, const store::KnowledgeBase& base);
// Uploading and deleting files outside a knowledge base (/v1/files) takes a service or admin
// key.
Result<void> may_write(const http::Request& req);
// A file: its tenant's for service keys (every tenant's for admins); a user's key sees only
// the files its user uploaded (to its own bases).
bool may_see_file(const http::Request& req, const store::StoredFile& file);
std::string caller_tenant(const http::Request& req);
// The owner of a base the caller creates: a user's key creates its own; service and admin
// keys create the tenant's shared bases unless they name an owner (`requested`), which a
// user's key may do only with its own user.
Result<std::string> new_base_owner(const http::Request& req,
                                   const std::optional<std::string>& requested);
// The bases the caller may list (a user's key: the tenant's shared ones and its own).
store::KnowledgeBaseListQuery visible_bases(const http::Request& req, int limit,
                                            std::optional<std::string> cursor);

// Absent or null: nullopt. Present: a JSON object of at most 16 KiB, as text.
Result<std::optional<std::string>> object_field(const nlohmann::json& body, const char* name);

// A file's name, bytes and attributes, from a multipart form ("file", with optional "name",
// "attributes" and, for /v1/files, "purpose") or a JSON body ({"name", "text", "attributes"}).
struct Upload {
  std::string name;
  std::string content;
  std::optional<std::string> attributes_json;
  std::string purpose;  // a form's "purpose" part, when it has one
};
Result<Upload> read_upload(const http::Request& req, const knowledge::KnowledgeSettings& settings,
                           bool allow_json);
store::NewFile new_file(const http::Request& req, const Upload& upload, std::string purpose);

// Whether a base is read with its document counts and sizes (for showing it), which cost a
// read of every document's row, or without (to check it and use its settings).
enum class BaseView { kBrief, kWithCounts };

// A visible base (404 otherwise), on the blocking pool.
Task<Result<store::KnowledgeBase>> visible_base(Context& ctx, const http::Request& req,
                                                const std::string& id,
                                                BaseView view = BaseView::kBrief);

// An upload's body may be as large as the largest file, plus the form's own bytes.
inline uint64_t upload_body_limit(const knowledge::KnowledgeSettings& settings) {
  return settings.max_file_size + (uint64_t{64} << 10);
}

// A route handler calling `handler` on the routes object, which lives as long as the router.
template <typename Routes>
std::function<Task<http::Response>(http::Request&)> bind_route(
    std::shared_ptr<Routes> routes, Task<http::Response> (Routes::*handler)(http::Request&)) {
  return [routes = std::move(routes), handler](http::Request& req) {
    return ((*routes).*handler)(req);
  };
}

// Embeds the query with the base's embedder (when the mode wants vectors; a hybrid search
// whose query cannot be embedded goes on lexically) and searches the base's index; no index
// yet means no hits.
Task<Result<std::vector<knowledge::SearchHit>>> search(Context& ctx, knowledge::IndexManager& index,
                                                       knowledge::Embedders& embedders,
                                                       const store::KnowledgeBase& base,
                                                       knowledge::SearchRequest request);

}  // namespace parley::api::knowledge_common
