// The HNSW index of one knowledge base (see vector_index.hpp).
#include "knowledge/index/vector_index.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <thread>

#include <hnswlib/hnswlib.h>
#include <sys/mman.h>

#include "knowledge/index/code_dot.hpp"
#include "obs/log.hpp"

namespace parley::knowledge {

namespace {

// Links per node and build-time beam. On a real embedding model's vectors (docs/benchmarks.md,
// 20,000 chunks, all 6,448 queries) recall@10 at a search beam of 128 is 0.940 with (32, 200),
// 0.942 with (24, 300) and 0.951 with (24, 400). Every insert pays for the build beam, at a
// rebuild and as documents arrive (5,985, 4,872 and 2,976 chunks/s for 200, 300 and 400
// there), while a wider search beam costs only a search's vector side, a small part of a
// hybrid search: (24, 300) at a search beam of 192 finds about what (24, 400) finds at 160
// (0.964 and 0.961, one build each) and builds 1.6 times as fast. At 100,000 chunks of the same
// pages (smaller chunks) recall at 192 is 0.948 and at 256 0.956: the default beam is 256.
constexpr size_t kGraphM = 24;
constexpr size_t kEfConstruction = 300;
constexpr double kExactShare = 0.02;  // allowed share below which a scan is exact
// How many codes ahead of its distance a walk asks for (2 to 16 measured the same at 100k).
constexpr size_t kReadAhead = 4;

// Vectors are held as 8-bit integers, each with its own scale (its largest component maps to
// 127): a quarter of the memory, and of what each distance reads, which is most of a graph
// walk's time once the index outgrows the CPU's caches. The error this adds to a cosine is
// about 0.0005 for 384 dimensions, below the gaps that separate most neighbours; scores are
// the quantised vectors' cosines.
constexpr size_t kScaleBytes = sizeof(float);

float scale_of(const uint8_t* code) {
  float scale = 0;
  std::memcpy(&scale, code, sizeof scale);  // codes follow hnswlib's links: not aligned
  return scale;
}

const CodeDot dot = code_dot();

float code_cosine(const uint8_t* a, const uint8_t* b, size_t dimension) {
  const auto* x = reinterpret_cast<const int8_t*>(a + kScaleBytes);
  const auto* y = reinterpret_cast<const int8_t*>(b + kScaleBytes);
  return scale_of(a) * scale_of(b) * static_cast<float>(dot(x, y, dimension));
}

// The graph's distance: 1 - the cosine.
float code_distance(const void* a, const void* b, const void* dimension) {
  return 1.0F - code_cosine(static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b),
                            *static_cast<const size_t*>(dimension));
}

// hnswlib's base layer (every node's links, code and label), moved into a block with room for
// `capacity` nodes in memory the kernel may back with 2 MiB pages. A walk reads a few thousand
// nodes scattered over the whole block; with 4 KiB pages nearly each of them also costs a walk
// of the page tables. Where the kernel gives no such pages (transparent huge pages off), nothing
// changes but the copy. (A block under 32 MiB may come from the C library's heap rather than a
// mapping of its own; the advice then stays on that part of the heap after the block is freed.)
void move_to_large_pages(hnswlib::HierarchicalNSW<float>& graph, size_t capacity) {
  constexpr size_t kLargePage = size_t{2} << 20;
  const size_t bytes = capacity * graph.size_data_per_element_;
  if (bytes < kLargePage) return;
  const size_t rounded = (bytes + kLargePage - 1) / kLargePage * kLargePage;
  void* moved = std::aligned_alloc(kLargePage, rounded);
  if (moved == nullptr) return;
  madvise(moved, rounded, MADV_HUGEPAGE);  // a hint: refused where huge pages are off
  std::memcpy(moved, graph.data_level0_memory_,
              graph.cur_element_count * graph.size_data_per_element_);
  std::free(graph.data_level0_memory_);
  graph.data_level0_memory_ = static_cast<char*>(moved);
}

// hnswlib's resizeIndex with the nodes moved first: its realloc then finds the block large
// enough and keeps it in place, so growing copies the nodes once, not twice.
void grow(hnswlib::HierarchicalNSW<float>& graph, size_t capacity) {
  move_to_large_pages(graph, capacity);
  graph.resizeIndex(capacity);
}

}  // namespace

class DotSpace final : public hnswlib::SpaceInterface<float> {
 public:
  explicit DotSpace(size_t dimension) : dimension_(dimension) {}
  // Padded to a multiple of 4 bytes: hnswlib places each element's links after the previous
  // element's data and reads them as 32-bit integers.
  size_t get_data_size() override { return data_size(); }
  size_t data_size() const { return kScaleBytes + (dimension_ + 3) / 4 * 4; }
  hnswlib::DISTFUNC<float> get_dist_func() override { return &code_distance; }
  void* get_dist_func_param() override { return &dimension_; }

  // A unit vector's code: its scale, then each component over the scale, rounded.
  std::vector<uint8_t> encode(std::span<const float> vector) const {
    std::vector<uint8_t> code(data_size());
    // A component that is not a finite number (an upstream's overflow) counts as 0.
    const auto finite = [&](size_t i) {
      return i < vector.size() && std::isfinite(vector[i]) ? static_cast<double>(vector[i]) : 0.0;
    };
    double largest = 0;
    for (size_t i = 0; i < dimension_; ++i) largest = std::max(largest, std::abs(finite(i)));
    const double scale = largest > 1e-30 ? largest / 127.0 : 1.0;
    const auto stored_scale = static_cast<float>(scale);
    std::memcpy(code.data(), &stored_scale, sizeof stored_scale);
    for (size_t i = 0; i < dimension_; ++i) {
      const double q = std::clamp(std::nearbyint(finite(i) / scale), -127.0, 127.0);
      code[kScaleBytes + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
    return code;
  }

 private:
  size_t dimension_;
};

namespace {

void keep_best(std::vector<VectorHit>& hits, size_t k) {
  const auto better = [](const VectorHit& a, const VectorHit& b) {
    return a.score > b.score || (a.score == b.score && a.label < b.label);
  };
  if (hits.size() > k) {
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(k), hits.end(),
                      better);
    hits.resize(k);
  } else {
    std::sort(hits.begin(), hits.end(), better);
  }
}

}  // namespace

VectorIndex::VectorIndex(int dimension, size_t capacity)
    : dimension_(dimension),
      space_(std::make_unique<DotSpace>(static_cast<size_t>(dimension))),
      graph_(std::make_unique<hnswlib::HierarchicalNSW<float>>(
          space_.get(), std::max<size_t>(capacity, 16), kGraphM, kEfConstruction)) {
  move_to_large_pages(*graph_, graph_->max_elements_);
}

VectorIndex::VectorIndex(int dimension, std::unique_ptr<DotSpace> space,
                         std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph)
    : dimension_(dimension), space_(std::move(space)), graph_(std::move(graph)) {}

VectorIndex::~VectorIndex() = default;

void VectorIndex::upsert(uint64_t label, std::span<const float> vector) {
  if (vector.size() != static_cast<size_t>(dimension_)) return;
  std::unique_lock lock(mutex_);
  if (graph_->cur_element_count >= graph_->max_elements_) {
    grow(*graph_, std::max<size_t>(16, graph_->max_elements_ * 2));
  }
  graph_->addPoint(space_->encode(vector).data(), static_cast<hnswlib::labeltype>(label));
}

void VectorIndex::upsert_many(const std::vector<std::pair<uint64_t, std::span<const float>>>& items,
                              size_t threads, size_t per_thread) {
  threads = std::clamp<size_t>(threads, 1, std::max<size_t>(1, items.size() / 64));
  per_thread = std::max<size_t>(per_thread, 1);
  const size_t slice = per_thread > SIZE_MAX / threads ? SIZE_MAX : per_thread * threads;
  for (size_t begin = 0, end = 0; begin < items.size(); begin = end) {
    end = begin + std::min(slice, items.size() - begin);
    if (begin > 0) {
      // The searches that queued during the last hold go first (for a while at most: a
      // steady stream of them must not stop the inserts).
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
      while (waiting_searches_.load() > 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
      }
    }
    std::unique_lock lock(mutex_);
    // Room first: hnswlib grows only while no insert runs.
    const size_t needed = graph_->cur_element_count + (end - begin);
    if (needed > graph_->max_elements_) {
      grow(*graph_, std::max(needed, graph_->max_elements_ * 2));
    }
    std::atomic<size_t> next{begin};
    const auto insert = [&] {
      for (size_t i = next++; i < end; i = next++) {
        const auto& [label, vector] = items[i];
        if (vector.size() != static_cast<size_t>(dimension_)) continue;
        try {
          graph_->addPoint(space_->encode(vector).data(), static_cast<hnswlib::labeltype>(label));
        } catch (const std::exception& e) {
          // hnswlib refuses only when full, which the room made above rules out.
          log::warn("vector not indexed",
                    {{"label", static_cast<int64_t>(label)}, {"error", e.what()}});
        }
      }
    };
    const size_t helpers_wanted = std::min(threads, end - begin) - 1;
    std::vector<std::thread> helpers;
    helpers.reserve(helpers_wanted);
    for (size_t t = 0; t < helpers_wanted; ++t) helpers.emplace_back(insert);
    insert();
    for (auto& helper : helpers) helper.join();
  }
}

void VectorIndex::remove(uint64_t label) {
  std::unique_lock lock(mutex_);
  const auto it = graph_->label_lookup_.find(static_cast<hnswlib::labeltype>(label));
  if (it == graph_->label_lookup_.end() || graph_->isMarkedDeleted(it->second)) return;
  graph_->markDelete(static_cast<hnswlib::labeltype>(label));
}

size_t VectorIndex::size() const {
  std::shared_lock lock(mutex_);
  return graph_->cur_element_count - graph_->num_deleted_;
}

size_t VectorIndex::deleted() const {
  std::shared_lock lock(mutex_);
  return graph_->num_deleted_;
}

bool VectorIndex::contains(uint64_t label) const {
  std::shared_lock lock(mutex_);
  const auto it = graph_->label_lookup_.find(static_cast<hnswlib::labeltype>(label));
  return it != graph_->label_lookup_.end() && !graph_->isMarkedDeleted(it->second);
}

std::vector<VectorHit> VectorIndex::exact(std::span<const float> query, size_t k,
                                          const std::vector<uint64_t>* labels) const {
  std::vector<VectorHit> hits;
  if (query.size() != static_cast<size_t>(dimension_) || k == 0) return hits;
  const auto code = space_->encode(query);
  const auto lock = search_lock();
  const size_t n = static_cast<size_t>(dimension_);
  const auto score = [&](hnswlib::tableint internal) {
    const auto* v = reinterpret_cast<const uint8_t*>(graph_->getDataByInternalId(internal));
    return code_cosine(code.data(), v, n);
  };
  if (labels != nullptr) {
    hits.reserve(labels->size());
    for (uint64_t label : *labels) {
      const auto it = graph_->label_lookup_.find(static_cast<hnswlib::labeltype>(label));
      if (it == graph_->label_lookup_.end() || graph_->isMarkedDeleted(it->second)) continue;
      hits.push_back({label, score(it->second)});
    }
  } else {
    hits.reserve(graph_->cur_element_count);
    for (hnswlib::tableint i = 0; i < graph_->cur_element_count; ++i) {
      if (graph_->isMarkedDeleted(i)) continue;
      hits.push_back({static_cast<uint64_t>(graph_->getExternalLabel(i)), score(i)});
    }
  }
  keep_best(hits, k);
  return hits;
}

std::vector<VectorHit> VectorIndex::walk(std::span<const float> query, size_t k, size_t ef,
                                         const std::function<bool(uint64_t)>* allowed) const {
  const auto& graph = *graph_;
  if (graph.cur_element_count == 0) return {};
  using Id = hnswlib::tableint;
  const auto code = space_->encode(query);
  const auto n = static_cast<size_t>(dimension_);
  const size_t code_bytes = space_->data_size();
  const auto distance = [&](Id id) {
    return 1.0F - code_cosine(code.data(),
                              reinterpret_cast<const uint8_t*>(graph.getDataByInternalId(id)), n);
  };
  // Every cache line of a code, asked for ahead of its distance: hnswlib's own walk asks for
  // the first line only, and the distance then waits for the others as it reads them.
  const auto read_ahead = [&](Id id) {
    // Every 64 bytes from the start, and the last byte: each line the code spans.
    const char* code_at = graph.getDataByInternalId(id);
    for (size_t offset = 0; offset < code_bytes; offset += 64) {
      __builtin_prefetch(code_at + offset, 0, 3);
    }
    __builtin_prefetch(code_at + code_bytes - 1, 0, 3);
  };

  // The upper layers: greedy steps to the node nearest the query, as hnswlib takes them.
  Id entry = graph.enterpoint_node_;
  float entry_distance = distance(entry);
  for (int level = graph.maxlevel_; level > 0; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      auto* list = graph.get_linklist(entry, level);
      const auto* neighbours = reinterpret_cast<const Id*>(list + 1);
      const size_t count = graph.getListCount(list);
      for (size_t i = 0; i < count; ++i) {
        const float d = distance(neighbours[i]);
        if (d < entry_distance) {
          entry_distance = d;
          entry = neighbours[i];
          moved = true;
        }
      }
    }
  }

  // The base layer: a beam of the `want` nearest found so far. Removed and filtered-out nodes
  // are walked through but never kept, so a filter still yields `want` results when the graph
  // reaches that many (HNSW does not promise every node is reachable; in practice they are).
  const size_t want = std::max(k, ef);
  const bool any_removed = graph.num_deleted_ > 0;  // else no node's flag needs reading
  const auto keep = [&](Id id) {
    return !(any_removed && graph.isMarkedDeleted(id)) &&
           (allowed == nullptr || (*allowed)(static_cast<uint64_t>(graph.getExternalLabel(id))));
  };
  auto* visited = graph.visited_list_pool_->getFreeVisitedList();
  const std::unique_ptr<hnswlib::VisitedList, std::function<void(hnswlib::VisitedList*)>>
      visited_back(visited, [&](hnswlib::VisitedList* list) {
        graph.visited_list_pool_->releaseVisitedList(list);
      });
  const auto tag = visited->curV;
  auto* marks = visited->mass;
  using Entry = std::pair<float, Id>;
  std::priority_queue<Entry> beam;                                          // farthest on top
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> frontier;  // nearest on top
  float bound = std::numeric_limits<float>::max();
  marks[entry] = tag;
  frontier.emplace(entry_distance, entry);
  if (keep(entry)) {
    beam.emplace(entry_distance, entry);
    bound = entry_distance;
  }
  std::vector<Id> fresh;
  fresh.reserve(graph.maxM0_);
  while (!frontier.empty()) {
    const auto [nearest, id] = frontier.top();
    if (nearest > bound && beam.size() >= want) break;
    frontier.pop();
    auto* list = graph.get_linklist0(id);
    const auto* neighbours = reinterpret_cast<const Id*>(list + 1);
    const size_t count = graph.getListCount(list);
    fresh.clear();
    for (size_t i = 0; i < count; ++i) {
      if (marks[neighbours[i]] == tag) continue;
      marks[neighbours[i]] = tag;
      fresh.push_back(neighbours[i]);
    }
    for (size_t i = 0; i < std::min(kReadAhead, fresh.size()); ++i) read_ahead(fresh[i]);
    for (size_t i = 0; i < fresh.size(); ++i) {
      if (i + kReadAhead < fresh.size()) read_ahead(fresh[i + kReadAhead]);
      const float d = distance(fresh[i]);
      if (beam.size() >= want && d >= bound) continue;
      frontier.emplace(d, fresh[i]);
      if (keep(fresh[i])) {
        beam.emplace(d, fresh[i]);
        if (beam.size() > want) beam.pop();
        bound = beam.top().first;
      }
    }
    if (!frontier.empty()) __builtin_prefetch(graph.get_linklist0(frontier.top().second), 0, 3);
  }

  std::vector<VectorHit> hits;
  hits.reserve(beam.size());
  for (; !beam.empty(); beam.pop()) {
    hits.push_back({static_cast<uint64_t>(graph.getExternalLabel(beam.top().second)),
                    1.0F - beam.top().first});
  }
  keep_best(hits, k);
  return hits;
}

std::vector<VectorHit> VectorIndex::search(std::span<const float> query,
                                           const VectorSearch& options) const {
  if (query.size() != static_cast<size_t>(dimension_) || options.k == 0) return {};
  const size_t live = size();
  if (options.allowed_labels != nullptr && (options.allowed_labels->size() <= kExactLimit ||
                                            static_cast<double>(options.allowed_labels->size()) <=
                                                kExactShare * static_cast<double>(live))) {
    return exact(query, options.k, options.allowed_labels);
  }
  const auto lock = search_lock();
  return walk(query, options.k, options.ef, options.allowed);
}

std::shared_lock<std::shared_mutex> VectorIndex::search_lock() const {
  ++waiting_searches_;
  std::shared_lock lock(mutex_);
  --waiting_searches_;
  return lock;
}

Result<void> VectorIndex::save(const std::string& path) const {
  std::shared_lock lock(mutex_);
  try {
    graph_->saveIndex(path);
  } catch (const std::exception& e) {
    return Error::internal(std::string("cannot save the vector index: ") + e.what());
  }
  return success();
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::load(const std::string& path, int dimension) {
  auto space = std::make_unique<DotSpace>(static_cast<size_t>(dimension));
  try {
    auto graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get(), path);
    // hnswlib 0.6 counts the deleted elements of a loaded index onto a counter it never
    // zeroed: count them again.
    size_t deleted = 0;
    for (hnswlib::tableint i = 0; i < graph->cur_element_count; ++i) {
      if (graph->isMarkedDeleted(i)) ++deleted;
    }
    graph->num_deleted_ = deleted;
    // Saved with the room it had grown (up to twice its size): a loaded index takes only a
    // little more than it holds, and grows again by doubling.
    const size_t room = graph->cur_element_count + graph->cur_element_count / 8 + 16;
    if (graph->max_elements_ > room) graph->resizeIndex(room);
    move_to_large_pages(*graph, graph->max_elements_);
    return std::unique_ptr<VectorIndex>(
        new VectorIndex(dimension, std::move(space), std::move(graph)));
  } catch (const std::exception& e) {
    return Error::internal(std::string("cannot load the vector index: ") + e.what());
  }
}

}  // namespace parley::knowledge
