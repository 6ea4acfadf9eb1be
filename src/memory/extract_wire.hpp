// The wire format of memory extraction by a chat model: the prompt that asks a model what one
// conversation turn says about the user, given the memories already stored, and the parser of
// its answer into the same `Proposal`s the built-in rules make (rules.hpp).
//
// The model answers {"memories":[{"event":"ADD","text":"Name is Ana","kind":"profile",
// "importance":0.9,"retention":"permanent","slot":"name"}, {"event":"RETIRE","ref":2}, ...]},
// where "ref" numbers the existing memories shown to it from 0. Models wrap JSON in prose and
// code fences and get details wrong, so the parser takes the JSON out of whatever surrounds it
// and drops the items it cannot use rather than failing the whole answer.
//
// Pure functions: no I/O, no global state; safe from any thread. Nothing throws.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "memory/rules.hpp"

namespace parley::memory {

// An existing memory shown to the model; its position in the list is the number the model's
// "ref" names.
struct Candidate {
  std::string text;
  std::string kind;
  std::string slot;
};

// The longest part of the turn (the user's message, the assistant's reply) put in the prompt;
// longer ones are cut at a character boundary and marked as cut.
inline constexpr size_t kMaxTurnBytesInPrompt = size_t{16} * 1024;

// The system prompt: what to remember, the answer's JSON shape, every event and when to use it.
std::string extraction_system_prompt();

// The `messages` array of an OpenAI chat request: the system prompt, then one user message
// holding the turn and `existing` numbered from 0 ("(none)" when empty). Strings are passed on
// as given (an invalid UTF-8 byte is replaced when the request body is dumped, as for every
// provider request).
nlohmann::json extraction_messages(std::string_view user_message, std::string_view assistant_reply,
                                   const std::vector<Candidate>& existing);

// The model's answer as proposals, in its order. Accepts the object above, the same object
// inside code fences or prose (from the first '{' to the last '}'), a bare array of items, or
// a single item object. Items are dropped, not fatal, when they are not objects, name an
// unknown event or NONE, lack a non-empty string "text" for ADD or UPDATE, or lack a "ref"
// within [0, candidate_count) for UPDATE, RETIRE or DELETE (an integer, or a string of digits);
// any other field of the wrong type takes its default. Texts are trimmed, whitespace folded and
// cut to kMaxMemoryTextBytes; slots lower-cased and cut to kMaxSlotBytes; importance clamped to
// [0, 1] (0.5 when absent); an unknown kind becomes "fact", an unknown retention "" (the
// default); the first kMaxProposals usable items are kept. A model's RETIRE and DELETE may
// have an empty text. Error: kBadGateway with reason "extraction_unparseable" when no JSON
// object or array can be read, or "memories" is not an array.
Result<std::vector<Proposal>> parse_model_proposals(std::string_view model_text,
                                                    size_t candidate_count);

}  // namespace parley::memory
