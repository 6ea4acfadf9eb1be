// The `memory.extract` job: after a complete reply, what the user's message says about them
// worth keeping becomes memories (store/memory.hpp), without the reply ever waiting for it.
//
// The job reads the turn's messages from the database (its payload holds ids, never text, so
// an erased user's words do not outlive them in the queue), proposes memories — a model
// shown the turn and the user's ten most similar memories (extract_wire.hpp), or the built-in
// rules (rules.hpp) — decides against the user's current memories what each proposal means
// (new, a refinement of one, one no longer true, a new value of a slot, something to forget),
// embeds the new texts, and applies it all in one transaction tagged with the job's id: a retry
// after a crash changes nothing twice.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "llm/blocking_completion.hpp"
#include "memory/rules.hpp"
#include "memory/settings.hpp"
#include "queue/worker.hpp"
#include "store/store.hpp"

namespace parley::memory {

inline constexpr std::string_view kExtractJob = "memory.extract";

// One message of a conversation handed over whole (a Mem0 add).
struct SaidMessage {
  std::string role;  // "user" or "assistant"
  std::string content;
};

// Whose turn, and which messages: a chat turn's stored messages by id, or a conversation
// given as it is (`conversation`, a Mem0 add: then what is remembered is scoped to the
// request's assistant and session, when they are set, and carries its metadata).
struct ExtractRequest {
  std::string tenant_id;
  std::string user_id;
  std::string assistant;
  std::string session_id;
  std::string user_message_id;
  std::string reply_message_id;
  std::vector<SaidMessage> conversation = {};
  std::string metadata_json = "{}";
};

// One job per reply (unique key "memx:<reply id>").
store::NewJob extract_job(const ExtractRequest& request, int64_t max_attempts);

// A job for a conversation handed over whole. Its payload holds the words, so its unique key
// is the user's (store::user_job_key_prefix): erasing the user deletes it in any state.
store::NewJob conversation_extract_job(const ExtractRequest& request, int64_t max_attempts);

// Vectors of a tenant's memory texts, in order, from the embedder named in ExtractDeps
// (blocking; the job's worker thread; a remote embedder's tokens are booked to the tenant).
using EmbedFn = std::function<Result<std::vector<std::vector<float>>>(
    const std::string& tenant_id, const std::vector<std::string>& texts)>;

struct ExtractDeps {
  store::Storage& storage;
  const Clock& clock;
  MemorySettings settings;
  std::string embedder;  // recorded with the vectors
  EmbedFn embed;         // empty: memories are kept without vectors
  // The model that proposes memories (memory.model); empty: the built-in rules do. A model's
  // answer that cannot be read is retried once, then the rules extract instead.
  llm::CompleteFn complete = {};
};

queue::Handler extract_handler(ExtractDeps deps);

// What the proposals mean against `existing` (the user's active memories): additions with
// their hash, retention, expiry and scope, and deletions of the memories a "forget" names (by
// slot, or by text). Vectors are left to the caller. Pure.
std::vector<store::MemoryDecision> decide(const std::vector<Proposal>& proposals,
                                          const std::vector<store::Memory>& existing,
                                          const ExtractRequest& turn,
                                          const MemorySettings& settings, int64_t now_ms);

// What a model's proposals mean: `shown` are the memories it was shown, in the order its
// "ref"s number them. Additions as decide() makes them; an UPDATE, RETIRE or DELETE of the
// memory its ref names. Pure.
std::vector<store::MemoryDecision> decide_model(const std::vector<Proposal>& proposals,
                                                const std::vector<const store::Memory*>& shown,
                                                const ExtractRequest& turn,
                                                const MemorySettings& settings, int64_t now_ms);

}  // namespace parley::memory
