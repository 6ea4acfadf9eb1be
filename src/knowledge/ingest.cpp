// The ingestion job (see ingest.hpp).
#include "knowledge/ingest.hpp"

#include <nlohmann/json.hpp>

#include "knowledge/embed/embedders.hpp"
#include "knowledge/extract/extract.hpp"
#include "knowledge/reembed.hpp"
#include "llm/accounting.hpp"
#include "obs/log.hpp"

namespace parley::knowledge {

namespace {

using nlohmann::json;

constexpr std::chrono::milliseconds kProgressEvery{250};

// Errors that retrying cannot fix: the file itself is the problem.
bool permanent(const Error& e) {
  return e.code == ErrorCode::kInvalidArgument || e.code == ErrorCode::kTooLarge ||
         e.code == ErrorCode::kUnprocessable || e.code == ErrorCode::kUnsupportedMedia;
}

class Ingestion {
 public:
  Ingestion(const IngestDeps& deps, const store::Job& job) : deps_(deps), job_(job) {}

  Result<json> run() {
    json payload = json::parse(job_.payload_json, nullptr, false);
    if (!payload.is_object() || !payload.contains("document_id") ||
        !payload["document_id"].is_string()) {
      return Error::invalid("the payload names no document_id");
    }
    const std::string document_id = payload["document_id"];
    const std::string file_id = payload.value("file_id", "");
    auto doc = deps_.repository.get_document(document_id);
    if (!doc && doc.error().code == ErrorCode::kNotFound) return skipped("document deleted");
    if (!doc) return std::move(doc).error();
    if (doc->file_id != file_id) return skipped("document replaced");
    document_ = std::move(doc).value();

    auto result = ingest();
    if (result) return result;
    const Error& error = result.error();
    if (error.reason == "document_changed" || error.code == ErrorCode::kNotFound) {
      return skipped("document deleted or replaced while ingesting");
    }
    if (permanent(error) || job_.attempts >= job_.max_attempts) {
      std::string message = error.message;
      if (!permanent(error)) {
        message = "gave up after " + std::to_string(job_.attempts) + " attempts: " + message;
      }
      auto failed = deps_.repository.fail_document(document_.id, error.reason, message, now());
      if (!failed && failed.error().code != ErrorCode::kNotFound) return std::move(failed).error();
      log::info(
          "document failed",
          {{"document_id", document_.id}, {"kb_id", document_.kb_id}, {"reason", error.reason}});
      return json{{"document_id", document_.id}, {"status", "failed"}, {"reason", error.reason}};
    }
    return error;  // retried
  }

 private:
  Result<json> ingest() {
    auto base = deps_.repository.get_base_brief(document_.kb_id);
    if (!base) return std::move(base).error();
    auto settings = parse_base_settings(base->settings_json, deps_.settings);
    if (!settings) return std::move(settings).error();

    if (auto r = progress({{"stage", "extracting"}}, true); !r) return std::move(r).error();
    auto bytes = deps_.repository.file_content(document_.file_id);
    if (!bytes) return std::move(bytes).error();
    auto extracted = deps_.extract(*bytes, document_.name);
    if (!extracted) return std::move(extracted).error();
    bytes->clear();
    bytes->shrink_to_fit();

    const std::vector<Chunk> chunks = chunk_document(*extracted, settings->chunking);
    if (chunks.empty())
      return Error::invalid("the document has no text to index", "document_empty");
    if (auto r =
            progress({{"stage", "embedding"}, {"chunks", chunks.size()}, {"embedded", 0}}, true);
        !r) {
      return std::move(r).error();
    }

    store::ChunkCommit commit;
    commit.document_id = document_.id;
    commit.file_id = document_.file_id;
    commit.embedder = base->embedder;
    int64_t embedding_tokens = 0;
    commit.format = std::string(format_name(extracted->format));
    commit.pages = extracted->pages;
    commit.chunks.reserve(chunks.size());
    const size_t batch = static_cast<size_t>(std::max(1, deps_.settings.embed_batch));
    std::vector<std::string> texts;
    for (size_t first = 0; first < chunks.size(); first += batch) {
      const size_t last = std::min(chunks.size(), first + batch);
      texts.clear();
      for (size_t i = first; i < last; ++i) {
        const Chunk& c = chunks[i];
        texts.push_back(embedding_text(
            c.section, std::string_view(extracted->text).substr(c.start, c.end - c.start)));
      }
      auto vectors = deps_.embed(base->embedder, base->dimension, texts);
      if (!vectors) return std::move(vectors).error();
      embedding_tokens += vectors->input_tokens;
      if (vectors->size() != texts.size()) {
        return Error::bad_gateway("the embedder returned " + std::to_string(vectors->size()) +
                                  " vectors for " + std::to_string(texts.size()) + " texts");
      }
      for (size_t i = first; i < last; ++i) {
        const Chunk& c = chunks[i];
        store::NewChunk chunk;
        chunk.ordinal = static_cast<int64_t>(i);
        chunk.text = extracted->text.substr(c.start, c.end - c.start);
        chunk.section = c.section;
        chunk.page = c.page;
        chunk.page_end = c.page_end;
        chunk.start_offset = static_cast<int64_t>(c.start);
        chunk.end_offset = static_cast<int64_t>(c.end);
        chunk.tokens = c.tokens;
        const auto row = vectors->row(i - first);
        chunk.vector.assign(row.begin(), row.end());
        commit.chunks.push_back(std::move(chunk));
      }
      if (auto r = progress({{"stage", "embedding"}, {"chunks", chunks.size()}, {"embedded", last}},
                            false);
          !r) {
        return std::move(r).error();
      }
    }
    if (auto r = progress({{"stage", "storing"}, {"chunks", chunks.size()}}, true); !r) {
      return std::move(r).error();
    }
    // Paid for once embedded, whether or not the commit below succeeds.
    if (deps_.book_usage && embedding_tokens > 0) {
      deps_.book_usage(base->tenant_id, base->embedder, embedding_tokens);
    }
    if (auto r = deps_.repository.commit_chunks(commit, now()); !r) return std::move(r).error();
    if (deps_.committed) deps_.committed();
    log::info("document ingested", {{"document_id", document_.id},
                                    {"kb_id", document_.kb_id},
                                    {"format", commit.format},
                                    {"chunks", static_cast<int64_t>(commit.chunks.size())}});
    return json{{"document_id", document_.id},
                {"status", "ready"},
                {"format", commit.format},
                {"chunks", commit.chunks.size()}};
  }

  // Records the stage; `always` or at most every kProgressEvery.
  Result<void> progress(const json& state, bool always) {
    const auto at = deps_.clock.steady_now();
    if (!always && at - last_progress_ < kProgressEvery) return success();
    last_progress_ = at;
    return deps_.repository.set_progress(document_.id, state.dump(), now());
  }

  json skipped(std::string_view why) const { return json{{"status", "skipped"}, {"reason", why}}; }

  int64_t now() const { return to_unix_ms(deps_.clock.now()); }

  const IngestDeps& deps_;
  const store::Job& job_;
  store::KnowledgeDocument document_;
  std::chrono::steady_clock::time_point last_progress_{};
};

}  // namespace

store::NewJob ingest_job(std::string_view document_id, std::string_view file_id) {
  json payload = {{"document_id", document_id}, {"file_id", file_id}};
  return store::NewJob{std::string(kIngestJob), payload.dump(), 0, 5, ""};
}

Result<BaseSettings> parse_base_settings(std::string_view text, const KnowledgeSettings& defaults) {
  BaseSettings out;
  out.chunking.max_tokens = defaults.chunk_tokens;
  out.chunking.overlap_tokens = defaults.chunk_overlap;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  if (auto c = j.find("chunking"); c != j.end() && c->is_object()) {
    if (auto v = c->find("max_tokens"); v != c->end() && v->is_number_integer()) {
      out.chunking.max_tokens = v->get<int64_t>();
    }
    if (auto v = c->find("overlap_tokens"); v != c->end() && v->is_number_integer()) {
      out.chunking.overlap_tokens = v->get<int64_t>();
    }
  }
  if (auto r = validate(out.chunking); !r) return std::move(r).error();
  return out;
}

std::string base_settings_json(const BaseSettings& settings) {
  return json{{"chunking",
               {{"max_tokens", settings.chunking.max_tokens},
                {"overlap_tokens", settings.chunking.overlap_tokens}}}}
      .dump();
}

std::string embedding_text(const std::string& section, std::string_view text) {
  if (section.empty()) return std::string(text);
  std::string out = section;
  out += '\n';
  out += text;
  return out;
}

queue::Handler ingest_handler(IngestDeps deps) {
  return [deps = std::move(deps)](const store::Job& job) -> Result<nlohmann::json> {
    return Ingestion(deps, job).run();
  };
}

EmbedUsageFn book_embedding_usage(llm::Accountant& accountant, const Clock& clock) {
  return [&accountant, &clock](const std::string& tenant_id, const std::string& embedder,
                               int64_t input_tokens) {
    store::UsageRecord r;
    r.at_ms = to_unix_ms(clock.now());
    r.tenant_id = tenant_id;
    r.source = "knowledge";
    r.model = embedder;
    r.input_tokens = input_tokens;
    r.cost_usd = accountant.models().cost(embedder, input_tokens, 0);
    r.status = "ok";
    accountant.enqueue(std::move(r));
  };
}

void add_knowledge_jobs(queue::Worker& worker, store::Storage& storage, const Clock& clock,
                        const KnowledgeSettings& settings, Embedders& embedders,
                        std::function<void()> committed, EmbedUsageFn book_usage) {
  ExtractLimits limits;
  limits.max_text_bytes = settings.max_text_size;
  limits.max_pages = settings.max_pages;
  IngestDeps deps{storage.knowledge(),
                  clock,
                  settings,
                  [limits](std::string_view bytes, std::string_view name) {
                    return extract(bytes, name, limits);
                  },
                  [&embedders](const std::string& embedder, int64_t dimension,
                               const std::vector<std::string>& texts) -> Result<Vectors> {
                    return embedders.embed_blocking(embedder, dimension, texts);
                  },
                  std::move(committed),
                  std::move(book_usage)};
  worker.handle(std::string(kReembedJob), reembed_handler(deps));
  worker.handle(std::string(kIngestJob), ingest_handler(std::move(deps)));
}

}  // namespace parley::knowledge
