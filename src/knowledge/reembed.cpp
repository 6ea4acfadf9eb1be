// The re-embedding job (see reembed.hpp).
#include "knowledge/reembed.hpp"

#include <nlohmann/json.hpp>

#include "obs/log.hpp"

namespace parley::knowledge {

namespace {

using nlohmann::json;

constexpr int kReadPage = 512;  // chunks read per query
constexpr int kRounds = 20;     // swaps refused for new chunks before the job is retried later

json skipped(std::string_view why) { return json{{"status", "skipped"}, {"reason", why}}; }

class Reembedding {
 public:
  Reembedding(const IngestDeps& deps, std::string kb_id, std::string embedder)
      : deps_(deps), kb_id_(std::move(kb_id)), embedder_(std::move(embedder)) {}

  Result<json> run() {
    auto base = deps_.repository.get_base_brief(kb_id_);
    if (!base && base.error().code == ErrorCode::kNotFound)
      return skipped("knowledge base deleted");
    if (!base) return std::move(base).error();
    if (base->next_embedder != embedder_) return skipped("embedder changed again or cancelled");
    tenant_ = base->tenant_id;
    for (int round = 0; round < kRounds; ++round) {
      if (auto r = embed_missing(); !r) return stopped(std::move(r).error());
      if (dimension_ == 0) {
        // No chunks: the built-in embedder still names its dimension; a remote one's is learnt
        // from the base's first document.
        auto none = deps_.embed(embedder_, 0, {});
        if (none) dimension_ = none->dimension;
      }
      const int64_t now = to_unix_ms(deps_.clock.now());
      auto finished = deps_.repository.finish_reembed(kb_id_, embedder_, dimension_, now);
      if (finished) {
        if (deps_.committed) deps_.committed();
        log::info("knowledge base re-embedded", {{"kb_id", kb_id_},
                                                 {"embedder", embedder_},
                                                 {"dimension", dimension_},
                                                 {"chunks", embedded_}});
        return json{{"kb_id", kb_id_},
                    {"status", "done"},
                    {"embedder", embedder_},
                    {"dimension", dimension_},
                    {"chunks", embedded_}};
      }
      if (finished.error().reason != "reembed_incomplete") {
        return stopped(std::move(finished).error());
      }
    }
    return Error::unavailable("documents kept arriving while knowledge base '" + kb_id_ +
                              "' was re-embedded; trying again later");
  }

 private:
  Result<json> stopped(Error error) {
    if (error.reason == "embedder_changed") return skipped("embedder changed again or cancelled");
    if (error.code == ErrorCode::kNotFound) return skipped("knowledge base deleted");
    return error;
  }

  Result<void> embed_missing() {
    const size_t batch = static_cast<size_t>(std::max(1, deps_.settings.embed_batch));
    int64_t after = 0;
    for (;;) {
      auto chunks = deps_.repository.chunks_to_reembed(kb_id_, after, kReadPage);
      if (!chunks) return std::move(chunks).error();
      if (chunks->empty()) return success();
      after = chunks->back().seq;
      for (size_t first = 0; first < chunks->size(); first += batch) {
        const size_t last = std::min(chunks->size(), first + batch);
        std::vector<std::string> texts;
        texts.reserve(last - first);
        for (size_t i = first; i < last; ++i) {
          texts.push_back(embedding_text((*chunks)[i].section, (*chunks)[i].text));
        }
        auto vectors = deps_.embed(embedder_, 0, texts);
        if (!vectors) return std::move(vectors).error();
        if (vectors->size() != texts.size()) {
          return Error::bad_gateway("the embedder returned " + std::to_string(vectors->size()) +
                                    " vectors for " + std::to_string(texts.size()) + " texts");
        }
        if (dimension_ == 0) dimension_ = vectors->dimension;
        if (vectors->dimension != dimension_) {
          return Error::bad_gateway("the embedder changed its dimension from " +
                                    std::to_string(dimension_) + " to " +
                                    std::to_string(vectors->dimension));
        }
        if (deps_.book_usage && vectors->input_tokens > 0) {
          deps_.book_usage(tenant_, embedder_, vectors->input_tokens);
        }
        std::vector<std::pair<int64_t, std::vector<float>>> next;
        next.reserve(texts.size());
        for (size_t i = first; i < last; ++i) {
          const auto row = vectors->row(i - first);
          next.emplace_back((*chunks)[i].seq, std::vector<float>(row.begin(), row.end()));
        }
        if (auto r = deps_.repository.store_next_vectors(kb_id_, embedder_, next); !r) return r;
        embedded_ += static_cast<int64_t>(next.size());
      }
    }
  }

  const IngestDeps& deps_;
  std::string kb_id_;
  std::string embedder_;
  std::string tenant_;
  int64_t dimension_ = 0;  // learnt from the first vectors
  int64_t embedded_ = 0;
};

}  // namespace

store::NewJob reembed_job(std::string_view kb_id, std::string_view embedder) {
  json payload = {{"kb_id", kb_id}, {"embedder", embedder}};
  return store::NewJob{std::string(kReembedJob), payload.dump(), 0, 10, ""};
}

queue::Handler reembed_handler(IngestDeps deps) {
  return [deps = std::move(deps)](const store::Job& job) -> Result<json> {
    const json payload = json::parse(job.payload_json, nullptr, false);
    if (!payload.is_object() || !payload.contains("kb_id") || !payload["kb_id"].is_string() ||
        !payload.contains("embedder") || !payload["embedder"].is_string()) {
      return Error::invalid("the payload names no kb_id and embedder");
    }
    return Reembedding(deps, payload["kb_id"], payload["embedder"]).run();
  };
}

}  // namespace parley::knowledge
