// Resolving knowledge bases' embedders (see embedders.hpp).
#include "knowledge/embed/embedders.hpp"

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "knowledge/embed/hashed_embedder.hpp"
#include "knowledge/embed/remote_embedder.hpp"
#include "llm/gateway.hpp"

namespace parley::knowledge {

namespace {

bool builtin(std::string_view name) { return name == "builtin" || name == kBuiltinEmbedder; }

}  // namespace

Embedders::Embedders(const KnowledgeSettings& settings, llm::Gateway* gateway, IoPool* io,
                     const Clock& clock)
    : settings_(settings),
      gateway_(gateway),
      io_(io),
      cache_(static_cast<size_t>(settings.embedding_cache_size), settings.embedding_cache_ttl,
             clock) {
  auto name = canonical(settings.embedder);
  default_name_ = name ? *name : std::string(kBuiltinEmbedder);
  default_dimension_ = dimension_for(default_name_);
}

Result<std::string> Embedders::canonical(std::string_view name, const char* field) const {
  if (builtin(name)) return std::string(kBuiltinEmbedder);
  if (gateway_ != nullptr && !name.empty()) {
    auto route = gateway_->resolve(name);
    if (route) {
      for (const auto& target : route->targets) {
        if (target.provider->supports_embeddings()) return std::string(name);
      }
    }
  }
  return Error::invalid(
      "no embedder is named '" + std::string(name) +
          "': use \"builtin\" or a model or route of llm.* whose provider makes embeddings",
      "unknown_embedder", field);
}

int Embedders::dimension_for(std::string_view name) const {
  return builtin(name) ? settings_.embedding_dimension : 0;
}

Result<std::shared_ptr<Embedder>> Embedders::get(std::string_view name, int64_t dimension) {
  const bool is_builtin = builtin(name);
  const int64_t dim = is_builtin && dimension <= 0 ? settings_.embedding_dimension : dimension;
  std::string key(name);
  if (is_builtin) key += "/" + std::to_string(dim);
  std::lock_guard lock(mutex_);
  if (auto it = made_.find(key); it != made_.end()) return it->second;
  std::shared_ptr<Embedder> made;
  if (is_builtin) {
    if (dim < 8 || dim > 8192) {
      return Error::internal("the built-in embedder cannot make vectors of " + std::to_string(dim) +
                             " dimensions");
    }
    made = std::make_shared<HashedEmbedder>(static_cast<int>(dim));
  } else {
    if (gateway_ == nullptr) {
      return Error::unavailable("no model is configured for embedder '" + std::string(name) + "'",
                                "embedder_unavailable");
    }
    auto route = gateway_->resolve(name);
    if (!route) {
      return Error::unavailable(
          "embedder '" + std::string(name) + "' is no longer configured: " + route.error().message,
          "embedder_unavailable");
    }
    made = std::make_shared<RemoteEmbedder>(*gateway_, std::move(route).value(), std::string(name),
                                            settings_.embed_batch, &cache_);
  }
  made_.emplace(std::move(key), made);
  return made;
}

Task<Result<std::vector<float>>> Embedders::embed_query(std::string name, int64_t dimension,
                                                        std::string query) {
  auto embedder = get(name, dimension);
  if (!embedder) co_return std::move(embedder).error();
  std::vector<std::string> texts;
  texts.push_back(std::move(query));
  auto vectors = co_await (*embedder)->embed(std::move(texts));
  if (!vectors) co_return std::move(vectors).error();
  if (vectors->size() != 1) co_return Error::bad_gateway("the embedder returned no vector");
  const auto row = vectors->row(0);
  co_return std::vector<float>(row.begin(), row.end());
}

Result<Vectors> Embedders::embed_blocking(std::string_view name, int64_t dimension,
                                          const std::vector<std::string>& texts) {
  auto embedder = get(name, dimension);
  if (!embedder) return std::move(embedder).error();
  if (auto* hashed = dynamic_cast<HashedEmbedder*>(embedder->get())) {
    return hashed->embed_now(texts);
  }
  if (io_ == nullptr) return Error::unavailable("no event loop for remote embeddings");
  auto promise = std::make_shared<std::promise<Result<Vectors>>>();
  auto future = promise->get_future();
  boost::asio::co_spawn(
      io_->main(),
      [embedder = *embedder, owned = std::vector<std::string>(texts),
       promise]() mutable -> Task<void> {
        auto vectors = co_await embedder->embed(std::move(owned));
        promise->set_value(std::move(vectors));
      },
      boost::asio::detached);
  // The call has its own time limits (llm.*); a loop that stopped never answers.
  while (future.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
    if (io_->main().stopped()) {
      return Error::unavailable("shutting down: the embedding call was abandoned", "shutting_down");
    }
  }
  return future.get();
}

}  // namespace parley::knowledge
