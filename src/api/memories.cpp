#include "api/memories.hpp"

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/fields.hpp"
#include "api/memory_json.hpp"
#include "api/memory_service.hpp"
#include "api/reply.hpp"
#include "core/clock.hpp"
#include "http/json_body.hpp"
#include "memory/rules.hpp"
#include "memory/text.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;

struct Routes {
  MemoryService service;
  Context& ctx;

  Routes(Context& context, const memory::MemorySettings& settings, knowledge::Embedders& embedders,
         std::string embedder)
      : service(context, settings, embedders, std::move(embedder)), ctx(context) {}

  int64_t now() const { return service.now(); }
  const memory::MemorySettings& settings() const { return service.settings(); }

  // The user the path names and their tenant.
  struct Owner {
    std::string user;
    std::string tenant;
  };
  static Result<Owner> owner_of(const http::Request& req) {
    std::string user(req.param("id"));
    auto tenant = MemoryService::owner_tenant(req, user, req.query_param("tenant_id"));
    if (!tenant) return std::move(tenant).error();
    return Owner{std::move(user), std::move(*tenant)};
  }

  static store::MemoryEdit edit_by(const http::Request& req) {
    store::MemoryEdit edit;
    edit.actor = MemoryService::actor_of(req);
    return edit;
  }

  Task<Result<store::Memory>> owned(const std::string& tenant, const std::string& user,
                                    const std::string& id) {
    return service.owned(tenant, user, id);
  }

  static Result<store::MemoryQuery> query_of(const http::Request& req, const std::string& tenant,
                                             const std::string& user) {
    store::MemoryQuery q;
    q.tenant_id = tenant;
    q.user_id = user;
    if (auto kinds = req.query_param("kind")) {
      size_t start = 0;
      while (start <= kinds->size()) {
        size_t comma = kinds->find(',', start);
        if (comma == std::string::npos) comma = kinds->size();
        std::string kind = kinds->substr(start, comma - start);
        if (!store::is_memory_kind(kind)) {
          return Error::invalid_field("kind",
                                      "'" + kind +
                                          "' is not a kind (fact, preference, event, instruction, "
                                          "profile)");
        }
        q.kinds.push_back(std::move(kind));
        start = comma + 1;
      }
    }
    q.retention = req.query_param("retention");
    if (q.retention && !memory::is_retention(*q.retention)) {
      return Error::invalid_field("retention", "not one of session, short, long, permanent");
    }
    q.status = req.query_param("status").value_or("active");
    if (q.status != "active" && q.status != "retired" && q.status != "all") {
      return Error::invalid_field("status", "not one of active, retired, all");
    }
    q.assistant = req.query_param("assistant");
    q.session_id = req.query_param("session_id");
    auto limit = page_limit(req.query_param("limit"), 50, 200);
    if (!limit) return std::move(limit).error();
    q.limit = *limit;
    q.cursor = req.query_param("cursor");
    return q;
  }

  Awaitable list(http::Request& req) {
    auto owner = owner_of(req);
    if (!owner) co_return fail(owner.error(), req);
    const std::string& user = owner->user;
    const std::string& tenant = owner->tenant;
    auto q = query_of(req, tenant, user);
    if (!q) co_return fail(q.error(), req);
    auto page = co_await ctx.blocking.run([&] { return ctx.storage.memories().list(*q); });
    if (!page) co_return fail(page.error(), req);
    json data = json::array();
    for (const auto& m : page->items) data.push_back(memory_json(m));
    co_return json_response(
        200, {{"object", "list"},
              {"data", std::move(data)},
              {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)}});
  }

  // The fields a client may set on a memory, checked; `creating` requires the text.
  struct Fields {
    std::optional<std::string> text, kind, slot, retention, assistant, session_id, metadata;
    std::optional<double> importance;
  };
  static Result<Fields> fields_of(const json& body, bool creating) {
    const std::initializer_list<std::string_view> create_fields = {
        "text", "kind", "slot", "importance", "retention", "assistant", "session_id", "metadata"};
    const std::initializer_list<std::string_view> patch_fields = {
        "text", "kind", "slot", "importance", "retention", "metadata"};
    if (auto r = reject_unknown_fields(body, creating ? create_fields : patch_fields); !r) {
      return std::move(r).error();
    }
    Fields f;
    auto text = string_field(body, "text", MemoryService::kMaxTextBytes);
    if (!text) return std::move(text).error();
    if (*text) {
      f.text = memory::clean_memory_text(**text, MemoryService::kMaxTextBytes);
      if (f.text->empty()) return Error::invalid_field("text", "must not be blank");
    } else if (creating) {
      return Error::invalid_field("text", "is required");
    }
    auto kind = string_field(body, "kind", 32);
    if (!kind) return std::move(kind).error();
    if (*kind && !store::is_memory_kind(**kind)) {
      return Error::invalid_field("kind",
                                  "not one of fact, preference, event, instruction, profile");
    }
    f.kind = *kind;
    auto slot = string_field(body, "slot", memory::kMaxSlotBytes, true);
    if (!slot) return std::move(slot).error();
    if (body.contains("slot")) f.slot = slot->value_or("");
    auto retention = string_field(body, "retention", 16);
    if (!retention) return std::move(retention).error();
    if (*retention && !memory::is_retention(**retention)) {
      return Error::invalid_field("retention", "not one of session, short, long, permanent");
    }
    f.retention = *retention;
    auto importance = number_field(body, "importance", 0, 1);
    if (!importance) return std::move(importance).error();
    f.importance = *importance;
    for (const char* name : {"assistant", "session_id"}) {
      auto value = string_field(body, name, 200);
      if (!value) return std::move(value).error();
      (std::string_view(name) == "assistant" ? f.assistant : f.session_id) = *value;
    }
    if (body.contains("metadata")) {
      if (!body["metadata"].is_object()) {
        return Error::invalid_field("metadata", "must be an object");
      }
      f.metadata = body["metadata"].dump();
      if (f.metadata->size() > size_t{16} * 1024) {
        return Error::invalid_field("metadata", "is larger than 16 KiB");
      }
    }
    return f;
  }

  // A body's fields for the path's user, checked.
  static Result<std::pair<Owner, Fields>> owner_and_fields(http::Request& req, bool creating) {
    auto owner = owner_of(req);
    if (!owner) return std::move(owner).error();
    auto body = http::parse_json_object_body(req);
    if (!body) return std::move(body).error();
    auto f = fields_of(*body, creating);
    if (!f) return std::move(f).error();
    return std::make_pair(std::move(*owner), std::move(*f));
  }

  Awaitable create(http::Request& req) {
    auto given = owner_and_fields(req, true);
    if (!given) co_return fail(given.error(), req);
    const std::string& user = given->first.user;
    const std::string& tenant = given->first.tenant;
    const Fields& f = given->second;
    store::NewMemory m;
    m.tenant_id = tenant;
    m.user_id = user;
    m.assistant = f.assistant.value_or("");
    m.session_id = f.session_id.value_or("");
    m.text = *f.text;
    m.kind = f.kind.value_or("fact");
    m.slot = f.slot.value_or("");
    m.importance = f.importance.value_or(0.5);
    m.retention = f.retention.value_or(settings().default_retention);
    m.metadata_json = f.metadata.value_or("{}");
    co_await service.complete(m);
    const int64_t at = now();
    const store::MemoryEdit edit = edit_by(req);
    auto created =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().create(m, edit, at); });
    if (!created) co_return fail(created.error(), req);
    json out = memory_json(created->memory);
    out["created"] = created->created;
    if (created->retired) out["replaced"] = memory_json(*created->retired);
    co_return json_response(created->created ? 201 : 200, out);
  }

  Awaitable get(http::Request& req) {
    auto owner = owner_of(req);
    if (!owner) co_return fail(owner.error(), req);
    const std::string& user = owner->user;
    const std::string& tenant = owner->tenant;
    auto m = co_await owned(tenant, user, std::string(req.param("memory_id")));
    if (!m) co_return fail(m.error(), req);
    co_return json_response(200, memory_json(*m));
  }

  Awaitable patch(http::Request& req) {
    auto given = owner_and_fields(req, false);
    if (!given) co_return fail(given.error(), req);
    const std::string& user = given->first.user;
    const std::string& tenant = given->first.tenant;
    const Fields& f = given->second;
    const std::string id(req.param("memory_id"));
    auto current = co_await owned(tenant, user, id);
    if (!current) co_return fail(current.error(), req);
    store::MemoryPatch p;
    const int64_t at = now();
    if (f.text && *f.text != current->text) {
      p.text = *f.text;
      p.hash = memory::text_hash(*f.text);
      std::vector<float> vector = co_await service.vector_of(*f.text);
      p.embedder = vector.empty() ? std::string() : service.embedder();
      p.vector = std::move(vector);
    }
    p.kind = f.kind;
    p.slot = f.slot;
    p.importance = f.importance;
    if (f.retention) {
      p.retention = *f.retention;
      p.expires_at_ms = memory::expires_at(settings(), *f.retention, at);
    }
    p.metadata_json = f.metadata;
    const store::MemoryEdit edit = edit_by(req);
    auto updated =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().update(id, p, edit, at); });
    if (!updated) co_return fail(updated.error(), req);
    co_return json_response(200, memory_json(*updated));
  }

  Awaitable remove(http::Request& req) {
    auto owner = owner_of(req);
    if (!owner) co_return fail(owner.error(), req);
    const std::string& user = owner->user;
    const std::string& tenant = owner->tenant;
    const std::string id(req.param("memory_id"));
    auto current = co_await owned(tenant, user, id);
    if (!current) co_return fail(current.error(), req);
    const store::MemoryEdit edit = edit_by(req);
    const int64_t at = now();
    auto removed =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().remove(id, edit, at); });
    if (!removed) co_return fail(removed.error(), req);
    co_return json_response(200, {{"id", id}, {"object", "memory.deleted"}, {"deleted", true}});
  }

  Awaitable remove_all(http::Request& req) {
    auto owner = owner_of(req);
    if (!owner) co_return fail(owner.error(), req);
    const std::string& user = owner->user;
    const std::string& tenant = owner->tenant;
    auto q = query_of(req, tenant, user);
    if (!q) co_return fail(q.error(), req);
    const store::MemoryEdit edit = edit_by(req);
    const int64_t at = now();
    auto removed =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().remove_all(*q, edit, at); });
    if (!removed) co_return fail(removed.error(), req);
    co_return json_response(200, {{"object", "memory.deleted"}, {"deleted", *removed}});
  }

  Awaitable history(http::Request& req) {
    auto owner = owner_of(req);
    if (!owner) co_return fail(owner.error(), req);
    const std::string& user = owner->user;
    const std::string& tenant = owner->tenant;
    const std::string id(req.param("memory_id"));
    auto current = co_await owned(tenant, user, id);
    if (!current) co_return fail(current.error(), req);
    auto entries = co_await ctx.blocking.run([&] { return ctx.storage.memories().history(id); });
    if (!entries) co_return fail(entries.error(), req);
    json data = json::array();
    for (const auto& h : *entries) data.push_back(memory_history_json(h));
    co_return json_response(200, {{"object", "list"}, {"data", std::move(data)}});
  }

  Awaitable search(http::Request& req) {
    auto owner = owner_of(req);
    if (!owner) co_return fail(owner.error(), req);
    const std::string& user = owner->user;
    const std::string& tenant = owner->tenant;
    auto body = http::parse_json_object_body(req);
    if (!body) co_return fail(body.error(), req);
    if (auto r = reject_unknown_fields(
            *body, {"query", "top_k", "kinds", "assistant", "session_id", "min_score"});
        !r) {
      co_return fail(r.error(), req);
    }
    auto query = string_field(*body, "query", MemoryService::kMaxQueryBytes);
    if (!query) co_return fail(query.error(), req);
    if (!*query) co_return fail(Error::invalid_field("query", "is required"), req);
    auto top_k = integer_field(*body, "top_k", 1, 100);
    if (!top_k) co_return fail(top_k.error(), req);
    auto min_score = number_field(*body, "min_score", -1, 1);
    if (!min_score) co_return fail(min_score.error(), req);
    std::vector<std::string> kinds;
    if (body->contains("kinds")) {
      const json& k = (*body)["kinds"];
      bool ok = k.is_array();
      for (const auto& item : ok ? k : json::array()) {
        ok = ok && item.is_string() && store::is_memory_kind(item.get<std::string>());
        if (ok) kinds.push_back(item.get<std::string>());
      }
      if (!ok) co_return fail(Error::invalid_field("kinds", "must be a list of kinds"), req);
    }
    auto assistant = string_field(*body, "assistant", 200);
    auto session = string_field(*body, "session_id", 200);
    if (!assistant) co_return fail(assistant.error(), req);
    if (!session) co_return fail(session.error(), req);
    const auto keep = [&](const store::Memory& m) {
      if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), m.kind) == kinds.end()) {
        return false;
      }
      if (*assistant && m.assistant != **assistant) return false;
      return !*session || m.session_id == **session;
    };
    auto found =
        co_await service.search(tenant, user, **query, static_cast<int>(top_k->value_or(10)),
                                min_score->value_or(0.0), keep);
    if (!found) co_return fail(found.error(), req);
    json data = json::array();
    for (const auto& f : *found) {
      json entry = memory_json(f.memory);
      entry["score"] = f.score;
      data.push_back(std::move(entry));
    }
    co_return json_response(200, {{"object", "list"}, {"data", std::move(data)}});
  }
};

}  // namespace

void add_memory_routes(http::Router& router, Context& context,
                       const memory::MemorySettings& settings, knowledge::Embedders& embedders,
                       std::string embedder) {
  auto routes = std::make_shared<Routes>(context, settings, embedders, std::move(embedder));
  const std::string base = "/api/v1/users/{id}/memories";
  router.add(http::Method::kGet, base, http::kAuthenticated,
             [routes](http::Request& req) { return routes->list(req); });
  router.add(http::Method::kPost, base, http::kAuthenticatedIdempotent,
             [routes](http::Request& req) { return routes->create(req); });
  router.add(http::Method::kDelete, base, http::kAuthenticated,
             [routes](http::Request& req) { return routes->remove_all(req); });
  router.add(http::Method::kPost, base + "/search", http::kAuthenticated,
             [routes](http::Request& req) { return routes->search(req); });
  router.add(http::Method::kGet, base + "/{memory_id}", http::kAuthenticated,
             [routes](http::Request& req) { return routes->get(req); });
  router.add(http::Method::kPatch, base + "/{memory_id}", http::kAuthenticated,
             [routes](http::Request& req) { return routes->patch(req); });
  router.add(http::Method::kDelete, base + "/{memory_id}", http::kAuthenticated,
             [routes](http::Request& req) { return routes->remove(req); });
  router.add(http::Method::kGet, base + "/{memory_id}/history", http::kAuthenticated,
             [routes](http::Request& req) { return routes->history(req); });
}

}  // namespace parley::api
