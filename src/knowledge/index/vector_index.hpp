// The nearest-neighbour side of search for one knowledge base: hnswlib's HNSW graph over the
// chunks' unit vectors (inner product, so a score is the cosine similarity), keyed by chunk
// label (store::StoredChunk::seq). The vectors are held as 8-bit codes with a scale each
// (vector_index.cpp): a quarter of the memory and of each distance's reading, for scores
// within about 0.001 of the float cosine. The database keeps the float vectors.
//
// The graph is hnswlib's (built and saved by it); searches walk it with the walk below
// (vector_index.cpp), which reads each code's memory ahead of its distance and keeps only
// allowed chunks in its beam.
//
// Filters: a selective filter (at most kExactLimit allowed chunks, or a small share of the
// index) is answered exactly, by scanning the allowed vectors, since a walk would pass through
// most of the graph to fill its beam with them; a broad one walks the graph, passing through
// the chunks it may not return without keeping them. Either way a search returns k results
// whenever k allowed chunks exist (and, for the walk, the graph reaches them, as in practice
// it does).
//
// Thread-safe: searches run concurrently with each other; changes take turns with searches.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace hnswlib {
template <typename T>
class HierarchicalNSW;
}  // namespace hnswlib

namespace parley::knowledge {

class DotSpace;  // the graph's distance (vector_index.cpp)

struct VectorHit {
  uint64_t label = 0;
  float score = 0;  // cosine similarity, -1..1
};

struct VectorSearch {
  size_t k = 10;
  // Only these labels may be returned; null: any. The caller's count of them, when known,
  // helps choose between an exact scan and a filtered graph walk.
  const std::function<bool(uint64_t)>* allowed = nullptr;
  const std::vector<uint64_t>* allowed_labels = nullptr;  // the same set, listed (exact scan)
  size_t ef = 64;                                         // the graph walk's beam (at least k)
};

class VectorIndex {
 public:
  static constexpr size_t kExactLimit = 20'000;

  explicit VectorIndex(int dimension, size_t capacity = 1024);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  int dimension() const { return dimension_; }
  // Adds or replaces the vector of `label` (its dimension must match).
  void upsert(uint64_t label, std::span<const float> vector);
  // Many at once on `threads` threads (hnswlib inserts concurrently), each inserting at most
  // `per_thread` per hold of the lock that searches share; searches that wait go in between
  // two holds. The default, everything in one hold, is for an index no search sees yet.
  void upsert_many(const std::vector<std::pair<uint64_t, std::span<const float>>>& items,
                   size_t threads, size_t per_thread = SIZE_MAX);
  void remove(uint64_t label);
  size_t size() const;     // live vectors
  size_t deleted() const;  // removed but still in the graph (a rebuild drops them)
  bool contains(uint64_t label) const;

  std::vector<VectorHit> search(std::span<const float> query, const VectorSearch& options) const;
  // Exact: every live vector (or every allowed one) scored. The reference the ANN side is
  // measured against (recall), and the path of selective filters.
  std::vector<VectorHit> exact(std::span<const float> query, size_t k,
                               const std::vector<uint64_t>* labels = nullptr) const;

  Result<void> save(const std::string& path) const;
  static Result<std::unique_ptr<VectorIndex>> load(const std::string& path, int dimension);

 private:
  VectorIndex(int dimension, std::unique_ptr<DotSpace> space,
              std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph);
  std::vector<VectorHit> walk(std::span<const float> query, size_t k, size_t ef,
                              const std::function<bool(uint64_t)>* allowed) const;
  // A search's hold of mutex_, counted in waiting_searches_ while it waits.
  std::shared_lock<std::shared_mutex> search_lock() const;

  int dimension_;
  std::unique_ptr<DotSpace> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph_;
  mutable std::shared_mutex mutex_;
  // Searches waiting for mutex_: upsert_many lets them in between its holds (glibc's lock
  // would let it take the lock straight back).
  mutable std::atomic<int> waiting_searches_{0};
};

}  // namespace parley::knowledge
