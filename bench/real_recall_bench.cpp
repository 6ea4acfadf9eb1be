// The recall@10 of the nearest-neighbour side on a real embedding model's vectors of real
// documents (scripts/bench_real_embeddings.sh runs it).
//
// The built-in embedder's vectors are a poor test of an ANN index: they hash a chunk's
// thousands of words into 384 numbers, so a short question's similarity to every chunk carries
// noise of about 1/sqrt(384) = 0.05, as large as what one shared word adds, and its exact
// neighbours past the first few are decided by that noise (docs/benchmarks.md). No graph or
// partition can find neighbours that are near by chance. Neural embedding models, which the
// ANN target is about, place related text together; this measures the index there.
//
// Two steps, with the model run between them by bench/real_embeddings/embed.mjs:
//   parley_real_recall_bench prepare PAGES_DIR OUT_DIR MAX_CHUNKS [CHUNK_TOKENS]
//     Reads the text files of PAGES_DIR (manual pages rendered as text) in a fixed shuffled
//     order, extracts and chunks them as ingestion does (its default chunk sizes, or chunks of
//     at most CHUNK_TOKENS with ingestion's share of overlap), and writes
//     OUT_DIR/chunks.jsonl (one JSON string a chunk) until MAX_CHUNKS, and
//     OUT_DIR/queries.jsonl: each chosen page's one-line description from its NAME section
//     ("list directory contents"), a short question-like phrase, as a person searches.
//   parley_real_recall_bench measure OUT_DIR DIMENSION
//     Reads chunks.f32 and queries.f32 (the model's unit vectors), builds the product's
//     VectorIndex over the chunks (on every core), and compares its answers at several beams,
//     searched on one thread, with exact search on the float vectors. Prints a Markdown table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "knowledge/chunk/chunker.hpp"
#include "knowledge/extract/extract.hpp"
#include "knowledge/index/vector_index.hpp"

#include "measure.hpp"

namespace {

using namespace parley;
using parley::bench::percentile;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string as_json_line(const std::string& text) {
  // Manual pages may hold bytes that are not UTF-8: replaced, not refused.
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The description of a rendered manual page: what follows " - " on the line after NAME.
std::string description(const std::string& page) {
  std::istringstream lines(page);
  std::string line;
  bool after_name = false;
  while (std::getline(lines, line)) {
    if (!after_name) {
      after_name = line == "NAME";
      continue;
    }
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) return {};
    auto text = line.substr(dash + 3);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
    return text;
  }
  return {};
}

int prepare(const fs::path& pages, const fs::path& out, size_t max_chunks, int64_t chunk_tokens) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(pages)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry);
  }
  std::sort(files.begin(), files.end());
  std::shuffle(files.begin(), files.end(), std::mt19937(42));
  std::ofstream chunks(out / "chunks.jsonl");
  std::ofstream queries(out / "queries.jsonl");
  size_t written = 0;
  size_t asked = 0;
  size_t used_pages = 0;
  knowledge::ChunkOptions options;  // ingestion's defaults
  if (chunk_tokens > 0) {
    options.overlap_tokens = options.overlap_tokens * chunk_tokens / options.max_tokens;
    options.max_tokens = chunk_tokens;
  }
  if (const auto valid = knowledge::validate(options); !valid) {
    std::fprintf(stderr, "chunk size %lld: out of range\n", static_cast<long long>(chunk_tokens));
    return 2;
  }
  for (const auto& file : files) {
    if (written >= max_chunks) break;
    const std::string text = read_file(file);
    auto extracted = knowledge::extract(text, file.filename().string());
    if (!extracted) continue;
    const auto pieces = knowledge::chunk_document(*extracted, options);
    if (pieces.empty()) continue;
    ++used_pages;
    for (const auto& piece : pieces) {
      if (written >= max_chunks) break;
      chunks << as_json_line(extracted->text.substr(piece.start, piece.end - piece.start)) << '\n';
      ++written;
    }
    if (const auto d = description(text); d.size() >= 8) {
      queries << as_json_line(d) << '\n';
      ++asked;
    }
  }
  std::printf("pages %zu, chunks %zu, queries %zu\n", used_pages, written, asked);
  return written > 0 && asked > 0 ? 0 : 1;
}

size_t count_lines(const fs::path& path) {
  const std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The vectors of `name`.f32, one per line of `name`.jsonl: nothing when the two disagree (an
// interrupted run, another dimension), said on stderr.
std::vector<std::vector<float>> read_vectors(const fs::path& dir, const std::string& name,
                                             size_t dimension) {
  const std::string bytes = read_file(dir / (name + ".f32"));
  const size_t row = dimension * sizeof(float);
  const size_t lines = count_lines(dir / (name + ".jsonl"));
  if (bytes.size() % row != 0 || bytes.size() / row != lines) {
    std::fprintf(stderr, "%s.f32 holds %zu bytes: not %zu vectors of %zu dimensions\n",
                 name.c_str(), bytes.size(), lines, dimension);
    return {};
  }
  std::vector<std::vector<float>> rows(lines, std::vector<float>(dimension));
  for (size_t i = 0; i < rows.size(); ++i) std::memcpy(rows[i].data(), bytes.data() + i * row, row);
  return rows;
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  float sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

int measure(const fs::path& dir, size_t dimension) {
  const auto chunks = read_vectors(dir, "chunks", dimension);
  auto queries = read_vectors(dir, "queries", dimension);
  if (const char* cap = std::getenv("QUERIES"); cap != nullptr)
    queries.resize(std::min<size_t>(queries.size(), std::stoul(cap)));
  if (chunks.empty() || queries.empty()) {
    std::fprintf(stderr, "no vectors in %s\n", dir.c_str());
    return 1;
  }
  knowledge::VectorIndex index(static_cast<int>(dimension), chunks.size());
  std::vector<std::pair<uint64_t, std::span<const float>>> items;
  for (size_t i = 0; i < chunks.size(); ++i) items.emplace_back(i + 1, chunks[i]);
  const auto build_start = Clock::now();
  index.upsert_many(items, std::max(1U, std::thread::hardware_concurrency()));
  const double build_seconds = std::chrono::duration<double>(Clock::now() - build_start).count();

  // The truth: exact search on the float vectors; and how close the neighbours are.
  const std::vector<size_t> ranks{1, 10, 11, 50, 200};
  std::vector<double> rank_means(ranks.size(), 0);
  std::vector<std::set<uint64_t>> truths;
  for (const auto& q : queries) {
    std::vector<std::pair<float, uint64_t>> scored;
    scored.reserve(chunks.size());
    for (size_t i = 0; i < chunks.size(); ++i) scored.emplace_back(dot(q, chunks[i]), i + 1);
    const size_t keep = std::min(scored.size(), ranks.back());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep),
                      scored.end(), std::greater<>());
    for (size_t r = 0; r < ranks.size(); ++r) {
      if (ranks[r] <= keep) rank_means[r] += scored[ranks[r] - 1].first / queries.size();
    }
    std::set<uint64_t> truth;
    for (size_t i = 0; i < 10 && i < keep; ++i) truth.insert(scored[i].second);
    truths.push_back(std::move(truth));
  }

  double wanted = 0;  // the neighbours there are to find (ten a query, fewer in a tiny set)
  for (const auto& truth : truths) wanted += static_cast<double>(truth.size());

  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| chunks / queries / dimension | %zu / %zu / %zu |\n", chunks.size(), queries.size(),
              dimension);
  std::printf("| index build on every core, chunks/s | %.0f |\n",
              static_cast<double>(chunks.size()) / build_seconds);
  std::printf("| exact search: mean similarity of the neighbours at ranks");
  for (size_t r : ranks) std::printf(" %zu", r);
  std::printf(" |");
  for (size_t r = 0; r < ranks.size(); ++r) std::printf("%s%.3f", r ? " / " : " ", rank_means[r]);
  std::printf(" |\n");
  {
    // What the 8-bit codes alone cost: exact search over the codes.
    double found = 0;
    for (size_t q = 0; q < queries.size(); ++q) {
      for (const auto& hit : index.exact(queries[q], 10))
        found += truths[q].contains(hit.label) ? 1 : 0;
    }
    std::printf("| exact search over the index's 8-bit codes: recall@10 | %.3f |\n",
                found / wanted);
  }
  for (size_t beam :
       {size_t{32}, size_t{64}, size_t{128}, size_t{160}, size_t{192}, size_t{256}, size_t{512}}) {
    double found = 0;
    std::vector<double> ms;
    for (size_t q = 0; q < queries.size(); ++q) {
      knowledge::VectorSearch search;
      search.k = 10;
      search.ef = beam;
      const auto start = Clock::now();
      const auto hits = index.search(queries[q], search);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      for (const auto& hit : hits) found += truths[q].contains(hit.label) ? 1 : 0;
    }
    std::printf(
        "| beam %zu: recall@10 against exact search; search p50 / p99, ms | %.3f; %.3f / %.3f |\n",
        beam, found / wanted, percentile(ms, 0.5), percentile(ms, 0.99));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if ((args.size() == 4 || args.size() == 5) && args[0] == "prepare") {
    return prepare(args[1], args[2], std::stoul(args[3]),
                   args.size() == 5 ? std::stol(args[4]) : 0);
  }
  if (args.size() == 3 && args[0] == "measure") return measure(args[1], std::stoul(args[2]));
  std::fprintf(
      stderr,
      "usage: parley_real_recall_bench prepare PAGES_DIR OUT_DIR MAX_CHUNKS [CHUNK_TOKENS]\n"
      "       parley_real_recall_bench measure OUT_DIR DIMENSION\n");
  return 2;
}
