// `cache.*`: the response caches (cache/response_cache.hpp). The exact cache answers a request
// identical to one answered before; the semantic cache answers a question close enough in
// meaning to one answered before, for the same tenant, model, system prompt and conversation.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace parley::config {
class Schema;
}

namespace parley::cache {

struct ExactCacheSettings {
  bool enabled = true;
  // Only requests whose answer should not vary (temperature 0): a cached answer to a request
  // that asked for variety would take the variety away.
  bool only_deterministic = true;
  std::chrono::milliseconds ttl{3'600'000};
  int64_t max_entries = 10'000;  // in-process; Redis evicts by its own policy
};

struct SemanticCacheSettings {
  // Off by default: an answer to a different (if similar) question is a choice to make.
  bool enabled = false;
  bool only_deterministic = true;
  double threshold = 0.95;                   // cosine similarity of the questions (the seed's 0.95)
  std::chrono::milliseconds ttl{1'800'000};  // the seed's QUERY_CACHE_TTL
  int64_t max_entries = 1'000;               // in-process, in all
  int64_t per_partition = 100;  // questions kept per tenant, model, prompt and conversation
  // What embeds the questions: "" means knowledge.embedder.
  std::string embedder;
};

struct CacheSettings {
  ExactCacheSettings exact;
  SemanticCacheSettings semantic;
};

void declare_settings(config::Schema& schema);

}  // namespace parley::cache
