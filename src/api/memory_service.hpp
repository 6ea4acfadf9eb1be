// What the two ways to a user's memories share: the REST API (api/memories.hpp) and the
// Mem0-compatible surface (api/mem0.hpp). Whose memories a request may reach, how a new text
// becomes a memory (hash, expiry, vector), and how memories are searched.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <functional>
#include <string>
#include <vector>

#include "api/context.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "http/message.hpp"
#include "memory/settings.hpp"
#include "store/memory.hpp"

namespace parley::knowledge {
class Embedders;
}

namespace parley::api {

struct ScoredMemory {
  store::Memory memory;
  double score = 0;
};

class MemoryService {
 public:
  // The longest memory text and search query either way in takes.
  static constexpr size_t kMaxTextBytes = 2000;
  static constexpr size_t kMaxQueryBytes = 4000;

  // `embedder` is the canonical name memories' vectors come from (memory.embedder, else
  // knowledge.embedder).
  MemoryService(Context& context, memory::MemorySettings settings, knowledge::Embedders& embedders,
                std::string embedder)
      : ctx_(context),
        settings_(std::move(settings)),
        embedders_(embedders),
        embedder_(std::move(embedder)) {}

  Context& ctx() { return ctx_; }
  const memory::MemorySettings& settings() const { return settings_; }
  int64_t now() const;

  // The tenant of `user`, when the caller may reach their memories: a user key only its own
  // user, a service key its tenant's users, an admin anyone (`tenant_id` as given, else
  // "default"). Anyone else gets the answer a user with no memories would: 404.
  static Result<std::string> owner_tenant(const http::Request& req, const std::string& user,
                                          const std::optional<std::string>& admin_tenant);

  // Who changes memories through this request, for their history.
  static std::string actor_of(const http::Request& req);

  // The memory `id`, when it is this user's in this tenant (else 404).
  Task<Result<store::Memory>> owned(const std::string& tenant, const std::string& user,
                                    const std::string& id);
  // The memory `id`, when the caller may reach its user (else 404).
  Task<Result<store::Memory>> reachable(const http::Request& req, const std::string& id);

  // The vector of a text; empty when the embedder cannot make one now (the memory is kept,
  // found by its words).
  Task<std::vector<float>> vector_of(const std::string& text);
  const std::string& embedder() const { return embedder_; }

  // Completes a new memory from its text and retention: hash, expiry and vector.
  Task<void> complete(store::NewMemory& memory);

  // The user's active memories closest to `query` (embedding, shared words, importance and
  // recency), best first, those `keep` lets through, at most `top_k`, scored at least
  // `min_score`.
  Task<Result<std::vector<ScoredMemory>>> search(
      const std::string& tenant, const std::string& user, const std::string& query, int top_k,
      double min_score, const std::function<bool(const store::Memory&)>& keep);

 private:
  Context& ctx_;
  memory::MemorySettings settings_;
  knowledge::Embedders& embedders_;
  std::string embedder_;
};

}  // namespace parley::api
