#include "memory/jobs.hpp"

#include <nlohmann/json.hpp>

#include "knowledge/embed/embedders.hpp"
#include "memory/extract.hpp"

namespace parley::memory {

queue::Handler expire_handler(store::MemoryRepository& memories, const Clock& clock) {
  return [&memories, &clock](const store::Job&) -> Result<nlohmann::json> {
    constexpr int kBatch = 500;
    int64_t purged = 0;
    // Bounded, so one run never holds a worker for long; the next run takes the rest.
    for (int round = 0; round < 20; ++round) {
      auto n = memories.purge_expired(to_unix_ms(clock.now()), kBatch);
      if (!n) return std::move(n).error();
      purged += *n;
      if (*n < kBatch) break;
    }
    return nlohmann::json{{"purged", purged}};
  };
}

Result<llm::CompleteFn> extraction_model(const MemorySettings& settings, llm::Gateway& gateway,
                                         IoPool& io, llm::Accountant* accountant,
                                         const Clock& clock) {
  return llm::job_model(settings.model, gateway, io, accountant, clock, {"memory", true, 0});
}

Result<void> add_memory_jobs(queue::Worker& worker, store::Storage& storage, const Clock& clock,
                             const MemorySettings& settings, knowledge::Embedders& embedders,
                             std::string_view default_embedder,
                             const knowledge::EmbedUsageFn& book_usage, llm::CompleteFn complete) {
  auto embedder = embedders.canonical(
      settings.embedder.empty() ? default_embedder : std::string_view(settings.embedder),
      "memory.embedder");
  if (!embedder) return std::move(embedder).error();
  const int64_t dimension = embedders.dimension_for(*embedder);
  EmbedFn embed =
      [&embedders, name = *embedder, dimension, book_usage](
          const std::string& tenant_id,
          const std::vector<std::string>& texts) -> Result<std::vector<std::vector<float>>> {
    auto vectors = embedders.embed_blocking(name, dimension, texts);
    if (!vectors) return std::move(vectors).error();
    if (book_usage && vectors->input_tokens > 0) book_usage(tenant_id, name, vectors->input_tokens);
    std::vector<std::vector<float>> out;
    const auto d = static_cast<size_t>(vectors->dimension);
    for (size_t i = 0; i < vectors->size(); ++i) {
      out.emplace_back(vectors->values.begin() + static_cast<std::ptrdiff_t>(i * d),
                       vectors->values.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
    }
    return out;
  };
  worker.handle(std::string(kExtractJob), extract_handler({storage, clock, settings, *embedder,
                                                           std::move(embed), std::move(complete)}));
  worker.handle(std::string(kExpireJob), expire_handler(storage.memories(), clock));
  worker.every({std::string(kExpireJob), settings.purge_interval});
  return success();
}

}  // namespace parley::memory
