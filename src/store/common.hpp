// What every storage backend computes the same way, so they answer alike: the day a usage
// record counts towards, page cursors, and the errors the contract names (store.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/result.hpp"
#include "obs/metrics.hpp"
#include "store/knowledge.hpp"
#include "store/memory.hpp"

namespace parley::store {

// "YYYY-MM-DD" of a unix-millisecond time, UTC.
std::string utc_day(int64_t unix_ms);

constexpr int64_t kDayMs = 86'400'000;
// The UTC midnight at or before `unix_ms`.
inline int64_t utc_midnight(int64_t unix_ms) {
  return unix_ms - ((unix_ms % kDayMs) + kDayMs) % kDayMs;
}

// The part of a usage query's [from_ms, to_ms) that daily roll-ups answer: the whole UTC days
// inside it before `rolled_until_ms`. Empty (from == until) when there is none; the rest comes
// from the records.
struct RolledUpSpan {
  int64_t from_ms = 0;
  int64_t until_ms = 0;
  std::string from_day;   // "YYYY-MM-DD" of from_ms
  std::string until_day;  // of until_ms (exclusive)
  bool empty() const { return until_ms <= from_ms; }
};
RolledUpSpan rolled_up_span(int64_t from_ms, int64_t to_ms, int64_t rolled_until_ms);
// What a usage report reads FROM: the records alone when `span` is empty, else the records
// outside it and the daily totals inside it. `params` names the bound values in the dialect's
// placeholders, in order: from, to, span from, span until, span's from day, span's until day;
// `filters` (" AND tenant_id = ...") applies to both.
std::string usage_report_source(const RolledUpSpan& span, const std::string& filters,
                                const std::array<const char*, 6>& params);

// A page cursor is the positive sequence number of the last row of the previous page; null
// when absent, kInvalidArgument "invalid_cursor" when it is not one this server issued.
struct Cursor {
  std::optional<int64_t> after;
  std::optional<Error> error;
};
Cursor parse_cursor(const std::optional<std::string>& text);

// The usage columns a UsageQuery may group by, as (name, column) in the order asked; the
// names come from a fixed list, never from the request text. kInvalidArgument otherwise.
Result<std::vector<std::pair<std::string, std::string>>> usage_group_columns(
    const std::vector<std::string>& group_by);

// Times one storage call into parley_storage_query_duration_seconds.
class QueryTimer {
 public:
  QueryTimer(obs::Metrics* metrics, const char* operation)
      : metrics_(metrics), operation_(operation), start_(std::chrono::steady_clock::now()) {}
  ~QueryTimer() {
    if (!metrics_) return;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->observe_storage_query(operation_, elapsed.count());
  }
  QueryTimer(const QueryTimer&) = delete;
  QueryTimer& operator=(const QueryTimer&) = delete;

 private:
  obs::Metrics* metrics_;
  const char* operation_;
  std::chrono::steady_clock::time_point start_;
};

Error session_not_found(std::string_view id);
// A regenerated turn (NewTurn::regenerate_of): no such user message in the session (404), or
// it is not the one to answer again (409): a newer question, or a reply still being written.
Error regenerate_not_found(std::string_view message_id);
Error regenerate_conflict(bool newer_question);
// The durable job queue's answers (JobRepository).
Error job_not_held(std::string_view id);
Error job_not_found(std::string_view id);
Error job_not_dead(std::string_view id, std::string_view state);
Error job_key_taken(std::string_view id, std::string_view unique_key);
Error storage_closed();

// The knowledge repository's answers (store/knowledge.hpp).
Error knowledge_base_not_found(std::string_view id);
Error file_not_found(std::string_view id);
Error document_not_found(std::string_view id);
Error document_changed(std::string_view id);
// kConflict "embedder_changed": the base's embedder (or next embedder) is no longer `embedder`.
Error embedder_changed(std::string_view kb_id, std::string_view embedder);

// kConflict "reembed_incomplete": `missing` chunks have no vector from the next embedder yet.
Error reembed_incomplete(std::string_view kb_id, int64_t missing);
// Whether a commit's vectors fit a base of `dimension`: true when the base has none yet and
// takes theirs; kInvalidArgument "dimension_mismatch" when they differ from it or each other.
Result<bool> check_dimension(std::string_view kb_id, int64_t dimension,
                             const std::vector<NewChunk>& chunks);

// The file a put_file stores: a new id, its size, the caller's hash and names.
StoredFile stored_file_of(const NewFile& in, int64_t now_ms);

// The memory repository's answers (store/memory.hpp).
Error memory_not_found(std::string_view id);
Error memory_not_active(std::string_view id);
Error memory_exists(std::string_view id);
// The seq a memory page cursor carries; nullopt for anything this server did not issue.
std::optional<int64_t> parse_seq_cursor(const std::string& cursor);
MemoryChange::Op memory_change_op_from(std::string_view name);
// ["a","b"]: a JSON array of strings, as the memory tables' kind filters take it.
std::string json_strings(const std::vector<std::string>& values);

// A chunk's vector as stored: float32, little-endian, packed.
std::string encode_vector(const std::vector<float>& vector);
std::vector<float> decode_vector(std::string_view bytes);

// The change log's op names.
const char* change_op_name(int op);  // ChunkChange::Op as int
int change_op_from(std::string_view name);

}  // namespace parley::store
