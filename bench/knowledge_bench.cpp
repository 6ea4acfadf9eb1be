// Knowledge-base benchmark: ingestion throughput with the built-in embedder, the index build
// from the database and its catch-up from the change log (additions and removals), hybrid
// search latency (ordinary and common-word queries, and with a filter matching 1% of
// the documents), and the recall@10 of the nearest-neighbour side against exact search.
//
// The corpus is generated (Corpus below): Markdown documents organised as documentation is, by
// topic, document and section, with common words in most chunks; questions ask about one
// section. It measures speed and the nearest-neighbour side's recall, not answer quality
// (that is docs/benchmarks.md's evaluation set).
//
// Usage: parley_knowledge_bench [--chunks N] [--queries N] [--dir DIR] [--reuse 1] [--beam N]
//        [--catch-up 0|1]
//        parley_knowledge_bench --eval bench/eval/knowledge [--dir DIR]
// --reuse 1 searches what an earlier run left in DIR (no ingestion; no index build unless
// DIR/index was removed, when the build from the database is measured): for trying search
// and graph settings quickly. Prints a Markdown table. With --eval: the retrieval quality on
// the evaluation set (real- looking documents and questions, bench/eval/knowledge/README.md)
// instead: hit@1, hit@5 and MRR@5 of hybrid search and of each side alone, with the built-in
// embedder.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "knowledge/embed/hashed_embedder.hpp"
#include "knowledge/extract/extract.hpp"
#include "knowledge/index/index_manager.hpp"
#include "knowledge/ingest.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"

#include "measure.hpp"

namespace {

// The float cosine of two unit vectors: the reference the index's 8-bit codes are measured by.
float float_dot(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -2;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

using namespace parley;
using parley::bench::percentile;
using parley::bench::resident_bytes;
using Clock = std::chrono::steady_clock;

struct Options {
  int chunks = 100'000;
  int queries = 1'000;
  std::string dir;
  std::string eval;    // the evaluation set's folder: measure quality instead of speed
  bool reuse = false;  // search the store and indexes a previous run left in --dir
  size_t beam = 0;     // the searches' beam; 0: knowledge.search_beam's default
  // Measure the catch-up from the change log: by default only in a fresh run, since each
  // measure leaves its removed chunks in the graph as deleted nodes (hnswlib never reuses
  // them), which a store reused again would carry into its searches.
  std::optional<bool> catch_up;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Documentation as it is organised: 64 topics (products), each document about one topic and
// one subject of its own, each section about one thing of its own. A section's words come from
// the section's own 15 words (20%), the document's 60 (20%), the topic's 300 (25%), and the
// whole vocabulary by a Zipf law (35%: so some words are in nearly every chunk, as "the" and
// "configure" are in real documentation). The vocabulary grows with the corpus as Heaps' law
// has it for English text (30 × tokens^0.5: about 160,000 words at 100,000 chunks), so that a
// word's share of the chunks does not grow with the corpus. A question asks about one section: two
// of its words, one of its document's, one of its topic's and two common ones, as a person asking
// about a specific setting names it among ordinary words.
class Corpus {
 public:
  Corpus(uint32_t seed, int64_t chunks) : rng_(seed) {
    std::uniform_int_distribution<int> length(3, 10);
    std::uniform_int_distribution<int> letter('a', 'z');
    const auto tokens = static_cast<double>(chunks) * 300;
    const auto vocabulary = std::max<int64_t>(20'000, std::llround(30 * std::sqrt(tokens)));
    for (int64_t i = 0; i < vocabulary; ++i) {
      std::string w;
      const int n = length(rng_);
      for (int k = 0; k < n; ++k) w += static_cast<char>(letter(rng_));
      words_.push_back(w);
    }
    std::vector<double> weights;
    for (size_t i = 0; i < words_.size(); ++i) weights.push_back(1.0 / static_cast<double>(i + 1));
    zipf_ = std::discrete_distribution<uint32_t>(weights.begin(), weights.end());
    topics_.resize(64);
    for (auto& topic : topics_) topic = draw(300);
  }

  const std::string& common(size_t i) const { return words_[i]; }

  // A Markdown document of `sections` sections of about 300 words each (one chunk each at
  // the default chunk size).
  std::string document(int sections) {
    Document d;
    d.topic = rng_() % topics_.size();
    d.words = draw(60);
    std::string doc;
    for (int s = 0; s < sections; ++s) {
      d.sections.push_back(draw(15));
      const auto& own = d.sections.back();
      doc += "# " + words_[own[0]] + " " + words_[own[1]] + "\n\n";
      for (int p = 0; p < 3; ++p) {
        for (int k = 0; k < 6; ++k) {
          std::vector<uint32_t> sentence;
          for (int w = 0; w < 16; ++w) {
            const uint32_t roll = rng_() % 100;
            sentence.push_back(roll < 20   ? any_of(own, rng_)
                               : roll < 40 ? any_of(d.words, rng_)
                               : roll < 65 ? any_of(topics_[d.topic], rng_)
                                           : zipf_(rng_));
          }
          doc += text(sentence) + " ";
        }
        doc += "\n\n";
      }
    }
    documents_.push_back(std::move(d));
    return doc;
  }

  // A question about one section of the documents made so far.
  std::string question(std::mt19937& rng) {
    const auto& d = documents_[rng() % documents_.size()];
    const auto& section = d.sections[rng() % d.sections.size()];
    return text({any_of(section, rng), zipf_(rng), any_of(section, rng), any_of(d.words, rng),
                 zipf_(rng), any_of(topics_[d.topic], rng)});
  }

 private:
  struct Document {
    size_t topic = 0;
    std::vector<uint32_t> words;
    std::vector<std::vector<uint32_t>> sections;
  };

  static uint32_t any_of(const std::vector<uint32_t>& words, std::mt19937& rng) {
    return words[rng() % words.size()];
  }
  // n words past the 100 most common.
  std::vector<uint32_t> draw(int n) {
    std::uniform_int_distribution<uint32_t> any(100, static_cast<uint32_t>(words_.size() - 1));
    std::vector<uint32_t> out;
    for (int i = 0; i < n; ++i) out.push_back(any(rng_));
    return out;
  }
  std::string text(const std::vector<uint32_t>& sentence) const {
    std::string s;
    for (uint32_t w : sentence) {
      if (!s.empty()) s += ' ';
      s += words_[w];
    }
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s + ".";
  }

  std::mt19937 rng_;
  std::vector<std::string> words_;
  std::discrete_distribution<uint32_t> zipf_;
  std::vector<std::vector<uint32_t>> topics_;
  std::vector<Document> documents_;
};

// A fresh SQLite store in `dir` (removed first) with one knowledge base on the built-in
// embedder, and the ingestion job's handler over it.
struct BenchBase {
  std::unique_ptr<store::Storage> storage;
  knowledge::KnowledgeSettings settings;
  knowledge::HashedEmbedder embedder{settings.embedding_dimension};
  store::KnowledgeBase base;
  queue::Handler ingest;
  bool reused = false;

  store::KnowledgeRepository& repo() { return storage->knowledge(); }

  bool open(const std::string& dir, bool reuse = false) {
    namespace fs = std::filesystem;
    reuse = reuse && fs::exists(dir + "/parley.db");
    if (!reuse) {
      fs::remove_all(dir);
      fs::create_directories(dir);
    }
    store::StorageSettings storage_settings;
    storage_settings.url = "sqlite://" + dir + "/parley.db";
    auto opened = store::open(storage_settings, {});
    if (!opened) {
      std::fprintf(stderr, "cannot open the store: %s\n", opened.error().message.c_str());
      return false;
    }
    storage = std::move(opened).value();
    if (reuse) {
      auto bases = repo().list_bases({std::string("bench"), std::nullopt, 1, std::nullopt});
      if (!bases || bases->items.empty()) {
        std::fprintf(stderr, "no knowledge base to reuse in %s\n", dir.c_str());
        return false;
      }
      base = bases->items.front();
      reused = true;
    } else {
      auto made = repo().create_base(
          {"bench", "", "Bench", "", embedder.name(), embedder.dimension(),
           knowledge::base_settings_json({{settings.chunk_tokens, settings.chunk_overlap}}), "{}"},
          0);
      if (!made) return false;
      base = std::move(made).value();
    }
    ingest = knowledge::ingest_handler(
        {repo(),
         parley::Clock::system(),
         settings,
         [](std::string_view bytes, std::string_view name) {
           return knowledge::extract(bytes, name);
         },
         [this](const std::string&, int64_t, const std::vector<std::string>& texts)
             -> Result<knowledge::Vectors> { return embedder.embed_now(texts); },
         {},
         {}});
    return true;
  }
};

// Retrieval quality on the evaluation set: each question searched in one base holding the
// set's documents; a hit when a chunk among the first k comes from the named document and
// contains the answer's phrase.
int evaluate(const Options& options) {
  namespace fs = std::filesystem;
  const std::string dir = options.dir.empty()
                              ? (fs::temp_directory_path() / "parley-knowledge-eval").string()
                              : options.dir;
  BenchBase b;
  if (!b.open(dir)) return 1;
  auto& repo = b.repo();
  auto& embedder = b.embedder;
  const auto* base = &b.base;
  auto& handler = b.ingest;
  int documents = 0;
  for (const auto& entry : fs::directory_iterator(options.eval)) {
    const std::string name = entry.path().filename().string();
    if (name == "questions.json" || name == "README.md") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    auto file = repo.put_file({"eval", "", name, "knowledge", "sha-" + name, content.str()}, 0);
    auto doc = repo.add_document({base->id, "eval", file->id, name, "{}"}, 0);
    store::Job job;
    job.payload_json =
        nlohmann::json{{"document_id", doc->document.id}, {"file_id", file->id}}.dump();
    job.attempts = 1;
    auto r = handler(job);
    if (!r || r->value("status", "") != "ready") {
      std::fprintf(stderr, "%s not ingested: %s\n", name.c_str(),
                   r ? r->dump().c_str() : r.error().message.c_str());
      return 1;
    }
    ++documents;
  }
  knowledge::IndexOptions io;
  io.directory = dir + "/index";
  io.sync_interval = std::chrono::hours(1);
  knowledge::IndexManager manager(repo, io);
  if (auto r = manager.start(); !r) return 1;
  auto index = manager.base(base->id);
  std::ifstream qin(options.eval + "/questions.json");
  const auto questions = nlohmann::json::parse(qin, nullptr, false);
  if (!questions.is_array() || questions.empty()) {
    std::fprintf(stderr, "no questions in %s/questions.json\n", options.eval.c_str());
    return 1;
  }
  struct Score {
    int hit1 = 0;
    int hit5 = 0;
    double mrr = 0;
  };
  const auto score = [&](knowledge::SearchMode mode) {
    Score s;
    for (const auto& q : questions) {
      knowledge::SearchRequest r;
      r.query = q["question"];
      r.k = 5;
      r.mode = mode;
      r.highlight_length = 0;
      const auto v = embedder.embed_now({r.query});
      r.query_vector.assign(v.values.begin(), v.values.end());
      const auto hits = index->search(r);
      for (size_t i = 0; i < hits.size() && i < 5; ++i) {
        if (hits[i].document_name == q["document"].get<std::string>() &&
            hits[i].text.find(q["answer_contains"].get<std::string>()) != std::string::npos) {
          if (i == 0) ++s.hit1;
          ++s.hit5;
          s.mrr += 1.0 / static_cast<double>(i + 1);
          break;
        }
      }
    }
    return s;
  };
  const double n = static_cast<double>(questions.size());
  std::printf("| search | hit@1 | hit@5 | MRR@5 |\n|---|---|---|---|\n");
  for (const auto& [label, mode] :
       {std::pair{"hybrid (both sides, fused)", knowledge::SearchMode::kHybrid},
        std::pair{"vector side only (built-in embedder)", knowledge::SearchMode::kVector},
        std::pair{"lexical side only (BM25)", knowledge::SearchMode::kLexical}}) {
    const Score s = score(mode);
    std::printf("| %s | %.2f | %.2f | %.2f |\n", label, s.hit1 / n, s.hit5 / n, s.mrr / n);
  }
  std::printf("\n%d documents, %lld chunks, %zu questions\n", documents,
              static_cast<long long>(repo.get_base(base->id)->chunks), questions.size());
  manager.stop();
  return 0;
}

int run(const Options& options) {
  namespace fs = std::filesystem;
  const std::string dir = options.dir.empty()
                              ? (fs::temp_directory_path() / "parley-knowledge-bench").string()
                              : options.dir;
  BenchBase b;
  if (!b.open(dir, options.reuse)) return 1;
  auto& repo = b.repo();
  auto& embedder = b.embedder;
  const auto* base = &b.base;

  // --- Ingestion: files stored, then each document through the job's handler ---------------
  Corpus corpus(42, options.chunks);
  constexpr int kSectionsPerDocument = 50;
  const int documents = std::max(1, options.chunks / kSectionsPerDocument);
  std::vector<std::pair<std::string, std::string>> queued;  // document, file
  for (int d = 0; d < documents; ++d) {
    const std::string content = corpus.document(kSectionsPerDocument);
    if (b.reused) continue;  // made only for the questions about it
    const std::string product = d % 100 == 0 ? "rare" : "common";  // 1% of documents
    auto file = repo.put_file({"bench", "", "doc" + std::to_string(d) + ".md", "knowledge",
                               "sha" + std::to_string(d), content},
                              0);
    auto doc = repo.add_document(
        {base->id, "bench", file->id, file->filename, R"({"product":")" + product + R"("})"}, 0);
    queued.emplace_back(doc->document.id, file->id);
  }
  auto& handler = b.ingest;
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
  bool rebuilt = false;  // (with --reuse, only when DIR/index was removed)
  io.on_rebuild_progress = [&rebuilt](const knowledge::RebuildProgress&) { rebuilt = true; };
  // Held by pointer: it must be gone (its lexical index's write lock released) before the
  // indexes are loaded again below.
  auto manager = std::make_unique<knowledge::IndexManager>(repo, io);
  const auto index_start = Clock::now();
  if (auto r = manager->start(); !r) {
    std::fprintf(stderr, "index: %s\n", r.error().message.c_str());
    return 1;
  }
  const double index_seconds = seconds_since(index_start);
  auto index = manager->base(base->id);

  // --- Search latency -----------------------------------------------------------------------
  const auto latencies = [&](auto make_request) {
    std::vector<double> ms;
    for (int q = 0; q < options.queries; ++q) {
      knowledge::SearchRequest request = make_request(q);
      if (options.beam > 0) request.beam = options.beam;
      const auto start = Clock::now();
      const auto v = embedder.embed_now({request.query});
      request.query_vector.assign(v.values.begin(), v.values.end());
      const auto hits = index->search(request);
      ms.push_back(seconds_since(start) * 1000);
      if (hits.empty()) std::fprintf(stderr, "no hits for %s\n", request.query.c_str());
    }
    return ms;
  };
  std::mt19937 questions(7);
  // Untimed first: the pages of the indexes that searches read come into memory, as in a
  // process that has served for a while. The index files are read through once (the lexical
  // index is read through the page cache, 3.6 GB at 1M chunks; a fresh rebuild leaves it
  // there, a store reused the next day does not), then a round of searches.
  {
    // What the build wrote reaches the disk first, not during the timed searches.
    ::sync();
    std::vector<char> buffer(1 << 20);
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir + "/index")) {
      if (!entry.is_regular_file()) continue;
      std::ifstream file(entry.path(), std::ios::binary);
      while (file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()))) {
      }
    }
  }
  latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = corpus.question(questions);
    return r;
  });
  const auto ordinary = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = corpus.question(questions);
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
    r.query = corpus.question(questions);
    r.mode = knowledge::SearchMode::kVector;
    return r;
  });
  const auto lexical_only = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = corpus.question(questions);
    r.mode = knowledge::SearchMode::kLexical;
    return r;
  });
  const auto no_highlight = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = corpus.question(questions);
    r.highlight_length = 0;
    return r;
  });
  const auto filtered = latencies([&](int) {
    knowledge::SearchRequest r;
    r.query = corpus.question(questions);
    r.filter =
        knowledge::Filter::parse({{"type", "eq"}, {"key", "product"}, {"value", "rare"}}).value();
    return r;
  });

  // --- Recall@10 of the graph walk against exact search, by beam width ------------------
  const int recall_queries = std::min(options.queries, 200);
  std::vector<std::vector<float>> recall_set;
  for (int q = 0; q < recall_queries; ++q) {
    const auto v = embedder.embed_now({corpus.question(questions)});
    recall_set.emplace_back(v.values.begin(), v.values.end());
  }
  struct Recall {
    size_t ef;
    double recall;
    double near;
    double p50_ms;
    double p99_ms;
  };
  std::vector<std::vector<uint64_t>> truths;
  std::vector<float> tenth_scores;  // each query's 10th best similarity
  // How close the neighbours are: the mean similarity at ranks 1, 10, 11, 50 and 200.
  const std::vector<size_t> ranks{1, 10, 11, 50, 200};
  std::vector<double> rank_means(ranks.size(), 0);
  // The truth: exact search over the database's float vectors (the index holds 8-bit codes).
  {
    using Scored = std::pair<float, uint64_t>;  // a min-heap of each query's best
    std::vector<std::vector<Scored>> best(recall_set.size());
    const size_t keep = ranks.back();
    int64_t after = 0;
    for (;;) {
      auto page = repo.base_chunks(base->id, after, 1000);
      if (!page || page->empty()) break;
      for (const auto& c : *page) {
        for (size_t q = 0; q < recall_set.size(); ++q) {
          const float score = float_dot(recall_set[q], c.vector);
          auto& heap = best[q];
          if (heap.size() == keep && score <= heap.front().first) continue;
          heap.emplace_back(score, static_cast<uint64_t>(c.seq));
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
          if (heap.size() > keep) {
            std::pop_heap(heap.begin(), heap.end(), std::greater<>());
            heap.pop_back();
          }
        }
      }
      after = page->back().seq;
    }
    for (auto& heap : best) {
      std::sort_heap(heap.begin(), heap.end(), std::greater<>());  // best first
      for (size_t r = 0; r < ranks.size(); ++r) {
        if (heap.size() >= ranks[r]) rank_means[r] += heap[ranks[r] - 1].first / recall_set.size();
      }
      std::vector<uint64_t> truth;
      for (size_t i = 0; i < heap.size() && i < 10; ++i) truth.push_back(heap[i].second);
      truths.push_back(std::move(truth));
      tenth_scores.push_back(heap.size() >= 10 ? heap[9].first : -1);
    }
  }
  std::vector<Recall> recall;
  for (size_t ef : {size_t{64}, size_t{128}, size_t{160}, size_t{192}, size_t{256}, size_t{512},
                    size_t{1024}}) {
    double found = 0;
    double near = 0;  // as ann-benchmarks counts: within 0.001 of the 10th best similarity
    std::vector<double> ms;
    for (size_t q = 0; q < recall_set.size(); ++q) {
      knowledge::VectorSearch vs;
      vs.k = 10;
      vs.ef = ef;
      const auto start = Clock::now();
      const auto approx = index->vectors()->search(recall_set[q], vs);
      ms.push_back(seconds_since(start) * 1000);
      const std::set<uint64_t> truth(truths[q].begin(), truths[q].end());
      for (const auto& h : approx) {
        found += truth.contains(h.label) ? 1 : 0;
        near += h.score >= tenth_scores[q] - 0.001F ? 1 : 0;
      }
    }
    const double total = static_cast<double>(recall_set.size()) * 10.0;
    recall.push_back({ef, found / total, near / total, percentile(ms, 0.5), percentile(ms, 0.99)});
  }
  // --- Catch-up: documents ingested elsewhere (another replica, a worker), then their files
  // deleted, applied to the indexes from the change log -------------------------------------
  const bool catch_up = options.catch_up.value_or(!b.reused);
  const int added_documents = catch_up ? std::max(40, documents / 50) : 0;
  std::vector<std::string> added_files;
  for (int d = 0; d < added_documents; ++d) {
    const std::string content = corpus.document(kSectionsPerDocument);
    auto file = repo.put_file({"bench", "", "later" + std::to_string(d) + ".md", "knowledge",
                               "sha-later-" + std::to_string(d), content},
                              0);
    auto doc = repo.add_document({base->id, "bench", file->id, file->filename, "{}"}, 0);
    // (A run stopped short may have left the document, made from an earlier file.)
    const std::string& from = doc->document.file_id;
    store::Job job;
    job.payload_json =
        R"({"document_id":")" + doc->document.id + R"(","file_id":")" + from + R"("})";
    job.attempts = 1;
    added_files.push_back(file->id);
    if (from != file->id) added_files.push_back(from);
    if (auto r = handler(job); !r || r->value("status", "") != "ready") {
      std::fprintf(stderr, "ingestion failed: %s\n",
                   r ? r->dump().c_str() : r.error().message.c_str());
      return 1;
    }
  }
  const int64_t added_chunks = repo.get_base(base->id)->chunks - chunks;
  double add_seconds = 0;
  double remove_seconds = 0;
  if (catch_up) {
    auto catch_up_start = Clock::now();
    if (auto r = manager->catch_up(); !r) return 1;
    add_seconds = seconds_since(catch_up_start);
    for (const auto& file : added_files) {
      if (auto r = repo.delete_file(file); !r) return 1;
    }
    catch_up_start = Clock::now();
    if (auto r = manager->catch_up(); !r) return 1;
    remove_seconds = seconds_since(catch_up_start);
  }

  manager->stop();
  index.reset();
  manager.reset();

  // --- What a serving process holds: the indexes loaded from disk, as at a restart ----------
  ::malloc_trim(0);
  const int64_t resident_unloaded = resident_bytes();
  int64_t loaded_resident = 0;
  {
    knowledge::IndexManager reloaded(repo, io);
    if (auto r = reloaded.start(); !r) return 1;
    if (reloaded.base(base->id) == nullptr) return 1;
    ::malloc_trim(0);
    loaded_resident = resident_bytes() - resident_unloaded;
    reloaded.stop();
  }

  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| chunks | %lld |\n", static_cast<long long>(chunks));
  if (!b.reused) {
    std::printf("| ingestion (extract, chunk, embed, store), chunks/s | %.0f |\n",
                static_cast<double>(chunks) / ingest_seconds);
  }
  if (rebuilt) {
    std::printf("| index build from the database, chunks/s | %.0f |\n",
                static_cast<double>(chunks) / index_seconds);
  }
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
  if (catch_up) {
    std::printf(
        "| catch-up from the change log: %lld chunks added, then removed; chunks/s | %.0f / "
        "%.0f |\n",
        static_cast<long long>(added_chunks), static_cast<double>(added_chunks) / add_seconds,
        static_cast<double>(added_chunks) / remove_seconds);
  }
  std::printf(
      "| resident memory of the indexes loaded from disk, MiB (per million chunks) | %.0f (%.0f) "
      "|\n",
      static_cast<double>(loaded_resident) / (1 << 20),
      static_cast<double>(loaded_resident) / (1 << 20) * 1e6 / static_cast<double>(chunks));
  std::printf("| exact search (float vectors): mean similarity of the neighbours at ranks");
  for (size_t r : ranks) std::printf(" %zu", r);
  std::printf(" |");
  for (size_t r = 0; r < ranks.size(); ++r) std::printf("%s%.3f", r ? " / " : " ", rank_means[r]);
  std::printf(" |\n");
  for (const auto& r : recall) {
    std::printf(
        "| HNSW side, beam %zu: recall@10 against exact search on the float vectors (within 0.001 "
        "of "
        "the 10th); "
        "search p50 / p99, ms | %.3f (%.3f); %.2f / %.2f |\n",
        r.ef, r.recall, r.near, r.p50_ms, r.p99_ms);
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
    if (flag == "--eval") options.eval = argv[i + 1];
    if (flag == "--reuse") options.reuse = std::string(argv[i + 1]) == "1";
    if (flag == "--beam") options.beam = std::stoul(argv[i + 1]);
    if (flag == "--catch-up") options.catch_up = std::string(argv[i + 1]) == "1";
  }
  return options.eval.empty() ? run(options) : evaluate(options);
}
