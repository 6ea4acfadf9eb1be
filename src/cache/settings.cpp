// `cache.*` (see settings.hpp).
#include "cache/settings.hpp"

#include "config/settings.hpp"

namespace parley::cache {

namespace {

// A field of the exact or semantic part, for settings and for their display alike.
template <typename Field>
auto exact(Field ExactCacheSettings::*field) {
  return [field](auto& s) -> auto& { return s.exact.*field; };
}
template <typename Field>
auto semantic(Field SemanticCacheSettings::*field) {
  return [field](auto& s) -> auto& { return s.semantic.*field; };
}

}  // namespace

void declare_settings(config::Schema& schema) {
  using std::chrono::hours;
  using std::chrono::seconds;
  schema.group<CacheSettings>("cache.exact")
      .flag("enabled", exact(&ExactCacheSettings::enabled),
            "Answer a request identical to one answered before (same tenant, model, messages, "
            "tools and parameters) from the cache.")
      .flag("only_deterministic", exact(&ExactCacheSettings::only_deterministic),
            "Cache only requests with temperature 0 (others ask for a different answer each "
            "time).")
      .duration("ttl", exact(&ExactCacheSettings::ttl), "How long a cached answer is served.",
                seconds(1), hours(24 * 30))
      .integer("max_entries", exact(&ExactCacheSettings::max_entries),
               "Answers kept in memory when there is no Redis (least recently used go first).", 0,
               10'000'000);
  schema.group<CacheSettings>("cache.semantic")
      .flag("enabled", semantic(&SemanticCacheSettings::enabled),
            "Answer a question whose embedding is within `threshold` of one answered before, "
            "for the same tenant, model, system prompt and earlier conversation.")
      .flag("only_deterministic", semantic(&SemanticCacheSettings::only_deterministic),
            "Cache only requests with temperature 0.")
      .number("threshold", semantic(&SemanticCacheSettings::threshold),
              "Cosine similarity at which two questions count as the same.", 0.5, 1.0)
      .duration("ttl", semantic(&SemanticCacheSettings::ttl), "How long a cached answer is served.",
                seconds(1), hours(24 * 30))
      .integer("max_entries", semantic(&SemanticCacheSettings::max_entries),
               "Questions kept in memory in all when there is no Redis.", 0, 10'000'000)
      .integer("per_partition", semantic(&SemanticCacheSettings::per_partition),
               "Questions kept per tenant, model, system prompt and conversation (each lookup "
               "compares against all of them).",
               1, 10'000)
      .text("embedder", semantic(&SemanticCacheSettings::embedder),
            "What embeds the questions (`builtin` or a model of `llm.*`); empty: "
            "`knowledge.embedder`.");
}

}  // namespace parley::cache
