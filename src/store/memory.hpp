// Storage of long-term memories: what the assistant remembers about each user, every change
// to it (history), and a change log for the derived recall index. Part of store.hpp's contract
// (blocking, thread-safe, durable on return, errors as values).
//
// A memory belongs to a tenant and a user, and may be narrowed to one assistant or one session
// ("" means all of them). Two rules hold in the database whatever an extractor proposes:
// - one active memory per text: the same (normalised) text said again is the same memory, so a
//   fact repeated ten times is stored once;
// - one active memory per slot: a slot names a single-valued attribute ("name", "location");
//   a new value retires the old memory, which is kept, marked superseded, with its history.
// A memory past its expiry is never returned as live (`live_by_seq`), whether or not the purge
// has run yet. Deleting a memory keeps its history's events but blanks their texts: what the
// user asked to be forgotten is not kept anywhere.
//
// Like the knowledge tables, every change the recall index must follow is appended to a log
// (memory_changes, in commit order on both backends) that `parley copy-data` does not move.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace parley::store {

// The kinds a memory may be.
inline bool is_memory_kind(std::string_view kind) {
  return kind == "fact" || kind == "preference" || kind == "event" || kind == "instruction" ||
         kind == "profile";
}

struct Memory {
  int64_t seq = 0;  // its label in the recall index; never reused
  std::string id;   // "mem_..."
  std::string tenant_id = "default";
  std::string user_id;
  std::string assistant;   // "" = every assistant
  std::string session_id;  // "" = every session
  std::string text;
  std::string kind;  // fact | preference | event | instruction | profile
  std::string slot;  // "" when several such memories may coexist
  double importance = 0.5;
  std::string retention;  // session | short | long | permanent
  std::string status;     // active | retired
  std::optional<std::string> superseded_by;
  std::string hash;                  // of the normalised text (memory/text.hpp)
  std::string source_json = "[]";    // the message ids it was taken from
  std::string metadata_json = "{}";  // the owner's own key-value pairs
  std::string embedder;              // the embedder `vector` comes from ("" when none)
  std::vector<float> vector;         // filled only by the reads for indexes and extraction
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> last_used_at_ms;
  std::optional<int64_t> invalid_at_ms;  // when it was retired
  std::optional<int64_t> expires_at_ms;  // nullopt: never
};

struct NewMemory {
  std::string tenant_id = "default";
  std::string user_id;
  std::string assistant;
  std::string session_id;
  std::string text;
  std::string kind = "fact";
  std::string slot;
  double importance = 0.5;
  std::string retention = "long";
  std::string hash;
  std::string source_json = "[]";
  std::string metadata_json = "{}";
  std::string embedder;
  std::vector<float> vector;
  std::optional<int64_t> expires_at_ms;
};

// Only the fields that are set change. A new text comes with its hash and vector.
struct MemoryPatch {
  std::optional<std::string> text;
  std::optional<std::string> hash;
  std::optional<std::string> embedder;
  std::optional<std::vector<float>> vector;
  std::optional<std::string> kind;
  std::optional<std::string> slot;
  std::optional<double> importance;
  std::optional<std::string> retention;
  std::optional<std::optional<int64_t>> expires_at_ms;  // set to nullopt: never expires
  std::optional<std::string> metadata_json;
};

// Who made a change and why, written on its history rows.
// (Every field has an initializer, so `MemoryEdit{.actor = "user"}` names only what it sets.)
struct MemoryEdit {
  std::string actor{};  // "user", "admin", "mem0", "extractor:model", "extractor:rules", "job"
  std::string reason{};
  std::string source_json = "[]";  // message ids
  std::string job_id{};            // an extraction's job: applying it twice changes nothing
};

struct MemoryHistoryEntry {
  std::string id;  // "mh_..."
  std::string memory_id;
  std::string tenant_id;
  std::string user_id;
  std::string event;  // ADD | UPDATE | RETIRE | DELETE | EXPIRE
  std::optional<std::string> old_text;
  std::optional<std::string> new_text;
  std::string actor;
  std::string reason;
  std::string source_json = "[]";
  std::string job_id;
  int64_t created_at_ms = 0;
};

// Whose memories, and which of them.
struct MemoryQuery {
  std::string tenant_id = "default";
  std::string user_id;
  // Narrowing: memories for this assistant (or for all assistants); nullopt: any.
  std::optional<std::string> assistant;
  std::optional<std::string> session_id;
  std::vector<std::string> kinds;  // empty: every kind
  std::optional<std::string> retention;
  std::string status = "active";  // active | retired | all
  int limit = 50;
  std::optional<std::string> cursor;  // from a previous page's next_cursor
};

struct MemoryPage {
  std::vector<Memory> items;  // newest first
  std::optional<std::string> next_cursor;
};

// What `create` did: added the memory, or found the same text already remembered.
struct CreatedMemory {
  Memory memory;
  bool created = true;
  std::optional<Memory> retired;  // the memory its slot held before
};

// One decision of an extraction, applied with the others in one transaction.
struct MemoryDecision {
  enum class Action { kAdd, kUpdate, kRetire, kDelete };
  Action action = Action::kAdd;
  std::string target_id;  // kUpdate, kRetire, kDelete
  // kAdd: the memory; kUpdate: its new text, hash, vector, kind, slot and importance (the
  // owner fields are the target's).
  NewMemory memory;
  std::string reason;
};

struct AppliedMemory {
  std::string event;  // ADD | UPDATE | RETIRE | DELETE | NONE
  Memory memory;      // as it is now (a deleted one as it was)
  std::optional<std::string> previous_text;
};

struct AppliedDecisions {
  std::vector<AppliedMemory> results;
  bool replayed = false;  // the job's decisions were already applied; nothing changed
};

// One entry of the change log.
struct MemoryChange {
  // kPut: the memory was added or changed (re-read it); kRemove: it stopped being recallable
  // (deleted, retired, expired); kEraseUser: every memory of the user is gone.
  enum class Op { kPut, kRemove, kEraseUser };
  int64_t seq = 0;
  std::string tenant_id;
  Op op = Op::kPut;
  int64_t memory_seq = 0;  // kPut, kRemove
  std::string user_id;     // every op
};

class MemoryRepository {
 public:
  virtual ~MemoryRepository() = default;

  // An active memory with an ADD history row; logs kPut. When the user already has the same
  // text active in the same scope, that memory (created = false) and nothing changes. When the
  // slot is held by another active memory in the same scope, that one is retired first.
  virtual Result<CreatedMemory> create(const NewMemory& memory, const MemoryEdit& edit,
                                       int64_t now_ms) = 0;
  // Any status; kNotFound "memory_not_found".
  virtual Result<Memory> get(std::string_view id) = 0;
  virtual Result<MemoryPage> list(const MemoryQuery& query) = 0;
  // Oldest first (deleted memories' entries too, with their texts blanked).
  virtual Result<std::vector<MemoryHistoryEntry>> history(std::string_view memory_id) = 0;
  // An UPDATE history row and kPut. kNotFound; kConflict "memory_not_active" for a retired
  // one; kConflict "memory_exists" when the new text is another active memory's.
  virtual Result<Memory> update(std::string_view id, const MemoryPatch& patch,
                                const MemoryEdit& edit, int64_t now_ms) = 0;
  // Deletes it (a DELETE history row, earlier texts blanked) and logs kRemove; kNotFound.
  virtual Result<Memory> remove(std::string_view id, const MemoryEdit& edit, int64_t now_ms) = 0;
  // Deletes every memory the query selects (any status, whatever its `status`, `limit` and
  // `cursor`); how many.
  virtual Result<int64_t> remove_all(const MemoryQuery& query, const MemoryEdit& edit,
                                     int64_t now_ms) = 0;
  // An extraction's decisions for one user, in one transaction. Targets that are not the
  // user's active memories are skipped (event NONE), as are additions of text already
  // remembered; a slot's new value retires the old one. With `edit.job_id` set, a second call
  // for the same job changes nothing (replayed).
  virtual Result<AppliedDecisions> apply(std::string_view tenant_id, std::string_view user_id,
                                         const std::vector<MemoryDecision>& decisions,
                                         const MemoryEdit& edit, int64_t now_ms) = 0;

  // --- Recall ---
  // Of these memories, those active and not expired at `now_ms`, without vectors, in no
  // particular order: what a prompt may use, read from the record on every recall so that a
  // deletion or expiry counts at once, before any index catches up.
  virtual Result<std::vector<Memory>> live_by_seq(const std::vector<int64_t>& seqs,
                                                  int64_t now_ms) = 0;
  virtual Result<void> mark_used(const std::vector<int64_t>& seqs, int64_t now_ms) = 0;
  // The user's active, unexpired memories, newest first, at most `limit`, with vectors: what
  // extraction compares proposals with, and recall's answer while its index is rebuilt.
  virtual Result<std::vector<Memory>> user_memories(std::string_view tenant_id,
                                                    std::string_view user_id, int limit,
                                                    int64_t now_ms) = 0;
  // Deletes up to `limit` memories expired at `now_ms` (an EXPIRE history row each, texts
  // blanked, kRemove logged); how many.
  virtual Result<int64_t> purge_expired(int64_t now_ms, int limit) = 0;

  // --- What the recall index reads ---
  // The log after `after_seq`, oldest first, at most `limit` entries.
  virtual Result<std::vector<MemoryChange>> changes_since(int64_t after_seq, int limit) = 0;
  virtual Result<int64_t> last_change() = 0;  // 0 when the log is empty
  // Memories by seq (those that still exist, any status), with vectors.
  virtual Result<std::vector<Memory>> by_seq(const std::vector<int64_t>& seqs) = 0;
  // Active memories of every user after `after_seq` in seq order, at most `limit`, with
  // vectors (rebuilding the index).
  virtual Result<std::vector<Memory>> active_after(int64_t after_seq, int limit) = 0;
};

}  // namespace parley::store
