// Content moderation's settings: the `moderation:` section (word lists, patterns, personal
// data detectors, length limits, an optional moderation provider), parsed by this module,
// and the Moderator they describe.
//   moderation:
//     max_input_chars: 20000
//     pii: {email: redact, phone: redact, card: block}      # or {action: .., stages: [input]}
//     categories:
//       violence: {words: [...], patterns: [...], action: block, stages: [input, output]}
//     provider: {name: openai, model: omni-moderation-latest, stages: [input],
//                action: block, on_error: allow, timeout: 5s}
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "moderation/moderator.hpp"
#include "moderation/rules.hpp"

namespace parley::config {
class Schema;
class Settings;
}  // namespace parley::config

namespace parley::llm {
class Gateway;
}

namespace parley::moderation {

struct CategorySettings {
  std::string name;
  std::vector<std::string> words;
  std::vector<std::string> patterns;
  std::string action = "block";
  bool input = true;
  bool output = true;
};

struct PiiSettings {
  std::string kind;  // email, phone, card
  std::string action = "redact";
  bool input = true;
  bool output = true;
};

// An OpenAI-compatible /v1/moderations endpoint asked after the rules.
struct ProviderSettings {
  std::string name;  // a provider from `providers:`; empty = none
  std::string model = "omni-moderation-latest";
  bool input = true;
  bool output = false;
  std::string action = "block";    // what a flagged message gets: block, or allow (logged)
  std::string on_error = "allow";  // when the provider fails: allow (logged), or block
  std::chrono::milliseconds timeout{5000};
};

struct ModerationSettings {
  std::vector<CategorySettings> categories;
  std::vector<PiiSettings> pii;
  int64_t max_input_chars = 0;
  int64_t max_output_chars = 0;
  ProviderSettings provider;
  bool configured() const {
    return !categories.empty() || !pii.empty() || max_input_chars > 0 || max_output_chars > 0 ||
           !provider.name.empty();
  }
};

void declare_settings(config::Schema& schema);

// The rules as the rule engine takes them.
Policy policy(const ModerationSettings& settings);

// The Moderator the settings describe, with the moderation provider taken from the gateway
// (its call limits from llm.*); `log` and `metrics` may be null.
Result<std::unique_ptr<Moderator>> make_moderator(const config::Settings& settings,
                                                  llm::Gateway& gateway,
                                                  store::ModerationLogRepository* log,
                                                  obs::Metrics* metrics);

}  // namespace parley::moderation
