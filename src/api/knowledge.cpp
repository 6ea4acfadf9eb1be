// Knowledge-base handlers (see knowledge.hpp).
#include "api/knowledge.hpp"

#include <nlohmann/json.hpp>

#include "api/fields.hpp"
#include "api/knowledge_common.hpp"
#include "api/reply.hpp"
#include "auth/principal.hpp"
#include "core/clock.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "knowledge/ingest.hpp"
#include "knowledge/reembed.hpp"
#include "queue/worker.hpp"
#include "store/common.hpp"

namespace parley::api {
namespace {

using namespace knowledge_common;

using nlohmann::json;
using Awaitable = Task<http::Response>;

constexpr size_t kMaxName = 256;
constexpr size_t kMaxDescription = 4096;

int64_t now_ms(const Context& ctx) { return to_unix_ms(ctx.clock.now()); }

json parsed_object(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

json optional_time(const std::optional<int64_t>& ms) {
  return ms ? json(format_utc_ms(*ms)) : json(nullptr);
}

json base_json(const store::KnowledgeBase& b, const knowledge::KnowledgeSettings& defaults) {
  auto settings = knowledge::parse_base_settings(b.settings_json, defaults);
  const knowledge::ChunkOptions chunking =
      settings ? settings->chunking : knowledge::ChunkOptions{};
  return {{"id", b.id},
          {"object", "knowledge_base"},
          {"tenant_id", b.tenant_id},
          // The end user whose own base it is; null when the tenant's users share it.
          {"owner_user_id", b.owner_user_id.empty() ? json(nullptr) : json(b.owner_user_id)},
          {"name", b.name},
          {"description", b.description},
          {"metadata", parsed_object(b.metadata_json)},
          {"chunking",
           {{"max_tokens", chunking.max_tokens}, {"overlap_tokens", chunking.overlap_tokens}}},
          {"embedder",
           {{"name", b.embedder},
            {"dimension", b.dimension},
            // While its chunks are re-embedded: the embedder they move to.
            {"next", b.next_embedder.empty() ? json(nullptr) : json(b.next_embedder)}}},
          {"documents",
           {{"total", b.documents},
            {"ready", b.documents_ready},
            {"processing", b.documents_processing},
            {"failed", b.documents_failed}}},
          {"chunks", b.chunks},
          {"bytes", b.bytes},
          {"created_at", format_utc_ms(b.created_at_ms)},
          {"updated_at", format_utc_ms(b.updated_at_ms)}};
}

json document_json(const store::KnowledgeDocument& d) {
  json error = nullptr;
  if (d.status == "failed") error = {{"reason", d.error_reason}, {"message", d.error_message}};
  return {{"id", d.id},
          {"object", "knowledge_base.document"},
          {"knowledge_base_id", d.kb_id},
          {"file_id", d.file_id},
          {"name", d.name},
          {"status", d.status},
          {"format", d.format.empty() ? json(nullptr) : json(d.format)},
          {"bytes", d.bytes},
          {"sha256", d.sha256},
          {"chunks", d.chunks},
          {"tokens", d.tokens},
          {"pages", d.pages},
          {"attributes", parsed_object(d.attributes_json)},
          {"progress", parsed_object(d.progress_json)},
          {"error", error},
          {"created_at", format_utc_ms(d.created_at_ms)},
          {"updated_at", format_utc_ms(d.updated_at_ms)},
          {"ingested_at", optional_time(d.ingested_at_ms)}};
}

// The `chunking` object of a create or update, merged over `current`.
Result<std::optional<std::string>> chunking_field(const json& body,
                                                  const knowledge::BaseSettings& current) {
  auto it = body.find("chunking");
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_object()) return Error::invalid_field("chunking", "chunking must be a JSON object");
  if (auto r = reject_unknown_fields(*it, {"max_tokens", "overlap_tokens"}); !r) {
    return std::move(r).error();
  }
  knowledge::BaseSettings next = current;
  auto max_tokens = integer_field(*it, "max_tokens", 32, 8192);
  if (!max_tokens) return Error::invalid_field("chunking.max_tokens", max_tokens.error().message);
  auto overlap = integer_field(*it, "overlap_tokens", 0, 4096);
  if (!overlap) return Error::invalid_field("chunking.overlap_tokens", overlap.error().message);
  if (*max_tokens) next.chunking.max_tokens = **max_tokens;
  if (*overlap) next.chunking.overlap_tokens = **overlap;
  if (auto r = knowledge::validate(next.chunking); !r) return std::move(r).error();
  return std::optional<std::string>(knowledge::base_settings_json(next));
}

json hit_json(const knowledge::SearchHit& h) {
  return {{"chunk_id", "chunk_" + std::to_string(h.label)},
          {"score", h.score},
          {"scores",
           {{"vector", h.vector_score ? json(*h.vector_score) : json(nullptr)},
            {"lexical", h.lexical_score ? json(*h.lexical_score) : json(nullptr)}}},
          {"document",
           {{"id", h.document_id}, {"name", h.document_name}, {"attributes", h.attributes}}},
          {"section", h.section},
          {"ordinal", h.ordinal},
          {"page", h.page > 0 ? json(h.page) : json(nullptr)},
          {"page_end", h.page_end > 0 ? json(h.page_end) : json(nullptr)},
          {"start_offset", h.start_offset},
          {"end_offset", h.end_offset},
          {"text", h.text},
          {"highlight", h.highlight}};
}

class KnowledgeRoutes {
 public:
  KnowledgeRoutes(Context& ctx, const knowledge::KnowledgeSettings& settings,
                  knowledge::IndexManager& index, knowledge::Embedders& embedders)
      : ctx_(ctx), settings_(settings), index_(index), embedders_(embedders) {}

  Awaitable search(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r =
            reject_unknown_fields(*body, {"query", "k", "mode", "filters", "highlight_length"});
        !r) {
      co_return fail(r.error(), req);
    }
    auto query = string_field(*body, "query", 4096, false);
    if (!query) co_return fail(query.error(), req);
    if (!*query) co_return fail(Error::invalid_field("query", "query is required"), req);
    auto k = integer_field(*body, "k", 1, 100);
    if (!k) co_return fail(k.error(), req);
    auto highlight = integer_field(*body, "highlight_length", 20, 4000);
    if (!highlight) co_return fail(highlight.error(), req);
    knowledge::SearchRequest request;
    request.beam = static_cast<size_t>(settings_.search_beam);
    request.query = **query;
    request.k = static_cast<size_t>(k->value_or(10));
    request.highlight_length = static_cast<size_t>(highlight->value_or(300));
    auto mode = string_field(*body, "mode", 16, false);
    if (!mode) co_return fail(mode.error(), req);
    const std::string mode_name = mode->value_or("hybrid");
    if (mode_name == "vector") {
      request.mode = knowledge::SearchMode::kVector;
    } else if (mode_name == "lexical") {
      request.mode = knowledge::SearchMode::kLexical;
    } else if (mode_name != "hybrid") {
      co_return fail(Error::invalid_field("mode", "mode must be hybrid, vector or lexical"), req);
    }
    if (auto f = body->find("filters"); f != body->end() && !f->is_null()) {
      auto filter = knowledge::Filter::parse(*f);
      if (!filter) co_return fail(filter.error(), req);
      request.filter = std::move(filter).value();
    }
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    auto hits = co_await knowledge_common::search(ctx_, index_, embedders_, *base, request);
    if (!hits) co_return fail(hits.error(), req);
    json data = json::array();
    for (const auto& h : *hits) data.push_back(hit_json(h));
    co_return json_response(200, {{"object", "list"},
                                  {"knowledge_base_id", base->id},
                                  {"query", request.query},
                                  {"mode", mode_name},
                                  {"data", std::move(data)}});
  }

  Awaitable create_base(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body, {"name", "description", "metadata", "chunking",
                                               "tenant_id", "embedder", "owner_user_id"});
        !r) {
      co_return fail(r.error(), req);
    }
    auto name = string_field(*body, "name", kMaxName, false);
    if (!name) co_return fail(name.error(), req);
    if (!*name) co_return fail(Error::invalid_field("name", "name is required"), req);
    auto description = string_field(*body, "description", kMaxDescription, false);
    if (!description) co_return fail(description.error(), req);
    auto metadata = object_field(*body, "metadata");
    if (!metadata) co_return fail(metadata.error(), req);
    knowledge::BaseSettings defaults;
    defaults.chunking = {settings_.chunk_tokens, settings_.chunk_overlap};
    auto chunking = chunking_field(*body, defaults);
    if (!chunking) co_return fail(chunking.error(), req);
    auto tenant = string_field(*body, "tenant_id", kMaxName, false);
    if (!tenant) co_return fail(tenant.error(), req);
    auto owner_field = string_field(*body, "owner_user_id", kMaxName, true);
    if (!owner_field) co_return fail(owner_field.error(), req);
    auto owner = new_base_owner(req, *owner_field);
    if (!owner) co_return fail(owner.error(), req);
    store::NewKnowledgeBase base;
    base.tenant_id = caller_tenant(req);
    base.owner_user_id = std::move(owner).value();
    if (*tenant) {
      if (req.principal != nullptr && !req.principal->admin() && **tenant != base.tenant_id) {
        co_return fail(
            Error::permission_denied("only an admin key names another tenant", "tenant_mismatch"),
            req);
      }
      base.tenant_id = **tenant;
    }
    base.name = **name;
    base.description = description->value_or("");
    base.metadata_json = metadata->value_or("{}");
    base.settings_json = chunking->value_or(knowledge::base_settings_json(defaults));
    base.embedder = embedders_.default_name();
    auto embedder = embedder_field(*body);
    if (!embedder) co_return fail(embedder.error(), req);
    if (*embedder) base.embedder = **embedder;
    base.dimension = embedders_.dimension_for(base.embedder);
    const int64_t now = now_ms(ctx_);
    auto created =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().create_base(base, now); });
    if (!created) co_return fail(created.error(), req);
    co_return json_response(201, base_json(*created, settings_));
  }

  Awaitable list_bases(http::Request& req) {
    auto limit = page_limit(req.query_param("limit"), 20, 100);
    if (!limit) co_return fail(limit.error(), req);
    const auto cursor = req.query_param("cursor");
    const auto query = visible_bases(req, *limit, cursor);
    auto page =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().list_bases(query); });
    if (!page) co_return fail(page.error(), req);
    json data = json::array();
    for (const auto& b : page->items) data.push_back(base_json(b, settings_));
    co_return json_response(
        200, {{"object", "list"},
              {"data", std::move(data)},
              {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)}});
  }

  Awaitable get_base(http::Request& req) {
    auto base =
        co_await visible_base(ctx_, req, std::string(req.param("id")), BaseView::kWithCounts);
    if (!base) co_return fail(base.error(), req);
    co_return json_response(200, base_json(*base, settings_));
  }

  Awaitable update_base(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body,
                                       {"name", "description", "metadata", "chunking", "embedder"});
        !r) {
      co_return fail(r.error(), req);
    }
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    if (auto r = may_change(req, *base); !r) co_return fail(r.error(), req);
    store::KnowledgeBasePatch patch;
    auto name = string_field(*body, "name", kMaxName, false);
    if (!name) co_return fail(name.error(), req);
    patch.name = *name;
    auto description = string_field(*body, "description", kMaxDescription, false);
    if (!description) co_return fail(description.error(), req);
    patch.description = *description;
    auto metadata = object_field(*body, "metadata");
    if (!metadata) co_return fail(metadata.error(), req);
    patch.metadata_json = *metadata;
    auto current = knowledge::parse_base_settings(base->settings_json, settings_);
    if (!current) co_return fail(current.error(), req);
    auto chunking = chunking_field(*body, *current);
    if (!chunking) co_return fail(chunking.error(), req);
    patch.settings_json = *chunking;
    auto embedder = embedder_field(*body);
    if (!embedder) co_return fail(embedder.error(), req);
    const int64_t now = now_ms(ctx_);
    struct Updated {
      store::KnowledgeBase base;
      bool queued = false;
    };
    auto updated = co_await ctx_.blocking.run([&]() -> Result<Updated> {
      auto& repo = ctx_.storage.knowledge();
      auto kb = repo.update_base(base->id, patch, now);
      if (!kb) return std::move(kb).error();
      // A new embedder: the base's chunks are re-embedded in the background; naming the
      // current one cancels a re-embedding under way.
      if (!*embedder || (**embedder == kb->embedder && kb->next_embedder.empty()) ||
          **embedder == kb->next_embedder) {
        return Updated{std::move(kb).value(), false};
      }
      kb = repo.begin_reembed(base->id, **embedder, now);
      if (!kb) return std::move(kb).error();
      if (kb->next_embedder.empty()) return Updated{std::move(kb).value(), false};
      auto job =
          ctx_.storage.jobs().enqueue(knowledge::reembed_job(kb->id, kb->next_embedder), now);
      if (!job) return std::move(job).error();
      return Updated{std::move(kb).value(), true};
    });
    if (!updated) co_return fail(updated.error(), req);
    if (updated->queued && ctx_.worker) ctx_.worker->wake();
    co_return json_response(200, base_json(updated->base, settings_));
  }

  Awaitable delete_base(http::Request& req) {
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    if (auto r = may_change(req, *base); !r) co_return fail(r.error(), req);
    auto deleted =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().delete_base(base->id); });
    if (!deleted) co_return fail(deleted.error(), req);
    co_return json_response(200,
                            {{"id", base->id}, {"object", "knowledge_base"}, {"deleted", true}});
  }

  Awaitable add_document(http::Request& req) {
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    if (auto r = may_change(req, *base); !r) co_return fail(r.error(), req);
    auto upload = read_upload(req, settings_, true);
    if (!upload) co_return fail(upload.error(), req);
    const int64_t now = now_ms(ctx_);
    struct Added {
      store::AddedDocument added;
      bool queued = false;
    };
    auto added = co_await ctx_.blocking.run([&]() -> Result<Added> {
      auto& repo = ctx_.storage.knowledge();
      auto file = repo.put_file(new_file(req, *upload, std::string(kKnowledgePurpose)), now);
      if (!file) return std::move(file).error();
      store::NewDocument doc;
      doc.kb_id = base->id;
      doc.tenant_id = base->tenant_id;
      doc.file_id = file->id;
      doc.name = upload->name;
      doc.attributes_json = upload->attributes_json.value_or("{}");
      auto added = repo.add_document(doc, now);
      if (!added) return std::move(added).error();
      if (added->duplicate) {
        // The base has this content already: the new file is not needed.
        (void)repo.delete_file(file->id);
        return Added{std::move(added).value(), false};
      }
      auto job = ctx_.storage.jobs().enqueue(
          knowledge::ingest_job(added->document.id, added->document.file_id), now);
      if (!job) return std::move(job).error();
      return Added{std::move(added).value(), true};
    });
    if (!added) co_return fail(added.error(), req);
    if (added->queued && ctx_.worker) ctx_.worker->wake();
    json out = document_json(added->added.document);
    out["duplicate"] = added->added.duplicate;
    co_return json_response(added->queued ? 202 : 200, out);
  }

  Awaitable list_documents(http::Request& req) {
    auto base = co_await visible_base(ctx_, req, std::string(req.param("id")));
    if (!base) co_return fail(base.error(), req);
    auto limit = page_limit(req.query_param("limit"), 20, 100);
    if (!limit) co_return fail(limit.error(), req);
    auto status = req.query_param("status");
    if (status && *status != "queued" && *status != "processing" && *status != "ready" &&
        *status != "failed") {
      co_return fail(
          Error::invalid_field("status", "status must be queued, processing, ready or failed"),
          req);
    }
    store::DocumentListQuery query{base->id, status, *limit, req.query_param("cursor")};
    auto page =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().list_documents(query); });
    if (!page) co_return fail(page.error(), req);
    json data = json::array();
    for (const auto& d : page->items) data.push_back(document_json(d));
    co_return json_response(
        200, {{"object", "list"},
              {"data", std::move(data)},
              {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)}});
  }

  Awaitable get_document(http::Request& req) {
    auto doc = co_await visible_document(req, false);
    if (!doc) co_return fail(doc.error(), req);
    co_return json_response(200, document_json(*doc));
  }

  Awaitable replace_document(http::Request& req) {
    auto doc = co_await visible_document(req, true);
    if (!doc) co_return fail(doc.error(), req);
    auto upload = read_upload(req, settings_, true);
    if (!upload) co_return fail(upload.error(), req);
    const int64_t now = now_ms(ctx_);
    auto replaced = co_await ctx_.blocking.run([&]() -> Result<store::KnowledgeDocument> {
      auto& repo = ctx_.storage.knowledge();
      auto old_file = repo.get_file(doc->file_id);
      auto file = repo.put_file(new_file(req, *upload, std::string(kKnowledgePurpose)), now);
      if (!file) return std::move(file).error();
      auto replaced = repo.replace_document(doc->id, file->id, upload->name, now);
      if (!replaced) return std::move(replaced).error();
      if (upload->attributes_json) {
        auto updated = repo.update_document(doc->id, "", upload->attributes_json, now);
        if (!updated) return std::move(updated).error();
        replaced = std::move(updated);
      }
      // The file the base made for the old upload goes with it (a file uploaded through
      // /v1/files stays the owner's).
      if (old_file && old_file->purpose == kKnowledgePurpose) (void)repo.delete_file(old_file->id);
      auto job = ctx_.storage.jobs().enqueue(knowledge::ingest_job(doc->id, file->id), now);
      if (!job) return std::move(job).error();
      return replaced;
    });
    if (!replaced) co_return fail(replaced.error(), req);
    if (ctx_.worker) ctx_.worker->wake();
    co_return json_response(202, document_json(*replaced));
  }

  Awaitable update_document(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body, {"name", "attributes"}); !r) {
      co_return fail(r.error(), req);
    }
    auto name = string_field(*body, "name", kMaxName, false);
    if (!name) co_return fail(name.error(), req);
    auto attributes = object_field(*body, "attributes");
    if (!attributes) co_return fail(attributes.error(), req);
    auto doc = co_await visible_document(req, true);
    if (!doc) co_return fail(doc.error(), req);
    const int64_t now = now_ms(ctx_);
    const std::string new_name = name->value_or("");
    auto updated = co_await ctx_.blocking.run([&] {
      return ctx_.storage.knowledge().update_document(doc->id, new_name, *attributes, now);
    });
    if (!updated) co_return fail(updated.error(), req);
    co_return json_response(200, document_json(*updated));
  }

  Awaitable delete_document(http::Request& req) {
    auto doc = co_await visible_document(req, true);
    if (!doc) co_return fail(doc.error(), req);
    auto deleted = co_await ctx_.blocking.run([&]() -> Result<void> {
      auto& repo = ctx_.storage.knowledge();
      auto file = repo.get_file(doc->file_id);
      if (auto r = repo.delete_document(doc->id); !r) return r;
      if (file && file->purpose == kKnowledgePurpose) (void)repo.delete_file(file->id);
      return success();
    });
    if (!deleted) co_return fail(deleted.error(), req);
    co_return json_response(
        200, {{"id", doc->id}, {"object", "knowledge_base.document"}, {"deleted", true}});
  }

 private:
  // "embedder": a name (or {"name": ...}) that an embedder here answers to, made canonical.
  Result<std::optional<std::string>> embedder_field(const json& body) const {
    const auto it = body.find("embedder");
    if (it == body.end() || it->is_null()) return std::optional<std::string>();
    const json* name = &*it;
    if (it->is_object()) {
      if (auto r = reject_unknown_fields(*it, {"name"}); !r) return std::move(r).error();
      const auto n = it->find("name");
      if (n == it->end()) return Error::invalid_field("embedder.name", "embedder.name is required");
      name = &*n;
    }
    if (!name->is_string() || name->get_ref<const std::string&>().size() > 256) {
      return Error::invalid_field("embedder", "embedder must name an embedder (a string)");
    }
    auto canonical = embedders_.canonical(name->get<std::string>());
    if (!canonical) return std::move(canonical).error();
    return std::optional<std::string>(std::move(canonical).value());
  }

  // A document of a base the caller sees (404 otherwise); `to_change` also requires that the
  // caller may change the base (403).
  Task<Result<store::KnowledgeDocument>> visible_document(const http::Request& req,
                                                          bool to_change) {
    const std::string kb_id(req.param("id"));
    const std::string id(req.param("document_id"));
    auto base = co_await visible_base(ctx_, req, kb_id);
    if (!base) co_return std::move(base).error();
    if (to_change) {
      if (auto r = may_change(req, *base); !r) co_return std::move(r).error();
    }
    auto doc =
        co_await ctx_.blocking.run([&] { return ctx_.storage.knowledge().get_document(id); });
    if (!doc) co_return std::move(doc).error();
    if (doc->kb_id != base->id) co_return store::document_not_found(id);
    co_return std::move(doc).value();
  }

  Context& ctx_;
  const knowledge::KnowledgeSettings& settings_;
  knowledge::IndexManager& index_;
  knowledge::Embedders& embedders_;
};

}  // namespace

void add_knowledge_routes(http::Router& router, Context& ctx,
                          const knowledge::KnowledgeSettings& settings,
                          knowledge::IndexManager& index, knowledge::Embedders& embedders) {
  auto routes = std::make_shared<KnowledgeRoutes>(ctx, settings, index, embedders);
  // A rebuild after a restart leaves the replica ready: chat without knowledge bases, and the
  // bases already rebuilt, serve meanwhile; the others answer 503 with when to retry.
  ctx.readiness_checks.emplace_back("knowledge_index", [&index] {
    return knowledge::readiness(index, std::chrono::steady_clock::now());
  });
  const uint64_t upload_limit = upload_body_limit(settings);
  const auto bind = [&routes](Awaitable (KnowledgeRoutes::*handler)(http::Request&)) {
    return bind_route(routes, handler);
  };
  using M = http::Method;
  router.add(M::kPost, "/api/v1/knowledge-bases", http::kAuthenticatedIdempotent,
             bind(&KnowledgeRoutes::create_base));
  router.add(M::kGet, "/api/v1/knowledge-bases", http::kAuthenticated,
             bind(&KnowledgeRoutes::list_bases));
  router.add(M::kGet, "/api/v1/knowledge-bases/{id}", http::kAuthenticated,
             bind(&KnowledgeRoutes::get_base));
  router.add(M::kPatch, "/api/v1/knowledge-bases/{id}", http::kAuthenticated,
             bind(&KnowledgeRoutes::update_base));
  router.add(M::kDelete, "/api/v1/knowledge-bases/{id}", http::kAuthenticated,
             bind(&KnowledgeRoutes::delete_base));
  router.add(M::kPost, "/api/v1/knowledge-bases/{id}/documents", http::kAuthenticatedIdempotent,
             bind(&KnowledgeRoutes::add_document), upload_limit);
  router.add(M::kGet, "/api/v1/knowledge-bases/{id}/documents", http::kAuthenticated,
             bind(&KnowledgeRoutes::list_documents));
  router.add(M::kGet, "/api/v1/knowledge-bases/{id}/documents/{document_id}", http::kAuthenticated,
             bind(&KnowledgeRoutes::get_document));
  router.add(M::kPut, "/api/v1/knowledge-bases/{id}/documents/{document_id}",
             http::kAuthenticatedIdempotent, bind(&KnowledgeRoutes::replace_document),
             upload_limit);
  router.add(M::kPatch, "/api/v1/knowledge-bases/{id}/documents/{document_id}",
             http::kAuthenticated, bind(&KnowledgeRoutes::update_document));
  router.add(M::kDelete, "/api/v1/knowledge-bases/{id}/documents/{document_id}",
             http::kAuthenticated, bind(&KnowledgeRoutes::delete_document));
  router.add(M::kPost, "/api/v1/knowledge-bases/{id}/search", http::kAuthenticated,
             bind(&KnowledgeRoutes::search));
}

}  // namespace parley::api
