// Key administration, moderation logs, the job queue, and a user's data export and erasure
// (see admin.hpp).
#include "api/admin.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "api/chat.hpp"
#include "api/fields.hpp"
#include "api/memory_json.hpp"
#include "api/reply.hpp"
#include "api/sessions.hpp"
#include "auth/key_admin.hpp"
#include "core/clock.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "llm/accounting.hpp"
#include "llm/settings.hpp"
#include "obs/log.hpp"
#include "queue/builtin_jobs.hpp"
#include "queue/settings.hpp"
#include "queue/worker.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;

int64_t now_ms(const Context& ctx) { return to_unix_ms(ctx.clock.now()); }

json moderation_json(const store::ModerationLogEntry& e) {
  json findings = json::parse(e.findings_json, nullptr, false);
  return {{"id", e.id},
          {"object", "moderation.decision"},
          {"at", format_utc_ms(e.at_ms)},
          {"tenant_id", e.tenant_id},
          {"user_id", e.user_id},
          {"session_id", e.session_id.empty() ? json(nullptr) : json(e.session_id)},
          {"request_id", e.request_id},
          {"stage", e.stage},
          {"action", e.action},
          {"source", e.source},
          {"findings", findings.is_array() ? findings : json::array()}};
}

json job_json(const store::Job& j) {
  json payload = json::parse(j.payload_json, nullptr, false);
  json result = json::parse(j.result_json, nullptr, false);
  return {
      {"id", j.id},
      {"object", "job"},
      {"kind", j.kind},
      {"state", j.state},
      {"attempts", j.attempts},
      {"max_attempts", j.max_attempts},
      {"run_at", format_utc_ms(j.run_at_ms)},
      {"locked_by", j.locked_by ? json(*j.locked_by) : json(nullptr)},
      {"locked_until", j.locked_until_ms ? json(format_utc_ms(*j.locked_until_ms)) : json(nullptr)},
      {"last_error", j.last_error.empty() ? json(nullptr) : json(j.last_error)},
      {"payload", payload.is_discarded() ? json::object() : payload},
      {"result", result.is_discarded() ? json::object() : result},
      {"created_at", format_utc_ms(j.created_at_ms)},
      {"updated_at", format_utc_ms(j.updated_at_ms)},
      {"finished_at", j.finished_at_ms ? json(format_utc_ms(*j.finished_at_ms)) : json(nullptr)}};
}

// Who may touch this user's data, and in which tenant: nullopt tenant = every tenant (an
// admin without ?tenant_id). A user key naming another user is answered 404.
Result<std::optional<std::string>> user_data_scope(const http::Request& req,
                                                   const std::string& user_id) {
  const auth::Principal* who = req.principal;
  if (!who || who->admin()) return req.query_param("tenant_id");
  if (who->scope == auth::Scope::kUser && who->user_id != user_id) {
    return Error::not_found("no user '" + user_id + "'", "user_not_found");
  }
  return std::optional<std::string>(who->tenant_id);
}

Awaitable create_key(Context& ctx, http::Request& req) {
  auto body = http::parse_json_object_body(req);
  if (!body) co_return fail(body.error(), req);
  if (auto r = reject_unknown_fields(
          *body, {"name", "scope", "tenant_id", "user_id", "expires_at", "limits"});
      !r) {
    co_return fail(r.error(), req);
  }
  auth::NewKey in;
  auto name = string_field(*body, "name", 200);
  if (!name) co_return fail(name.error(), req);
  in.name = name->value_or("");
  auto scope = string_field(*body, "scope", 16);
  if (!scope) co_return fail(scope.error(), req);
  if (!*scope) co_return fail(Error::invalid_field("scope", "scope is required"), req);
  in.scope = **scope;
  auto tenant = string_field(*body, "tenant_id", 128);
  if (!tenant) co_return fail(tenant.error(), req);
  in.tenant_id = tenant->value_or(req.principal ? req.principal->tenant_id : "default");
  auto user = string_field(*body, "user_id", 256);
  if (!user) co_return fail(user.error(), req);
  in.user_id = user->value_or("");
  const int64_t now = now_ms(ctx);
  auto expires = string_field(*body, "expires_at", 64, true);
  if (!expires) co_return fail(expires.error(), req);
  if (*expires) {
    in.expires_at_ms = auth::parse_expiry(**expires, now);
    if (!in.expires_at_ms) {
      co_return fail(Error::invalid_field("expires_at",
                                          "expires_at must be a duration from now (30d, 12h) or "
                                          "a date (2026-12-31, 2026-12-31T12:00:00Z)"),
                     req);
    }
  }
  if (auto l = body->find("limits"); l != body->end()) {
    auto limits = limits::parse_overrides(*l, "limits");
    if (!limits) co_return fail(limits.error(), req);
    in.limits = *limits;
  }
  in.created_by = req.principal ? req.principal->key_id : "local";
  auto created =
      co_await ctx.blocking.run([&] { return auth::create_key(ctx.storage.api_keys(), in, now); });
  if (!created) co_return fail(created.error(), req);
  ctx.access.authenticator().remember(created->key);
  ctx.access.key_changed(created->key.id);
  json out = auth::key_json(created->key, now);
  out["key"] = created->token;
  auto res = json_response(201, out);
  res.header("Location", "/api/v1/admin/keys/" + created->key.id);
  co_return res;
}

Awaitable list_keys(Context& ctx, http::Request& req) {
  const auto tenant = req.query_param("tenant_id");
  const auto all = req.query_param("include_revoked");
  if (all && *all != "true" && *all != "false") {
    co_return fail(Error::invalid_field("include_revoked", "include_revoked must be true or false"),
                   req);
  }
  auto keys = co_await ctx.blocking.run(
      [&] { return ctx.storage.api_keys().list(tenant, all && *all == "true"); });
  if (!keys) co_return fail(keys.error(), req);
  const int64_t now = now_ms(ctx);
  json data = json::array();
  for (const auto& k : *keys) data.push_back(auth::key_json(k, now));
  co_return json_response(200, {{"object", "list"}, {"data", std::move(data)}});
}

Awaitable get_key(Context& ctx, http::Request& req) {
  const std::string id(req.param("id"));
  auto key = co_await ctx.blocking.run([&] { return ctx.storage.api_keys().get(id); });
  if (!key) co_return fail(key.error(), req);
  co_return json_response(200, auth::key_json(*key, now_ms(ctx)));
}

Awaitable revoke_key(Context& ctx, http::Request& req) {
  const std::string id(req.param("id"));
  const int64_t now = now_ms(ctx);
  auto key = co_await ctx.blocking.run([&] { return ctx.storage.api_keys().revoke(id, now); });
  if (!key) co_return fail(key.error(), req);
  ctx.access.authenticator().remember(*key);
  ctx.access.key_changed(key->id);
  co_return json_response(200, auth::key_json(*key, now));
}

Awaitable moderation_logs(Context& ctx, http::Request& req) {
  store::ModerationLogQuery q;
  auto limit = page_limit(req.query_param("limit"), q.limit, 200);
  if (!limit) co_return fail(limit.error(), req);
  q.limit = *limit;
  q.tenant_id = req.query_param("tenant_id");
  q.user_id = req.query_param("user_id");
  q.action = req.query_param("action");
  if (q.action && *q.action != "allow" && *q.action != "redact" && *q.action != "block") {
    co_return fail(Error::invalid_field("action", "action must be allow, redact or block"), req);
  }
  if (auto since = req.query_param("since")) {
    auto at = auth::parse_expiry(*since, 0);  // a date or time; durations mean "since epoch"
    if (!at) {
      co_return fail(Error::invalid_field("since", "since must be a date or a UTC time"), req);
    }
    q.from_ms = *at;
  }
  q.cursor = req.query_param("cursor");
  auto page = co_await ctx.blocking.run([&] { return ctx.storage.moderation_log().list(q); });
  if (!page) co_return fail(page.error(), req);
  json data = json::array();
  for (const auto& e : page->items) data.push_back(moderation_json(e));
  co_return json_response(
      200, {{"object", "list"},
            {"data", std::move(data)},
            {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)}});
}

Awaitable export_user(Context& ctx, http::Request& req) {
  const std::string user_id(req.param("id"));
  auto tenant = user_data_scope(req, user_id);
  if (!tenant) co_return fail(tenant.error(), req);
  co_await ctx.blocking.run([&] {
    ctx.accountant.flush();  // the API path's usage still queued belongs in the export
    return 0;
  });
  auto data = co_await ctx.blocking.run(
      [&] { return ctx.storage.user_data().export_user(*tenant, user_id); });
  if (!data) co_return fail(data.error(), req);
  // The sessions' summaries hold the user's words too.
  auto summaries = co_await ctx.blocking.run(
      [&]() -> Result<std::map<std::string, std::vector<store::Summary>>> {
        std::map<std::string, std::vector<store::Summary>> out;
        for (const auto& s : data->sessions) {
          auto listed = ctx.storage.summaries().list(s.id, std::numeric_limits<int>::max());
          if (!listed) return std::move(listed).error();
          out.emplace(s.id, std::move(*listed));
        }
        return out;
      });
  if (!summaries) co_return fail(summaries.error(), req);
  json sessions = json::array();
  for (const auto& s : data->sessions) {
    std::string text;
    append_session(text, s);
    json entry = json::parse(text);
    json messages = json::array();
    for (const auto& m : data->messages) {
      if (m.session_id == s.id) messages.push_back(message_json(m));
    }
    entry["messages"] = std::move(messages);
    json session_summaries = json::array();
    for (const auto& sum : (*summaries)[s.id]) session_summaries.push_back(summary_json(sum));
    entry["summaries"] = std::move(session_summaries);
    sessions.push_back(std::move(entry));
  }
  json usage = json::array();
  for (const auto& u : data->usage) {
    usage.push_back({{"at", format_utc_ms(u.at_ms)},
                     {"tenant_id", u.tenant_id},
                     {"session_id", u.session_id.empty() ? json(nullptr) : json(u.session_id)},
                     {"source", u.source},
                     {"provider", u.provider},
                     {"model", u.model},
                     {"input_tokens", u.input_tokens},
                     {"output_tokens", u.output_tokens},
                     {"cost_usd", u.cost_usd},
                     {"requests", u.requests},
                     {"status", u.status}});
  }
  json moderation = json::array();
  for (const auto& e : data->moderation) moderation.push_back(moderation_json(e));
  json keys = json::array();
  const int64_t now = now_ms(ctx);
  for (const auto& k : data->keys) keys.push_back(auth::key_json(k, now));
  json memories = json::array();
  for (const auto& m : data->memories) {
    json entry = memory_json(m);
    json history = json::array();
    for (const auto& h : data->memory_history) {
      if (h.memory_id == m.id) history.push_back(memory_history_json(h));
    }
    entry["history"] = std::move(history);
    memories.push_back(std::move(entry));
  }
  // What remains of memories deleted earlier: their events, without texts.
  json forgotten = json::array();
  for (const auto& h : data->memory_history) {
    const bool kept = std::any_of(data->memories.begin(), data->memories.end(),
                                  [&](const store::Memory& m) { return m.id == h.memory_id; });
    if (!kept) forgotten.push_back(memory_history_json(h));
  }
  co_return json_response(200, {{"object", "user_export"},
                                {"user_id", user_id},
                                {"tenant_id", *tenant ? json(**tenant) : json(nullptr)},
                                {"exported_at", format_utc_ms(now)},
                                {"sessions", std::move(sessions)},
                                {"usage", std::move(usage)},
                                {"moderation", std::move(moderation)},
                                {"api_keys", std::move(keys)},
                                {"memories", std::move(memories)},
                                {"deleted_memory_history", std::move(forgotten)}});
}

// Erasure runs as a job (queue/builtin_jobs.hpp): it may be large, and it must follow what
// other replicas still hold. This replica's queued usage and stored answers are settled now;
// the job waits one usage flush interval so that every replica has written the user's last
// usage before it is deleted. Answers 202 with the job (GET /api/v1/admin/jobs/{id}).
Awaitable erase_user(Context& ctx, http::Request& req) {
  const std::string user_id(req.param("id"));
  auto tenant = user_data_scope(req, user_id);
  if (!tenant) co_return fail(tenant.error(), req);
  const int64_t now = now_ms(ctx);
  const int64_t run_at = now + ctx.settings.get<llm::LlmSettings>().usage_flush_interval.count();
  const int64_t attempts = ctx.settings.get<queue::WorkerSettings>().max_attempts;
  auto job = co_await ctx.blocking.run([&]() -> Result<store::Job> {
    ctx.accountant.flush();
    // Stored answers leave the index and the write queue now, so that none is written after
    // the job deletes the rows.
    ctx.access.idempotency().forget_user(*tenant, user_id);
    return ctx.storage.jobs().enqueue(queue::user_erasure_job(*tenant, user_id, run_at, attempts),
                                      now);
  });
  if (!job) co_return fail(job.error(), req);
  co_return json_response(202, {{"object", "user_erasure"},
                                {"user_id", user_id},
                                {"tenant_id", *tenant ? json(**tenant) : json(nullptr)},
                                {"status", "queued"},
                                {"job", job_json(*job)}});
}

Awaitable list_jobs(Context& ctx, http::Request& req) {
  auto state = req.query_param("state");
  if (state && *state != "queued" && *state != "running" && *state != "done" && *state != "dead") {
    co_return fail(Error::invalid_field("state", "state must be queued, running, done or dead"),
                   req);
  }
  auto limit = page_limit(req.query_param("limit"), 50, 500);
  if (!limit) co_return fail(limit.error(), req);
  struct Listing {
    std::vector<store::Job> jobs;
    std::vector<std::pair<std::string, int64_t>> counts;
  };
  auto listed = co_await ctx.blocking.run([&]() -> Result<Listing> {
    auto jobs = ctx.storage.jobs().list(state, *limit);
    if (!jobs) return std::move(jobs).error();
    auto counts = ctx.storage.jobs().counts();
    if (!counts) return std::move(counts).error();
    return Listing{std::move(*jobs), std::move(*counts)};
  });
  if (!listed) co_return fail(listed.error(), req);
  json data = json::array();
  for (const auto& j : listed->jobs) data.push_back(job_json(j));
  json counts = {{"queued", 0}, {"running", 0}, {"done", 0}, {"dead", 0}};
  for (const auto& [s, n] : listed->counts) counts[s] = n;
  co_return json_response(200, {{"object", "list"}, {"data", std::move(data)}, {"counts", counts}});
}

Awaitable get_job(Context& ctx, http::Request& req) {
  const std::string id(req.param("id"));
  auto job = co_await ctx.blocking.run([&] { return ctx.storage.jobs().get(id); });
  if (!job) co_return fail(job.error(), req);
  co_return json_response(200, job_json(*job));
}

// A dead job queued again with fresh attempts (after fixing what killed it).
Awaitable retry_job(Context& ctx, http::Request& req) {
  const std::string id(req.param("id"));
  const int64_t now = now_ms(ctx);
  auto job = co_await ctx.blocking.run([&] { return ctx.storage.jobs().retry(id, now); });
  if (!job) co_return fail(job.error(), req);
  if (ctx.worker) ctx.worker->wake();
  log::info("dead job queued again", {{"job", id}, {"kind", job->kind}});
  co_return json_response(200, job_json(*job));
}

}  // namespace

void add_admin_routes(http::Router& router, Context& ctx) {
  // Not idempotent on purpose: a stored answer would keep the new secret in the database.
  router.add(http::Method::kPost, "/api/v1/admin/keys", http::kAdminOnly,
             [&ctx](http::Request& req) { return create_key(ctx, req); });
  router.add(http::Method::kGet, "/api/v1/admin/keys", http::kAdminOnly,
             [&ctx](http::Request& req) { return list_keys(ctx, req); });
  router.add(http::Method::kGet, "/api/v1/admin/keys/{id}", http::kAdminOnly,
             [&ctx](http::Request& req) { return get_key(ctx, req); });
  router.add(http::Method::kDelete, "/api/v1/admin/keys/{id}", http::kAdminOnly,
             [&ctx](http::Request& req) { return revoke_key(ctx, req); });
  router.add(http::Method::kGet, "/api/v1/admin/moderation/logs", http::kAdminOnly,
             [&ctx](http::Request& req) { return moderation_logs(ctx, req); });
  router.add(http::Method::kGet, "/api/v1/admin/jobs", http::kAdminOnly,
             [&ctx](http::Request& req) { return list_jobs(ctx, req); });
  router.add(http::Method::kGet, "/api/v1/admin/jobs/{id}", http::kAdminOnly,
             [&ctx](http::Request& req) { return get_job(ctx, req); });
  router.add(http::Method::kPost, "/api/v1/admin/jobs/{id}/retry", http::kAdminOnly,
             [&ctx](http::Request& req) { return retry_job(ctx, req); });
}

void add_user_data_routes(http::Router& router, Context& ctx) {
  router.add(http::Method::kGet, "/api/v1/users/{id}/export", http::kAuthenticated,
             [&ctx](http::Request& req) { return export_user(ctx, req); });
  router.add(http::Method::kDelete, "/api/v1/users/{id}", http::kAuthenticated,
             [&ctx](http::Request& req) { return erase_user(ctx, req); });
}

}  // namespace parley::api
