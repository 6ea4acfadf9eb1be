// Fuzz target: long-term memory extraction over untrusted text. The whole input is a user's
// message for the built-in rules; the input after its first byte is a model's answer for the
// wire parser, with the first byte (mod 16) as the number of existing memories shown to it.
// Both must return well-formed proposals: texts within the limit and valid UTF-8 (checked
// with the knowledge extractors' validator, not memory's own code), refs in range.
#include <cstdint>
#include <string>
#include <string_view>

#include "knowledge/extract/text_utils.hpp"
#include "memory/extract_wire.hpp"
#include "memory/rules.hpp"

namespace {

using parley::knowledge::valid_utf8;
using parley::memory::Event;
using parley::memory::Proposal;

bool well_formed(std::string_view text, size_t max_bytes) {
  return text.size() <= max_bytes && valid_utf8(text);
}

void check_common(const Proposal& p) {
  if (!well_formed(p.text, parley::memory::kMaxMemoryTextBytes)) __builtin_trap();
  if (!well_formed(p.slot, parley::memory::kMaxSlotBytes)) __builtin_trap();
  if (!well_formed(p.query, parley::memory::kMaxMemoryTextBytes)) __builtin_trap();
  if (!(p.importance >= 0.0 && p.importance <= 1.0)) __builtin_trap();
  if (p.event == Event::kNone) __builtin_trap();
}

void check_rules(std::string_view message) {
  const auto proposals = parley::memory::extract_by_rules(message);
  if (proposals.size() > parley::memory::kMaxProposals) __builtin_trap();
  for (const Proposal& p : proposals) {
    check_common(p);
    if (p.text.empty() || p.ref != -1) __builtin_trap();
    if (p.event != Event::kAdd && p.event != Event::kDelete) __builtin_trap();
    if (p.event == Event::kDelete && p.query.empty()) __builtin_trap();
  }
}

void check_model_answer(std::string_view answer, size_t candidate_count) {
  const auto parsed = parley::memory::parse_model_proposals(answer, candidate_count);
  if (!parsed) {
    if (parsed.error().code != parley::ErrorCode::kBadGateway ||
        parsed.error().reason != "extraction_unparseable") {
      __builtin_trap();
    }
    return;
  }
  if (parsed->size() > parley::memory::kMaxProposals) __builtin_trap();
  for (const Proposal& p : *parsed) {
    check_common(p);
    const bool needs_ref = p.event != Event::kAdd;
    if (needs_ref && (p.ref < 0 || static_cast<size_t>(p.ref) >= candidate_count)) {
      __builtin_trap();
    }
    if (!needs_ref && p.ref != -1) __builtin_trap();
    if ((p.event == Event::kAdd || p.event == Event::kUpdate) && p.text.empty()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_rules(input);
  if (!input.empty()) check_model_answer(input.substr(1), data[0] % 16);
  return 0;
}
