// `summary.*`: rolling summaries of long sessions. When what a session has said no longer
// comfortably fits its model's context, a job folds the older messages into a summary that
// later prompts carry in their place (summarize.hpp).
#pragma once

#include <cstdint>
#include <string>

namespace parley::config {
class Schema;
}

namespace parley::summary {

struct SummarySettings {
  bool enabled = true;
  // A session is due a summary once its history (after the current summary) takes this share
  // of the room the model leaves it, or some of it no longer fits.
  double trigger_ratio = 0.75;
  // What a summary leaves as messages: the newest that fit in this share of that room, and
  // never fewer than `keep_recent` messages.
  double keep_ratio = 0.4;
  int64_t keep_recent = 4;
  // How long a summary may grow, in tokens.
  int64_t max_tokens = 400;
  // What writes summaries: a route, provider/model or model; "" means the default route. A
  // route answered by the built-in provider (no model configured) leaves it to the extractive
  // summary.
  std::string model;
  int64_t attempts = 5;
};

void declare_settings(config::Schema& schema);

}  // namespace parley::summary
