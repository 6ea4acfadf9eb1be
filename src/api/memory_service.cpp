#include "api/memory_service.hpp"

#include "api/access.hpp"
#include "core/clock.hpp"
#include "knowledge/embed/embedders.hpp"
#include "memory/recall.hpp"
#include "memory/text.hpp"
#include "obs/log.hpp"

namespace parley::api {
namespace {

constexpr int kSearchPool = 2000;  // the user's newest memories a search scores

}  // namespace

int64_t MemoryService::now() const { return to_unix_ms(ctx_.clock.now()); }

Result<std::string> MemoryService::owner_tenant(const http::Request& req, const std::string& user,
                                                const std::optional<std::string>& admin_tenant) {
  const auth::Principal* who = req.principal;
  std::string tenant = !who || who->admin() ? admin_tenant.value_or("default") : who->tenant_id;
  if (!Access::owns(req, tenant, user)) {
    return Error::not_found("no user '" + user + "'", "user_not_found");
  }
  return tenant;
}

std::string MemoryService::actor_of(const http::Request& req) {
  const auth::Principal* who = req.principal;
  if (!who || who->admin()) return "admin";
  return who->scope == auth::Scope::kService ? "service" : "user";
}

Task<Result<store::Memory>> MemoryService::owned(const std::string& tenant, const std::string& user,
                                                 const std::string& id) {
  auto m = co_await ctx_.blocking.run([&] { return ctx_.storage.memories().get(id); });
  if (!m) co_return std::move(m).error();
  if (m->tenant_id != tenant || m->user_id != user) {
    co_return Error::not_found("no memory with id '" + id + "'", "memory_not_found");
  }
  co_return std::move(*m);
}

Task<Result<store::Memory>> MemoryService::reachable(const http::Request& req,
                                                     const std::string& id) {
  auto m = co_await ctx_.blocking.run([&] { return ctx_.storage.memories().get(id); });
  if (!m) co_return std::move(m).error();
  if (!Access::owns(req, m->tenant_id, m->user_id)) {
    co_return Error::not_found("no memory with id '" + id + "'", "memory_not_found");
  }
  co_return std::move(*m);
}

Task<std::vector<float>> MemoryService::vector_of(const std::string& text) {
  if (embedder_.empty()) co_return std::vector<float>();
  auto v = co_await embedders_.embed_query(embedder_, embedders_.dimension_for(embedder_), text);
  if (!v) {
    log::warn("memory not embedded", {{"error", v.error().message}});
    co_return std::vector<float>();
  }
  co_return std::move(*v);
}

Task<void> MemoryService::complete(store::NewMemory& m) {
  m.hash = memory::text_hash(m.text);
  m.expires_at_ms = memory::expires_at(settings_, m.retention, now());
  std::vector<float> vector = co_await vector_of(m.text);
  if (!vector.empty()) {
    m.embedder = embedder_;
    m.vector = std::move(vector);
  }
}

Task<Result<std::vector<ScoredMemory>>> MemoryService::search(
    const std::string& tenant, const std::string& user, const std::string& query, int top_k,
    double min_score, const std::function<bool(const store::Memory&)>& keep) {
  const int64_t at = now();
  auto memories = co_await ctx_.blocking.run(
      [&] { return ctx_.storage.memories().user_memories(tenant, user, kSearchPool, at); });
  if (!memories) co_return std::move(memories).error();
  std::vector<float> asked = co_await vector_of(query);
  std::vector<memory::RecallCandidate> candidates;
  for (const auto& m : *memories) {
    if (keep && !keep(m)) continue;
    const double similarity = m.embedder == embedder_ ? memory::cosine(asked, m.vector) : -1;
    candidates.push_back({&m, similarity});
  }
  memory::ChooseOptions options;
  options.top_k = top_k;
  options.max_tokens = INT64_MAX;
  options.min_similarity = min_score;
  options.always_standing = false;
  std::vector<ScoredMemory> out;
  for (const auto& c : memory::choose(candidates, query, options, at)) {
    for (auto& m : *memories) {
      if (m.id != c.id) continue;
      m.vector.clear();
      out.push_back({std::move(m), c.score});
      break;
    }
  }
  co_return out;
}

}  // namespace parley::api
