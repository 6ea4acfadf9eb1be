// `knowledge.*` (see settings.hpp).
#include "knowledge/settings.hpp"

#include "config/settings.hpp"

namespace parley::knowledge {

void declare_settings(config::Schema& schema) {
  schema.group<KnowledgeSettings>("knowledge")
      .size("max_file_size", &KnowledgeSettings::max_file_size,
            "Largest file a knowledge base takes (413 above).", 1024, uint64_t{2} << 30)
      .size("max_text_size", &KnowledgeSettings::max_text_size,
            "Most text one document may hold once extracted (larger ones fail with a reason).",
            1024, uint64_t{1} << 30)
      .integer("max_pages", &KnowledgeSettings::max_pages,
               "Most pages of a PDF that is ingested (larger ones fail with a reason).", 1,
               1'000'000)
      .integer("chunk_tokens", &KnowledgeSettings::chunk_tokens,
               "Default largest chunk, in tokens, of a new knowledge base (each may set its own).",
               32, 8192)
      .integer("chunk_overlap", &KnowledgeSettings::chunk_overlap,
               "Default tokens a chunk repeats from the one before when a long passage is cut "
               "(at most half of chunk_tokens).",
               0, 4096)
      .text("embedder", &KnowledgeSettings::embedder,
            "The embedder of new knowledge bases: `builtin` (hashed word and character n-grams: "
            "offline, lexical similarity, not meaning), or a model or route of `llm.*` served by "
            "an OpenAI-compatible /embeddings endpoint (e.g. `openai/text-embedding-3-small`, "
            "`ollama/nomic-embed-text`). Each base records its own; changing it there "
            "re-embeds that base in the background.",
            [](const std::string& v) -> std::optional<std::string> {
              if (!v.empty()) return std::nullopt;
              return "must name an embedder";
            })
      .integer("embedding_dimension", &KnowledgeSettings::embedding_dimension,
               "Dimension of the built-in embedder's vectors.", 64, 4096)
      .integer("embed_batch", &KnowledgeSettings::embed_batch,
               "Texts sent to a remote embedder in one call.", 1, 2048)
      .integer("search_beam", &KnowledgeSettings::search_beam,
               "Beam of the nearest-neighbour walk in searches: wider finds more of the true "
               "nearest chunks and takes longer (docs/benchmarks.md has the trade-off).",
               16, 10'000)
      .integer("embedding_cache_size", &KnowledgeSettings::embedding_cache_size,
               "Vectors from a remote embedder kept in memory per process, by text (0: none).", 0,
               10'000'000)
      .duration("embedding_cache_ttl", &KnowledgeSettings::embedding_cache_ttl,
                "How long a cached vector may be used.", std::chrono::seconds(1),
                std::chrono::hours(24 * 30));
  schema.check([](const config::Settings& settings, config::Problems& problems) {
    const auto& k = settings.get<KnowledgeSettings>();
    if (k.chunk_overlap > k.chunk_tokens / 2) {
      problems.push_back({"knowledge.chunk_overlap", std::to_string(k.chunk_overlap), "",
                          "must be at most half of knowledge.chunk_tokens"});
    }
  });
}

}  // namespace parley::knowledge
