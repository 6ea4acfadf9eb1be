#include "memory/recall.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "knowledge/chunk/tokens.hpp"
#include "knowledge/embed/embedders.hpp"
#include "memory/recall_index.hpp"
#include "obs/log.hpp"

namespace parley::memory {
namespace {

// How many of the user's memories one recall reads and scores while the index is being built
// (the newest).
constexpr int kReadLimit = 2000;
// Candidates the index proposes for each memory recall may keep: choose() reads their texts,
// and keeps the best that fit the budget.
constexpr size_t kCandidatesPerMemory = 4;
constexpr size_t kMinCandidates = 32;

bool in_scope(const store::Memory& m, const std::string& assistant, const std::string& session) {
  return (m.assistant.empty() || m.assistant == assistant) &&
         (m.session_id.empty() || m.session_id == session);
}

class Recall final : public chat::Stage {
 public:
  explicit Recall(RecallDeps deps) : deps_(std::move(deps)) {}
  const char* name() const override { return "recall"; }
  bool applies(const chat::Turn& turn) const override {
    return turn.stored != nullptr && turn.assistant != nullptr && turn.assistant->memory_recall;
  }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    if (deps_.index && deps_.index->ready()) return from_index(deps_, turn);
    return from_database(deps_, turn);
  }

 private:
  // The message's vector, when some memory has one to compare it with; nullopt otherwise (or
  // when it cannot be embedded: words alone decide).
  static Task<std::optional<std::vector<float>>> embed(RecallDeps& deps, chat::Turn& turn) {
    if (!deps.embedders) co_return std::nullopt;
    const int64_t dimension = deps.embedders->dimension_for(deps.embedder);
    auto query =
        co_await deps.embedders->embed_query(deps.embedder, dimension, turn.stored->content);
    if (!query) {
      log::warn("message not embedded for recall; words alone decide",
                {{"request_id", turn.request_id}, {"error", query.error().message}});
      co_return std::nullopt;
    }
    co_return std::move(*query);
  }

  static Task<Result<chat::Flow>> from_index(RecallDeps& deps, chat::Turn& turn) {
    const store::Session& session = turn.stored->started.session;
    if (session.user_id.empty()) co_return chat::Flow::kContinue;
    const ChooseOptions options = recall_options(*turn.assistant);
    const int64_t now = to_unix_ms(deps.clock.now());
    RecallSearch search{
        session.tenant_id,
        session.user_id,
        turn.assistant->name,
        session.id,
        nullptr,
        turn.stored->content,
        options.kinds,
        options.min_similarity,
        options.always_standing,
        now,
        std::max(kMinCandidates, kCandidatesPerMemory * static_cast<size_t>(options.top_k))};
    struct Found {
      std::vector<RecallHit> hits;
      std::vector<store::Memory> memories;
      bool needs_vector = false;  // the message must be embedded on the event loop first
    };
    // The best candidates, read back from the record.
    auto find = [&]() -> Result<Found> {
      Found out;
      out.hits = deps.index->search(search);
      if (out.hits.empty()) return out;
      std::vector<int64_t> seqs;
      seqs.reserve(out.hits.size());
      for (const auto& h : out.hits) seqs.push_back(h.seq);
      auto live = deps.storage.memories().live_by_seq(seqs, now);
      if (!live) return live.error();
      out.memories = std::move(*live);
      return out;
    };
    // What any replica wrote before this turn counts in it. The message is embedded when the
    // user has memories with vectors to compare it with: here with the built-in embedder, so
    // the whole recall is one trip to the blocking pool; a remote one's answer is awaited on
    // the event loop between two.
    const bool embeds_here =
        deps.embedders != nullptr && deps.embedder == knowledge::kBuiltinEmbedder;
    std::vector<float> vector;
    auto found = co_await deps.blocking.run([&]() -> Result<Found> {
      if (auto synced = deps.index->sync(); !synced) {
        log::warn("memory recall index not caught up; recalling from what it holds",
                  {{"request_id", turn.request_id}, {"error", synced.error().message}});
      }
      if (deps.embedders != nullptr &&
          deps.index->has_vectors(session.tenant_id, session.user_id)) {
        if (!embeds_here) return Found{{}, {}, true};
        auto embedded = deps.embedders->embed_blocking(
            deps.embedder, deps.embedders->dimension_for(deps.embedder), {turn.stored->content});
        if (embedded && embedded->size() == 1) {
          const auto row = embedded->row(0);
          vector.assign(row.begin(), row.end());
          search.vector = &vector;
        } else {
          log::warn("message not embedded for recall; words alone decide",
                    {{"request_id", turn.request_id},
                     {"error", embedded ? "no vector" : embedded.error().message}});
        }
      }
      return find();
    });
    if (found && found->needs_vector) {
      auto embedded = co_await embed(deps, turn);
      if (embedded) {
        vector = std::move(*embedded);
        search.vector = &vector;
      }
      found = co_await deps.blocking.run(find);
    }
    if (!found) {
      // Remembering is a help, not a condition: the turn goes on without it.
      log::warn("memories not recalled",
                {{"request_id", turn.request_id}, {"error", found.error().message}});
      co_return chat::Flow::kContinue;
    }
    std::unordered_map<int64_t, double> similarity;
    for (const auto& h : found->hits) similarity.emplace(h.seq, h.similarity);
    std::vector<RecallCandidate> candidates;
    for (const auto& m : found->memories) {
      if (m.tenant_id != session.tenant_id || m.user_id != session.user_id) continue;
      if (!in_scope(m, turn.assistant->name, session.id)) continue;
      candidates.push_back({&m, similarity.at(m.seq)});
    }
    turn.stored->memories = choose(candidates, turn.stored->content, options, now);
    co_return chat::Flow::kContinue;
  }

  static Task<Result<chat::Flow>> from_database(RecallDeps& deps, chat::Turn& turn) {
    const store::Session& session = turn.stored->started.session;
    if (session.user_id.empty()) co_return chat::Flow::kContinue;
    const int64_t now = to_unix_ms(deps.clock.now());
    auto memories = co_await deps.blocking.run([&] {
      return deps.storage.memories().user_memories(session.tenant_id, session.user_id, kReadLimit,
                                                   now);
    });
    if (!memories) {
      log::warn("memories not recalled",
                {{"request_id", turn.request_id}, {"error", memories.error().message}});
      co_return chat::Flow::kContinue;
    }
    std::vector<RecallCandidate> candidates;
    bool any_vector = false;
    for (const auto& m : *memories) {
      if (!in_scope(m, turn.assistant->name, session.id)) continue;
      candidates.push_back({&m, -1});
      any_vector = any_vector || (!m.vector.empty() && m.embedder == deps.embedder);
    }
    if (candidates.empty()) co_return chat::Flow::kContinue;
    if (any_vector) {
      auto query = co_await embed(deps, turn);
      if (query) {
        for (auto& c : candidates) {
          if (c.memory->embedder == deps.embedder) c.similarity = cosine(*query, c.memory->vector);
        }
      }
    }
    turn.stored->memories =
        choose(candidates, turn.stored->content, recall_options(*turn.assistant), now);
    co_return chat::Flow::kContinue;
  }

  RecallDeps deps_;
};

}  // namespace

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return -1;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na == 0 || nb == 0) return -1;
  return dot / std::sqrt(na * nb);
}

ChooseOptions recall_options(const chat::Assistant& assistant) {
  return {assistant.memory_top_k, assistant.memory_max_tokens, assistant.memory_min_similarity,
          true, assistant.memory_kinds};
}

std::vector<chat::RecalledMemory> choose(const std::vector<RecallCandidate>& candidates,
                                         const std::string& message, const ChooseOptions& options,
                                         int64_t now_ms) {
  const std::vector<uint32_t> asked = word_ids(message);
  struct Scored {
    const store::Memory* memory;
    double relevance;
    double rank;
  };
  std::vector<Scored> scored;
  for (const auto& c : candidates) {
    const store::Memory& m = *c.memory;
    if (!options.kinds.empty() &&
        std::find(options.kinds.begin(), options.kinds.end(), m.kind) == options.kinds.end()) {
      continue;
    }
    double lexical = 0;
    if (!asked.empty()) {
      const std::vector<uint32_t> held = word_ids(m.text);
      lexical = static_cast<double>(shared_words(asked, held.data(), held.size())) /
                static_cast<double>(asked.size());
    }
    const double relevance = std::max(c.similarity, lexical);
    const bool always = options.always_standing && is_standing_kind(m.kind);
    if (!always && relevance < options.min_similarity) continue;
    scored.push_back(
        {&m, relevance, recall_rank(relevance, m.importance, m.updated_at_ms, now_ms)});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const Scored& a, const Scored& b) { return a.rank > b.rank; });
  std::vector<chat::RecalledMemory> out;
  int64_t tokens = 0;
  for (const auto& s : scored) {
    if (static_cast<int>(out.size()) >= options.top_k) break;
    const int64_t cost = knowledge::count_tokens(s.memory->text) + 2;
    if (tokens + cost > options.max_tokens) continue;
    tokens += cost;
    out.push_back({s.memory->id, s.memory->text, s.memory->kind, s.rank});
  }
  return out;
}

std::unique_ptr<chat::Stage> recall_stage(RecallDeps deps) {
  return std::make_unique<Recall>(std::move(deps));
}

}  // namespace parley::memory
