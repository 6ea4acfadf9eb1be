#include "api/memory_json.hpp"

#include "core/clock.hpp"

namespace parley::api {
namespace {

using nlohmann::json;

json optional_time(const std::optional<int64_t>& unix_ms) {
  return unix_ms ? json(format_utc_ms(*unix_ms)) : json(nullptr);
}

json optional_text(const std::optional<std::string>& text) {
  return text ? json(*text) : json(nullptr);
}

// Stored JSON text as a value; a column that somehow holds something else stays readable.
json stored(const std::string& text, json fallback) {
  json parsed = json::parse(text, nullptr, false);
  return parsed.is_discarded() ? std::move(fallback) : parsed;
}

}  // namespace

json memory_json(const store::Memory& m) {
  return {{"id", m.id},
          {"object", "memory"},
          {"tenant_id", m.tenant_id},
          {"user_id", m.user_id},
          {"assistant", m.assistant.empty() ? json(nullptr) : json(m.assistant)},
          {"session_id", m.session_id.empty() ? json(nullptr) : json(m.session_id)},
          {"text", m.text},
          {"kind", m.kind},
          {"slot", m.slot.empty() ? json(nullptr) : json(m.slot)},
          {"importance", m.importance},
          {"retention", m.retention},
          {"status", m.status},
          {"superseded_by", optional_text(m.superseded_by)},
          {"source_message_ids", stored(m.source_json, json::array())},
          {"metadata", stored(m.metadata_json, json::object())},
          {"created_at", format_utc_ms(m.created_at_ms)},
          {"updated_at", format_utc_ms(m.updated_at_ms)},
          {"last_used_at", optional_time(m.last_used_at_ms)},
          {"retired_at", optional_time(m.invalid_at_ms)},
          {"expires_at", optional_time(m.expires_at_ms)}};
}

json memory_history_json(const store::MemoryHistoryEntry& h) {
  return {{"id", h.id},
          {"object", "memory.history"},
          {"memory_id", h.memory_id},
          {"event", h.event},
          {"old_text", optional_text(h.old_text)},
          {"new_text", optional_text(h.new_text)},
          {"actor", h.actor},
          {"reason", h.reason},
          {"source_message_ids", stored(h.source_json, json::array())},
          {"job_id", h.job_id.empty() ? json(nullptr) : json(h.job_id)},
          {"created_at", format_utc_ms(h.created_at_ms)}};
}

}  // namespace parley::api
