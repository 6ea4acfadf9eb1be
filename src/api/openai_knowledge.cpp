// OpenAI-compatible files and vector stores (see openai_knowledge.hpp).
#include "api/openai_knowledge.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "api/fields.hpp"
#include "api/knowledge_common.hpp"
#include "api/reply.hpp"
#include "core/clock.hpp"
#include "http/json_body.hpp"
#include "knowledge/ingest.hpp"
#include "queue/worker.hpp"
#include "store/common.hpp"

namespace parley::api {
namespace {

using namespace knowledge_common;
using nlohmann::json;
using Awaitable = Task<http::Response>;

constexpr double kRrfTop = 2.0 / 61.0;  // the fused score of a chunk first on both sides

int64_t seconds(int64_t ms) { return ms / 1000; }

json file_json(const store::StoredFile& f) {
  return {{"id", f.id},
          {"object", "file"},
          {"bytes", f.bytes},
          {"created_at", seconds(f.created_at_ms)},
          {"filename", f.filename},
          {"purpose", f.purpose},
          {"status", "processed"},
          {"expires_at", nullptr},
          {"status_details", nullptr}};
}

std::string status_of(const store::KnowledgeDocument& d) {
  if (d.status == "ready") return "completed";
  if (d.status == "failed") return "failed";
  return "in_progress";
}

json vector_store_file_json(const store::KnowledgeDocument& d, const std::string& file_id) {
  json error = nullptr;
  if (d.status == "failed") {
    const std::string code = d.error_reason == "unsupported_type" ? "unsupported_file"
                             : d.error_reason.empty()             ? "server_error"
                                                                  : "invalid_file";
    error = {{"code", code}, {"message", d.error_message}};
  }
  json attributes = json::parse(d.attributes_json, nullptr, false);
  return {{"id", file_id},
          {"object", "vector_store.file"},
          {"usage_bytes", d.bytes},
          {"created_at", seconds(d.created_at_ms)},
          {"vector_store_id", d.kb_id},
          {"status", status_of(d)},
          {"last_error", error},
          {"attributes", attributes.is_object() ? attributes : json::object()},
          {"chunking_strategy", {{"type", "static"}}}};
}

json vector_store_json(const store::KnowledgeBase& b) {
  json metadata = json::parse(b.metadata_json, nullptr, false);
  return {{"id", b.id},
          {"object", "vector_store"},
          {"created_at", seconds(b.created_at_ms)},
          {"name", b.name},
          {"usage_bytes", b.bytes},
          {"file_counts",
           {{"in_progress", b.documents_processing},
            {"completed", b.documents_ready},
            {"failed", b.documents_failed},
            {"cancelled", 0},
            {"total", b.documents}}},
          {"status", b.documents_processing > 0 ? "in_progress" : "completed"},
          {"expires_after", nullptr},
          {"expires_at", nullptr},
          {"last_active_at", seconds(b.updated_at_ms)},
          {"metadata", metadata.is_object() ? metadata : json::object()}};
}

json list_json(const json& data, bool has_more) {
  json first = data.empty() ? json(nullptr) : data.front()["id"];
  json last = data.empty() ? json(nullptr) : data.back()["id"];
  return {{"object", "list"},
          {"data", data},
          {"first_id", first},
          {"last_id", last},
          {"has_more", has_more}};
}

// OpenAI pages by `after=<id>`; Parley's pages by cursor. Reads pages until the item after
// `after`, then `limit` items.
template <typename Item, typename Fetch, typename Key>
Result<std::pair<std::vector<Item>, bool>> page_after(Fetch fetch, Key key,
                                                      const std::optional<std::string>& after,
                                                      int limit) {
  std::vector<Item> out;
  std::optional<std::string> cursor;
  bool skipping = after.has_value();
  for (;;) {
    auto page = fetch(100, cursor);
    if (!page) return std::move(page).error();
    for (auto& item : page->items) {
      if (skipping) {
        if (key(item) == *after) skipping = false;
        continue;
      }
      if (static_cast<int>(out.size()) == limit) return std::make_pair(std::move(out), true);
      out.push_back(std::move(item));
    }
    cursor = page->next_cursor;
    if (!cursor) return std::make_pair(std::move(out), false);
  }
}

// The `filter` of a vector store's file list, as document states.
struct StatusFilter {
  std::optional<std::string> status;  // the documents' state to list, if one
  bool in_progress = false;           // queued or processing
  bool cancelled = false;             // never: an empty list
};

Result<StatusFilter> status_filter(const std::optional<std::string>& filter) {
  StatusFilter out;
  if (!filter) return out;
  if (*filter == "completed") {
    out.status = "ready";
  } else if (*filter == "failed") {
    out.status = "failed";
  } else if (*filter == "in_progress") {
    out.in_progress = true;
  } else if (*filter == "cancelled") {
    out.cancelled = true;
  } else {
    return Error::invalid_field("filter",
                                "filter must be in_progress, completed, failed or cancelled");
  }
  return out;
}

// A search's `query`: a string, or strings searched together.
Result<std::string> query_of(const json& body) {
  std::string query;
  const auto it = body.find("query");
  if (it != body.end() && it->is_string()) query = it->get<std::string>();
  if (it != body.end() && it->is_array()) {
    for (const auto& q : *it) {
      if (!q.is_string()) return Error::invalid_field("query", "query is a string or strings");
      if (!query.empty()) query += ' ';
      query += q.get<std::string>();
    }
  }
  if (query.empty()) return Error::invalid_field("query", "query is required");
  return query;
}

class OpenAiKnowledge {
 public:
  OpenAiKnowledge(Context& ctx, const knowledge::KnowledgeSettings& settings,
                  knowledge::IndexManager& index, knowledge::Embedders& embedders)
      : ctx_(ctx), settings_(settings), index_(index), embedders_(embedders) {}

  // --- Files ------------------------------------------------------------------------------

  Awaitable create_file(http::Request& req) {
    if (auto r = may_write(req); !r) co_return fail(r.error(), req);
    auto upload = read_upload(req, settings_, false);
    if (!upload) co_return fail(upload.error(), req);
    if (upload->purpose.empty()) {
      co_return fail(Error::invalid_field("purpose", "purpose is required (e.g. \"assistants\")"),
                     req);
    }
    const int64_t now = now_ms();
    auto file = co_await ctx_.blocking.run([&] {
      return ctx_.storage.knowledge().put_file(new_file(req, *upload, upload->purpose), now);
    });
    if (!file) co_return fail(file.error(), req);
    co_return json_response(200, file_json(*file));
  }

  Awaitable list_files(http::Request& req) {
    auto limit = page_limit(req.query_param("limit"), 100, 10'000);
    if (!limit) co_return fail(limit.error(), req);
    const auto purpose = req.query_param("purpose");
    const auto after = req.query_param("after");
    const std::string tenant = caller_tenant(req);
    auto listed = co_await ctx_.blocking.run([&] {
      return page_after<store::StoredFile>(
          [&](int n, const std::optional<std::string>& cursor) {
            auto page = ctx_.storage.knowledge().list_files(tenant, purpose, n, cursor);
            // A user's key lists only its own uploads (read past the others').
            if (page)
              std::erase_if(page->items, [&](const auto& f) { return !may_see_file(req, f); });
            return page;
          },
          [](const store::StoredFile& f) { return f.id; }, after, *limit);
    });
    if (!listed) co_return fail(listed.error(), req);
    json data = json::array();
    for (const auto& f : listed->first) data.push_back(file_json(f));
    co_return json_response(200, list_json(data, listed->second));
  }

  Awaitable get_file(http::Request& req) {
    auto file = co_await visible_file(req);
    if (!file) co_return fail(file.error(), req);
    co_return json_response(200, file_json(*file));
  }

  Awaitable file_content(http::Request& req) {
    auto file = co_await visible_file(req);
    if (!file) co_return fail(file.error(), req);
    auto content =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().file_content(file->id); });
    if (!content) co_return fail(content.error(), req);
    http::Response res;
    res.status = 200;
    res.content_type = "application/octet-stream";
    res.body = std::move(*content);
    co_return res;
  }

  Awaitable delete_file(http::Request& req) {
    if (auto r = may_write(req); !r) co_return fail(r.error(), req);
    auto file = co_await visible_file(req);
    if (!file) co_return fail(file.error(), req);
    auto deleted =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().delete_file(file->id); });
    if (!deleted) co_return fail(deleted.error(), req);
    co_return json_response(200, {{"id", file->id}, {"object", "file"}, {"deleted", true}});
  }

  // --- Vector stores ----------------------------------------------------------------------

  Awaitable create_store(http::Request& req) {
    // A user's key makes a store of its own; service and admin keys, the tenant's.
    auto owner = new_base_owner(req, std::nullopt);
    if (!owner) co_return fail(owner.error(), req);
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body, {"name", "file_ids", "metadata", "chunking_strategy",
                                               "expires_after", "description"});
        !r) {
      co_return fail(r.error(), req);
    }
    auto name = string_field(*body, "name", 256, false);
    if (!name) co_return fail(name.error(), req);
    auto description = string_field(*body, "description", 4096, false);
    if (!description) co_return fail(description.error(), req);
    auto metadata = object_field(*body, "metadata");
    if (!metadata) co_return fail(metadata.error(), req);
    auto chunking = chunking_of(*body);
    if (!chunking) co_return fail(chunking.error(), req);
    if (auto e = body->find("expires_after"); e != body->end() && !e->is_null()) {
      co_return fail(Error::invalid_field("expires_after",
                                          "expires_after is not supported: vector stores here "
                                          "are kept until deleted"),
                     req);
    }
    auto file_ids = file_ids_of(*body);
    if (!file_ids) co_return fail(file_ids.error(), req);
    store::NewKnowledgeBase base;
    base.tenant_id = caller_tenant(req);
    base.owner_user_id = std::move(owner).value();
    base.name = name->value_or("");
    base.description = description->value_or("");
    base.metadata_json = metadata->value_or("{}");
    base.settings_json = knowledge::base_settings_json(*chunking);
    base.embedder = embedders_.default_name();
    base.dimension = embedders_.default_dimension();
    const int64_t now = now_ms();
    auto created = co_await ctx_.blocking.run([&]() -> Result<store::KnowledgeBase> {
      auto kb = ctx_.storage.knowledge().create_base(base, now);
      if (!kb) return kb;
      for (const auto& id : *file_ids) {
        auto attached = attach(req, *kb, id, "{}", now);
        if (!attached) return std::move(attached).error();
      }
      return ctx_.storage.knowledge().get_base(kb->id);
    });
    if (!created) co_return fail(created.error(), req);
    if (!file_ids->empty() && ctx_.worker) ctx_.worker->wake();
    co_return json_response(200, vector_store_json(*created));
  }

  Awaitable list_stores(http::Request& req) {
    auto limit = page_limit(req.query_param("limit"), 20, 100);
    if (!limit) co_return fail(limit.error(), req);
    const auto after = req.query_param("after");
    auto listed = co_await ctx_.blocking.run([&] {
      return page_after<store::KnowledgeBase>(
          [&](int n, const std::optional<std::string>& cursor) {
            return ctx_.storage.knowledge().list_bases(visible_bases(req, n, cursor));
          },
          [](const store::KnowledgeBase& b) { return b.id; }, after, *limit);
    });
    if (!listed) co_return fail(listed.error(), req);
    json data = json::array();
    for (const auto& b : listed->first) data.push_back(vector_store_json(b));
    co_return json_response(200, list_json(data, listed->second));
  }

  Awaitable get_store(http::Request& req) {
    auto base =
        co_await visible_base(ctx_, req, std::string(req.param("id")), BaseView::kWithCounts);
    if (!base) co_return fail(base.error(), req);
    co_return json_response(200, vector_store_json(*base));
  }

  Awaitable modify_store(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body, {"name", "metadata", "expires_after"}); !r) {
      co_return fail(r.error(), req);
    }
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    if (auto r = may_change(req, *base); !r) co_return fail(r.error(), req);
    store::KnowledgeBasePatch patch;
    auto name = string_field(*body, "name", 256, false);
    if (!name) co_return fail(name.error(), req);
    patch.name = *name;
    auto metadata = object_field(*body, "metadata");
    if (!metadata) co_return fail(metadata.error(), req);
    patch.metadata_json = *metadata;
    const int64_t now = now_ms();
    auto updated = co_await ctx_.blocking.run(
        [&] { return ctx_.storage.knowledge().update_base(base->id, patch, now); });
    if (!updated) co_return fail(updated.error(), req);
    co_return json_response(200, vector_store_json(*updated));
  }

  Awaitable delete_store(http::Request& req) {
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    if (auto r = may_change(req, *base); !r) co_return fail(r.error(), req);
    auto deleted =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().delete_base(base->id); });
    if (!deleted) co_return fail(deleted.error(), req);
    co_return json_response(
        200, {{"id", base->id}, {"object", "vector_store.deleted"}, {"deleted", true}});
  }

  // --- Vector store files -----------------------------------------------------------------

  Awaitable attach_file(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body, {"file_id", "attributes", "chunking_strategy"}); !r) {
      co_return fail(r.error(), req);
    }
    auto file_id = string_field(*body, "file_id", 128, false);
    if (!file_id) co_return fail(file_id.error(), req);
    if (!*file_id) co_return fail(Error::invalid_field("file_id", "file_id is required"), req);
    auto attributes = object_field(*body, "attributes");
    if (!attributes) co_return fail(attributes.error(), req);
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    if (auto r = may_change(req, *base); !r) co_return fail(r.error(), req);
    const int64_t now = now_ms();
    const std::string attributes_json = attributes->value_or("{}");
    auto document = co_await ctx_.blocking.run(
        [&] { return attach(req, *base, **file_id, attributes_json, now); });
    if (!document) co_return fail(document.error(), req);
    if (ctx_.worker) ctx_.worker->wake();
    co_return json_response(200, vector_store_file_json(*document, **file_id));
  }

  Awaitable list_store_files(http::Request& req) {
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    auto limit = page_limit(req.query_param("limit"), 20, 100);
    if (!limit) co_return fail(limit.error(), req);
    auto filter = status_filter(req.query_param("filter"));
    if (!filter) co_return fail(filter.error(), req);
    if (filter->cancelled) co_return json_response(200, list_json(json::array(), false));
    const std::optional<std::string> status = filter->status;
    const bool in_progress = filter->in_progress;
    const auto after = req.query_param("after");
    auto listed = co_await ctx_.blocking.run([&] {
      return page_after<store::KnowledgeDocument>(
          [&](int n, const std::optional<std::string>& cursor) {
            return ctx_.storage.knowledge().list_documents({base->id, status, n, cursor});
          },
          [](const store::KnowledgeDocument& d) { return d.file_id; }, after, *limit);
    });
    if (!listed) co_return fail(listed.error(), req);
    json data = json::array();
    for (const auto& d : listed->first) {
      if (in_progress && status_of(d) != "in_progress") continue;
      data.push_back(vector_store_file_json(d, d.file_id));
    }
    co_return json_response(200, list_json(data, listed->second));
  }

  Awaitable get_store_file(http::Request& req) {
    auto document = co_await store_document(req, false);
    if (!document) co_return fail(document.error(), req);
    co_return json_response(200,
                            vector_store_file_json(*document, std::string(req.param("file_id"))));
  }

  Awaitable detach_file(http::Request& req) {
    auto document = co_await store_document(req, true);
    if (!document) co_return fail(document.error(), req);
    auto deleted = co_await ctx_.blocking.run(
        [&] { return ctx_.storage.knowledge().delete_document(document->id); });
    if (!deleted) co_return fail(deleted.error(), req);
    co_return json_response(200, {{"id", std::string(req.param("file_id"))},
                                  {"object", "vector_store.file.deleted"},
                                  {"deleted", true}});
  }

  Awaitable search(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(
            *body, {"query", "max_num_results", "filters", "ranking_options", "rewrite_query"});
        !r) {
      co_return fail(r.error(), req);
    }
    knowledge::SearchRequest request;
    request.beam = static_cast<size_t>(settings_.search_beam);
    auto query = query_of(*body);
    if (!query) co_return fail(query.error(), req);
    request.query = std::move(query).value();
    auto k = integer_field(*body, "max_num_results", 1, 50);
    if (!k) co_return fail(k.error(), req);
    request.k = static_cast<size_t>(k->value_or(10));
    if (auto f = body->find("filters"); f != body->end() && !f->is_null()) {
      auto filter = knowledge::Filter::parse(*f);
      if (!filter) co_return fail(filter.error(), req);
      request.filter = std::move(filter).value();
    }
    if (auto r = body->find("rewrite_query");
        r != body->end() && r->is_boolean() && r->get<bool>()) {
      co_return fail(Error::invalid_field("rewrite_query",
                                          "rewrite_query is not supported: the query is searched "
                                          "as written"),
                     req);
    }
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    auto hits = co_await knowledge_common::search(ctx_, index_, embedders_, *base, request);
    if (!hits) co_return fail(hits.error(), req);
    json data = json::array();
    for (const auto& h : *hits) {
      data.push_back({{"file_id", h.file_id},
                      {"filename", h.document_name},
                      {"score", std::min(1.0, h.score / kRrfTop)},
                      {"attributes", h.attributes},
                      {"content", json::array({{{"type", "text"}, {"text", h.text}}})}});
    }
    co_return json_response(200, {{"object", "vector_store.search_results.page"},
                                  {"search_query", request.query},
                                  {"data", std::move(data)},
                                  {"has_more", false},
                                  {"next_page", nullptr}});
  }

 private:
  int64_t now_ms() const { return to_unix_ms(ctx_.clock.now()); }

  // `chunking_strategy`: "auto" (the defaults) or {"type": "static", "static":
  // {"max_chunk_size_tokens", "chunk_overlap_tokens"}}.
  Result<knowledge::BaseSettings> chunking_of(const json& body) const {
    knowledge::BaseSettings settings;
    settings.chunking = {settings_.chunk_tokens, settings_.chunk_overlap};
    auto it = body.find("chunking_strategy");
    if (it == body.end() || it->is_null()) return settings;
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string()) {
      return Error::invalid_field("chunking_strategy", "chunking_strategy needs a type");
    }
    if ((*it)["type"] == "auto") return settings;
    if ((*it)["type"] != "static" || !it->contains("static") || !(*it)["static"].is_object()) {
      return Error::invalid_field("chunking_strategy", "chunking_strategy is auto or static");
    }
    const json& s = (*it)["static"];
    if (s.contains("max_chunk_size_tokens") && s["max_chunk_size_tokens"].is_number_integer()) {
      settings.chunking.max_tokens = s["max_chunk_size_tokens"].get<int64_t>();
    }
    if (s.contains("chunk_overlap_tokens") && s["chunk_overlap_tokens"].is_number_integer()) {
      settings.chunking.overlap_tokens = s["chunk_overlap_tokens"].get<int64_t>();
    }
    if (auto r = knowledge::validate(settings.chunking); !r) {
      return Error::invalid_field("chunking_strategy", r.error().message);
    }
    return settings;
  }

  static Result<std::vector<std::string>> file_ids_of(const json& body) {
    std::vector<std::string> ids;
    auto it = body.find("file_ids");
    if (it == body.end() || it->is_null()) return ids;
    if (!it->is_array() || it->size() > 500) {
      return Error::invalid_field("file_ids", "file_ids is an array of at most 500 file ids");
    }
    for (const auto& id : *it) {
      if (!id.is_string()) return Error::invalid_field("file_ids", "each file id is a string");
      ids.push_back(id.get<std::string>());
    }
    return ids;
  }

  // A file of the base's tenant that the caller sees (a user's key: one it uploaded) added as
  // a document and queued for ingestion (blocking). Never another's file: deleting the
  // document would delete the file, and every document made from it.
  Result<store::KnowledgeDocument> attach(const http::Request& req,
                                          const store::KnowledgeBase& base,
                                          const std::string& file_id,
                                          const std::string& attributes_json, int64_t now) {
    auto& repo = ctx_.storage.knowledge();
    auto file = repo.get_file(file_id);
    if (!file || file->tenant_id != base.tenant_id || !may_see_file(req, *file)) {
      return store::file_not_found(file_id);
    }
    store::NewDocument doc{base.id, base.tenant_id, file_id, file->filename, attributes_json};
    auto added = repo.add_document(doc, now);
    if (!added) return std::move(added).error();
    if (!added->duplicate) {
      auto job = ctx_.storage.jobs().enqueue(
          knowledge::ingest_job(added->document.id, added->document.file_id), now);
      if (!job) return std::move(job).error();
    }
    return added->document;
  }

  Task<Result<store::StoredFile>> visible_file(const http::Request& req) {
    const std::string id(req.param("id"));
    auto file = co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().get_file(id); });
    if (!file) co_return std::move(file).error();
    if (!may_see_file(req, *file)) co_return store::file_not_found(id);
    co_return std::move(file).value();
  }

  // The store's document made from the file; `to_change` also requires that the caller may
  // change the store (403).
  Task<Result<store::KnowledgeDocument>> store_document(const http::Request& req, bool to_change) {
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return std::move(base).error();
    if (to_change) {
      if (auto r = may_change(req, *base); !r) co_return std::move(r).error();
    }
    const std::string file_id(req.param("file_id"));
    auto document = co_await ctx_.blocking.run(
        [&] { return ctx_.storage.knowledge().document_for_file(base->id, file_id); });
    if (!document && document.error().code == ErrorCode::kNotFound) {
      co_return Error::not_found("vector store '" + base->id + "' has no file '" + file_id + "'",
                                 "file_not_found");
    }
    co_return document;
  }

  Context& ctx_;
  const knowledge::KnowledgeSettings& settings_;
  knowledge::IndexManager& index_;
  knowledge::Embedders& embedders_;
};

}  // namespace

void add_openai_knowledge_routes(http::Router& router, Context& ctx,
                                 const knowledge::KnowledgeSettings& settings,
                                 knowledge::IndexManager& index, knowledge::Embedders& embedders) {
  auto routes = std::make_shared<OpenAiKnowledge>(ctx, settings, index, embedders);
  const uint64_t upload_limit = upload_body_limit(settings);
  const auto bind = [&routes](Awaitable (OpenAiKnowledge::*handler)(http::Request&)) {
    return bind_route(routes, handler);
  };
  using M = http::Method;
  router.add(M::kPost, "/v1/files", http::kAuthenticatedIdempotent,
             bind(&OpenAiKnowledge::create_file), upload_limit);
  router.add(M::kGet, "/v1/files", http::kAuthenticated, bind(&OpenAiKnowledge::list_files));
  router.add(M::kGet, "/v1/files/{id}", http::kAuthenticated, bind(&OpenAiKnowledge::get_file));
  router.add(M::kGet, "/v1/files/{id}/content", http::kAuthenticated,
             bind(&OpenAiKnowledge::file_content));
  router.add(M::kDelete, "/v1/files/{id}", http::kAuthenticated,
             bind(&OpenAiKnowledge::delete_file));
  router.add(M::kPost, "/v1/vector_stores", http::kAuthenticatedIdempotent,
             bind(&OpenAiKnowledge::create_store));
  router.add(M::kGet, "/v1/vector_stores", http::kAuthenticated,
             bind(&OpenAiKnowledge::list_stores));
  router.add(M::kGet, "/v1/vector_stores/{id}", http::kAuthenticated,
             bind(&OpenAiKnowledge::get_store));
  router.add(M::kPost, "/v1/vector_stores/{id}", http::kAuthenticated,
             bind(&OpenAiKnowledge::modify_store));
  router.add(M::kDelete, "/v1/vector_stores/{id}", http::kAuthenticated,
             bind(&OpenAiKnowledge::delete_store));
  router.add(M::kPost, "/v1/vector_stores/{id}/files", http::kAuthenticatedIdempotent,
             bind(&OpenAiKnowledge::attach_file));
  router.add(M::kGet, "/v1/vector_stores/{id}/files", http::kAuthenticated,
             bind(&OpenAiKnowledge::list_store_files));
  router.add(M::kGet, "/v1/vector_stores/{id}/files/{file_id}", http::kAuthenticated,
             bind(&OpenAiKnowledge::get_store_file));
  router.add(M::kDelete, "/v1/vector_stores/{id}/files/{file_id}", http::kAuthenticated,
             bind(&OpenAiKnowledge::detach_file));
  router.add(M::kPost, "/v1/vector_stores/{id}/search", http::kAuthenticated,
             bind(&OpenAiKnowledge::search));
}

}  // namespace parley::api
