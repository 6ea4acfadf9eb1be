// A chat turn: the user's message in, the assistant's reply out, as a pipeline of named
// stages that each see and extend one TurnContext:
//
//   moderate -> record input -> recall memory -> retrieve -> build prompt -> generate
//            -> persist -> extract memory
//
//   moderate        the input against the moderation rules (moderation/moderator.hpp): a
//                   block ends the turn (400 content_blocked, nothing stored), a redaction
//                   replaces what is stored and sent
//   record input    stores the user's message and a pending reply row, durably, before any
//                   provider is called
//   recall memory   long-term facts about the user (filled in by the memory work)
//   retrieve        knowledge-base passages (filled in by the knowledge-base work)
//   build prompt    system prompt + history fitted to the model's context window + message
//   generate        the gateway: routing, retries, fallbacks; streams deltas to the caller
//   moderate output the reply against the rules: what persist stores is redacted, or empty
//                   with finish reason "content_filter" when blocked. A streamed reply is
//                   checked as it grows (moderation::StreamCheck, in generate): the client
//                   gets it redacted, and a block stops it before the blocked text is sent
//   persist         completes the reply row (complete, or partial with its finish reason)
//                   and its usage record, in one transaction, whatever generate's outcome
//   extract memory  learns from the turn (filled in by the memory work)
//
// A stage returns an Error to end the turn; generate does not: its failure is kept in the
// context so that persist still stores what was received.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/assistants.hpp"
#include "core/blocking_pool.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "llm/accounting.hpp"
#include "llm/gateway.hpp"
#include "moderation/moderator.hpp"
#include "store/store.hpp"

namespace parley::chat {

struct TurnRequest {
  std::string session_id;
  std::string content;
  std::string request_id;
  std::string key_id;  // the credentials it came with, for the usage record
  // Overrides of the assistant's settings for this turn.
  std::optional<std::string> model;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
};

struct TurnContext {
  TurnRequest request;
  llm::Cancellation* cancel = nullptr;
  const llm::DeltaSink* sink = nullptr;  // streams the reply when set
  // Called once the input is stored, before generation (streaming APIs announce ids).
  std::function<Task<void>(const store::StartedTurn&)> on_started;

  const Assistant* assistant = nullptr;
  store::StartedTurn started;
  std::vector<std::string> memories;   // recall memory
  std::vector<std::string> documents;  // retrieve
  llm::Route route;
  llm::ChatRequest prompt;
  int dropped_history = 0;

  llm::GatewayResult generation;
  std::optional<Error> generation_error;
  moderation::Subject subject;                          // whose turn, for the moderation log
  std::optional<moderation::Verdict> output_verdict;    // moderate output
  std::optional<moderation::StreamCheck> stream_check;  // a streamed reply, as it grows
  std::optional<Error> output_blocked;
  store::Message reply;  // as persisted
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  virtual Task<Result<void>> run(TurnContext& turn) = 0;
};

// What the stages need; owned by the app, alive while requests run.
struct ChatDeps {
  store::Storage& storage;
  BlockingPool& blocking;
  llm::Gateway& gateway;
  llm::Accountant& accountant;
  const Assistants& assistants;
  obs::Metrics* metrics = nullptr;
  int64_t default_context_window = 8192;
  moderation::Moderator* moderator = nullptr;  // null: nothing is moderated
  // Whether the server is stopping (a reply cut by it is "shutdown", not "cancelled").
  std::function<bool()> draining;
};

struct TurnResult {
  store::Message user;
  store::Message reply;
  llm::GatewayResult generation;
  std::optional<Error> error;  // the generation's failure; `reply` is then partial
  // The reply was blocked by output moderation (400 content_blocked); `reply` is empty.
  std::optional<Error> blocked;
};

class ChatService {
 public:
  explicit ChatService(ChatDeps deps);
  ~ChatService();

  // Runs a turn. Errors before generation (no such session, input refused, storage down)
  // come back as the Result's error; a generation failure comes back inside TurnResult, with
  // the partial reply stored.
  Task<Result<TurnResult>> run_turn(
      TurnRequest request, llm::Cancellation& cancel, const llm::DeltaSink* sink,
      std::function<Task<void>(const store::StartedTurn&)> on_started);

  const std::vector<std::unique_ptr<Stage>>& stages() const { return stages_; }

 private:
  static Task<Result<TurnResult>> run(ChatService& self, TurnContext turn);
  ChatDeps deps_;
  std::vector<std::unique_ptr<Stage>> stages_;
};

}  // namespace parley::chat
