// The search indexes of every knowledge base in this process, derived from the database and
// kept caught up with it.
//
// The database is the record (store/knowledge.hpp). Each process reads the change log from
// where it last applied it — every second, and at once when a job in this process commits —
// and applies adds, removals, document changes and dropped bases to its indexes; another
// replica's ingestion reaches this one's searches within a sync interval. The indexes are
// persisted under `directory` (the HNSW graphs and Xapian databases, and a state file named
// for their format: which database they come from and how far the log is applied), so a
// restart loads them and applies only what changed since. An index from another database (a
// restore elsewhere, a copy-data target), saved in another format, or none at all is rebuilt
// from the chunks themselves: smallest base first, and in the server in the background, so
// that it listens and answers its probes while a large base is rebuilt (27 to 47 minutes a
// million chunks on 2 cores, docs/benchmarks.md). A base not rebuilt yet is refused as
// unavailable, with an estimate of when it will be (serving()); never searched half-built.
//
// Thread-safe. Searches take a base's index (a shared pointer); while it catches up they wait
// at most for a few vectors' inserts (VectorIndex::upsert_many).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "knowledge/index/base_index.hpp"
#include "store/knowledge.hpp"

namespace parley::knowledge {

// How far a rebuild from the database has come.
struct RebuildProgress {
  int64_t bases_done = 0;
  int64_t bases_total = 0;  // 0 until the bases are listed
  int64_t chunks_done = 0;
  int64_t chunks_total = 0;
  std::chrono::steady_clock::time_point started;
  // At the pace so far; nullopt before there is one.
  std::optional<std::chrono::milliseconds> remaining(
      std::chrono::steady_clock::time_point now) const;
};

struct IndexOptions {
  std::string directory;  // empty: in memory only
  std::chrono::milliseconds sync_interval{1'000};
  std::chrono::milliseconds checkpoint_interval{30'000};
  int batch = 2'000;  // changes applied per read of the log
  // Threads that insert vectors when an index is built from the database (0: one per core).
  size_t build_threads = 0;
  // start() returns before a rebuild from the database ends; the rebuild runs on the
  // manager's thread, before it starts catching up.
  bool rebuild_in_background = false;
  // Called on the rebuilding thread, which holds the lock catch_up() takes: as the rebuild
  // starts, once the bases are listed, and after each page of chunks and each base.
  std::function<void(const RebuildProgress&)> on_rebuild_progress;
};

class IndexManager {
 public:
  IndexManager(store::KnowledgeRepository& repository, IndexOptions options);
  ~IndexManager();
  IndexManager(const IndexManager&) = delete;
  IndexManager& operator=(const IndexManager&) = delete;

  // Loads or rebuilds the indexes and catches up; then a thread keeps them caught up (with
  // rebuild_in_background, that thread rebuilds first). Fails when another process (or
  // manager) holds the directory: each keeps its indexes apart.
  Result<void> start();
  // Stops the thread (a rebuild stops at its next page, and is done again at the next start)
  // and saves the indexes. Idempotent.
  void stop();
  // Whether stop() was called.
  bool stopping() const;

  // Applies every change logged so far, now (blocking). While a rebuild runs, nothing: the
  // rebuild applies the log itself when it ends.
  Result<void> catch_up();
  // Asks the thread to catch up at once (after a commit in this process).
  void nudge();

  // A base's index; null when the base has no chunks here (or does not exist), or is not
  // rebuilt yet.
  std::shared_ptr<BaseIndex> base(const std::string& kb_id) const;
  // What searches use: the base's index, null when it has no chunks, or kUnavailable
  // "knowledge_index_rebuilding" (with a retry time) while a rebuild has not reached it.
  Result<std::shared_ptr<BaseIndex>> serving(const std::string& kb_id) const;
  // While indexes are rebuilt from the database: how far; nullopt once every base serves.
  std::optional<RebuildProgress> rebuilding() const;
  int64_t applied_seq() const { return applied_.load(); }
  // Saves every index and the state, if anything changed since the last save.
  Result<void> checkpoint();

 private:
  // Loads the saved indexes; false when they must be rebuilt instead.
  Result<bool> load();
  // From the database, then the log since; every base serves once it returns.
  Result<void> rebuild();
  Result<void> rebuild_locked();  // the reading part, with apply_mutex_ held
  // Applies the log after `after` (to bases already serving only, with published_only, and
  // then without moving applied_); returns how far it went.
  Result<int64_t> apply_log(int64_t after, bool published_only);
  Result<void> checkpoint_locked();  // with apply_mutex_ held
  Result<void> save_locked();
  size_t bases_count() const;
  void report(const std::function<void(RebuildProgress&)>& change);
  Result<std::shared_ptr<BaseIndex>> open_base(const std::string& kb_id, int dimension,
                                               const std::string& embedder, bool fresh);
  // A kVectors change: the base's vector index rebuilt from its chunks and swapped in.
  Result<void> replace_vectors(const std::string& kb_id);
  std::shared_ptr<BaseIndex> base_for_change(const std::string& kb_id, int dimension_hint);
  void drop_base(const std::string& kb_id);
  void run(bool rebuild_first);
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

  mutable std::mutex progress_mutex_;
  std::optional<RebuildProgress> rebuilding_;

  std::mutex apply_mutex_;  // one applier (or rebuilder) at a time
  // A rebuild that failed (the database away) resumes where it stopped when tried again: the
  // bases that serve keep serving. The log's newest seq when the first try began, and how far
  // the bases that serve have followed it since (both with apply_mutex_ held).
  std::optional<int64_t> rebuild_mark_;
  int64_t rebuild_followed_ = 0;
  mutable std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool nudged_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

// The readiness check of the indexes: {"status":"ok"}, or "degraded" with the progress of
// the rebuild under way (bases and chunks done, and the seconds left at the pace so far).
nlohmann::json readiness(const IndexManager& index, std::chrono::steady_clock::time_point now);

}  // namespace parley::knowledge
