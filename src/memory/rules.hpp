// Long-term memory proposals, and the built-in extractor that makes them without a model.
//
// After a chat turn, the memory stage asks what the user's message says about the user that
// is worth keeping across sessions ("Name is Ana", "Is allergic to peanuts", "Always answer in
// French"), and what it asks to forget. A configured model answers that (extract_wire.hpp is
// its wire format); when none is configured, `extract_by_rules` answers it from explicit
// English statements alone, so that a server with no model still remembers its users. Both
// produce the same `Proposal`s, which the memory store then applies against what it holds.
//
// The rules are deliberately narrow: they take only what the user states plainly about
// themselves, at the start of a clause, and leave alone questions, hypotheticals, quoted or
// reported speech, negations and statements about other people. Missing a memory costs less
// than inventing one.
//
// Everything here is pure (no I/O, no global state), so any number of threads may call it at
// once. Input may be arbitrary bytes; output text is always
// valid UTF-8 (malformed input bytes become U+FFFD).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::memory {

// What to do with the memory a proposal describes, after Mem0's decision set: add a new
// memory, rewrite an existing one, retire one that is no longer true (kept with the time it
// stopped being true, after Zep), delete one the user asked to forget, or nothing.
enum class Event { kAdd, kUpdate, kRetire, kDelete, kNone };

std::string_view event_name(Event event);  // "ADD", "UPDATE", "RETIRE", "DELETE", "NONE"
std::optional<Event> parse_event(std::string_view name);  // ignores ASCII case

// The longest memory text, in bytes, and the longest slot name; longer ones are cut at a
// character boundary. The most proposals one turn yields, from either extractor.
inline constexpr size_t kMaxMemoryTextBytes = 500;
inline constexpr size_t kMaxSlotBytes = 64;
inline constexpr size_t kMaxProposals = 32;

struct Proposal {
  Event event = Event::kAdd;
  // The memory as stored, phrased about the user without a subject: "Name is Ana", "Likes
  // green tea". Never empty for kAdd and kUpdate, nor for anything `extract_by_rules` returns
  // (its kDelete proposals repeat the query here); a model's kRetire and kDelete may leave it
  // empty, since `ref` says which memory they mean.
  std::string text;
  std::string kind = "fact";  // "fact" | "preference" | "event" | "instruction" | "profile"
  // A single-valued attribute ("name", "location", "employer", "favorite color"): a memory with
  // the same slot and a new value replaces the old one. Empty when several memories of the kind
  // may coexist (allergies, likes). Lower case.
  std::string slot;
  double importance = 0.5;  // 0..1
  std::string retention;    // "" for the configured default; else session|short|long|permanent
  int ref = -1;             // model answers only: the index of the existing memory meant
  // kDelete from the rules: words naming what to forget ("my address", "Lives in Paris"), for
  // the store to match against its memories when `slot` is empty or matches nothing.
  std::string query;
};

// The memories that `user_message` (one user turn, English) states explicitly, in the order
// they appear; see rules.cpp for the phrasings understood. At most one proposal per event and
// text, one addition per slot (the last value stated wins), and kMaxProposals in all. Linear in
// the message's length.
std::vector<Proposal> extract_by_rules(std::string_view user_message);

// `text` made fit to store: runs of whitespace and control characters folded to one space,
// the ends trimmed, malformed UTF-8 replaced by U+FFFD, and cut to at most `max_bytes` bytes
// without splitting a character (trimmed again after the cut). Shared by both extractors.
std::string clean_memory_text(std::string_view text, size_t max_bytes);

}  // namespace parley::memory
