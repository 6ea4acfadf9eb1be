// The retrieve stage (see retrieve.hpp).
#include "knowledge/retrieve.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "chat/answer.hpp"
#include "knowledge/chunk/tokens.hpp"
#include "obs/log.hpp"
#include "store/common.hpp"

namespace parley::knowledge {

namespace {

Error base_not_found(const std::string& id) {
  Error e = store::knowledge_base_not_found(id);
  e.param = "knowledge_base_ids";
  return e;
}

// Whether the turn's user may have the base searched: one of the tenant's shared bases, or
// one of the user's own.
bool searchable_for(const chat::Turn& turn, const store::KnowledgeBase& base) {
  return base.tenant_id == turn.actor.tenant_id &&
         (base.owner_user_id.empty() || base.owner_user_id == turn.actor.user_id);
}

// The ids of the bases to search: the request's (each must be searchable for the turn's user)
// and the assistant's (ids or names; a missing one is skipped, and logged when `warn`).
Result<std::vector<store::KnowledgeBase>> resolve(store::KnowledgeRepository& repo,
                                                  const chat::Turn& turn, bool warn) {
  std::vector<store::KnowledgeBase> out;
  std::set<std::string> seen;
  const std::string& tenant = turn.actor.tenant_id;
  const auto add = [&](const store::KnowledgeBase& base) {
    if (seen.insert(base.id).second) out.push_back(base);
  };
  for (const auto& id : turn.knowledge_base_ids) {
    auto base = repo.get_base_brief(id);
    if (!base && base.error().code != ErrorCode::kNotFound) return std::move(base).error();
    if (!base || !searchable_for(turn, *base)) return base_not_found(id);
    add(*base);
  }
  std::optional<std::vector<store::KnowledgeBase>> tenant_bases;
  for (const auto& ref : turn.assistant->knowledge_bases) {
    auto base = repo.get_base_brief(ref);
    if (base && searchable_for(turn, *base)) {
      add(*base);
      continue;
    }
    if (!tenant_bases) {  // by name, among the tenant's shared bases
      tenant_bases.emplace();
      std::optional<std::string> cursor;
      do {
        auto page = repo.list_bases({tenant, std::nullopt, 100, cursor});
        if (!page) return std::move(page).error();
        for (auto& b : page->items) tenant_bases->push_back(std::move(b));
        cursor = page->next_cursor;
      } while (cursor);
    }
    // An operator's name for a base never means a user's own base of the same name.
    const auto named = std::find_if(
        tenant_bases->begin(), tenant_bases->end(),
        [&](const store::KnowledgeBase& b) { return b.owner_user_id.empty() && b.name == ref; });
    if (named == tenant_bases->end()) {
      if (!warn) continue;
      log::warn(
          "an assistant's knowledge base is missing",
          {{"assistant", turn.assistant->name}, {"knowledge_base", ref}, {"tenant_id", tenant}});
      continue;
    }
    add(*named);
  }
  return out;
}

bool names_bases(const chat::Turn& turn) {
  return turn.stored != nullptr && turn.assistant != nullptr &&
         (!turn.assistant->knowledge_bases.empty() || !turn.knowledge_base_ids.empty());
}

// A base the turn searches, with its index (a base nothing was ingested into has none).
struct Searched {
  store::KnowledgeBase base;
  std::shared_ptr<BaseIndex> index;
};

// The turn's bases that can be searched now. A base not rebuilt yet after a restart fails the
// turn (503, with when to retry): answered without it, a reply would miss what the documents
// say, unasked.
Task<Result<std::vector<Searched>>> ready_bases(RetrieveDeps& deps, const chat::Turn& turn,
                                                bool warn) {
  auto bases =
      co_await deps.blocking.run([&] { return resolve(deps.storage.knowledge(), turn, warn); });
  if (!bases) co_return std::move(bases).error();
  std::vector<Searched> searched;
  for (auto& base : *bases) {
    auto serving = deps.index.serving(base.id);
    if (!serving) co_return std::move(serving).error();
    if (*serving) searched.push_back({std::move(base), std::move(serving).value()});
  }
  co_return searched;
}

// Before the session is opened and the input recorded: a turn that names a base that does not
// exist, or one still being rebuilt, is refused with nothing stored, so that the client's
// retry is the first copy of the message, not a second.
class CheckKnowledge final : public chat::Stage {
 public:
  explicit CheckKnowledge(RetrieveDeps deps) : deps_(deps) {}
  const char* name() const override { return "check_knowledge"; }
  bool applies(const chat::Turn& turn) const override { return names_bases(turn); }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override { return check(deps_, turn); }

 private:
  static Task<Result<chat::Flow>> check(RetrieveDeps& deps, chat::Turn& turn) {
    auto ready = co_await ready_bases(deps, turn, true);
    if (!ready) co_return std::move(ready).error();
    co_return chat::Flow::kContinue;
  }

  RetrieveDeps deps_;
};

class Retrieve final : public chat::Stage {
 public:
  explicit Retrieve(RetrieveDeps deps) : deps_(deps) {}
  const char* name() const override { return "retrieve"; }
  bool applies(const chat::Turn& turn) const override { return names_bases(turn); }
  Task<Result<chat::Flow>> run(chat::Turn& turn) override { return retrieve(deps_, turn); }

 private:
  static Task<Result<chat::Flow>> retrieve(RetrieveDeps& deps, chat::Turn& turn) {
    const chat::Assistant& assistant = *turn.assistant;
    SearchRequest request;
    request.beam = static_cast<size_t>(deps.beam);
    request.query = turn.stored->content;
    request.k = static_cast<size_t>(std::max(1, assistant.retrieval_top_k));
    request.highlight_length = 0;  // a prompt has no use for them
    // Checked before the input was recorded (check_knowledge), and again: a base may have
    // been deleted since.
    auto ready = co_await ready_bases(deps, turn, false);
    if (!ready) co_return std::move(ready).error();
    const std::vector<Searched>& searched = *ready;
    // The question embedded once per embedder among the bases; one that fails (a remote
    // embedder down) leaves those bases to their lexical side.
    std::map<std::string, std::vector<float>> vectors;
    for (const auto& one_base : searched) {
      const auto& base = one_base.base;
      if (vectors.contains(base.embedder)) continue;
      auto vector =
          co_await deps.embedders.embed_query(base.embedder, base.dimension, request.query);
      if (!vector) {
        log::warn(
            "question not embedded; searching lexically",
            {{"kb_id", base.id}, {"embedder", base.embedder}, {"error", vector.error().message}});
      }
      vectors[base.embedder] = vector ? std::move(vector).value() : std::vector<float>();
    }
    struct Found {
      std::string kb_id;
      SearchHit hit;
    };
    std::vector<Found> found;
    for (const auto& one_base : searched) {
      SearchRequest one = request;
      one.query_vector = vectors[one_base.base.embedder];
      one.query_embedder = one_base.base.embedder;
      auto hits = co_await deps.blocking.run([&] { return one_base.index->search(one); });
      for (auto& h : hits) found.push_back({one_base.base.id, std::move(h)});
    }
    // The best across bases (fused scores are on one scale), within the token budget.
    std::stable_sort(found.begin(), found.end(),
                     [](const Found& a, const Found& b) { return a.hit.score > b.hit.score; });
    int64_t tokens = 0;
    for (const auto& f : found) {
      if (turn.citations.size() >= request.k) break;
      const bool relevant = f.hit.lexical_score.has_value() ||
                            f.hit.vector_score.value_or(-1) >= assistant.retrieval_min_similarity;
      if (!relevant) continue;
      const int64_t t = count_tokens(f.hit.text);
      if (tokens + t > assistant.retrieval_max_tokens) continue;
      tokens += t;
      chat::Citation c;
      c.number = static_cast<int>(turn.citations.size()) + 1;
      c.knowledge_base_id = f.kb_id;
      c.document_id = f.hit.document_id;
      c.document_name = f.hit.document_name;
      c.chunk_id = "chunk_" + std::to_string(f.hit.label);
      c.section = f.hit.section;
      c.page = f.hit.page;
      c.page_end = f.hit.page_end;
      c.start_offset = f.hit.start_offset;
      c.end_offset = f.hit.end_offset;
      c.score = f.hit.score;
      c.text = f.hit.text;
      turn.citations.push_back(std::move(c));
    }
    if (!turn.citations.empty() || assistant.grounding != "strict") co_return chat::Flow::kContinue;

    // Strict, and nothing to answer from: say so, without a model.
    co_await chat::answer_without_model(turn, std::string(kNoAnswerInDocuments), "parley",
                                        "knowledge-base");
    co_return chat::Flow::kAnswered;
  }

  RetrieveDeps deps_;
};

}  // namespace

std::unique_ptr<chat::Stage> retrieve_stage(RetrieveDeps deps) {
  return std::make_unique<Retrieve>(deps);
}

std::unique_ptr<chat::Stage> check_knowledge_stage(RetrieveDeps deps) {
  return std::make_unique<CheckKnowledge>(deps);
}

}  // namespace parley::knowledge
