// The derived search indexes: the HNSW side against exact search (recall), filters that still
// return k results when few chunks pass, the Xapian side (BM25, highlights, document
// filters), hybrid fusion, filter parsing, and the manager that catches the indexes up from a
// real SQLite store, persists them, and rebuilds them for another database.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "knowledge/embed/hashed_embedder.hpp"
#include "knowledge/index/base_index.hpp"
#include "knowledge/index/code_dot.hpp"
#include "knowledge/index/index_manager.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"
#include "support/manual_clock.hpp"
#include "temp_dir.hpp"

namespace parley::knowledge {
namespace {

using nlohmann::json;
using parley::testing::TempDir;

std::vector<float> random_unit(std::mt19937& rng, int dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(dim));
  for (float& x : v) x = normal(rng);
  normalize(v);
  return v;
}

TEST(VectorIndex, ApproximateSearchRecallsWhatExactSearchFinds) {
  std::mt19937 rng(1);
  const int dim = 32;
  VectorIndex index(dim);
  for (uint64_t label = 1; label <= 3000; ++label) index.upsert(label, random_unit(rng, dim));
  EXPECT_EQ(index.size(), 3000U);
  double found = 0;
  const int queries = 50;
  for (int q = 0; q < queries; ++q) {
    const auto query = random_unit(rng, dim);
    const auto exact = index.exact(query, 10);
    VectorSearch options;
    options.k = 10;
    options.ef = 64;
    const auto approx = index.search(query, options);
    ASSERT_EQ(approx.size(), 10U);
    std::set<uint64_t> truth;
    for (const auto& h : exact) truth.insert(h.label);
    for (const auto& h : approx) found += truth.contains(h.label) ? 1 : 0;
    EXPECT_GE(approx.front().score, approx.back().score);
  }
  EXPECT_GE(found / (queries * 10), 0.9);
}

// How a serving index catches up: many vectors on several threads, a few per hold of the
// lock, and the searches that wait go in between the holds.
TEST(VectorIndex, ManyVectorsInSlicesWhileSearchesRun) {
  std::mt19937 rng(2);
  const int dim = 32;
  VectorIndex index(dim, 16);  // grown between slices
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 3000; ++i) vectors.push_back(random_unit(rng, dim));
  std::vector<std::pair<uint64_t, std::span<const float>>> items;
  for (size_t i = 0; i < vectors.size(); ++i) items.emplace_back(i + 1, vectors[i]);
  std::atomic<bool> done{false};
  std::atomic<int> searches{0};
  std::thread searcher([&] {
    const auto query = vectors.front();
    VectorSearch options;
    options.k = 5;
    while (!done) {
      const auto hits = index.search(query, options);
      for (const auto& h : hits) EXPECT_TRUE(h.label >= 1 && h.label <= 3000);
      ++searches;
    }
  });
  while (searches == 0) std::this_thread::yield();  // searching before the first slice
  const int before = searches.load();
  index.upsert_many(items, 2, 4);
  const int during = searches.load() - before;
  done = true;
  searcher.join();
  EXPECT_GT(during, 0) << "no search went in between the slices";
  EXPECT_EQ(index.size(), 3000U);
  for (uint64_t label = 1; label <= 3000; ++label) ASSERT_TRUE(index.contains(label)) << label;
  double found = 0;
  for (int q = 0; q < 50; ++q) {
    const auto query = random_unit(rng, dim);
    std::set<uint64_t> truth;
    for (const auto& h : index.exact(query, 10)) truth.insert(h.label);
    VectorSearch options;
    options.k = 10;
    for (const auto& h : index.search(query, options)) found += truth.contains(h.label) ? 1 : 0;
  }
  EXPECT_GE(found / 500, 0.9);
}

TEST(VectorIndex, ScoresAreTheCosineWithinWhatEightBitsLose) {
  std::mt19937 rng(5);
  const int dim = 384;
  VectorIndex index(dim);
  std::vector<std::vector<float>> vectors;
  for (uint64_t label = 1; label <= 200; ++label) {
    vectors.push_back(random_unit(rng, dim));
    index.upsert(label, vectors.back());
  }
  // One component far larger than the rest: the scale follows it and the others lose most of
  // their precision, so scores involving such a vector are a little further off.
  std::vector<float> spiky(dim, 0.01F);
  spiky[7] = 0.9F;
  normalize(spiky);
  vectors.push_back(spiky);
  index.upsert(201, spiky);
  for (int q = 0; q < 20; ++q) {
    const auto query = q == 0 ? spiky : random_unit(rng, dim);
    for (const auto& hit : index.exact(query, 201)) {
      const auto& v = vectors[hit.label - 1];
      float cosine = 0;
      for (int i = 0; i < dim; ++i) cosine += query[i] * v[i];
      const bool ordinary = q > 0 && hit.label != 201;
      EXPECT_NEAR(hit.score, cosine, ordinary ? 0.004 : 0.03) << hit.label;
    }
  }
  EXPECT_EQ(index.exact(spiky, 1).front().label, 201U);
}

TEST(VectorIndex, AnyDimensionAndComponentsThatAreNotNumbers) {
  // 250 is not a multiple of 4: the codes are padded so that the graph's links stay aligned
  // (the sanitizer build checks).
  std::mt19937 rng(6);
  const int dim = 250;
  VectorIndex index(dim);
  for (uint64_t label = 1; label <= 300; ++label) index.upsert(label, random_unit(rng, dim));
  const auto probe = random_unit(rng, dim);
  index.upsert(301, probe);
  VectorSearch options;
  options.k = 1;
  options.ef = 64;
  EXPECT_EQ(index.search(probe, options).front().label, 301U);
  // NaN and infinity (an upstream's overflow) count as 0 and harm nothing.
  std::vector<float> broken(dim, 0.0F);
  broken[0] = std::numeric_limits<float>::quiet_NaN();
  broken[1] = std::numeric_limits<float>::infinity();
  broken[2] = 1.0F;
  index.upsert(302, broken);
  std::vector<float> axis(dim, 0.0F);
  axis[2] = 1.0F;
  const auto hits = index.exact(axis, 1);
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(hits.front().label, 302U);
  EXPECT_NEAR(hits.front().score, 1.0, 0.01);
  EXPECT_EQ(index.search(broken, options).size(), 1U);
  // Nothing but zeros: scored 0 against anything.
  index.upsert(303, std::vector<float>(dim, 0.0F));
  EXPECT_EQ(index.exact(std::vector<float>(dim, 0.0F), 1).front().score, 0.0F);
}

TEST(NibbleDot, EveryImplementationThisCpuHasAgreesWithThePlainOne) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> value(-127, 127);
  std::uniform_int_distribution<int> nibble(0, 15);
  const NibbleDot plain = nibble_dot_portable();
  std::vector<NibbleDot> others{nibble_dot()};
  if (nibble_dot_avx2() != nullptr) others.push_back(nibble_dot_avx2());
  if (nibble_dot_avx512() != nullptr) others.push_back(nibble_dot_avx512());
  for (size_t n : {size_t{0}, kNibbleBlock, 3 * kNibbleBlock, 12 * kNibbleBlock}) {
    std::vector<int8_t> query(n);
    std::vector<uint8_t> values(n);
    for (size_t i = 0; i < n; ++i) {
      query[i] = static_cast<int8_t>(value(rng));
      values[i] = static_cast<uint8_t>(nibble(rng));
    }
    // Packed as documented: value j low, value j + 64 high, in each block of 128.
    std::vector<uint8_t> packed(n / 2);
    int32_t expected = 0;
    for (size_t block = 0; block < n; block += kNibbleBlock) {
      for (size_t j = 0; j < kNibbleBlock / 2; ++j) {
        packed[block / 2 + j] =
            static_cast<uint8_t>(values[block + j] | (values[block + kNibbleBlock / 2 + j] << 4));
      }
    }
    for (size_t i = 0; i < n; ++i) expected += query[i] * values[i];
    EXPECT_EQ(plain(query.data(), packed.data(), n), expected) << n;
    for (const NibbleDot dot : others) {
      EXPECT_EQ(dot(query.data(), packed.data(), n), expected) << n;
    }
    // The extremes: every product -127 * 15, nothing saturates or overflows.
    std::fill(query.begin(), query.end(), -127);
    std::fill(packed.begin(), packed.end(), 0xFF);
    for (const NibbleDot dot : others) {
      EXPECT_EQ(dot(query.data(), packed.data(), n), -127 * 15 * static_cast<int32_t>(n)) << n;
    }
  }
}

TEST(CodeDot, EveryImplementationThisCpuHasAgreesWithThePlainOne) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> value(-127, 127);
  const CodeDot plain = code_dot_portable();
  std::vector<CodeDot> others{code_dot()};
  if (code_dot_avx2() != nullptr) others.push_back(code_dot_avx2());
  if (code_dot_avx512() != nullptr) others.push_back(code_dot_avx512());
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{32},
                   size_t{33}, size_t{100}, size_t{384}, size_t{1536}}) {
    std::vector<int8_t> x(n);
    std::vector<int8_t> y(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = static_cast<int8_t>(value(rng));
      y[i] = static_cast<int8_t>(value(rng));
    }
    for (const CodeDot dot : others)
      EXPECT_EQ(dot(x.data(), y.data(), n), plain(x.data(), y.data(), n)) << n;
    // The extremes: every product 127 * -127, nothing overflows.
    std::fill(x.begin(), x.end(), 127);
    std::fill(y.begin(), y.end(), -127);
    for (const CodeDot dot : others) {
      EXPECT_EQ(dot(x.data(), y.data(), n), -16129 * static_cast<int32_t>(n)) << n;
    }
    // Both negative (the AVX2 path moves x's sign onto y), and zeros, which carry no sign.
    std::fill(x.begin(), x.end(), -127);
    for (const CodeDot dot : others) {
      EXPECT_EQ(dot(x.data(), x.data(), n), 16129 * static_cast<int32_t>(n)) << n;
    }
    std::fill(y.begin(), y.end(), 0);
    for (const CodeDot dot : others) EXPECT_EQ(dot(x.data(), y.data(), n), 0) << n;
    for (const CodeDot dot : others) EXPECT_EQ(dot(y.data(), x.data(), n), 0) << n;
  }
}

TEST(VectorIndex, FiltersReturnKResultsWhenOnePercentPasses) {
  std::mt19937 rng(2);
  const int dim = 16;
  VectorIndex index(dim);
  std::vector<uint64_t> allowed_labels;
  for (uint64_t label = 1; label <= 5000; ++label) {
    index.upsert(label, random_unit(rng, dim));
    if (label % 100 == 0) allowed_labels.push_back(label);  // 1%
  }
  const std::set<uint64_t> allowed_set(allowed_labels.begin(), allowed_labels.end());
  const std::function<bool(uint64_t)> allowed = [&](uint64_t l) { return allowed_set.contains(l); };
  VectorSearch options;
  options.k = 10;
  options.allowed = &allowed;
  options.allowed_labels = &allowed_labels;
  const auto query = random_unit(rng, dim);
  const auto hits = index.search(query, options);
  ASSERT_EQ(hits.size(), 10U);
  for (const auto& h : hits) EXPECT_TRUE(allowed_set.contains(h.label));
  // The same through the graph walk alone (no list): it passes through the chunks it may
  // not return, keeping the others, until k are kept.
  options.allowed_labels = nullptr;
  const auto walked = index.search(query, options);
  ASSERT_EQ(walked.size(), 10U);
  for (const auto& h : walked) EXPECT_TRUE(allowed_set.contains(h.label));
}

// The walk keeps only the chunks a search may return, and still finds the nearest of them: a
// filter that passes one chunk in twenty (a walk that filtered its beam afterwards would keep
// about 3 of 64), and removed chunks, against exact search over the same. Then the edges: a
// filter that passes nothing, and an index with all but three chunks removed.
TEST(VectorIndex, TheWalkFindsTheNearestAllowedAndLiveChunks) {
  std::mt19937 rng(3);
  const int dim = 32;
  VectorIndex index(dim);
  for (uint64_t label = 1; label <= 4000; ++label) index.upsert(label, random_unit(rng, dim));
  for (uint64_t label = 7; label <= 4000; label += 7) index.remove(label);  // a seventh removed
  const std::function<bool(uint64_t)> allowed = [](uint64_t l) { return l % 20 == 1; };
  std::vector<uint64_t> allowed_live;
  for (uint64_t label = 1; label <= 4000; label += 20) {
    if (label % 7 != 0) allowed_live.push_back(label);
  }
  double found = 0;
  const int queries = 50;
  for (int q = 0; q < queries; ++q) {
    const auto query = random_unit(rng, dim);
    VectorSearch options;
    options.k = 10;
    options.ef = 64;
    options.allowed = &allowed;  // no list: the walk, not a scan
    const auto walked = index.search(query, options);
    ASSERT_EQ(walked.size(), 10U);
    std::set<uint64_t> truth;
    for (const auto& h : index.exact(query, 10, &allowed_live)) truth.insert(h.label);
    for (size_t i = 0; i < walked.size(); ++i) {
      EXPECT_TRUE(walked[i].label % 20 == 1 && walked[i].label % 7 != 0) << walked[i].label;
      if (i > 0) {
        EXPECT_GE(walked[i - 1].score, walked[i].score);
      }
      found += truth.contains(walked[i].label) ? 1 : 0;
    }
    // Without the filter, removed chunks are still never returned.
    options.allowed = nullptr;
    for (const auto& h : index.search(query, options)) EXPECT_NE(h.label % 7, 0U) << h.label;
  }
  EXPECT_GE(found / (queries * 10), 0.9);

  const std::function<bool(uint64_t)> none = [](uint64_t) { return false; };
  VectorSearch nothing;
  nothing.allowed = &none;
  EXPECT_TRUE(index.search(random_unit(rng, dim), nothing).empty());

  VectorIndex few(dim);
  for (uint64_t label = 1; label <= 500; ++label) few.upsert(label, random_unit(rng, dim));
  for (uint64_t label = 1; label <= 500; ++label) {
    if (label != 17 && label != 250 && label != 499) few.remove(label);
  }
  VectorSearch options;
  options.k = 10;
  std::vector<uint64_t> labels;
  for (const auto& h : few.search(random_unit(rng, dim), options)) labels.push_back(h.label);
  std::sort(labels.begin(), labels.end());
  EXPECT_EQ(labels, (std::vector<uint64_t>{17, 250, 499}));
}

// An index of more than 2 MiB moves its nodes into memory the kernel may back with large
// pages: each time it grows, and when it is loaded. Every vector must come through each move:
// each one is its own nearest neighbour, by the walk and by exact search.
TEST(VectorIndex, VectorsComeThroughTheMovesOfALargeIndex) {
  TempDir dir("parley-large-vectors");
  std::mt19937 rng(4);
  const int dim = 64;
  // 272 bytes a node: moved when grown to room for 8,000 (4,000 in it) and when loaded.
  const uint64_t count = 8000;
  std::vector<std::vector<float>> vectors;
  for (uint64_t i = 0; i < count; ++i) vectors.push_back(random_unit(rng, dim));
  std::vector<std::pair<uint64_t, std::span<const float>>> items;
  for (uint64_t i = 0; i < count; ++i) items.emplace_back(i + 1, vectors[i]);
  VectorIndex grown(dim, 16);
  grown.upsert_many(items, 2, 1000);
  const std::string path = dir.path() + "/v.hnsw";
  ASSERT_TRUE(grown.save(path).ok());
  auto loaded = VectorIndex::load(path, dim);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  for (const VectorIndex* index : {&grown, loaded->get()}) {
    ASSERT_EQ(index->size(), count);
    size_t found = 0;
    for (uint64_t i = 0; i < count; i += 7) {
      VectorSearch options;
      options.k = 1;
      const auto hits = index->search(vectors[i], options);
      ASSERT_EQ(hits.size(), 1U);
      found += hits[0].label == i + 1 ? 1 : 0;
      const auto exact = index->exact(vectors[i], 1);
      ASSERT_EQ(exact.size(), 1U);
      EXPECT_EQ(exact[0].label, i + 1);
      EXPECT_NEAR(exact[0].score, 1.0, 0.01);
    }
    EXPECT_GE(found, (count / 7) * 99 / 100);
  }
}

TEST(VectorIndex, RemovesReplacesAndSurvivesSaveAndLoad) {
  TempDir dir("parley-vectors");
  VectorIndex index(4);
  index.upsert(1, std::vector<float>{1, 0, 0, 0});
  index.upsert(2, std::vector<float>{0, 1, 0, 0});
  index.upsert(3, std::vector<float>{0, 0, 1, 0});
  index.remove(2);
  index.remove(2);                                  // twice: harmless
  index.upsert(3, std::vector<float>{0, 1, 0, 0});  // replaced
  EXPECT_EQ(index.size(), 2U);
  EXPECT_FALSE(index.contains(2));
  const std::string path = dir.path() + "/v.hnsw";
  ASSERT_TRUE(index.save(path).ok());
  auto loaded = VectorIndex::load(path, 4);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ((*loaded)->size(), 2U);
  EXPECT_EQ((*loaded)->deleted(), 1U);
  const auto hits = (*loaded)->exact(std::vector<float>{0, 1, 0, 0}, 5);
  ASSERT_EQ(hits.size(), 2U);
  EXPECT_EQ(hits[0].label, 3U);
  EXPECT_NEAR(hits[0].score, 1.0, 1e-6);
  EXPECT_FALSE(VectorIndex::load(dir.path() + "/missing", 4).ok());
}

store::StoredChunk chunk(int64_t seq, const std::string& doc, const std::string& section,
                         const std::string& text, const HashedEmbedder& embedder) {
  store::StoredChunk c;
  c.seq = seq;
  c.kb_id = "kb_test";
  c.document_id = doc;
  c.section = section;
  c.text = text;
  c.start_offset = seq * 100;
  c.end_offset = seq * 100 + static_cast<int64_t>(text.size());
  const Vectors v = embedder.embed_now({section + "\n" + text});
  c.vector.assign(v.values.begin(), v.values.end());
  return c;
}

// 3,000 chunks: "server" in all, "timeout" in the even ones (common words), "proxy" in the
// first 20 (a rare word).
// `directory` empty: in memory.
std::unique_ptr<LexicalIndex> common_words_index(const std::string& directory = "") {
  auto opened = LexicalIndex::open(directory);
  EXPECT_TRUE(opened.ok());
  auto index = std::move(opened).value();
  for (uint64_t label = 1; label <= 3000; ++label) {
    std::string text = "server notes " + std::to_string(label);
    text += label % 2 == 0 ? " timeout" : " latency";
    text += label <= 20 ? " proxy" : " cache";
    index->upsert(label, "doc_" + std::to_string(label % 7), "", text, "{}");
  }
  EXPECT_TRUE(index->commit(1).ok());
  return index;
}

std::vector<uint64_t> labels_of(const LexicalResult& r) {
  std::vector<uint64_t> labels;
  for (const auto& h : r.hits) labels.push_back(h.label);
  return labels;
}

TEST(LexicalIndex, CommonWordsAddToTheScoresOfChunksThatRarerWordsChose) {
  const auto index = common_words_index();
  LexicalSearch options;
  options.k = 10;
  const auto r = index->search("proxy timeout server", options);
  ASSERT_EQ(r.hits.size(), 10U);
  for (size_t i = 0; i < r.hits.size(); ++i) {
    EXPECT_LE(r.hits[i].label, 20U) << "only chunks with the rare word";
    // The ten chunks with "proxy" and "timeout" come first, in the order of their scores.
    EXPECT_EQ(r.hits[i].label % 2, 0U);
    if (i > 0) {
      EXPECT_GE(r.hits[i - 1].score, r.hits[i].score);
    }
  }
  // Fewer than k chunks have the rare word: the common words choose the rest.
  options.k = 30;
  const auto wider = index->search("proxy server", options);
  ASSERT_EQ(wider.hits.size(), 30U);
  const auto labels = labels_of(wider);
  EXPECT_EQ(std::count_if(labels.begin(), labels.begin() + 20, [](uint64_t l) { return l <= 20; }),
            20);
}

// "server", in every chunk, has no weight under BM25's idf: a query with other words leaves it
// out (the scores are those of the other words alone); by itself it is still searched.
TEST(LexicalIndex, AWordInMostChunksIsLeftOutWhenOtherWordsRemain) {
  const auto index = common_words_index();
  LexicalSearch options;
  options.k = 10;
  const auto with = index->search("proxy timeout server", options);
  const auto without = index->search("proxy timeout", options);
  ASSERT_EQ(with.hits.size(), 10U);
  ASSERT_EQ(labels_of(with), labels_of(without));
  for (size_t i = 0; i < with.hits.size(); ++i) {
    EXPECT_DOUBLE_EQ(with.hits[i].score, without.hits[i].score);
  }
  // Across the two sides of an AND_MAYBE too: "timeout" (half the chunks) still adds.
  const std::vector<uint64_t> candidates{7, 8};
  options.candidates = &candidates;
  const auto scored = index->search("timeout server", options);
  ASSERT_EQ(labels_of(scored), (std::vector<uint64_t>{8, 7}));
  EXPECT_GT(scored.hits[0].score, 0);
  EXPECT_EQ(scored.hits[1].score, 0);
  // Left out, it scores no candidate either: one without the rarer word gets no lexical score.
  const std::vector<uint64_t> with_and_without{7, 25};
  options.candidates = &with_and_without;
  options.k = 30;
  const auto rare_only = index->search("proxy server", options);
  EXPECT_EQ(rare_only.hits.size(), 20U);  // the chunks with "proxy", 7 among them
  for (const auto& h : rare_only.hits) EXPECT_LE(h.label, 20U);
  options.k = 10;
  options.candidates = nullptr;
  const auto alone = index->search("server", options);
  ASSERT_EQ(alone.hits.size(), 10U);
  EXPECT_GT(alone.hits[0].score, 0);
}

void search_common_words_with_candidates(const LexicalIndex& index) {
  LexicalSearch options;
  options.k = 10;
  // Without candidates (lexical search alone), every chunk with the words is scored.
  const auto all = index.search("timeout server", options);
  ASSERT_EQ(all.hits.size(), 10U);
  for (const auto& h : all.hits) EXPECT_EQ(h.label % 2, 0U) << h.label;
  // With candidates, those are what is scored (a removed one, 5000, is left out).
  const std::vector<uint64_t> candidates{7, 8, 2999, 5000};
  options.candidates = &candidates;
  const auto scored = index.search("timeout server", options);
  EXPECT_EQ(labels_of(scored).front(), 8U);  // the only candidate with both words
  std::set<uint64_t> found;
  for (const auto& h : scored.hits) found.insert(h.label);
  EXPECT_EQ(found, (std::set<uint64_t>{7, 8, 2999}));
  EXPECT_TRUE(index.data(8).has_value());
  EXPECT_FALSE(index.data(5000).has_value());
  EXPECT_GT(scored.hits.front().score, scored.hits.back().score);
  // Highlights still mark the query's words.
  EXPECT_NE(scored.highlight("server notes 8 timeout cache").find("\u00abtimeout\u00bb"),
            std::string::npos);
  // A query with operators is BM25 as written.
  options.candidates = nullptr;
  const auto required = index.search("+proxy -timeout", options);
  ASSERT_EQ(required.hits.size(), 10U);
  for (const auto& h : required.hits) {
    EXPECT_LE(h.label, 20U);
    EXPECT_EQ(h.label % 2, 1U);
  }
}

TEST(LexicalIndex, AQueryOfCommonWordsScoresTheCandidatesItIsGiven) {
  TempDir dir("parley-lexical");
  // On disk as the server keeps it, and in memory.
  for (const std::string& directory : {dir.path() + "/lexical", std::string()}) {
    SCOPED_TRACE(directory.empty() ? "in memory" : "on disk");
    const auto index = common_words_index(directory);
    search_common_words_with_candidates(*index);
    // A removed chunk has no data.
    index->remove(8);
    EXPECT_FALSE(index->data(8).has_value());
    EXPECT_TRUE(index->data(10).has_value());
  }
}

// Scores are BM25's (k1 1, b 0.5, against a reference length of 200 words, lengths under
// half of it counted as half: lexical_index.cpp), its length normalisation applied when a
// chunk is indexed: a word said once in a short chunk outweighs the same word said once in a
// long one, and the scores are BM25's.
TEST(LexicalIndex, ScoresAreBm25WithTheChunksLengthsNormalised) {
  auto opened = LexicalIndex::open("");
  ASSERT_TRUE(opened.ok());
  auto index = std::move(opened).value();
  const auto filler = [](int words) {
    std::string text;
    for (int i = 0; i < words; ++i) text += " filler";
    return text;
  };
  index->upsert(1, "doc_a", "", "proxy" + filler(119), "{}");              // 120 words, once
  index->upsert(2, "doc_a", "", "proxy" + filler(599), "{}");              // 600 words, once
  index->upsert(3, "doc_a", "", "proxy proxy proxy" + filler(597), "{}");  // 600, three times
  index->upsert(4, "doc_a", "", "proxy" + filler(9), "{}");                // 10 words, once
  for (uint64_t label = 10; label < 30; ++label) {
    index->upsert(label, "doc_b", "", "other words", "{}");
  }
  LexicalSearch options;
  options.k = 5;
  const auto r = index->search("proxy", options);
  ASSERT_EQ(labels_of(r), (std::vector<uint64_t>{3, 4, 1, 2}));
  // Xapian's idf, log((N - n + 0.5) / (n + 0.5)), times BM25's term frequency part,
  // tf × (k1 + 1) / (k1 × norm + tf) with norm = 0.5 + 0.5 × L: L 0.6 for 120 words, 3 for
  // 600, and 0.5 (the floor) for 10.
  const double idf = std::log((24 - 4 + 0.5) / (4 + 0.5));
  const auto bm25 = [&](double tf, double length) {
    const double norm = 0.5 + 0.5 * std::max(0.5, length / 200);
    return idf * tf * 2 / (norm + tf);
  };
  // At 120 and 600 words the scaled counts are whole numbers (40 and 16 a word): exact.
  EXPECT_NEAR(r.hits[0].score, bm25(3, 600), 1e-9);
  EXPECT_NEAR(r.hits[2].score, bm25(1, 120), 1e-9);
  EXPECT_NEAR(r.hits[3].score, bm25(1, 600), 1e-9);
  // At 10 words 42.67 is counted as 43.
  EXPECT_NEAR(r.hits[1].score, bm25(1, 10), 0.005 * bm25(1, 10));
}

std::unique_ptr<BaseIndex> make_base(const HashedEmbedder& embedder) {
  auto lexical = LexicalIndex::open("");
  EXPECT_TRUE(lexical.ok());
  auto index = std::make_unique<BaseIndex>("kb_test", embedder.dimension(),
                                           std::make_unique<VectorIndex>(embedder.dimension()),
                                           std::move(lexical).value());
  BaseIndex& base = *index;
  base.add(
      chunk(1, "doc_a", "Install > Linux", "Run the installer with sudo and reboot.", embedder));
  base.add(chunk(2, "doc_a", "Configure", "Set proxy_timeout to thirty seconds in the config file.",
                 embedder));
  base.add(chunk(3, "doc_b", "Refunds", "Refunds are paid within five business days.", embedder));
  base.add(
      chunk(4, "doc_b", "Shipping", "Shipping is free for orders above fifty euros.", embedder));
  base.set_documents(
      {{"doc_a", "file_a", "guide.md", "markdown", R"({"product":"proxy","version":2})"},
       {"doc_b", "file_b", "policy.pdf", "pdf", R"({"product":"shop","version":1})"}});
  return index;
}

SearchRequest request(const std::string& query, const HashedEmbedder& embedder, size_t k = 3) {
  SearchRequest r;
  r.query = query;
  const Vectors v = embedder.embed_now({query});
  r.query_vector.assign(v.values.begin(), v.values.end());
  r.k = k;
  return r;
}

// A filter's chunks, listed (in any order) or tested one match at a time, give the same k
// results when 1% of the chunks pass, on disk as in memory.
TEST(LexicalIndex, AFilterListedOrTestedReturnsKResultsWhenOnePercentPasses) {
  TempDir dir("parley-lexical-filter");
  for (const std::string& directory : {dir.path() + "/lexical", std::string()}) {
    SCOPED_TRACE(directory.empty() ? "in memory" : "on disk");
    const auto index = common_words_index(directory);
    std::vector<uint64_t> only;
    for (uint64_t label = 3000; label >= 100; label -= 100) only.push_back(label);  // 1%
    const std::set<uint64_t> passing(only.begin(), only.end());
    const std::function<bool(uint64_t)> allowed = [&](uint64_t l) { return passing.contains(l); };
    LexicalSearch listed;
    listed.k = 10;
    listed.only = &only;
    LexicalSearch tested;
    tested.k = 10;
    tested.allowed = &allowed;
    for (const char* query : {"server timeout", "notes latency cache"}) {
      SCOPED_TRACE(query);
      const auto by_list = index->search(query, listed);
      ASSERT_EQ(by_list.hits.size(), 10U);
      for (const auto& h : by_list.hits) EXPECT_TRUE(passing.contains(h.label)) << h.label;
      EXPECT_EQ(labels_of(by_list), labels_of(index->search(query, tested)));
    }
  }
}

TEST(BaseIndex, HybridSearchFindsTheRightChunkWithScoresHighlightsAndCitations) {
  const HashedEmbedder embedder;
  const auto owned = make_base(embedder);
  const BaseIndex& base = *owned;
  const auto hits = base.search(request("how long do refunds take", embedder));
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].label, 3U);
  EXPECT_EQ(hits[0].document_id, "doc_b");
  EXPECT_EQ(hits[0].document_name, "policy.pdf");
  EXPECT_EQ(hits[0].file_id, "file_b");
  EXPECT_EQ(hits[0].section, "Refunds");
  EXPECT_EQ(hits[0].start_offset, 300);
  EXPECT_EQ(hits[0].attributes["product"], "shop");
  ASSERT_TRUE(hits[0].lexical_score.has_value());
  ASSERT_TRUE(hits[0].vector_score.has_value());
  EXPECT_GT(hits[0].score, 0);
  EXPECT_NE(hits[0].highlight.find("\u00abRefunds\u00bb"), std::string::npos) << hits[0].highlight;

  // The vector side alone still finds a misspelt word; the lexical side alone does not.
  auto vector_only = request("proxy_timout configration", embedder);
  vector_only.mode = SearchMode::kVector;
  EXPECT_EQ(base.search(vector_only).at(0).label, 2U);
  auto lexical_only = request("installer", embedder);
  lexical_only.mode = SearchMode::kLexical;
  const auto lexical_hits = base.search(lexical_only);
  ASSERT_EQ(lexical_hits.size(), 1U);
  EXPECT_EQ(lexical_hits[0].label, 1U);
  EXPECT_FALSE(lexical_hits[0].vector_score.has_value());
}

TEST(BaseIndex, FiltersOnAttributesAndDocumentFields) {
  const HashedEmbedder embedder;
  const auto owned = make_base(embedder);
  const BaseIndex& base = *owned;
  auto r = request("free shipping installer refunds proxy", embedder, 10);
  r.filter = Filter::parse({{"type", "eq"}, {"key", "product"}, {"value", "proxy"}}).value();
  for (const auto& h : base.search(r)) EXPECT_EQ(h.document_id, "doc_a");
  r.filter = Filter::parse({{"type", "and"},
                            {"filters",
                             {{{"type", "gte"}, {"key", "version"}, {"value", 1}},
                              {{"type", "in"}, {"key", "format"}, {"value", {"pdf"}}}}}})
                 .value();
  const auto pdf = base.search(r);
  ASSERT_FALSE(pdf.empty());
  for (const auto& h : pdf) EXPECT_EQ(h.document_name, "policy.pdf");
  r.filter = Filter::parse({{"type", "eq"}, {"key", "product"}, {"value", "none"}}).value();
  EXPECT_TRUE(base.search(r).empty());

  EXPECT_FALSE(Filter::parse({{"type", "like"}, {"key", "a"}, {"value", 1}}).ok());
  EXPECT_FALSE(Filter::parse({{"type", "in"}, {"key", "a"}, {"value", 1}}).ok());
  EXPECT_FALSE(Filter::parse({{"type", "and"}}).ok());
  EXPECT_EQ(Filter::parse(json::array()).error().param, "filters");
}

// A filter's chunks are remembered between searches, and forgotten as soon as a document's
// attributes or chunks change.
TEST(BaseIndex, ARememberedFilterFollowsChangesToDocumentsAndChunks) {
  const HashedEmbedder embedder;
  const auto owned = make_base(embedder);
  BaseIndex& base = *owned;
  auto r = request("free shipping installer refunds proxy", embedder, 10);
  r.filter = Filter::parse({{"type", "eq"}, {"key", "product"}, {"value", "proxy"}}).value();
  const auto documents_found = [&] {
    std::set<std::string> found;
    for (const auto& h : base.search(r)) found.insert(h.document_id);
    return found;
  };
  EXPECT_EQ(documents_found(), (std::set<std::string>{"doc_a"}));
  EXPECT_EQ(documents_found(), (std::set<std::string>{"doc_a"}));  // remembered
  // doc_b's attributes change: it passes now.
  base.set_document({"doc_b", "file_b", "policy.pdf", "pdf", R"({"product":"proxy"})"});
  EXPECT_EQ(documents_found(), (std::set<std::string>{"doc_a", "doc_b"}));
  // doc_a's chunks go: only doc_b is left.
  base.remove(1, "doc_a");
  base.remove(2, "doc_a");
  EXPECT_EQ(documents_found(), (std::set<std::string>{"doc_b"}));
  // A chunk added to doc_a: found again.
  base.add(chunk(5, "doc_a", "Proxy", "Proxy refunds need the installer.", embedder));
  EXPECT_EQ(documents_found(), (std::set<std::string>{"doc_a", "doc_b"}));
}

TEST(BaseIndex, RemovedChunksAreNeverReturned) {
  const HashedEmbedder embedder;
  const auto owned = make_base(embedder);
  BaseIndex& base = *owned;
  base.remove(3, "doc_b");
  for (const auto& h : base.search(request("refunds paid business days", embedder, 10))) {
    EXPECT_NE(h.label, 3U);
  }
  EXPECT_EQ(base.chunks(), 3U);
}

// The manager over a real SQLite store.
class IndexManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    store::StorageSettings settings;
    settings.url = "sqlite://" + dir_.path() + "/parley.db";
    store::OpenOptions options;
    options.clock = &clock_;
    auto opened = store::open(settings, options);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
  }
  IndexOptions options() const {
    IndexOptions o;
    o.directory = dir_.path() + "/index";
    o.sync_interval = std::chrono::hours(1);  // the tests call catch_up themselves
    return o;
  }
  std::string add_document(const std::string& kb, const std::string& name,
                           const std::vector<std::string>& texts) {
    auto& repo = store_->knowledge();
    const std::string content = name + std::to_string(texts.size());
    auto file = repo.put_file({"t", "", name, "knowledge", "sha-" + content, content}, now());
    auto doc = repo.add_document({kb, "t", file->id, name, "{}"}, now());
    store::ChunkCommit commit{doc->document.id, file->id, "text", 0, {}, ""};
    for (size_t i = 0; i < texts.size(); ++i) {
      const Vectors v = embedder_.embed_now({texts[i]});
      commit.chunks.push_back({static_cast<int64_t>(i), texts[i], "", 0, 0, 0,
                               static_cast<int64_t>(texts[i].size()), 3,
                               std::vector<float>(v.values.begin(), v.values.end())});
    }
    EXPECT_TRUE(repo.commit_chunks(commit, now()).ok());
    return doc->document.id;
  }
  // A base of one chunk and a larger one (3 chunks with `warranty`, else 2). The small one is
  // created first: bases are listed newest first, so only a rebuild's smallest-first order
  // reads it first.
  std::pair<std::string, std::string> small_and_large(bool warranty = true) {
    const std::string small = make_base();
    add_document(small, "c.txt", {"alpha proxy timeout"});
    const std::string large = make_base();
    add_document(large, "a.txt", {"beta refund policy", "gamma shipping costs"});
    if (warranty) add_document(large, "b.txt", {"delta warranty terms"});
    return {small, large};
  }
  std::string make_base() {
    auto base = store_->knowledge().create_base(
        {"t", "", "Docs", "", embedder_.name(), embedder_.dimension(), "{}", "{}"}, now());
    return base->id;
  }
  int64_t now() const { return clock_.unix_ms(); }
  std::vector<uint64_t> labels(IndexManager& manager, const std::string& kb, const std::string& q) {
    std::vector<uint64_t> out;
    auto base = manager.base(kb);
    if (!base) return out;
    for (const auto& h : base->search(request(q, embedder_, 10))) out.push_back(h.label);
    return out;
  }

  TempDir dir_{"parley-index"};
  ManualClock clock_;
  HashedEmbedder embedder_;
  std::unique_ptr<store::Storage> store_;
};

TEST_F(IndexManagerTest, CatchesUpPersistsAndAppliesOnlyWhatChangedAfterARestart) {
  const std::string kb = make_base();
  add_document(kb, "a.txt", {"alpha proxy timeout", "beta refund policy"});
  {
    IndexManager manager(store_->knowledge(), options());
    ASSERT_TRUE(manager.start().ok());
    EXPECT_EQ(labels(manager, kb, "refund").size(), 2U);  // both chunks, refund first
    const std::string doc = add_document(kb, "b.txt", {"gamma shipping costs"});
    ASSERT_TRUE(manager.catch_up().ok());
    EXPECT_EQ(manager.base(kb)->chunks(), 3U);
    ASSERT_TRUE(store_->knowledge().delete_document(doc).ok());
    ASSERT_TRUE(manager.catch_up().ok());
    EXPECT_EQ(manager.base(kb)->chunks(), 2U);
    manager.stop();
  }
  // Changed while no process was running: applied from the log on the next start.
  add_document(kb, "c.txt", {"delta warranty terms"});
  IndexManager again(store_->knowledge(), options());
  ASSERT_TRUE(again.start().ok());
  EXPECT_EQ(again.base(kb)->chunks(), 3U);
  EXPECT_EQ(again.applied_seq(), *store_->knowledge().last_change());
  const auto found = labels(again, kb, "warranty");
  ASSERT_FALSE(found.empty());
  again.stop();
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/index/state-v3.json"));
}

TEST_F(IndexManagerTest, OneDirectoryServesOneManagerAtATime) {
  const std::string kb = make_base();
  add_document(kb, "a.txt", {"the proxy timeout is thirty seconds"});
  auto first = std::make_unique<IndexManager>(store_->knowledge(), options());
  ASSERT_TRUE(first->start().ok());
  // A second one (another process, as far as the lock knows) is refused, and does not touch
  // the first one's files.
  IndexManager second(store_->knowledge(), options());
  const auto refused = second.start();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("in use by another process"), std::string::npos);
  EXPECT_EQ(labels(*first, kb, "proxy timeout").size(), 1U);
  first.reset();
  IndexManager third(store_->knowledge(), options());
  ASSERT_TRUE(third.start().ok());
  EXPECT_EQ(labels(third, kb, "proxy timeout").size(), 1U);
}

TEST_F(IndexManagerTest, AnIndexOfAnotherDatabaseIsRebuiltAndDroppedBasesGo) {
  const std::string kb = make_base();
  add_document(kb, "a.txt", {"alpha", "beta"});
  {
    IndexManager manager(store_->knowledge(), options());
    ASSERT_TRUE(manager.start().ok());
    manager.stop();
  }
  // Another database in the same place (a restore of a different installation).
  store_->close();
  std::filesystem::remove(dir_.path() + "/parley.db");
  std::filesystem::remove(dir_.path() + "/parley.db-wal");
  std::filesystem::remove(dir_.path() + "/parley.db-shm");
  open();
  const std::string other = make_base();
  add_document(other, "x.txt", {"only this one"});
  IndexManager manager(store_->knowledge(), options());
  ASSERT_TRUE(manager.start().ok());
  EXPECT_EQ(manager.base(kb), nullptr);
  ASSERT_NE(manager.base(other), nullptr);
  EXPECT_EQ(manager.base(other)->chunks(), 1U);
  ASSERT_TRUE(store_->knowledge().delete_base(other).ok());
  ASSERT_TRUE(manager.catch_up().ok());
  EXPECT_EQ(manager.base(other), nullptr);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/index/" + other));
  manager.stop();
}

TEST_F(IndexManagerTest, IndexesSavedByAnEarlierVersionAreRebuilt) {
  const std::string kb = make_base();
  add_document(kb, "a.txt", {"alpha proxy timeout", "beta refund policy"});
  {
    IndexManager manager(store_->knowledge(), options());
    ASSERT_TRUE(manager.start().ok());
    manager.stop();
  }
  // The state file as earlier versions named it; the files stay readable, so only the name
  // can tell this version to rebuild (a marker left in the base's directory shows it did).
  const std::string state_path = dir_.path() + "/index/state-v3.json";
  for (const std::string earlier : {"state.json", "state-v2.json"}) {
    SCOPED_TRACE(earlier);
    ASSERT_TRUE(std::filesystem::exists(state_path));
    std::filesystem::rename(state_path, dir_.path() + "/index/" + earlier);
    const std::string marker = dir_.path() + "/index/" + kb + "/marker";
    std::ofstream(marker) << "left by the earlier version";
    IndexManager manager(store_->knowledge(), options());
    ASSERT_TRUE(manager.start().ok());
    EXPECT_FALSE(std::filesystem::exists(marker));
    EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/index/" + earlier));
    ASSERT_NE(manager.base(kb), nullptr);
    EXPECT_EQ(manager.base(kb)->chunks(), 2U);
    SearchRequest query;
    query.query = "refund";
    query.query_vector = embedder_.embed_now({"beta refund policy"}).values;
    const auto hits = manager.base(kb)->search(query);
    ASSERT_FALSE(hits.empty());
    EXPECT_NE(hits.front().text.find("refund"), std::string::npos);
    EXPECT_TRUE(hits.front().vector_score.has_value());
    manager.stop();
    EXPECT_TRUE(std::filesystem::exists(state_path));
  }
}

TEST_F(IndexManagerTest, ReembeddedVectorsReplaceTheOldOnesAtOnceAndSurviveARestart) {
  const std::string kb = make_base();
  add_document(kb, "a.txt", {"alpha proxy timeout", "beta refund policy"});
  auto manager = std::make_unique<IndexManager>(store_->knowledge(), options());
  ASSERT_TRUE(manager->start().ok());
  EXPECT_EQ(manager->base(kb)->embedder(), embedder_.name());
  auto& repo = store_->knowledge();
  ASSERT_TRUE(repo.begin_reembed(kb, "other-embed", now()).ok());
  std::vector<std::pair<int64_t, std::vector<float>>> next;
  auto pending = repo.chunks_to_reembed(kb, 0, 10);
  ASSERT_TRUE(pending.ok());
  for (const auto& c : *pending) {
    std::vector<float> v(8, 0.0F);
    v[c.text.starts_with("beta") ? 1 : 0] = 1.0F;  // the refund chunk lies along axis 1
    next.emplace_back(c.seq, v);
  }
  ASSERT_TRUE(repo.store_next_vectors(kb, "other-embed", next).ok());
  ASSERT_TRUE(repo.finish_reembed(kb, "other-embed", 8, now()).ok());

  SearchRequest query;
  query.query = "zzz";  // no lexical match: only the vector side can find anything
  query.query_vector = {0, 1, 0, 0, 0, 0, 0, 0};
  query.query_embedder = "other-embed";
  query.mode = SearchMode::kVector;
  // Not caught up yet: the index holds the old embedder's vectors, which this query must not
  // be compared with.
  EXPECT_TRUE(manager->base(kb)->search(query).empty());
  ASSERT_TRUE(manager->catch_up().ok());
  auto index = manager->base(kb);
  EXPECT_EQ(index->embedder(), "other-embed");
  EXPECT_EQ(index->dimension(), 8);
  EXPECT_EQ(index->chunks(), 2U);
  auto hits = index->search(query);
  ASSERT_FALSE(hits.empty());
  EXPECT_NE(hits.front().text.find("refund"), std::string::npos);
  // A query from the old embedder finds nothing on the vector side now.
  SearchRequest old = request("zzz", embedder_, 3);
  old.query_embedder = embedder_.name();
  old.mode = SearchMode::kVector;
  EXPECT_TRUE(index->search(old).empty());
  index.reset();
  manager.reset();  // as a process ends: its directory lock goes with it

  IndexManager again(store_->knowledge(), options());
  ASSERT_TRUE(again.start().ok());
  EXPECT_EQ(again.base(kb)->embedder(), "other-embed");
  EXPECT_EQ(again.base(kb)->dimension(), 8);
  hits = again.base(kb)->search(query);
  ASSERT_FALSE(hits.empty());
  EXPECT_NE(hits.front().text.find("refund"), std::string::npos);
  again.stop();
}

// Holds the rebuilding thread at one point, once, until the test lets it go.
class Gate {
 public:
  void arrive_and_wait() {
    std::unique_lock lock(mutex_);
    if (arrived_) return;
    arrived_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_; });
  }
  bool wait_arrived() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return arrived_; });
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool arrived_ = false;
  bool released_ = false;
};

// Declared after the manager: lets the rebuild go before the manager's destructor waits for
// it, whatever the test's outcome.
struct ReleaseOnExit {
  Gate& gate;
  ~ReleaseOnExit() { gate.release(); }
};

// Waits (30 s at most) for a background rebuild to end.
bool rebuilt(const IndexManager& manager) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (manager.rebuilding() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return !manager.rebuilding().has_value();
}

// What the server does: start() returns at once, each base serves as soon as it is whole
// (smallest first), the others are refused with when to try again, and nothing is saved
// until every base is rebuilt.
TEST_F(IndexManagerTest, ARebuildInTheBackgroundServesEachBaseOnceItIsWhole) {
  const auto bases = small_and_large();
  const std::string& small = bases.first;
  const std::string& large = bases.second;
  Gate gate;
  IndexOptions background = options();
  background.rebuild_in_background = true;
  background.on_rebuild_progress = [&](const RebuildProgress& p) {
    if (p.bases_done == 1) gate.arrive_and_wait();
  };
  const std::string state_path = dir_.path() + "/index/state-v3.json";
  {
    IndexManager manager(store_->knowledge(), background);
    ReleaseOnExit release{gate};
    ASSERT_TRUE(manager.start().ok());
    ASSERT_TRUE(gate.wait_arrived());

    const auto progress = manager.rebuilding();
    ASSERT_TRUE(progress.has_value());
    EXPECT_EQ(progress->bases_done, 1);
    EXPECT_EQ(progress->bases_total, 2);
    EXPECT_EQ(progress->chunks_done, 1);
    EXPECT_EQ(progress->chunks_total, 4);
    // Readiness says so, with the progress; a second later at this pace, 3 chunks are left.
    const json degraded = readiness(manager, progress->started + std::chrono::seconds(1));
    EXPECT_EQ(degraded["status"], "degraded") << degraded.dump();
    EXPECT_EQ(degraded["rebuilding"]["bases_done"], 1);
    EXPECT_EQ(degraded["rebuilding"]["bases"], 2);
    EXPECT_EQ(degraded["rebuilding"]["chunks_done"], 1);
    EXPECT_EQ(degraded["rebuilding"]["chunks"], 4);
    EXPECT_EQ(degraded["rebuilding"]["remaining_seconds"], 3);
    EXPECT_TRUE(readiness(manager, progress->started)["rebuilding"]["remaining_seconds"].is_null());
    const auto ready = manager.serving(small);
    ASSERT_TRUE(ready.ok());
    ASSERT_NE(*ready, nullptr);
    EXPECT_EQ((*ready)->chunks(), 1U);
    const auto refused = manager.serving(large);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(refused.error().reason, "knowledge_index_rebuilding");
    EXPECT_NE(refused.error().message.find("1 of 4 chunks"), std::string::npos)
        << refused.error().message;
    ASSERT_TRUE(refused.error().retry_after_ms.has_value());
    EXPECT_GE(*refused.error().retry_after_ms, 1'000);
    EXPECT_LE(*refused.error().retry_after_ms, 60'000);
    ASSERT_TRUE(manager.checkpoint().ok());
    EXPECT_FALSE(std::filesystem::exists(state_path)) << "half a rebuild was saved";

    gate.release();
    ASSERT_TRUE(rebuilt(manager));
    EXPECT_EQ(readiness(manager, std::chrono::steady_clock::now()), json({{"status", "ok"}}));
    const auto whole = manager.serving(large);
    ASSERT_TRUE(whole.ok());
    ASSERT_NE(*whole, nullptr);
    EXPECT_EQ((*whole)->chunks(), 3U);
    EXPECT_FALSE(labels(manager, large, "warranty").empty());
    manager.stop();
  }
  EXPECT_TRUE(std::filesystem::exists(state_path));
  // Saved whole: the next start loads it, with nothing to rebuild.
  int reports = 0;
  background.on_rebuild_progress = [&](const RebuildProgress&) { ++reports; };
  IndexManager again(store_->knowledge(), background);
  ASSERT_TRUE(again.start().ok());
  EXPECT_FALSE(again.rebuilding().has_value());
  ASSERT_NE(again.base(large), nullptr);
  EXPECT_EQ(again.base(large)->chunks(), 3U);
  EXPECT_EQ(reports, 0);
  again.stop();
}

// The database goes away in the middle of a rebuild (here: the chunks' table is renamed away
// behind the store's back): the rebuild is tried again, and resumes where it stopped. The
// base that already served keeps serving throughout, as the same index, not rebuilt again.
// Renames a table of the store's database behind its back: the database "goes away" for what
// reads that table.
void rename_table(const std::string& database, const std::string& from, const std::string& to) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(database.c_str(), &db), SQLITE_OK);
  const std::string sql = "ALTER TABLE " + from + " RENAME TO " + to;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

// The chunks' table goes away in the middle of a rebuild: the rebuild is tried again and again,
// and resumes where it stopped once the table is back. The base that already served keeps
// serving throughout, as the same index, not rebuilt again.
TEST_F(IndexManagerTest, AFailedRebuildResumesAndTheBasesThatServedKeepServing) {
  const auto bases = small_and_large();
  const std::string& small = bases.first;
  const std::string& large = bases.second;
  const std::string database = dir_.path() + "/parley.db";
  Gate first;  // the small base is whole, in the first try
  // Reports of the small base alone done: the first try's, then one at the start of each try
  // after it (which counts what is done afresh).
  std::atomic<int> small_done_reports{0};
  IndexOptions background = options();
  background.rebuild_in_background = true;
  background.sync_interval = std::chrono::milliseconds(10);  // tried again after 50 ms
  background.on_rebuild_progress = [&](const RebuildProgress& p) {
    if (p.bases_done != 1 || p.chunks_done != 1) return;
    if (++small_done_reports == 1) first.arrive_and_wait();
  };
  IndexManager manager(store_->knowledge(), background);
  ReleaseOnExit release_first{first};
  ASSERT_TRUE(manager.start().ok());
  ASSERT_TRUE(first.wait_arrived());
  const auto served = manager.base(small);
  ASSERT_NE(served, nullptr);

  rename_table(database, "kb_chunks", "kb_chunks_away");
  first.release();
  // Two more tries begin (the first of them failed), while the small base serves all along.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (small_done_reports.load() < 3 && std::chrono::steady_clock::now() < until) {
    const auto ready = manager.serving(small);
    ASSERT_TRUE(ready.ok()) << ready.error().message;
    ASSERT_EQ(ready->get(), served.get());
    const auto refused = manager.serving(large);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().reason, "knowledge_index_rebuilding");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(small_done_reports.load(), 3);
  const auto progress = manager.rebuilding();
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->bases_done, 1);
  EXPECT_EQ(progress->chunks_total, 4);
  rename_table(database, "kb_chunks_away", "kb_chunks");

  ASSERT_TRUE(rebuilt(manager));
  EXPECT_EQ(manager.base(small).get(), served.get());
  const auto whole = manager.serving(large);
  ASSERT_TRUE(whole.ok());
  ASSERT_NE(*whole, nullptr);
  EXPECT_EQ((*whole)->chunks(), 3U);
  EXPECT_FALSE(labels(manager, large, "warranty").empty());
  EXPECT_FALSE(labels(manager, small, "proxy").empty());
  manager.stop();
}

// The change log goes away after every base was read, as the rebuild applies what was logged
// meanwhile: every base keeps serving, as the same index, until a later try finishes.
TEST_F(IndexManagerTest, ARebuildThatFailsAtItsLastStepKeepsEveryBaseServing) {
  const auto bases = small_and_large(false);
  const std::string& small = bases.first;
  const std::string& large = bases.second;
  const std::string database = dir_.path() + "/parley.db";
  Gate read;  // both bases are whole
  IndexOptions background = options();
  background.rebuild_in_background = true;
  background.sync_interval = std::chrono::milliseconds(10);
  background.on_rebuild_progress = [&](const RebuildProgress& p) {
    if (p.bases_done == 2) read.arrive_and_wait();  // (a gate opens once)
  };
  IndexManager manager(store_->knowledge(), background);
  ReleaseOnExit release{read};
  ASSERT_TRUE(manager.start().ok());
  ASSERT_TRUE(read.wait_arrived());
  const auto small_served = manager.base(small);
  const auto large_served = manager.base(large);
  ASSERT_NE(small_served, nullptr);
  ASSERT_NE(large_served, nullptr);

  rename_table(database, "kb_changes", "kb_changes_away");
  read.release();
  // Several tries fail (one every 50 ms): both bases serve all along, not rebuilt again.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(manager.rebuilding().has_value());
    const auto a = manager.serving(small);
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_EQ(a->get(), small_served.get());
    const auto b = manager.serving(large);
    ASSERT_TRUE(b.ok()) << b.error().message;
    ASSERT_EQ(b->get(), large_served.get());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  rename_table(database, "kb_changes_away", "kb_changes");
  ASSERT_TRUE(rebuilt(manager));
  EXPECT_EQ(manager.base(small).get(), small_served.get());
  EXPECT_EQ(manager.base(large).get(), large_served.get());
  EXPECT_FALSE(labels(manager, large, "refund").empty());
  manager.stop();
}

TEST_F(IndexManagerTest, ARebuildCutShortByStoppingSavesNothingAndIsDoneAgain) {
  const auto bases = small_and_large(false);
  const std::string& small = bases.first;
  const std::string& large = bases.second;
  Gate gate;
  IndexOptions background = options();
  background.rebuild_in_background = true;
  background.on_rebuild_progress = [&](const RebuildProgress& p) {
    if (p.bases_done == 1) gate.arrive_and_wait();
  };
  {
    IndexManager manager(store_->knowledge(), background);
    ReleaseOnExit release{gate};
    ASSERT_TRUE(manager.start().ok());
    ASSERT_TRUE(gate.wait_arrived());
    std::thread stopper([&] { manager.stop(); });
    while (!manager.stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    gate.release();
    stopper.join();
    EXPECT_TRUE(manager.rebuilding().has_value()) << "the rebuild ran to its end";
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/index/state-v3.json"));
  // Done again at the next start (here a blocking one), whole.
  int reports = 0;
  IndexOptions blocking = options();
  blocking.on_rebuild_progress = [&](const RebuildProgress&) { ++reports; };
  IndexManager again(store_->knowledge(), blocking);
  ASSERT_TRUE(again.start().ok());
  EXPECT_GT(reports, 0);
  EXPECT_FALSE(again.rebuilding().has_value());
  ASSERT_NE(again.base(large), nullptr);
  EXPECT_EQ(again.base(large)->chunks(), 2U);
  ASSERT_NE(again.base(small), nullptr);
  EXPECT_EQ(again.base(small)->chunks(), 1U);
  again.stop();
}

// While a long rebuild reads the other bases, the bases that serve already follow the log: a
// document deleted meanwhile is not found there.
TEST_F(IndexManagerTest, BasesThatServeDuringARebuildFollowTheLog) {
  const std::string first = make_base();
  const std::string gone = add_document(first, "a.txt", {"alpha proxy timeout"});
  const std::string second = make_base();
  add_document(second, "b.txt", {"beta refund policy", "gamma shipping costs"});
  const std::string third = make_base();
  add_document(third, "c.txt", {"delta warranty terms", "epsilon returns", "zeta invoices"});
  Gate after_first;
  Gate after_second;
  IndexOptions background = options();
  background.rebuild_in_background = true;
  background.on_rebuild_progress = [&](const RebuildProgress& p) {
    if (p.bases_done == 1) after_first.arrive_and_wait();
    if (p.bases_done == 2) after_second.arrive_and_wait();
  };
  IndexManager manager(store_->knowledge(), background);
  ReleaseOnExit release_first{after_first};
  ReleaseOnExit release_second{after_second};
  ASSERT_TRUE(manager.start().ok());
  ASSERT_TRUE(after_first.wait_arrived());
  EXPECT_EQ(labels(manager, first, "proxy").size(), 1U);
  ASSERT_TRUE(store_->knowledge().delete_document(gone).ok());
  after_first.release();
  ASSERT_TRUE(after_second.wait_arrived());
  ASSERT_TRUE(manager.rebuilding().has_value());
  EXPECT_EQ(manager.base(first)->chunks(), 0U);
  EXPECT_TRUE(labels(manager, first, "proxy").empty());
  EXPECT_FALSE(manager.serving(third).ok());
  after_second.release();
  ASSERT_TRUE(rebuilt(manager));
  EXPECT_EQ(manager.base(third)->chunks(), 3U);
  EXPECT_EQ(manager.applied_seq(), *store_->knowledge().last_change());
  manager.stop();
}

// One catch-up over a log that mixes additions and removals across two bases applies them in
// order: runs of additions are batched, never moved past a removal.
TEST_F(IndexManagerTest, ACatchUpOfMixedChangesAppliesThemInOrder) {
  const std::string a = make_base();
  const std::string b = make_base();
  add_document(a, "a1.txt", {"alpha proxy timeout"});
  IndexManager manager(store_->knowledge(), options());
  ASSERT_TRUE(manager.start().ok());
  const std::string a2 = add_document(a, "a2.txt", {"beta refund policy", "gamma shipping"});
  add_document(b, "b1.txt", {"delta warranty terms"});
  ASSERT_TRUE(store_->knowledge().delete_document(a2).ok());
  add_document(a, "a3.txt", {"epsilon returns"});
  add_document(b, "b2.txt", {"zeta invoices", "eta receipts"});
  ASSERT_TRUE(manager.catch_up().ok());
  EXPECT_EQ(manager.base(a)->chunks(), 2U);
  EXPECT_EQ(manager.base(b)->chunks(), 3U);
  const auto hits = manager.base(a)->search(request("beta refund policy", embedder_, 10));
  ASSERT_FALSE(hits.empty());
  for (const auto& hit : hits) EXPECT_NE(hit.document_id, a2);
  EXPECT_EQ(manager.applied_seq(), *store_->knowledge().last_change());
  manager.stop();
}

}  // namespace
}  // namespace parley::knowledge
