// What the knowledge routes share (see knowledge_common.hpp).
#include "api/knowledge_common.hpp"

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/fields.hpp"
#include "auth/crypto.hpp"
#include "auth/principal.hpp"
#include "http/json_body.hpp"
#include "http/multipart.hpp"
#include "obs/log.hpp"
#include "store/common.hpp"

namespace parley::api::knowledge_common {

namespace {

using nlohmann::json;

constexpr size_t kMaxName = 256;
constexpr size_t kMaxAttributesBytes = size_t{16} * 1024;

}  // namespace

Result<std::optional<std::string>> object_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_object()) {
    return Error::invalid_field(name, std::string(name) + " must be a JSON object");
  }
  std::string text = it->dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxAttributesBytes) {
    return Error::invalid_field(name, std::string(name) + " must be at most " +
                                          std::to_string(kMaxAttributesBytes) + " bytes as JSON");
  }
  return std::optional<std::string>(std::move(text));
}

bool in_tenant(const http::Request& req, std::string_view tenant_id) {
  const auth::Principal* who = req.principal;
  return who == nullptr || who->admin() || who->tenant_id == tenant_id;
}

namespace {

const auth::Principal* user_key(const http::Request& req) {
  const auth::Principal* who = req.principal;
  return who != nullptr && who->scope == auth::Scope::kUser ? who : nullptr;
}

}  // namespace

bool may_see(const http::Request& req, const store::KnowledgeBase& base) {
  if (!in_tenant(req, base.tenant_id)) return false;
  const auth::Principal* user = user_key(req);
  return user == nullptr || base.owner_user_id.empty() || base.owner_user_id == user->user_id;
}

Result<void> may_change(const http::Request& req, const store::KnowledgeBase& base) {
  const auth::Principal* user = user_key(req);
  if (user != nullptr && base.owner_user_id != user->user_id) {
    return Error::permission_denied(
        "this knowledge base is shared by the tenant: a user's key may read and search it, and "
        "change only the knowledge bases it created",
        "knowledge_write_denied");
  }
  return success();
}

Result<void> may_write(const http::Request& req) {
  if (user_key(req) != nullptr) {
    return Error::permission_denied(
        "a user's key may not upload or delete files here; upload to a knowledge base of its "
        "own (POST /api/v1/knowledge-bases/{id}/documents) or use a service or admin key",
        "knowledge_write_denied");
  }
  return success();
}

bool may_see_file(const http::Request& req, const store::StoredFile& file) {
  if (!in_tenant(req, file.tenant_id)) return false;
  const auth::Principal* user = user_key(req);
  return user == nullptr || file.user_id == user->user_id;
}

Result<std::string> new_base_owner(const http::Request& req,
                                   const std::optional<std::string>& requested) {
  const auth::Principal* user = user_key(req);
  if (user == nullptr) return requested.value_or("");
  if (requested && *requested != user->user_id) {
    return Error::permission_denied("a user's key creates knowledge bases of its own user only",
                                    "knowledge_write_denied");
  }
  return user->user_id;
}

store::KnowledgeBaseListQuery visible_bases(const http::Request& req, int limit,
                                            std::optional<std::string> cursor) {
  store::KnowledgeBaseListQuery query;
  query.tenant_id = Access::tenant_scope(req);
  if (const auth::Principal* user = user_key(req); user != nullptr) {
    query.visible_to_user = user->user_id;
  }
  query.limit = limit;
  query.cursor = std::move(cursor);
  return query;
}

std::string caller_tenant(const http::Request& req) {
  return req.principal != nullptr ? req.principal->tenant_id : std::string("default");
}

Result<Upload> read_upload(const http::Request& req, const knowledge::KnowledgeSettings& settings,
                           bool allow_json) {
  Upload upload;
  const auto content_type = req.header("content-type");
  if (content_type && http::is_multipart_form(*content_type)) {
    auto parts = http::parse_multipart(*content_type, req.body);
    if (!parts) return std::move(parts).error();
    const http::FormPart* file = http::find_part(*parts, "file");
    if (file == nullptr) {
      return Error::invalid_field("file", "the form has no part named \"file\"");
    }
    upload.name = file->filename.value_or("");
    if (const auto* name = http::find_part(*parts, "name"); name != nullptr) {
      upload.name = std::string(name->data);
    }
    if (const auto* attributes = http::find_part(*parts, "attributes"); attributes != nullptr) {
      json parsed = json::parse(attributes->data, nullptr, false);
      if (!parsed.is_object()) {
        return Error::invalid_field("attributes", "attributes must be a JSON object");
      }
      upload.attributes_json = parsed.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (const auto* purpose = http::find_part(*parts, "purpose"); purpose != nullptr) {
      upload.purpose = std::string(purpose->data);
    }
    upload.content = std::string(file->data);
  } else if (!allow_json) {
    return Error{ErrorCode::kUnsupportedMedia,
                 "upload the file as multipart/form-data with a \"file\" part",
                 "unsupported_media_type",
                 {},
                 {}};
  } else {
    auto body = http::parse_json_object_body(req);
    if (!body) return std::move(body).error();
    if (auto r = reject_unknown_fields(*body, {"name", "text", "attributes"}); !r) {
      return std::move(r).error();
    }
    auto text = body->find("text");
    if (text == body->end() || !text->is_string()) {
      return Error::invalid_field("text", "text is required: the document's content as a string");
    }
    auto name = string_field(*body, "name", kMaxName, false);
    if (!name) return std::move(name).error();
    upload.name = name->value_or("document.txt");
    upload.content = text->get<std::string>();
    auto attributes = object_field(*body, "attributes");
    if (!attributes) return std::move(attributes).error();
    upload.attributes_json = *attributes;
  }
  if (upload.name.empty() || upload.name.size() > kMaxName) {
    return Error::invalid_field("name", "the file needs a name of 1 to 256 bytes");
  }
  if (upload.content.empty()) return Error::invalid_field("file", "the file is empty");
  if (upload.content.size() > settings.max_file_size) {
    return Error{ErrorCode::kTooLarge,
                 "the file is larger than knowledge.max_file_size (" +
                     std::to_string(settings.max_file_size) + " bytes)",
                 "file_too_large",
                 "file",
                 {}};
  }
  return upload;
}

store::NewFile new_file(const http::Request& req, const Upload& upload, std::string purpose) {
  store::NewFile file;
  file.tenant_id = caller_tenant(req);
  if (req.principal != nullptr) file.user_id = req.principal->user_id;
  file.filename = upload.name;
  file.purpose = std::move(purpose);
  file.sha256 = auth::to_hex(auth::sha256(upload.content));
  file.content = upload.content;
  return file;
}

Task<Result<store::KnowledgeBase>> visible_base(Context& ctx, const http::Request& req,
                                                const std::string& id, BaseView view) {
  auto base = co_await ctx.blocking.run([&] {
    auto& repo = ctx.storage.knowledge();
    return view == BaseView::kWithCounts ? repo.get_base(id) : repo.get_base_brief(id);
  });
  if (!base) co_return std::move(base).error();
  if (!may_see(req, *base)) co_return store::knowledge_base_not_found(id);
  co_return std::move(base).value();
}

Task<Result<std::vector<knowledge::SearchHit>>> search(Context& ctx, knowledge::IndexManager& index,
                                                       knowledge::Embedders& embedders,
                                                       const store::KnowledgeBase& base,
                                                       knowledge::SearchRequest request) {
  // Before the query is embedded (a remote embedder bills it).
  auto found = index.serving(base.id);
  if (!found) co_return std::move(found).error();
  if (!*found) co_return std::vector<knowledge::SearchHit>();
  if (request.mode != knowledge::SearchMode::kLexical) {
    auto vector = co_await embedders.embed_query(base.embedder, base.dimension, request.query);
    if (vector) {
      request.query_vector = std::move(vector).value();
      request.query_embedder = base.embedder;
    } else if (request.mode == knowledge::SearchMode::kVector) {
      co_return std::move(vector).error();
    } else {
      // Hybrid search degrades to its lexical side rather than failing.
      log::warn(
          "query not embedded; searching lexically",
          {{"kb_id", base.id}, {"embedder", base.embedder}, {"error", vector.error().message}});
    }
  }
  co_return co_await ctx.blocking.run([&] { return (*found)->search(request); });
}

}  // namespace parley::api::knowledge_common
