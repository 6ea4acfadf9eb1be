// Fuzz target: the moderation rule engine over untrusted text (users' messages and models'
// replies), with every detector on: word lists, RE2 patterns, e-mail, phone and card scans,
// redaction and the length limit.
#include <cstdint>
#include <string>
#include <string_view>

#include "moderation/rules.hpp"

namespace {

const parley::moderation::RuleSet& rules() {
  static const parley::moderation::RuleSet set = [] {
    using namespace parley::moderation;
    Policy p;
    CategoryRule words;
    words.name = "words";
    words.words = {"forbidden", "bad phrase", "ass"};
    words.action = Action::kRedact;
    CategoryRule patterns;
    patterns.name = "patterns";
    patterns.patterns = {"(?i)secret-[0-9]+", "x.*y|x"};
    patterns.action = Action::kBlock;
    p.categories = {words, patterns};
    p.pii = {{PiiKind::kEmail, Action::kRedact, true, true},
             {PiiKind::kPhone, Action::kRedact, true, true},
             {PiiKind::kCard, Action::kRedact, true, true}};
    p.max_input_chars = 100'000;
    auto compiled = RuleSet::compile(p);
    if (!compiled) __builtin_trap();
    return *compiled;
  }();
  return set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using parley::moderation::Stage;
  for (Stage stage : {Stage::kInput, Stage::kOutput}) {
    auto verdict = rules().evaluate(text, stage);
    if (verdict.action == parley::moderation::Action::kRedact && !verdict.redacted)
      __builtin_trap();
  }
  return 0;
}
