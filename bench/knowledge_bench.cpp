// Knowledge-base benchmark: ingestion throughput with the built-in embedder, index catch-up,
// hybrid search latency (ordinary and common-word queries, and with a filter matching 1% of
// the documents), and the recall@10 of the nearest-neighbour side against exact search.
//
// The corpus is generated: Markdown documents on 64 topics, whose words come from their
// topic's words and from the whole vocabulary by a Zipf law (so some words are in most chunks,
// as "the" and "configure" are in real documentation). It measures speed, not answer quality (that
// is docs/benchmarks.md's evaluation set).
//
// Usage: parley_knowledge_bench [--chunks N] [--queries N] [--dir DIR]
// Prints a Markdown table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "knowledge/embed/hashed_embedder.hpp"
#include "knowledge/extract/extract.hpp"
#include "knowledge/index/index_manager.hpp"
#include "knowledge/ingest.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"

namespace {

using namespace parley;
using Clock = std::chrono::steady_clock;

struct Options {
  int chunks = 100'000;
  int queries = 1'000;
  std::string dir;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto i = static_cast<size_t>(std::min<double>(values.size() - 1, p * values.size()));
  return values[i];
}

// Documents about topics: each document has one of 64 topics, and its words come half from
// the topic's own 300 words and half from the whole vocabulary by a Zipf law (so some words are
// in nearly every chunk). Queries are drawn the same way, so they have true neighbours.
class Corpus {
 public:
  Corpus(uint32_t vocabulary_seed, uint32_t sample_seed) : rng_(vocabulary_seed) {
    std::uniform_int_distribution<int> length(3, 10);
    std::uniform_int_distribution<int> letter('a', 'z');
    for (int i = 0; i < 20'000; ++i) {
      std::string w;
      const int n = length(rng_);
      for (int k = 0; k < n; ++k) w += static_cast<char>(letter(rng_));
      words_.push_back(w);
    }
    std::vector<double> weights;
    for (size_t i = 0; i < words_.size(); ++i) weights.push_back(1.0 / static_cast<double>(i + 1));
    zipf_ = std::discrete_distribution<size_t>(weights.begin(), weights.end());
    std::uniform_int_distribution<size_t> any(100, words_.size() - 1);
    topics_.resize(64);
    for (auto& topic : topics_) {
      for (int i = 0; i < 300; ++i) topic.push_back(any(rng_));
    }
    rng_.seed(sample_seed);
  }

  std::string word(size_t topic) {
    if (rng_() % 2 == 0) return words_[topics_[topic][rng_() % topics_[topic].size()]];
    return words_[zipf_(rng_)];
  }
  size_t topic() { return rng_() % topics_.size(); }
  const std::string& common(size_t i) const { return words_[i]; }

  std::string sentence(size_t topic, int words) {
    std::string s;
    for (int i = 0; i < words; ++i) {
      if (i > 0) s += ' ';
      s += word(topic);
    }
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s + ".";
  }

  // A Markdown document of `sections` sections of about 300 words each (one chunk each at
  // the default chunk size), on one topic.
  std::string document(int sections) {
    const size_t t = topic();
    std::string doc;
    for (int s = 0; s < sections; ++s) {
      doc += "# " + word(t) + " " + word(t) + "\n\n";
      for (int p = 0; p < 3; ++p) {
        for (int k = 0; k < 6; ++k) doc += sentence(t, 16) + " ";
        doc += "\n\n";
      }
    }
    return doc;
  }

 private:
  std::mt19937 rng_;
  std::vector<std::string> words_;
  std::discrete_distribution<size_t> zipf_;
  std::vector<std::vector<size_t>> topics_;
};

int run(const Options& options) {
  namespace fs = std::filesystem;
  const std::string dir = options.dir.empty()
                              ? (fs::temp_directory_path() / "parley-knowledge-bench").string()
                              : options.dir;
  fs::remove_all(dir);
  fs::create_directories(dir);
  store::StorageSettings settings;
  settings.url = "sqlite://" + dir + "/parley.db";
  auto opened = store::open(settings, {});
  if (!opened) {
    std::fprintf(stderr, "cannot open the store: %s\n", opened.error().message.c_str());
    return 1;
  }
  auto& storage = **opened;
  auto& repo = storage.knowledge();
  knowledge::KnowledgeSettings ks;
  knowledge::HashedEmbedder embedder(ks.embedding_dimension);
  auto base =
      repo.create_base({"bench", "Bench", "", embedder.name(), embedder.dimension(),
                        knowledge::base_settings_json({{ks.chunk_tokens, ks.chunk_overlap}}), "{}"},
                       0);
  if (!base) return 1;

  // --- Ingestion: files stored, then each document through the job's handler ---------------
  Corpus corpus(42, 1);
  constexpr int kSectionsPerDocument = 50;
  const int documents = std::max(1, options.chunks / kSectionsPerDocument);
  std::vector<std::pair<std::string, std::string>> queued;  // document, file
  for (int d = 0; d < documents; ++d) {
    const std::string content = corpus.document(kSectionsPerDocument);
    const std::string product = d % 100 == 0 ? "rare" : "common";  // 1% of documents
    auto file = repo.put_file({"bench", "", "doc" + std::to_string(d) + ".md", "knowledge",
                               "sha" + std::to_string(d), content},
                              0);
    auto doc = repo.add_document(
        {base->id, "bench", file->id, file->filename, R"({"product":")" + product + R"("})"}, 0);
    queued.emplace_back(doc->document.id, file->id);
  }
  knowledge::IngestDeps deps{
      repo,
      parley::Clock::system(),
      ks,
      [](std::string_view bytes, std::string_view name) { return knowledge::extract(bytes, name); },
      [&](const std::vector<std::string>& texts) -> Result<knowledge::Vectors> {
        return embedder.embed_now(texts);
      },
      {}};
  auto handler = knowledge::ingest_handler(deps);
  const auto ingest_start = Clock::now();
  for (const auto& [doc, file] : queued) {
    store::Job job;
    job.payload_json = R"({"document_id":")" + doc + R"(","file_id":")" + file + R"("})";
    job.attempts = 1;
    auto r = handler(job);
    if (!r || r->value("status", "") != "ready") {
      std::fprintf(stderr, "ingestion failed: %s\n",
                   r ? r->dump().c_str() : r.error().message.c_str());
      return 1;
    }
  }
  const double ingest_seconds = seconds_since(ingest_start);
  const int64_t chunks = repo.get_base(base->id)->chunks;

  // --- Index catch-up ------------------------------------------------------------------------
  knowledge::IndexOptions io;
  io.directory = dir + "/index";
  io.sync_interval = std::chrono::hours(1);
  knowledge::IndexManager manager(repo, io);
  const auto index_start = Clock::now();
  if (auto r = manager.start(); !r) {
    std::fprintf(stderr, "index: %s\n", r.error().message.c_str());
    return 1;
  }
  const double index_seconds = seconds_since(index_start);
  auto index = manager.base(base->id);

  // --- Search latency -----------------------------------------------------------------------
  const auto latencies = [&](auto make_request) {
    std::vector<double> ms;
    for (int q = 0; q < options.queries; ++q) {
      knowledge::SearchRequest request = make_request(q);
      const auto start = Clock::now();
      const auto v = embedder.embed_now({request.query});
      request.query_vector.assign(v.values.begin(), v.values.end());
      const auto hits = index->search(request);
      ms.push_back(seconds_since(start) * 1000);
      if (hits.empty()) std::fprintf(stderr, "no hits for %s\n", request.query.c_str());
    }
    return ms;
  };
  Corpus queries(42, 7);
  const auto ordinary = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = queries.sentence(queries.topic(), 6);
    return r;
  });
  const auto common_words = latencies([&](int q) {
    knowledge::SearchRequest r;
    r.query = corpus.common(static_cast<size_t>(q % 5)) + " " + corpus.common(1 + q % 3) + " " +
              corpus.common(static_cast<size_t>(q % 2));
    return r;
  });
  const auto vector_only = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = queries.sentence(queries.topic(), 6);
    r.mode = knowledge::SearchMode::kVector;
    return r;
  });
  const auto lexical_only = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = queries.sentence(queries.topic(), 6);
    r.mode = knowledge::SearchMode::kLexical;
    return r;
  });
  const auto no_highlight = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = queries.sentence(queries.topic(), 6);
    r.highlight_length = 0;
    return r;
  });
  const auto filtered = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = queries.sentence(queries.topic(), 6);
    r.filter =
        knowledge::Filter::parse({{"type", "eq"}, {"key", "product"}, {"value", "rare"}}).value();
    return r;
  });

  // --- Recall@10 of the graph walk against exact search, by beam width ------------------
  const int recall_queries = std::min(options.queries, 200);
  std::vector<std::vector<float>> recall_set;
  for (int q = 0; q < recall_queries; ++q) {
    const auto v = embedder.embed_now({queries.sentence(queries.topic(), 6)});
    recall_set.emplace_back(v.values.begin(), v.values.end());
  }
  std::vector<std::pair<size_t, double>> recall;  // (ef, recall@10)
  for (size_t ef : {size_t{64}, size_t{128}, size_t{256}}) {
    double found = 0;
    for (const auto& query : recall_set) {
      const auto exact = index->vectors().exact(query, 10);
      knowledge::VectorSearch vs;
      vs.k = 10;
      vs.ef = ef;
      const auto approx = index->vectors().search(query, vs);
      std::set<uint64_t> truth;
      for (const auto& h : exact) truth.insert(h.label);
      for (const auto& h : approx) found += truth.contains(h.label) ? 1 : 0;
    }
    recall.emplace_back(ef, found / (recall_queries * 10.0));
  }
  manager.stop();

  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| chunks | %lld |\n", static_cast<long long>(chunks));
  std::printf("| ingestion (extract, chunk, embed, store), chunks/s | %.0f |\n",
              static_cast<double>(chunks) / ingest_seconds);
  std::printf("| index build from the database, chunks/s | %.0f |\n",
              static_cast<double>(chunks) / index_seconds);
  std::printf("| hybrid search p50 / p99, ms | %.2f / %.2f |\n", percentile(ordinary, 0.5),
              percentile(ordinary, 0.99));
  std::printf("| vector side only / lexical side only, p50, ms | %.2f / %.2f |\n",
              percentile(vector_only, 0.5), percentile(lexical_only, 0.5));
  std::printf("| hybrid search without highlights, p50 / p99, ms | %.2f / %.2f |\n",
              percentile(no_highlight, 0.5), percentile(no_highlight, 0.99));
  std::printf("| hybrid search, common words only, p50 / p99, ms | %.2f / %.2f |\n",
              percentile(common_words, 0.5), percentile(common_words, 0.99));
  std::printf("| hybrid search, filter matching 1%% of documents, p50 / p99, ms | %.2f / %.2f |\n",
              percentile(filtered, 0.5), percentile(filtered, 0.99));
  for (const auto& [ef, r] : recall) {
    std::printf("| recall@10 of the HNSW side against exact search, beam %zu | %.3f |\n", ef, r);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--chunks") options.chunks = std::stoi(argv[i + 1]);
    if (flag == "--queries") options.queries = std::stoi(argv[i + 1]);
    if (flag == "--dir") options.dir = argv[i + 1];
  }
  return run(options);
}
