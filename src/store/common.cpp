#include "store/common.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "store/store.hpp"

namespace parley::store {

std::string user_job_key_prefix(const std::optional<std::string>& tenant_id,
                                std::string_view user_id) {
  std::string out = "user:" + std::to_string(user_id.size()) + ":";
  out += user_id;
  out += ":";
  if (tenant_id) out += std::to_string(tenant_id->size()) + ":" + *tenant_id + ":";
  return out;
}

Result<std::optional<Summary>> SummaryRepository::latest(std::string_view session_id) {
  auto some = list(session_id, 1);
  if (!some) return std::move(some).error();
  if (some->empty()) return std::optional<Summary>();
  return std::optional<Summary>(std::move(some->front()));
}

std::string utc_day(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  char buf[32];
  if (gmtime_r(&seconds, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm) == 0) {
    return "0000-00-00";  // outside the calendar: sorts before every real day
  }
  return buf;
}

RolledUpSpan rolled_up_span(int64_t from_ms, int64_t to_ms, int64_t rolled_until_ms) {
  RolledUpSpan span;
  const int64_t limit = std::min(to_ms, rolled_until_ms);
  // Nothing rolled up inside the range (also keeps the arithmetic below far from overflow:
  // rolled_until is a real time).
  if (rolled_until_ms <= 0 || from_ms >= limit) return span;
  const int64_t from = std::max<int64_t>(0, from_ms);
  const int64_t first = from % kDayMs == 0 ? from : utc_midnight(from) + kDayMs;
  const int64_t last = utc_midnight(limit);
  if (last <= first) return span;
  span.from_ms = first;
  span.until_ms = last;
  span.from_day = utc_day(first);
  span.until_day = utc_day(last);
  return span;
}

std::string usage_report_source(const RolledUpSpan& span, const std::string& filters,
                                const std::array<const char*, 6>& p) {
  const std::string in_range = std::string("at >= ") + p[0] + " AND at < " + p[1];
  if (span.empty()) return "usage_records WHERE " + in_range + filters;
  static const std::string columns =
      "day, tenant_id, user_id, key_id, source, provider, model, requests, input_tokens, "
      "output_tokens, cost_usd";
  return "(SELECT " + columns + " FROM usage_records WHERE " + in_range +
         " AND NOT (at >= " + p[2] + " AND at < " + p[3] + ")" + filters + " UNION ALL SELECT " +
         columns + " FROM usage_daily WHERE day >= " + p[4] + " AND day < " + p[5] + filters +
         ") AS u";
}

Cursor parse_cursor(const std::optional<std::string>& text) {
  if (!text) return {};
  int64_t value = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (ec != std::errc() || ptr != end || value <= 0) {
    return {std::nullopt,
            Error::invalid("cursor is not one this server issued", "invalid_cursor", "cursor")};
  }
  return {value, std::nullopt};
}

Result<std::vector<std::pair<std::string, std::string>>> usage_group_columns(
    const std::vector<std::string>& group_by) {
  static const std::vector<std::pair<std::string, std::string>> kColumns{
      {"model", "model"},   {"provider", "provider"}, {"user", "user_id"},    {"day", "day"},
      {"source", "source"}, {"key", "key_id"},        {"tenant", "tenant_id"}};
  std::vector<std::pair<std::string, std::string>> groups;
  for (const auto& g : group_by) {
    auto it =
        std::find_if(kColumns.begin(), kColumns.end(), [&](const auto& c) { return c.first == g; });
    if (it == kColumns.end()) {
      return Error::invalid("cannot group usage by '" + g +
                                "' (expected model, provider, user, day, source, key or tenant)",
                            "invalid_field", "group_by");
    }
    groups.push_back(*it);
  }
  return groups;
}

Error session_not_found(std::string_view id) {
  return Error::not_found("no session with id '" + std::string(id) + "'", "session_not_found");
}

Error regenerate_not_found(std::string_view message_id) {
  return Error::not_found(
      "no message of yours with id '" + std::string(message_id) + "' in this session",
      "message_not_found");
}

Error regenerate_conflict(bool newer_question) {
  return Error::conflict(newer_question
                             ? "only the reply to the session's last message can be regenerated"
                             : "a reply in this session is still being written; stop it first",
                         newer_question ? "not_last_message" : "turn_in_progress");
}

Error job_not_held(std::string_view id) {
  return Error::conflict(
      "job '" + std::string(id) + "' is not held by this worker (its lock lapsed)", "job_not_held");
}

Error job_not_found(std::string_view id) {
  return Error::not_found("no job with id '" + std::string(id) + "'", "job_not_found");
}

Error job_not_dead(std::string_view id, std::string_view state) {
  return Error::conflict(
      "job '" + std::string(id) + "' is " + std::string(state) + "; only dead jobs are retried",
      "job_not_dead");
}

Error job_key_taken(std::string_view id, std::string_view unique_key) {
  return Error::conflict("job '" + std::string(id) + "' cannot be retried while another job for '" +
                             std::string(unique_key) + "' is queued or running",
                         "job_key_taken");
}

Error memory_not_found(std::string_view id) {
  return Error::not_found("no memory with id '" + std::string(id) + "'", "memory_not_found");
}

Error memory_not_active(std::string_view id) {
  return Error::conflict(
      "memory '" + std::string(id) + "' was retired; only active memories change",
      "memory_not_active");
}

Error memory_exists(std::string_view id) {
  return Error::conflict("the same text is already remembered as memory '" + std::string(id) + "'",
                         "memory_exists");
}

std::optional<int64_t> parse_seq_cursor(const std::string& cursor) {
  if (cursor.empty() || cursor.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : cursor) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

MemoryChange::Op memory_change_op_from(std::string_view name) {
  if (name == "remove") return MemoryChange::Op::kRemove;
  if (name == "erase_user") return MemoryChange::Op::kEraseUser;
  return MemoryChange::Op::kPut;
}

std::string json_strings(const std::vector<std::string>& values) {
  return nlohmann::json(values).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Error storage_closed() { return Error::unavailable("storage is closed", "storage_closed"); }

Error knowledge_base_not_found(std::string_view id) {
  return Error::not_found("no knowledge base with id '" + std::string(id) + "'",
                          "knowledge_base_not_found");
}

Error file_not_found(std::string_view id) {
  return Error::not_found("no file with id '" + std::string(id) + "'", "file_not_found");
}

Error document_not_found(std::string_view id) {
  return Error::not_found("no document with id '" + std::string(id) + "'", "document_not_found");
}

Error document_changed(std::string_view id) {
  return Error::conflict("document '" + std::string(id) + "' was replaced while it was ingested",
                         "document_changed");
}

Error embedder_changed(std::string_view kb_id, std::string_view embedder) {
  return Error::conflict("knowledge base '" + std::string(kb_id) +
                             "' no longer takes vectors from '" + std::string(embedder) + "'",
                         "embedder_changed");
}

Error reembed_incomplete(std::string_view kb_id, int64_t missing) {
  return Error::conflict(std::to_string(missing) + " chunks of knowledge base '" +
                             std::string(kb_id) + "' have no vector from its next embedder yet",
                         "reembed_incomplete");
}

Result<bool> check_dimension(std::string_view kb_id, int64_t dimension,
                             const std::vector<NewChunk>& chunks) {
  if (chunks.empty()) return false;
  const size_t size = chunks.front().vector.size();
  for (const auto& c : chunks) {
    if (c.vector.size() != size || (dimension > 0 && size != static_cast<size_t>(dimension))) {
      return Error::invalid(
          "the embedder answered vectors of " + std::to_string(c.vector.size()) +
              " dimensions; knowledge base '" + std::string(kb_id) + "' holds " +
              std::to_string(dimension > 0 ? static_cast<size_t>(dimension) : size),
          "dimension_mismatch");
    }
  }
  return dimension == 0 && size > 0;
}

StoredFile stored_file_of(const NewFile& in, int64_t now_ms) {
  StoredFile f;
  f.id = new_resource_id("file");
  f.tenant_id = in.tenant_id;
  f.user_id = in.user_id;
  f.filename = in.filename;
  f.purpose = in.purpose;
  f.bytes = static_cast<int64_t>(in.content.size());
  f.sha256 = in.sha256;
  f.created_at_ms = now_ms;
  return f;
}

static_assert(std::endian::native == std::endian::little,
              "vectors are stored as little-endian float32; a big-endian build must swap bytes");

std::string encode_vector(const std::vector<float>& vector) {
  std::string bytes(vector.size() * sizeof(float), '\0');
  if (!vector.empty()) std::memcpy(bytes.data(), vector.data(), bytes.size());
  return bytes;
}

std::vector<float> decode_vector(std::string_view bytes) {
  std::vector<float> vector(bytes.size() / sizeof(float));
  if (!vector.empty()) std::memcpy(vector.data(), bytes.data(), vector.size() * sizeof(float));
  return vector;
}

const char* change_op_name(int op) {
  static constexpr std::array<const char*, 5> kNames = {"add", "remove", "drop", "document",
                                                        "vectors"};
  return op >= 0 && op < 5 ? kNames[static_cast<size_t>(op)] : "add";
}

int change_op_from(std::string_view name) {
  if (name == "remove") return 1;
  if (name == "drop") return 2;
  if (name == "document") return 3;
  if (name == "vectors") return 4;
  return 0;
}

}  // namespace parley::store
