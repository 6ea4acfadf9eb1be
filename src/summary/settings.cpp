// `summary.*` (see settings.hpp).
#include "summary/settings.hpp"

#include "config/settings.hpp"

namespace parley::summary {

void declare_settings(config::Schema& schema) {
  schema.group<SummarySettings>("summary")
      .flag("enabled", &SummarySettings::enabled,
            "Fold the older messages of a session that outgrows its model's context into a "
            "rolling summary (a job after the reply; no turn waits for it).")
      .number("trigger_ratio", &SummarySettings::trigger_ratio,
              "A session is summarised once its history takes this share of the room its model "
              "leaves it (or some of it no longer fits).",
              0.1, 1.0)
      .number("keep_ratio", &SummarySettings::keep_ratio,
              "What a summary leaves as messages: the newest that fit in this share of that room.",
              0.0, 0.9)
      .integer("keep_recent", &SummarySettings::keep_recent,
               "The fewest newest messages a summary leaves as they are.", 0, 1000)
      .integer("max_tokens", &SummarySettings::max_tokens,
               "The longest a summary grows, in tokens.", 50, 8000)
      .text("model", &SummarySettings::model,
            "What writes summaries (a route, provider/model or model); empty: the default route. "
            "With no model configured the summary is extractive: the sentences that carry the "
            "most.")
      .integer("attempts", &SummarySettings::attempts,
               "Attempts of a summary job before it is dead (listed by the admin jobs API).", 1,
               100);
}

}  // namespace parley::summary
