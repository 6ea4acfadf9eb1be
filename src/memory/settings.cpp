// `memory.*` (see settings.hpp).
#include "memory/settings.hpp"

#include <array>

#include "config/settings.hpp"

namespace parley::memory {

namespace {

constexpr std::array<std::string_view, 4> kRetentions = {"session", "short", "long", "permanent"};

}  // namespace

bool is_retention(std::string_view name) {
  for (auto r : kRetentions) {
    if (r == name) return true;
  }
  return false;
}

std::optional<int64_t> expires_at(const MemorySettings& settings, std::string_view retention,
                                  int64_t now_ms) {
  if (retention == "session") return now_ms + settings.retention_session.count();
  if (retention == "short") return now_ms + settings.retention_short.count();
  if (retention == "long") return now_ms + settings.retention_long.count();
  return std::nullopt;
}

void declare_settings(config::Schema& schema) {
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  const hours forever(24 * 365 * 100);
  schema.group<MemorySettings>("memory")
      .flag("enabled", &MemorySettings::enabled,
            "After each complete reply, extract what the user said about themselves worth "
            "remembering (a job; the reply never waits for it).")
      .text("default_retention", &MemorySettings::default_retention,
            "Retention of memories whose extractor names none: session, short, long or "
            "permanent.",
            [](const std::string& text) -> std::optional<std::string> {
              if (!is_retention(text)) return "not one of session, short, long, permanent";
              return std::nullopt;
            })
      .duration("retention_session", &MemorySettings::retention_session,
                "How long a memory of retention `session` lasts.", minutes(1), forever)
      .duration("retention_short", &MemorySettings::retention_short,
                "How long a memory of retention `short` lasts.", minutes(1), forever)
      .duration("retention_long", &MemorySettings::retention_long,
                "How long a memory of retention `long` lasts.", minutes(1), forever)
      .integer("extract_attempts", &MemorySettings::extract_attempts,
               "Attempts of an extraction job before it is dead (listed by the admin jobs API).", 1,
               100)
      .duration("purge_interval", &MemorySettings::purge_interval,
                "How often expired memories are deleted (they stop being recalled as soon as "
                "they expire).",
                seconds(1), hours(24 * 7))
      .text("embedder", &MemorySettings::embedder,
            "What embeds memories (`builtin` or a model of `llm.*`); empty: "
            "`knowledge.embedder`.")
      .text("model", &MemorySettings::model,
            "What extracts memories after a reply (a route, provider/model or model); empty: the "
            "default route. With no model configured the built-in rules take explicit "
            "statements.")
      .duration("mem0_add_wait", &MemorySettings::mem0_add_wait,
                "How long `POST /mem0/memories` waits for its extraction job before it answers "
                "`PENDING` with the job's id (the job still runs to the end).",
                std::chrono::milliseconds(0), minutes(5));
}

}  // namespace parley::memory
