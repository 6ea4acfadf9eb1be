// The recall index: what the recall stage searches instead of reading a user's memories from
// the database on every turn. Derived from the database (store/memory.hpp) and kept caught up
// with it through the memory change log, in every process that serves turns; it is never
// saved, and a process builds it from the active memories when it starts (in the background:
// until it is built, recall reads the newest of the user's memories from the database, as
// `ready()` tells).
//
// One block per user: for each active memory its label (`Memory::seq`), its vector as 4-bit
// codes (knowledge/index/code_dot.hpp: a search of a user with many memories reads mostly
// codes, so their size is its time), the hashed words of its text, a 64-bit signature of
// those words, its kind, importance, times and scope. A search scores every memory of the user
// the way recall ranks them (cosine or shared words, importance, recency: recall_rank) and
// keeps the best few as candidates; the recall stage then reads those candidates back from the
// record (`live_by_seq`), so a memory deleted or expired a moment ago is never used, whatever
// the index still holds.
//
// Following the log: `sync()` applies what was logged since the last call (a kPut re-reads the
// memory, a kRemove drops it, a kEraseUser drops the user's block). The recall stage calls it
// before each search, so a memory written by any replica counts in the next turn; a thread also
// calls it every `sync_interval` so the index never falls far behind an idle process.
//
// Thread-safe: searches share a lock that applying takes alone for a page of changes at a time.
// Finding a memory by its label scans its user's labels: a user with 100k memories makes each
// change of theirs cost some tens of microseconds under that lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "store/memory.hpp"

namespace parley::memory {

// The words recall compares: lower-cased runs of letters and digits (any byte past ASCII counts
// as a letter) of three bytes or more, but for the commonest (core/common_words.hpp), each as a
// 32-bit hash, sorted and without repeats.
std::vector<uint32_t> word_ids(std::string_view text);
// How many of `asked`'s words `held` has (both from word_ids).
size_t shared_words(const std::vector<uint32_t>& asked, const uint32_t* held, size_t held_count);

// How a memory ranks among those that qualify: its relevance to the message (cosine or share of
// the message's words, whichever is higher), then importance and recency (a 30-day half-life
// since it was made or last changed) to break ties between memories about as relevant.
double recall_rank(double relevance, double importance, int64_t updated_at_ms, int64_t now_ms);

// Whether a memory is a profile fact or a standing instruction (recall's "always qualifies").
bool is_standing_kind(std::string_view kind);

struct RecallIndexOptions {
  std::string embedder;  // canonical name of the embedder whose vectors the index keeps
  std::chrono::milliseconds sync_interval{1'000};
  int batch = 2'000;  // changes, or memories while building, read at a time
  bool build_in_background = true;
};

// What a search looks for.
struct RecallSearch {
  std::string tenant_id;
  std::string user_id;
  std::string assistant;                       // memories for it or for every assistant
  std::string session_id;                      // memories for it or for every session
  const std::vector<float>* vector = nullptr;  // the message's, from the index's embedder
  std::string text;                            // the message
  std::vector<std::string> kinds;              // empty: every kind
  double min_similarity = 0.25;
  bool always_standing = true;
  int64_t now_ms = 0;
  size_t limit = 32;
};

struct RecallHit {
  int64_t seq = 0;
  double similarity = -1;  // the cosine of the codes with the message's; -1 without vectors
  double rank = 0;
};

class RecallIndex {
 public:
  RecallIndex(store::MemoryRepository& repository, RecallIndexOptions options);
  ~RecallIndex();
  RecallIndex(const RecallIndex&) = delete;
  RecallIndex& operator=(const RecallIndex&) = delete;

  // Builds the index (on its thread, with build_in_background) and starts following the log.
  Result<void> start();
  void stop();  // idempotent
  // Whether the build has finished: searches answer for every user.
  bool ready() const { return ready_.load(); }
  // Applies every change logged so far (blocking; the database is read). Nothing while the
  // index is being built.
  Result<void> sync();
  // The best candidates of the user, best first (ready() must be true).
  std::vector<RecallHit> search(const RecallSearch& search) const;
  // Whether any of the user's memories has a vector here (whether a search needs the message
  // embedded).
  bool has_vectors(std::string_view tenant_id, std::string_view user_id) const;

  int64_t applied_seq() const { return applied_.load(); }
  size_t memories() const;
  size_t users() const;
  // Adds or replaces memories as the database holds them (building, and benchmarks that fill
  // an index without a database); `fresh`: none is in the index yet, seqs ascending per user.
  void put(const std::vector<store::Memory>& memories, bool fresh = false);

 private:
  struct Block;
  Result<void> build();
  // One page of the log after `after`; how far it went.
  Result<int64_t> apply_log(int64_t after);
  // Every page after `from`, to the end of the log.
  Result<void> apply_log_from(int64_t from);
  // With blocks_mutex_ held alone.
  void put_locked(const store::Memory& memory, bool fresh);
  void remove_locked(const std::string& tenant_id, const std::string& user_id, int64_t seq);
  void run();
  bool stopping();

  store::MemoryRepository& repository_;
  RecallIndexOptions options_;
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> applied_{0};
  std::atomic<int> dimension_{0};  // of the codes; set by the first vector of the embedder

  mutable std::shared_mutex blocks_mutex_;
  std::unordered_map<std::string, std::unique_ptr<Block>> blocks_;  // tenant '\0' user
  size_t memories_ = 0;                                             // with blocks_mutex_
  bool warned_dimension_ = false;                                   // with blocks_mutex_

  std::mutex apply_mutex_;                // one applier at a time
  std::atomic<uint64_t> syncs_begun_{0};  // sync() calls that read the log, counted under it
  uint64_t last_complete_sync_ = 0;       // the last of them that read all of it (apply_mutex_)
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace parley::memory
