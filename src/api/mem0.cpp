#include "api/mem0.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>

#include "api/fields.hpp"
#include "api/memory_service.hpp"
#include "api/reply.hpp"
#include "auth/principal.hpp"
#include "core/clock.hpp"
#include "core/signal.hpp"
#include "http/json_body.hpp"
#include "memory/extract.hpp"
#include "memory/mem0_filter.hpp"
#include "memory/rules.hpp"
#include "memory/text.hpp"
#include "queue/worker.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
using Awaitable = Task<http::Response>;

constexpr size_t kMaxMessages = 100;
constexpr size_t kMaxMessageBytes = size_t{32} * 1024;
constexpr int kMaxListed = 1000;

// Parley's error envelope, with the `detail` Mem0's server (FastAPI) answers errors with.
http::Response mem0_fail(const Error& e, const http::Request& req) {
  http::Response res = fail(e, req);
  json body = json::parse(res.body, nullptr, false);
  if (body.is_object()) {
    body["detail"] = e.message;
    res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return res;
}

json optional_id(const std::string& id) { return id.empty() ? json(nullptr) : json(id); }

// A memory as Mem0 shows it.
json mem0_memory(const store::Memory& m) {
  json metadata = json::parse(m.metadata_json, nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) metadata = json::object();
  json out = {
      {"id", m.id},
      {"memory", m.text},
      {"hash", m.hash},
      {"metadata", metadata.empty() ? json(nullptr) : metadata},
      {"created_at", format_utc_ms(m.created_at_ms)},
      {"updated_at",
       m.updated_at_ms == m.created_at_ms ? json(nullptr) : json(format_utc_ms(m.updated_at_ms))},
      {"user_id", m.user_id}};
  if (!m.assistant.empty()) out["agent_id"] = m.assistant;
  if (!m.session_id.empty()) out["run_id"] = m.session_id;
  return out;
}

// What Mem0's filters see of a memory: its metadata's keys, then its own fields.
json filter_fields(const store::Memory& m) {
  json fields = json::parse(m.metadata_json, nullptr, false);
  if (fields.is_discarded() || !fields.is_object()) fields = json::object();
  fields["id"] = m.id;
  fields["memory"] = m.text;
  fields["hash"] = m.hash;
  fields["user_id"] = m.user_id;
  fields["agent_id"] = optional_id(m.assistant);
  fields["run_id"] = optional_id(m.session_id);
  fields["kind"] = m.kind;
  fields["importance"] = m.importance;
  fields["created_at"] = format_utc_ms(m.created_at_ms);
  fields["updated_at"] = format_utc_ms(m.updated_at_ms);
  return fields;
}

// Mem0 names what an extraction did ADD, UPDATE or DELETE; a contradicted memory is retired
// here (kept in its history), which Mem0 calls a deletion.
std::string mem0_event(const std::string& event) {
  return event == "RETIRE" || event == "EXPIRE" ? "DELETE" : event;
}

// Whose memories a request names: Mem0's three identifiers, from the body or the query (and
// for lists and searches from `filters`), with the tenant the caller may reach them in.
struct Scope {
  std::string tenant;
  std::string user;
  std::optional<std::string> agent;  // assistant
  std::optional<std::string> run;    // session
};

struct Routes {
  MemoryService service;
  Context& ctx;

  Routes(Context& context, const memory::MemorySettings& settings, knowledge::Embedders& embedders,
         std::string embedder)
      : service(context, settings, embedders, std::move(embedder)), ctx(context) {}

  // `given` holds what the request said of user_id, agent_id and run_id (each absent, or a
  // string). A user key may leave user_id out (it is its own user); everyone else names one.
  static Result<Scope> scope_of(const http::Request& req, const json& given) {
    Scope s;
    std::optional<std::string> user;
    for (const char* name : {"user_id", "agent_id", "run_id"}) {
      auto value = string_field(given, name, 200, true);
      if (!value) return std::move(value).error();
      if (std::string_view(name) == "user_id") user = *value;
      if (std::string_view(name) == "agent_id") s.agent = *value;
      if (std::string_view(name) == "run_id") s.run = *value;
    }
    const auth::Principal* who = req.principal;
    if (!user && who && !who->admin() && who->scope != auth::Scope::kService) {
      user = who->user_id;
    }
    if (!user) {
      return Error::invalid_field("user_id",
                                  "is required: every memory here belongs to a user (agent_id "
                                  "and run_id narrow a user's memories)");
    }
    auto tenant = MemoryService::owner_tenant(req, *user, req.query_param("tenant_id"));
    if (!tenant) return std::move(tenant).error();
    s.tenant = std::move(*tenant);
    s.user = std::move(*user);
    return s;
  }

  // The identifiers of a query string.
  static json query_ids(const http::Request& req) {
    json given = json::object();
    for (const char* name : {"user_id", "agent_id", "run_id"}) {
      if (auto v = req.query_param(name); v && !v->empty()) given[name] = *v;
    }
    return given;
  }

  // The identifiers of a body, where `filters` may carry them (Mem0's newer calls do).
  static json body_ids(const json& body, const memory::Mem0Filter& filter) {
    json given = json::object();
    for (const char* name : {"user_id", "agent_id", "run_id"}) {
      if (body.contains(name) && !body[name].is_null()) {
        given[name] = body[name];
      } else if (std::string value; filter.equality(name, &value)) {
        given[name] = value;
      }
    }
    return given;
  }

  static store::MemoryQuery query_for(const Scope& s) {
    store::MemoryQuery q;
    q.tenant_id = s.tenant;
    q.user_id = s.user;
    q.assistant = s.agent;
    q.session_id = s.run;
    return q;
  }

  // The memories a scope holds, newest first, those `filter` lets through, at most `limit`.
  Task<Result<std::vector<store::Memory>>> listed(const Scope& s, const memory::Mem0Filter& filter,
                                                  int limit) {
    std::vector<store::Memory> out;
    store::MemoryQuery q = query_for(s);
    q.limit = 200;
    while (static_cast<int>(out.size()) < limit) {
      auto page = co_await ctx.blocking.run([&] { return ctx.storage.memories().list(q); });
      if (!page) co_return std::move(page).error();
      for (auto& m : page->items) {
        if (static_cast<int>(out.size()) < limit && filter.matches(filter_fields(m))) {
          out.push_back(std::move(m));
        }
      }
      if (!page->next_cursor) break;
      q.cursor = page->next_cursor;
    }
    co_return out;
  }

  // The conversation of an add: a list of {role, content} (system messages are context, not
  // something the user said), or a string (one user message).
  static Result<std::vector<memory::SaidMessage>> messages_of(const json& body) {
    auto it = body.find("messages");
    if (it == body.end() || it->is_null()) return Error::invalid_field("messages", "is required");
    std::vector<memory::SaidMessage> out;
    if (it->is_string()) {
      out.push_back({"user", it->get<std::string>()});
    } else if (it->is_array()) {
      if (it->size() > kMaxMessages) {
        return Error::invalid_field("messages",
                                    "holds at most " + std::to_string(kMaxMessages) + " messages");
      }
      for (const auto& m : *it) {
        if (!m.is_object() || !m.contains("content") || !m["content"].is_string()) {
          return Error::invalid_field("messages",
                                      "each message is an object with a string `content`");
        }
        const std::string role = m.value("role", std::string("user"));
        if (role != "user" && role != "assistant" && role != "system") {
          return Error::invalid_field("messages", "a role is one of user, assistant, system");
        }
        if (role == "system") continue;
        out.push_back({role, m["content"].get<std::string>()});
      }
    } else {
      return Error::invalid_field("messages", "must be a list of messages or a string");
    }
    for (const auto& m : out) {
      if (m.content.size() > kMaxMessageBytes) {
        return Error::invalid_field("messages", "a message is larger than 32 KiB");
      }
    }
    std::erase_if(out, [](const memory::SaidMessage& m) {
      return m.content.find_first_not_of(" \t\r\n") == std::string::npos;
    });
    return out;
  }

  // Waits for a job to finish, up to `wait`; the job as it last read.
  Task<Result<store::Job>> finished(const std::string& job_id, std::chrono::milliseconds wait) {
    const IoExecutor executor = co_await boost::asio::this_coro::executor;
    Signal pause(executor);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::chrono::milliseconds delay(5);
    for (;;) {
      auto job = co_await ctx.blocking.run([&] { return ctx.storage.jobs().get(job_id); });
      if (!job) co_return std::move(job).error();
      const bool over = job->state == "done" || job->state == "dead";
      const auto now = std::chrono::steady_clock::now();
      if (over || now >= deadline) co_return std::move(*job);
      co_await pause.wait_until(std::min(deadline, now + delay));
      delay = std::min(delay * 2, std::chrono::milliseconds(200));
    }
  }

  Awaitable add(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return mem0_fail(body.error(), req);
    if (auto r =
            reject_unknown_fields(*body, {"messages", "user_id", "agent_id", "run_id", "metadata",
                                          "infer", "async_mode", "output_format", "version"});
        !r) {
      co_return mem0_fail(r.error(), req);
    }
    auto scope = scope_of(req, *body);
    if (!scope) co_return mem0_fail(scope.error(), req);
    auto messages = messages_of(*body);
    if (!messages) co_return mem0_fail(messages.error(), req);
    auto infer = bool_field(*body, "infer");
    auto async_mode = bool_field(*body, "async_mode");
    if (!infer) co_return mem0_fail(infer.error(), req);
    if (!async_mode) co_return mem0_fail(async_mode.error(), req);
    std::string metadata = "{}";
    if (body->contains("metadata") && !(*body)["metadata"].is_null()) {
      if (!(*body)["metadata"].is_object()) {
        co_return mem0_fail(Error::invalid_field("metadata", "must be an object"), req);
      }
      metadata = (*body)["metadata"].dump();
      if (metadata.size() > size_t{16} * 1024) {
        co_return mem0_fail(Error::invalid_field("metadata", "is larger than 16 KiB"), req);
      }
    }
    if (!infer->value_or(true)) {
      co_return co_await add_verbatim(req, *scope, *messages, metadata);
    }
    memory::ExtractRequest request;
    request.tenant_id = scope->tenant;
    request.user_id = scope->user;
    request.assistant = scope->agent.value_or("");
    request.session_id = scope->run.value_or("");
    request.conversation = std::move(*messages);
    request.metadata_json = metadata;
    if (request.conversation.empty()) co_return json_response(200, {{"results", json::array()}});
    const store::NewJob job =
        memory::conversation_extract_job(request, service.settings().extract_attempts);
    const int64_t at = service.now();
    auto queued = co_await ctx.blocking.run([&] { return ctx.storage.jobs().enqueue(job, at); });
    if (!queued) co_return mem0_fail(queued.error(), req);
    if (ctx.worker) ctx.worker->wake();
    const auto wait = async_mode->value_or(false) ? std::chrono::milliseconds(0)
                                                  : service.settings().mem0_add_wait;
    auto done = co_await finished(queued->id, wait);
    if (!done) co_return mem0_fail(done.error(), req);
    if (done->state == "dead") {
      co_return mem0_fail(Error::bad_gateway("memory extraction failed: " + done->last_error,
                                             "memory_extraction_failed"),
                          req);
    }
    if (done->state != "done") {
      co_return json_response(
          202, {{"results", json::array()},
                {"status", "PENDING"},
                {"message", "Memory processing has been queued for background execution"},
                {"job_id", done->id},
                {"event_id", done->id}});
    }
    const json answer = json::parse(done->result_json, nullptr, false);
    json results = json::array();
    if (answer.is_object() && answer.contains("results") && answer["results"].is_array()) {
      for (const auto& r : answer["results"]) {
        const std::string event = r.value("event", std::string());
        if (event.empty() || event == "NONE") continue;
        json item = {{"id", r.value("id", std::string())},
                     {"memory", r.value("memory", std::string())},
                     {"event", mem0_event(event)}};
        if (event == "UPDATE" && r.contains("previous_memory")) {
          item["previous_memory"] = r["previous_memory"];
        }
        results.push_back(std::move(item));
      }
    }
    co_return json_response(200, {{"results", std::move(results)}});
  }

  // infer: false: each message is remembered as it was said.
  Task<http::Response> add_verbatim(http::Request& req, const Scope& scope,
                                    const std::vector<memory::SaidMessage>& messages,
                                    const std::string& metadata) {
    json results = json::array();
    store::MemoryEdit edit;
    edit.actor = MemoryService::actor_of(req);
    edit.reason = "mem0 add";
    for (const auto& said : messages) {
      store::NewMemory m;
      m.tenant_id = scope.tenant;
      m.user_id = scope.user;
      m.assistant = scope.agent.value_or("");
      m.session_id = scope.run.value_or("");
      m.text = memory::clean_memory_text(said.content, MemoryService::kMaxTextBytes);
      if (m.text.empty()) continue;
      json meta = json::parse(metadata);
      meta["role"] = said.role;
      m.metadata_json = meta.dump();
      m.retention = service.settings().default_retention;
      co_await service.complete(m);
      const int64_t at = service.now();
      auto created =
          co_await ctx.blocking.run([&] { return ctx.storage.memories().create(m, edit, at); });
      if (!created) co_return mem0_fail(created.error(), req);
      if (!created->created) continue;  // already remembered: Mem0 reports nothing
      results.push_back(
          {{"id", created->memory.id}, {"memory", created->memory.text}, {"event", "ADD"}});
    }
    co_return json_response(200, {{"results", std::move(results)}});
  }

  Awaitable list(http::Request& req) {
    auto scope = scope_of(req, query_ids(req));
    if (!scope) co_return mem0_fail(scope.error(), req);
    auto limit = page_limit(req.query_param("limit"), 100, kMaxListed);
    if (!limit) co_return mem0_fail(limit.error(), req);
    auto memories = co_await listed(*scope, memory::Mem0Filter(), *limit);
    if (!memories) co_return mem0_fail(memories.error(), req);
    json results = json::array();
    for (const auto& m : *memories) results.push_back(mem0_memory(m));
    co_return json_response(200, {{"results", std::move(results)}});
  }

  Awaitable remove_all(http::Request& req) {
    auto scope = scope_of(req, query_ids(req));
    if (!scope) co_return mem0_fail(scope.error(), req);
    store::MemoryQuery q = query_for(*scope);
    q.status = "all";
    store::MemoryEdit edit;
    edit.actor = MemoryService::actor_of(req);
    edit.reason = "mem0 delete all";
    const int64_t at = service.now();
    auto removed =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().remove_all(q, edit, at); });
    if (!removed) co_return mem0_fail(removed.error(), req);
    co_return json_response(200,
                            {{"message", "All relevant memories deleted"}, {"deleted", *removed}});
  }

  Awaitable search(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return mem0_fail(body.error(), req);
    if (auto r = reject_unknown_fields(
            *body, {"query", "user_id", "agent_id", "run_id", "filters", "top_k", "limit",
                    "threshold", "rerank", "output_format", "version"});
        !r) {
      co_return mem0_fail(r.error(), req);
    }
    auto query = string_field(*body, "query", MemoryService::kMaxQueryBytes);
    if (!query) co_return mem0_fail(query.error(), req);
    if (!*query) co_return mem0_fail(Error::invalid_field("query", "is required"), req);
    auto filter = memory::Mem0Filter::parse(body->value("filters", json()));
    if (!filter) co_return mem0_fail(filter.error(), req);
    auto scope = scope_of(req, body_ids(*body, *filter));
    if (!scope) co_return mem0_fail(scope.error(), req);
    auto top_k = integer_field(*body, "top_k", 1, 100);
    auto limit = integer_field(*body, "limit", 1, 100);
    auto threshold = number_field(*body, "threshold", -1, 1);
    if (!top_k) co_return mem0_fail(top_k.error(), req);
    if (!limit) co_return mem0_fail(limit.error(), req);
    if (!threshold) co_return mem0_fail(threshold.error(), req);
    const auto keep = [&](const store::Memory& m) {
      if (scope->agent && m.assistant != *scope->agent) return false;
      if (scope->run && m.session_id != *scope->run) return false;
      return filter->matches(filter_fields(m));
    };
    const int k = static_cast<int>(top_k->value_or(limit->value_or(10)));
    auto found = co_await service.search(scope->tenant, scope->user, **query, k,
                                         threshold->value_or(0.0), keep);
    if (!found) co_return mem0_fail(found.error(), req);
    json results = json::array();
    for (const auto& f : *found) {
      json item = mem0_memory(f.memory);
      item["score"] = f.score;
      results.push_back(std::move(item));
    }
    co_return json_response(200, {{"results", std::move(results)}});
  }

  Awaitable get(http::Request& req) {
    auto m = co_await service.reachable(req, std::string(req.param("memory_id")));
    if (!m) co_return mem0_fail(m.error(), req);
    co_return json_response(200, mem0_memory(*m));
  }

  Awaitable update(http::Request& req) {
    auto body = http::parse_json_object_body(req);
    if (!body) co_return mem0_fail(body.error(), req);
    if (auto r = reject_unknown_fields(*body, {"text", "memory", "data", "metadata"}); !r) {
      co_return mem0_fail(r.error(), req);
    }
    std::optional<std::string> text;
    for (const char* name : {"text", "memory", "data"}) {
      auto value = string_field(*body, name, MemoryService::kMaxTextBytes);
      if (!value) co_return mem0_fail(value.error(), req);
      if (*value && !text) text = memory::clean_memory_text(**value, MemoryService::kMaxTextBytes);
    }
    if (!text || text->empty()) {
      co_return mem0_fail(Error::invalid_field("text", "is required (or memory, or data)"), req);
    }
    const std::string id(req.param("memory_id"));
    auto current = co_await service.reachable(req, id);
    if (!current) co_return mem0_fail(current.error(), req);
    store::MemoryPatch p;
    if (*text != current->text) {
      p.text = *text;
      p.hash = memory::text_hash(*text);
      std::vector<float> vector = co_await service.vector_of(*text);
      p.embedder = vector.empty() ? std::string() : service.embedder();
      p.vector = std::move(vector);
    }
    if (body->contains("metadata") && !(*body)["metadata"].is_null()) {
      if (!(*body)["metadata"].is_object()) {
        co_return mem0_fail(Error::invalid_field("metadata", "must be an object"), req);
      }
      p.metadata_json = (*body)["metadata"].dump();
    }
    store::MemoryEdit edit;
    edit.actor = MemoryService::actor_of(req);
    edit.reason = "mem0 update";
    const int64_t at = service.now();
    auto updated =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().update(id, p, edit, at); });
    if (!updated) co_return mem0_fail(updated.error(), req);
    co_return json_response(200, {{"message", "Memory updated successfully!"},
                                  {"id", updated->id},
                                  {"memory", updated->text}});
  }

  Awaitable remove(http::Request& req) {
    const std::string id(req.param("memory_id"));
    auto current = co_await service.reachable(req, id);
    if (!current) co_return mem0_fail(current.error(), req);
    store::MemoryEdit edit;
    edit.actor = MemoryService::actor_of(req);
    edit.reason = "mem0 delete";
    const int64_t at = service.now();
    auto removed =
        co_await ctx.blocking.run([&] { return ctx.storage.memories().remove(id, edit, at); });
    if (!removed) co_return mem0_fail(removed.error(), req);
    co_return json_response(200, {{"message", "Memory deleted successfully"}});
  }

  Awaitable history(http::Request& req) {
    const std::string id(req.param("memory_id"));
    auto current = co_await service.reachable(req, id);
    if (!current) co_return mem0_fail(current.error(), req);
    auto entries = co_await ctx.blocking.run([&] { return ctx.storage.memories().history(id); });
    if (!entries) co_return mem0_fail(entries.error(), req);
    json out = json::array();
    for (const auto& h : *entries) {
      const std::string event = mem0_event(h.event);
      out.push_back({{"id", h.id},
                     {"memory_id", h.memory_id},
                     {"old_memory", h.old_text ? json(*h.old_text) : json(nullptr)},
                     {"new_memory", h.new_text ? json(*h.new_text) : json(nullptr)},
                     {"event", event},
                     {"created_at", format_utc_ms(h.created_at_ms)},
                     {"updated_at", nullptr},
                     {"is_deleted", event == "DELETE"},
                     {"actor_id", h.actor},
                     {"role", nullptr}});
    }
    co_return json_response(200, out);
  }
};

}  // namespace

void add_mem0_routes(http::Router& router, Context& context, const memory::MemorySettings& settings,
                     knowledge::Embedders& embedders, std::string embedder) {
  auto routes = std::make_shared<Routes>(context, settings, embedders, std::move(embedder));
  router.add(http::Method::kPost, "/mem0/memories", http::kAuthenticatedIdempotent,
             [routes](http::Request& req) { return routes->add(req); });
  router.add(http::Method::kGet, "/mem0/memories", http::kAuthenticated,
             [routes](http::Request& req) { return routes->list(req); });
  router.add(http::Method::kDelete, "/mem0/memories", http::kAuthenticated,
             [routes](http::Request& req) { return routes->remove_all(req); });
  router.add(http::Method::kPost, "/mem0/search", http::kAuthenticated,
             [routes](http::Request& req) { return routes->search(req); });
  router.add(http::Method::kGet, "/mem0/memories/{memory_id}", http::kAuthenticated,
             [routes](http::Request& req) { return routes->get(req); });
  router.add(http::Method::kPut, "/mem0/memories/{memory_id}", http::kAuthenticated,
             [routes](http::Request& req) { return routes->update(req); });
  router.add(http::Method::kDelete, "/mem0/memories/{memory_id}", http::kAuthenticated,
             [routes](http::Request& req) { return routes->remove(req); });
  router.add(http::Method::kGet, "/mem0/memories/{memory_id}/history", http::kAuthenticated,
             [routes](http::Request& req) { return routes->history(req); });
}

}  // namespace parley::api
