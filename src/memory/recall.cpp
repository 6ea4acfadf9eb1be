#include "memory/recall.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "knowledge/chunk/tokens.hpp"
#include "knowledge/embed/embedders.hpp"
#include "obs/log.hpp"

namespace parley::memory {
namespace {

// How many of the user's memories one recall reads and scores. A user past it keeps the
// newest; the recall index (a later addition) lifts the limit.
constexpr int kReadLimit = 2000;
// Importance and recency break ties between memories about as relevant.
constexpr double kImportanceWeight = 0.3;
constexpr double kRecencyWeight = 0.2;
constexpr double kRecencyHalfLifeDays = 30;

std::set<std::string> words_of(const std::string& text) {
  std::set<std::string> out;
  std::string word;
  auto flush = [&] {
    if (word.size() >= 3) out.insert(word);
    word.clear();
  };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      word += static_cast<char>(std::tolower(u));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

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
  Task<Result<chat::Flow>> run(chat::Turn& turn) override { return recall(deps_, turn); }

 private:
  static Task<Result<chat::Flow>> recall(RecallDeps& deps, chat::Turn& turn) {
    const store::Session& session = turn.stored->started.session;
    if (session.user_id.empty()) co_return chat::Flow::kContinue;
    const int64_t now = to_unix_ms(deps.clock.now());
    auto memories = co_await deps.blocking.run([&] {
      return deps.storage.memories().user_memories(session.tenant_id, session.user_id, kReadLimit,
                                                   now);
    });
    if (!memories) {
      // Remembering is a help, not a condition: the turn goes on without it.
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
    if (any_vector && deps.embedders) {
      const int64_t dimension = deps.embedders->dimension_for(deps.embedder);
      auto query =
          co_await deps.embedders->embed_query(deps.embedder, dimension, turn.stored->content);
      if (query) {
        for (auto& c : candidates) {
          if (c.memory->embedder == deps.embedder) c.similarity = cosine(*query, c.memory->vector);
        }
      } else {
        log::warn("message not embedded for recall; words alone decide",
                  {{"request_id", turn.request_id}, {"error", query.error().message}});
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
          true};
}

std::vector<chat::RecalledMemory> choose(const std::vector<RecallCandidate>& candidates,
                                         const std::string& message, const ChooseOptions& options,
                                         int64_t now_ms) {
  const std::set<std::string> asked = words_of(message);
  struct Scored {
    const store::Memory* memory;
    double relevance;
    double rank;
  };
  std::vector<Scored> scored;
  for (const auto& c : candidates) {
    const store::Memory& m = *c.memory;
    double lexical = 0;
    if (!asked.empty()) {
      size_t shared = 0;
      for (const auto& w : words_of(m.text)) shared += asked.count(w);
      lexical = static_cast<double>(shared) / static_cast<double>(asked.size());
    }
    const double relevance = std::max(c.similarity, lexical);
    const bool always = options.always_standing && (m.kind == "profile" || m.kind == "instruction");
    if (!always && relevance < options.min_similarity) continue;
    const double age_days =
        static_cast<double>(std::max<int64_t>(0, now_ms - m.updated_at_ms)) / 86'400'000.0;
    const double recency = std::exp2(-age_days / kRecencyHalfLifeDays);
    scored.push_back(
        {&m, relevance,
         std::max(0.0, relevance) + kImportanceWeight * m.importance + kRecencyWeight * recency});
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
