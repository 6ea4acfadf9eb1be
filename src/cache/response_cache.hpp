// The response caches, as two pipeline stages around generation:
//
//   cache_lookup  (before "generate") answers from the cache and stops the turn: the exact
//                 cache by a key over the normalised request (tenant, model, messages, tools
//                 and parameters, after the prompt was built, so retrieved passages and the
//                 history are part of it); then the semantic cache, by the embedding of the
//                 last user message against those cached for the same tenant, model, system
//                 prompt and earlier conversation (cosine ≥ cache.semantic.threshold). A hit
//                 streams as the reply would have (in pieces, through the turn's sink) when a
//                 stream was asked for.
//   cache_store   (finishing, before "account") keeps a complete answer: not a failed,
//                 blocked, cut-short or tool-calling one, and not when the request said
//                 Cache-Control: no-store.
//
// By default only deterministic requests (temperature 0) are cached: a request that leaves
// the temperature to the model asks for a fresh answer. `Cache-Control: no-cache` looks
// nothing up. Every way in reads that header (apply_request_directives) and reports the
// outcome (X-Parley-Cache: hit, miss or bypass; X-Parley-Cache-Match: exact or semantic).
//
// Metrics: response_cache_requests_total{cache,outcome} and response_cache_saved_usd_total
// {cache}; a hit's usage row has provider "cache", status "cache_hit", the tokens it stands
// for and no cost.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/settings.hpp"
#include "cache/store.hpp"
#include "chat/pipeline.hpp"
#include "http/message.hpp"

namespace parley::knowledge {
class Embedders;
}

namespace parley::obs {
class Metrics;
}

namespace parley::cache {

struct CacheDeps {
  CacheSettings settings;
  CacheStore& store;
  // Embeds questions for the semantic cache (null: no semantic cache); `embedder` is the
  // canonical name it is asked for.
  knowledge::Embedders* embedders = nullptr;
  std::string embedder;
  const Clock& clock;
  obs::Metrics* metrics = nullptr;
  // What an answer cost (llm.models prices): kept with it, counted as saved on each hit.
  std::function<double(const std::string& model, int64_t input_tokens, int64_t output_tokens)> cost;
};

class ResponseCache;

// The two stages over one cache; insert cache_lookup before "generate" and cache_store before
// "account".
struct CacheStages {
  std::unique_ptr<chat::Stage> lookup;
  std::unique_ptr<chat::Stage> store;
};
CacheStages make_cache_stages(CacheDeps deps);

// Cache-Control from a request (`no-cache`, `no-store`) into the turn.
void apply_request_directives(std::optional<std::string_view> cache_control, chat::Turn& turn);
// X-Parley-Cache (and X-Parley-Cache-Match on a hit) for a response; none when no cache ran.
void add_response_headers(const chat::Turn& turn, http::HeaderList& headers);
// The outcome for JSON answers: {"status", "match", "similarity"}, or null when no cache ran.
nlohmann::json cache_json(const chat::Turn& turn);

// The exact cache's key for a turn (tenant and a SHA-256 of the normalised request).
std::string exact_key(const chat::Turn& turn);

}  // namespace parley::cache
