// The response caches (see response_cache.hpp).
#include "cache/response_cache.hpp"

#include <cmath>
#include <cstring>

#include <prometheus/counter.h>
#include <prometheus/family.h>

#include "auth/crypto.hpp"
#include "knowledge/embed/embedders.hpp"
#include "llm/upstream.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::cache {

namespace {

using nlohmann::json;

// Request fields that do not change the answer (who asked, how it is delivered).
bool answer_neutral(const std::string& field) {
  return field == "user" || field == "stream" || field == "stream_options" || field == "metadata" ||
         field == "store" || field == "service_tier";
}

json message_json(const llm::Message& m) {
  json out = {{"role", m.role}, {"content", m.content}};
  if (!m.parts.is_null()) out["parts"] = m.parts;
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : m.tool_calls) {
      calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
    }
    out["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty()) out["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) out["name"] = m.name;
  return out;
}

std::string hex_sha256(std::string_view text) { return auth::to_hex(auth::sha256(text)); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// What the route's name stands for now: the same name ("default") answered by another provider
// or model after a configuration change must not find the old answers.
json route_json(const llm::Route& route) {
  json targets = json::array();
  for (const auto& t : route.targets) {
    targets.push_back((t.provider != nullptr ? t.provider->name() : std::string()) + "/" + t.model);
  }
  return {{"name", route.name}, {"targets", std::move(targets)}};
}

bool deterministic(const chat::Turn& turn) {
  return turn.prompt.temperature.has_value() && *turn.prompt.temperature == 0.0;
}

// The last user message and what came before it.
const llm::Message* last_user(const chat::Turn& turn) {
  const auto& messages = turn.prompt.messages;
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->role == "user") return &*it;
  }
  return nullptr;
}

// A cached answer: what the reply was and what making it cost.
struct CachedAnswer {
  std::string content;
  std::string finish_reason;
  std::string provider;
  std::string model;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;

  std::string encode() const {
    return dump({{"content", content},
                 {"finish_reason", finish_reason},
                 {"provider", provider},
                 {"model", model},
                 {"input_tokens", input_tokens},
                 {"output_tokens", output_tokens},
                 {"cost_usd", cost_usd}});
  }
  static std::optional<CachedAnswer> decode(std::string_view text) {
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("content") || !j["content"].is_string()) return std::nullopt;
    CachedAnswer a;
    a.content = j["content"];
    a.finish_reason = j.value("finish_reason", "stop");
    a.provider = j.value("provider", "");
    a.model = j.value("model", "");
    a.input_tokens = j.value("input_tokens", int64_t{0});
    a.output_tokens = j.value("output_tokens", int64_t{0});
    a.cost_usd = j.value("cost_usd", 0.0);
    return a;
  }
};

// A semantic entry: the question's vector (float32) then the answer.
std::string semantic_entry(const std::vector<float>& question, const CachedAnswer& answer) {
  const uint32_t dimension = static_cast<uint32_t>(question.size());
  std::string out(sizeof dimension + question.size() * sizeof(float), '\0');
  std::memcpy(out.data(), &dimension, sizeof dimension);
  std::memcpy(out.data() + sizeof dimension, question.data(), question.size() * sizeof(float));
  out += answer.encode();
  return out;
}

// The similarity of `question` to the entry's, and the entry's answer text.
std::optional<std::pair<double, std::string_view>> compare(const std::vector<float>& question,
                                                           std::string_view entry) {
  uint32_t dimension = 0;
  if (entry.size() < sizeof dimension) return std::nullopt;
  std::memcpy(&dimension, entry.data(), sizeof dimension);
  const size_t bytes = sizeof dimension + static_cast<size_t>(dimension) * sizeof(float);
  if (dimension != question.size() || entry.size() < bytes) return std::nullopt;
  double dot = 0;
  for (size_t i = 0; i < question.size(); ++i) {
    float v;
    std::memcpy(&v, entry.data() + sizeof dimension + i * sizeof(float), sizeof v);
    dot += static_cast<double>(v) * question[i];
  }
  return std::make_pair(dot, entry.substr(bytes));
}

// Cut for replaying a cached answer as a stream: about `size` bytes, at a space when there is
// one, never inside a UTF-8 sequence.
std::vector<std::string_view> pieces(std::string_view text, size_t size = 48) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t cut = std::min(text.size(), size);
    if (cut < text.size()) {
      const size_t space = text.rfind(' ', cut);
      if (space != std::string_view::npos && space > 0) cut = space + 1;
      while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
    }
    out.push_back(text.substr(0, cut));
    text.remove_prefix(cut);
  }
  return out;
}

class Metrics {
 public:
  explicit Metrics(prometheus::Registry& registry)
      : requests_(prometheus::BuildCounter()
                      .Name("response_cache_requests_total")
                      .Help("Response cache lookups by cache (exact, semantic) and outcome (hit, "
                            "miss, bypass).")
                      .Register(registry)),
        saved_(prometheus::BuildCounter()
                   .Name("response_cache_saved_usd_total")
                   .Help("What the answers served from a response cache cost when they were "
                         "made.")
                   .Register(registry)) {}

  void count(std::string_view cache, std::string_view outcome) {
    requests_.Add({{"cache", std::string(cache)}, {"outcome", std::string(outcome)}}).Increment();
  }
  void saved(std::string_view cache, double usd) {
    if (usd > 0) saved_.Add({{"cache", std::string(cache)}}).Increment(usd);
  }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& saved_;
};

}  // namespace

class ResponseCache {
 public:
  explicit ResponseCache(CacheDeps deps)
      : deps_(std::move(deps)),
        metrics_(deps_.metrics ? std::make_unique<Metrics>(deps_.metrics->registry()) : nullptr) {}

  Task<Result<chat::Flow>> lookup(chat::Turn& turn) {
    const auto& s = deps_.settings;
    const bool exact = s.exact.enabled && (!s.exact.only_deterministic || deterministic(turn));
    const bool semantic = s.semantic.enabled && deps_.embedders != nullptr &&
                          (!s.semantic.only_deterministic || deterministic(turn));
    if (!exact && !semantic) {
      if (s.exact.enabled || s.semantic.enabled) turn.cache.status = "bypass";
      co_return chat::Flow::kContinue;
    }
    turn.cache.status = turn.cache.no_cache ? "bypass" : "miss";
    if (exact) {
      turn.cache.exact_key = exact_key(turn);
      if (!turn.cache.no_cache) {
        auto found = co_await deps_.store.get(turn.cache.exact_key);
        auto answer = found ? CachedAnswer::decode(*found) : std::nullopt;
        count("exact", answer ? "hit" : "miss");
        if (answer) {
          turn.cache.match = "exact";
          turn.cache.similarity = 1;
          co_return co_await answer_from(turn, *answer);
        }
      } else {
        count("exact", "bypass");
      }
    }
    if (semantic) {
      const llm::Message* question = last_user(turn);
      if (question == nullptr || question->content.empty()) co_return chat::Flow::kContinue;
      turn.cache.partition = partition_key(turn, *question);
      auto vector = co_await deps_.embedders->embed_query(deps_.embedder, 0, question->content);
      if (!vector) {
        log::warn("question not embedded for the semantic cache",
                  {{"embedder", deps_.embedder}, {"error", vector.error().message}});
        turn.cache.partition.clear();
        co_return chat::Flow::kContinue;
      }
      turn.cache.question = std::move(vector).value();
      if (turn.cache.no_cache) {
        count("semantic", "bypass");
        co_return chat::Flow::kContinue;
      }
      auto entries = co_await deps_.store.partition(turn.cache.partition);
      double best = -1;
      std::optional<CachedAnswer> best_answer;
      for (const auto& entry : entries) {
        auto compared = compare(turn.cache.question, entry);
        if (!compared || compared->first < s.semantic.threshold || compared->first <= best) {
          continue;
        }
        if (auto answer = CachedAnswer::decode(compared->second)) {
          best = compared->first;
          best_answer = std::move(answer);
        }
      }
      count("semantic", best_answer ? "hit" : "miss");
      if (best_answer) {
        turn.cache.match = "semantic";
        turn.cache.similarity = best;
        co_return co_await answer_from(turn, *best_answer);
      }
    }
    co_return chat::Flow::kContinue;
  }

  Task<Result<chat::Flow>> store(chat::Turn& turn) {
    auto& cache = turn.cache;
    const auto& completion = turn.generation.completion;
    const bool keep = cache.status == "miss" || (cache.status == "bypass" && cache.no_cache);
    if (!keep || cache.no_store || turn.generation_error || turn.output_blocked ||
        completion.finish_reason != llm::finish::kStop || !completion.tool_calls.empty() ||
        completion.content.empty() || turn.generation.provider.empty()) {
      co_return chat::Flow::kContinue;
    }
    CachedAnswer answer;
    answer.content = completion.content;
    answer.finish_reason = completion.finish_reason;
    answer.provider = turn.generation.provider;
    answer.model = completion.model.empty() ? turn.generation.model : completion.model;
    answer.input_tokens = completion.usage.input_tokens;
    answer.output_tokens = completion.usage.output_tokens;
    answer.cost_usd = 0;
    if (completion.usage.input_tokens == 0 && completion.usage.output_tokens == 0) {
      answer.input_tokens = llm::estimate_tokens(turn.prompt.messages);
      answer.output_tokens = llm::estimate_tokens(completion.content);
    }
    if (deps_.cost) {
      answer.cost_usd =
          deps_.cost(turn.generation.model, answer.input_tokens, answer.output_tokens);
    }
    const auto& s = deps_.settings;
    if (!cache.exact_key.empty()) deps_.store.put(cache.exact_key, answer.encode(), s.exact.ttl);
    if (!cache.partition.empty() && !cache.question.empty()) {
      deps_.store.add_to_partition(cache.partition, semantic_entry(cache.question, answer),
                                   s.semantic.ttl, s.semantic.per_partition);
    }
    co_return chat::Flow::kContinue;
  }

 private:
  void count(std::string_view cache, std::string_view outcome) {
    if (metrics_) metrics_->count(cache, outcome);
  }

  // Same tenant, model, system prompt and conversation before the question.
  static std::string partition_key(const chat::Turn& turn, const llm::Message& question) {
    json before = json::array();
    for (const auto& m : turn.prompt.messages) {
      if (&m == &question) break;
      before.push_back(message_json(m));
    }
    json key = {{"model", route_json(turn.route)}, {"before", std::move(before)}};
    if (!turn.prompt.tools.is_null()) key["tools"] = turn.prompt.tools;
    return "s:" + turn.actor.tenant_id + ":" + hex_sha256(dump(key));
  }

  Task<Result<chat::Flow>> answer_from(chat::Turn& turn, const CachedAnswer& answer) {
    turn.cache.status = "hit";
    turn.cache.saved_usd = answer.cost_usd;
    if (metrics_) metrics_->saved(turn.cache.match, answer.cost_usd);
    auto& generation = turn.generation;
    generation.provider = answer.provider;
    generation.model = answer.model;
    generation.completion = {};
    generation.completion.model = answer.model;
    generation.completion.content = answer.content;
    generation.completion.finish_reason = answer.finish_reason;
    generation.completion.usage.input_tokens = answer.input_tokens;
    generation.completion.usage.output_tokens = answer.output_tokens;
    generation.completion.usage.reported = true;
    if (turn.stream && turn.sink != nullptr) {
      for (const auto piece : pieces(answer.content)) {
        llm::Delta delta;
        delta.content = std::string(piece);
        const bool sent = co_await (*turn.sink)(delta);
        if (!sent) break;  // the client left; what it had is what it gets
        ++generation.completion.deltas;
      }
    }
    co_return chat::Flow::kAnswered;
  }

  CacheDeps deps_;
  std::unique_ptr<Metrics> metrics_;
};

namespace {

class LookupStage final : public chat::Stage {
 public:
  explicit LookupStage(std::shared_ptr<ResponseCache> cache) : cache_(std::move(cache)) {}
  const char* name() const override { return "cache_lookup"; }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override { return cache_->lookup(turn); }

 private:
  std::shared_ptr<ResponseCache> cache_;
};

class StoreStage final : public chat::Stage {
 public:
  explicit StoreStage(std::shared_ptr<ResponseCache> cache) : cache_(std::move(cache)) {}
  const char* name() const override { return "cache_store"; }
  bool finishing() const override { return true; }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override { return cache_->store(turn); }

 private:
  std::shared_ptr<ResponseCache> cache_;
};

}  // namespace

CacheStages make_cache_stages(CacheDeps deps) {
  auto cache = std::make_shared<ResponseCache>(std::move(deps));
  return {std::make_unique<LookupStage>(cache), std::make_unique<StoreStage>(cache)};
}

std::string exact_key(const chat::Turn& turn) {
  const auto& p = turn.prompt;
  json messages = json::array();
  for (const auto& m : p.messages) messages.push_back(message_json(m));
  json key = {{"model", route_json(turn.route)}, {"messages", std::move(messages)}};
  if (p.temperature) key["temperature"] = *p.temperature;
  if (p.top_p) key["top_p"] = *p.top_p;
  if (p.top_k) key["top_k"] = *p.top_k;
  if (p.max_tokens) key["max_tokens"] = *p.max_tokens;
  if (!p.stop.empty()) key["stop"] = p.stop;
  if (!p.tools.is_null()) key["tools"] = p.tools;
  if (!p.tool_choice.is_null()) key["tool_choice"] = p.tool_choice;
  if (p.grounded_strictly) key["grounded_strictly"] = true;
  if (p.extra.is_object()) {
    for (const auto& [field, value] : p.extra.items()) {
      if (!answer_neutral(field)) key["extra"][field] = value;
    }
  }
  return "x:" + turn.actor.tenant_id + ":" + hex_sha256(dump(key));
}

void apply_request_directives(std::optional<std::string_view> cache_control, chat::Turn& turn) {
  if (!cache_control) return;
  std::string lower(*cache_control);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  turn.cache.no_cache = lower.find("no-cache") != std::string::npos;
  turn.cache.no_store = lower.find("no-store") != std::string::npos;
}

void add_response_headers(const chat::Turn& turn, http::HeaderList& headers) {
  if (turn.cache.status.empty()) return;
  headers.emplace_back("X-Parley-Cache", turn.cache.status);
  if (turn.cache.status == "hit") headers.emplace_back("X-Parley-Cache-Match", turn.cache.match);
}

nlohmann::json cache_json(const chat::Turn& turn) {
  if (turn.cache.status.empty()) return nullptr;
  json out = {{"status", turn.cache.status}};
  if (turn.cache.status == "hit") {
    out["match"] = turn.cache.match;
    out["similarity"] = turn.cache.similarity;
  }
  return out;
}

}  // namespace parley::cache
