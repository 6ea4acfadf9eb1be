// Session handlers: validate at the edge, then one storage call on the blocking pool.
#include "api/sessions.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/fields.hpp"
#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;

constexpr size_t kMaxUserId = 256;
constexpr size_t kMaxAssistant = 128;
constexpr size_t kMaxTitle = 512;
constexpr size_t kMaxMetadataBytes = size_t{16} * 1024;
constexpr int kMaxPageSize = 100;

http::Response session_response(int status, const store::Session& s) {
  http::Response res;
  res.status = status;
  res.body.reserve(256 + s.metadata_json.size());
  append_session(res.body, s);
  return res;
}

Result<std::optional<std::string>> metadata_field(const json& body) {
  auto it = body.find("metadata");
  if (it == body.end()) return std::optional<std::string>();
  if (!it->is_object()) return Error::invalid_field("metadata", "metadata must be a JSON object");
  std::string text = it->dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxMetadataBytes) {
    return Error::invalid_field(
        "metadata",
        "metadata must be at most " + std::to_string(kMaxMetadataBytes) + " bytes as JSON");
  }
  return std::optional<std::string>(std::move(text));
}

http::Response fail(const Error& e, const http::Request& req) {
  return http::error_response(e, req.request_id);
}

Error session_not_found(std::string_view id) {
  return Error::not_found("no session with id '" + std::string(id) + "'", "session_not_found");
}

}  // namespace

json summary_json(const store::Summary& s) {
  return {{"id", s.id},
          {"object", "session.summary"},
          {"text", s.text},
          {"method", s.method},
          {"model", s.model.empty() ? json(nullptr) : json(s.model)},
          {"covers",
           {{"messages", s.messages},
            {"first_message_id", s.first_message_id},
            {"last_message_id", s.last_message_id}}},
          {"tokens", s.tokens},
          {"created_at", format_utc_ms(s.created_at_ms)}};
}

// Session objects are written straight to text (core/json_text.hpp): the read path's hottest
// part was building and dumping an nlohmann tree.
void append_session(std::string& out, const store::Session& s) {
  JsonObjectWriter obj(out);
  obj.string("id", s.id)
      .string("object", "session")
      .string("tenant_id", s.tenant_id)
      .string("user_id", s.user_id)
      .string("assistant", s.assistant)
      .nullable_string("title", s.title);
  // Stored by this server after parsing, so valid; a database edited by hand is not trusted.
  obj.raw("metadata", json::accept(s.metadata_json) ? std::string_view(s.metadata_json) : "{}");
  std::string time;
  time.reserve(24);
  append_utc_ms(time, s.created_at_ms);
  obj.string("created_at", time);
  time.clear();
  append_utc_ms(time, s.updated_at_ms);
  obj.string("updated_at", time);
  obj.close();
}

Task<Result<store::Session>> owned_session(Context& ctx, const http::Request& req,
                                           const std::string& id) {
  auto session = co_await ctx.blocking.run([&] { return ctx.storage.sessions().get(id); });
  if (!session) co_return std::move(session).error();
  // Someone else's session is answered exactly like a missing one.
  if (!Access::owns(req, session->tenant_id, session->user_id)) co_return session_not_found(id);
  co_return std::move(*session);
}

Result<std::optional<std::string>> user_filter(const http::Request& req,
                                               std::optional<std::string> requested) {
  const auth::Principal* who = req.principal;
  if (!who || who->scope != auth::Scope::kUser) return requested;
  if (requested && *requested != who->user_id) {
    return Error::permission_denied("this key acts only for its own user; leave the user out",
                                    "user_mismatch");
  }
  return std::optional<std::string>(who->user_id);
}

Task<Result<Actor>> acting_user(Context& ctx, http::Request& req,
                                const std::optional<std::string>& requested) {
  return ctx.access.actor(req, requested);
}

void add_session_routes(http::Router& router, Context& ctx) {
  router.add(
      http::Method::kPost, "/api/v1/sessions", http::kAuthenticatedIdempotentForUser,
      [&ctx](http::Request& req) -> Awaitable {
        auto body = http::parse_json_object_body(req);
        if (!body) co_return fail(body.error(), req);
        if (auto r = reject_unknown_fields(*body, {"user_id", "assistant", "title", "metadata"});
            !r)
          co_return fail(r.error(), req);
        auto user_id = string_field(*body, "user_id", kMaxUserId, false);
        if (!user_id) co_return fail(user_id.error(), req);
        auto assistant = string_field(*body, "assistant", kMaxAssistant, false);
        if (!assistant) co_return fail(assistant.error(), req);
        auto title = string_field(*body, "title", kMaxTitle, true);
        if (!title) co_return fail(title.error(), req);
        auto metadata = metadata_field(*body);
        if (!metadata) co_return fail(metadata.error(), req);

        auto actor = co_await acting_user(ctx, req, *user_id);
        if (!actor) co_return fail(actor.error(), req);
        store::NewSession in;
        in.tenant_id = actor->tenant_id;
        in.user_id = actor->user_id;
        in.assistant = assistant->value_or("default");
        in.title = *title;
        in.metadata_json = metadata->value_or("{}");
        auto created = co_await ctx.blocking.run([&] { return ctx.storage.sessions().create(in); });
        if (!created) co_return fail(created.error(), req);
        auto res = session_response(201, *created);
        res.header("Location", "/api/v1/sessions/" + created->id);
        co_return res;
      });

  router.add(http::Method::kGet, "/api/v1/sessions", http::kAuthenticated,
             [&ctx](http::Request& req) -> Awaitable {
               store::SessionListQuery q;
               auto limit = page_limit(req.query_param("limit"), q.limit, kMaxPageSize);
               if (!limit) co_return fail(limit.error(), req);
               q.limit = *limit;
               auto user = user_filter(req, req.query_param("user_id"));
               if (!user) co_return fail(user.error(), req);
               q.user_id = *user;
               q.tenant_id = Access::tenant_scope(req);
               if (!q.tenant_id)
                 q.tenant_id = req.query_param("tenant_id");  // admins may narrow it
               q.cursor = req.query_param("cursor");
               if (auto text = req.query_param("q"); text && !text->empty()) {
                 if (text->size() > kMaxTitle) {
                   co_return fail(Error::invalid_field("q", "q is at most 512 characters"), req);
                 }
                 q.title_contains = std::move(*text);
               }
               auto page =
                   co_await ctx.blocking.run([&] { return ctx.storage.sessions().list(q); });
               if (!page) co_return fail(page.error(), req);
               http::Response res;
               res.body = R"({"object":"list","data":[)";
               for (size_t i = 0; i < page->items.size(); ++i) {
                 if (i > 0) res.body.push_back(',');
                 append_session(res.body, page->items[i]);
               }
               res.body += R"(],"next_cursor":)";
               if (page->next_cursor) {
                 res.body.push_back('"');
                 append_json_escaped(res.body, *page->next_cursor);
                 res.body.push_back('"');
               } else {
                 res.body += "null";
               }
               res.body.push_back('}');
               co_return res;
             });

  router.add(http::Method::kGet, "/api/v1/sessions/{id}", http::kAuthenticated,
             [&ctx](http::Request& req) -> Awaitable {
               const std::string id(req.param("id"));
               auto session = co_await owned_session(ctx, req, id);
               if (!session) co_return fail(session.error(), req);
               // With the summary that stands in for its older messages, if it has one.
               auto summary =
                   co_await ctx.blocking.run([&] { return ctx.storage.summaries().latest(id); });
               if (!summary) co_return fail(summary.error(), req);
               http::Response res = session_response(200, *session);
               res.body.pop_back();  // the object's closing brace
               res.body += ",\"summary\":";
               res.body += *summary ? summary_json(**summary).dump(-1, ' ', false,
                                                                   json::error_handler_t::replace)
                                    : std::string("null");
               res.body.push_back('}');
               co_return res;
             });

  router.add(http::Method::kGet, "/api/v1/sessions/{id}/summaries", http::kAuthenticated,
             [&ctx](http::Request& req) -> Awaitable {
               const std::string id(req.param("id"));
               auto session = co_await owned_session(ctx, req, id);
               if (!session) co_return fail(session.error(), req);
               auto summaries = co_await ctx.blocking.run(
                   [&] { return ctx.storage.summaries().list(id, kMaxPageSize); });
               if (!summaries) co_return fail(summaries.error(), req);
               json data = json::array();
               for (const auto& s : *summaries) data.push_back(summary_json(s));
               http::Response res;
               res.status = 200;
               res.body = json{{"object", "list"}, {"data", std::move(data)}}.dump(
                   -1, ' ', false, json::error_handler_t::replace);
               co_return res;
             });

  router.add(http::Method::kPatch, "/api/v1/sessions/{id}", http::kAuthenticated,
             [&ctx](http::Request& req) -> Awaitable {
               auto body = http::parse_json_object_body(req);
               if (!body) co_return fail(body.error(), req);
               if (auto r = reject_unknown_fields(*body, {"title", "metadata"}); !r)
                 co_return fail(r.error(), req);
               store::SessionPatch patch;
               if (body->contains("title")) {
                 auto title = string_field(*body, "title", kMaxTitle, true);
                 if (!title) co_return fail(title.error(), req);
                 patch.title = *title;
               }
               auto metadata = metadata_field(*body);
               if (!metadata) co_return fail(metadata.error(), req);
               patch.metadata_json = *metadata;
               std::string id(req.param("id"));
               auto owned = co_await owned_session(ctx, req, id);
               if (!owned) co_return fail(owned.error(), req);
               auto updated = co_await ctx.blocking.run(
                   [&] { return ctx.storage.sessions().update(id, patch); });
               if (!updated) co_return fail(updated.error(), req);
               co_return session_response(200, *updated);
             });

  router.add(http::Method::kDelete, "/api/v1/sessions/{id}", http::kAuthenticated,
             [&ctx](http::Request& req) -> Awaitable {
               std::string id(req.param("id"));
               auto owned = co_await owned_session(ctx, req, id);
               if (!owned) co_return fail(owned.error(), req);
               // What was remembered for this conversation only goes with it (memories of the
               // user at large stay).
               store::MemoryQuery scoped;
               scoped.tenant_id = owned->tenant_id;
               scoped.user_id = owned->user_id;
               scoped.session_id = id;
               scoped.status = "all";
               store::MemoryEdit edit;
               edit.actor = "session";
               edit.reason = "its session was deleted";
               const int64_t at = to_unix_ms(ctx.clock.now());
               auto forgotten = co_await ctx.blocking.run(
                   [&] { return ctx.storage.memories().remove_all(scoped, edit, at); });
               if (!forgotten) co_return fail(forgotten.error(), req);
               auto removed =
                   co_await ctx.blocking.run([&] { return ctx.storage.sessions().remove(id); });
               if (!removed) co_return fail(removed.error(), req);
               co_return http::Response::empty(204);
             });
}

}  // namespace parley::api
