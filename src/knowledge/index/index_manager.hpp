// The search indexes of every knowledge base in this process, derived from the database and
// kept caught up with it.
//
// The database is the record (store/knowledge.hpp). Each process reads the change log from
// where it last applied it — every second, and at once when a job in this process commits —
// and applies adds, removals, document changes and dropped bases to its indexes; another
// replica's ingestion reaches this one's searches within a sync interval. The indexes are
// persisted under `directory` (the HNSW graphs and Xapian databases, and state.json: which
// database they come from and how far the log is applied), so a restart loads them and
// applies only what changed since. An index from another database (a restore elsewhere, a
// copy-data target) or none at all is rebuilt from the chunks themselves.
//
// Thread-safe. Searches take a base's index (a shared pointer) and never wait on catching up.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "knowledge/index/base_index.hpp"
#include "store/knowledge.hpp"

namespace parley::knowledge {

struct IndexOptions {
  std::string directory;  // empty: in memory only
  std::chrono::milliseconds sync_interval{1'000};
  std::chrono::milliseconds checkpoint_interval{30'000};
  int batch = 2'000;  // changes applied per read of the log
  // Threads that insert vectors when an index is built from the database (0: one per core).
  size_t build_threads = 0;
};

class IndexManager {
 public:
  IndexManager(store::KnowledgeRepository& repository, IndexOptions options);
  ~IndexManager();
  IndexManager(const IndexManager&) = delete;
  IndexManager& operator=(const IndexManager&) = delete;

  // Loads or rebuilds the indexes and catches up; then a thread keeps them caught up. Fails
  // when another process (or manager) holds the directory: each keeps its indexes apart.
  Result<void> start();
  // Stops the thread and saves the indexes. Idempotent.
  void stop();

  // Applies every change logged so far, now (blocking).
  Result<void> catch_up();
  // Asks the thread to catch up at once (after a commit in this process).
  void nudge();

  // A base's index; null when the base has no chunks here (or does not exist).
  std::shared_ptr<BaseIndex> base(const std::string& kb_id) const;
  int64_t applied_seq() const { return applied_.load(); }
  // Saves every index and the state, if anything changed since the last save.
  Result<void> checkpoint();

 private:
  Result<void> load_or_rebuild();
  Result<void> rebuild();
  Result<std::shared_ptr<BaseIndex>> open_base(const std::string& kb_id, int dimension,
                                               const std::string& embedder, bool fresh);
  // A kVectors change: the base's vector index rebuilt from its chunks and swapped in.
  Result<void> replace_vectors(const std::string& kb_id);
  std::shared_ptr<BaseIndex> base_for_change(const std::string& kb_id, int dimension_hint);
  void drop_base(const std::string& kb_id);
  void run();
  std::string base_directory(const std::string& kb_id) const;
  size_t build_threads() const;

  store::KnowledgeRepository& repository_;
  IndexOptions options_;
  std::string identity_;
  std::atomic<int64_t> applied_{0};
  std::atomic<bool> dirty_{false};
  int directory_lock_ = -1;  // an flock on <directory>/lock, held from start to destruction

  mutable std::shared_mutex bases_mutex_;
  std::map<std::string, std::shared_ptr<BaseIndex>> bases_;

  std::mutex apply_mutex_;  // one applier at a time
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool nudged_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace parley::knowledge
