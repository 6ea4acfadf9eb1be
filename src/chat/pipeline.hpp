// The chat pipeline: the one way a message becomes a reply, whichever way it came in (the
// REST turn routes, /api/v1/chat, the OpenAI-compatible /v1/chat/completions, and every later
// channel). A Turn is one request's state; Stages each read and extend it, in one list: the
// built-in stages (chat/stages.hpp), to which app/ adds each feature's stage at its place
// (insert_before):
//
//   resolve         the session (loaded, or to be opened), its assistant, the model route
//   admit           tokens per minute, budgets and stream slots of the caller (limits/)
//   moderate        the input against the moderation rules and provider: a block fails the
//                   turn (400 content_blocked, nothing stored), a redaction rewrites it
//   open session    /api/v1/chat without a session id: the session, after the checks above
//   record input    the user's message and a pending reply row, durable before any provider
//                   is called                                              (stored turns)
//   retrieve        passages of the assistant's and the request's knowledge bases
//                   (knowledge/retrieve.hpp; stored turns)
//   build prompt    system prompt (with the retrieved passages) + history fitted to the
//                   context window + the message
//                   (stored turns); the messages as sent (stateless turns)
//   plan route      cost-aware routes order their targets by complexity and budget
//   generate        the gateway (retries, fallbacks); a streamed reply goes to the caller's
//                   sink through moderation's StreamCheck
//   moderate output the reply: redacted, or blocked (stored empty, content_filter); the usage
//                   estimate is taken before the text changes
//   account         usage (the provider's counts or an estimate), cost and status (ok,
//                   content_blocked, or the failure's reason), booked against the caller's
//                   token buckets and budgets; queued for the usage table (stateless turns)
//   persist         the reply row and its usage row in one transaction (stored turns)
//
// A stage returns kContinue, kAnswered (the turn has its reply — a cache hit, a canned
// answer — and only the finishing stages still run), or an Error, which ends the turn; a
// stored turn whose input is recorded then has its pending reply closed as partial/error.
// Generation failures are not stage errors: generate keeps them in the Turn so that account
// and persist still record what was received.
//
// Stateless turns (the OpenAI-compatible API) carry the whole conversation in the request
// and store nothing but usage; stored turns belong to a session. Stages that apply to one
// kind only say so (Stage::applies).
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/assistants.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "limits/admission.hpp"
#include "llm/accounting.hpp"
#include "llm/gateway.hpp"
#include "moderation/moderator.hpp"
#include "store/store.hpp"

namespace parley::chat {

// A memory of the user that a reply's prompt included (the recall stage), with how well it
// matched the message.
struct RecalledMemory {
  std::string id;
  std::string text;
  std::string kind;
  double score = 0;
};

// Memories as replies show and store them: [{"id", "text", "kind", "score"}].
nlohmann::json memories_json(const std::vector<RecalledMemory>& memories);

// The part of a turn that belongs to a session.
struct StoredTurn {
  // Filled by the way in: the session (given, or loaded by id), or one to open; the message.
  std::string session_id;
  std::optional<store::Session> session;
  std::optional<store::NewSession> new_session;
  std::string content;
  // Regenerate: the id of the session's last user message (its text in `content`), answered
  // again in place of its earlier replies instead of being stored a second time.
  std::string regenerate_of;
  // Called once the input is recorded, before generation (streaming APIs announce the ids).
  std::function<Task<void>(const store::StartedTurn&)> on_started;

  // Filled by the stages.
  store::StartedTurn started;  // record input: the user's message and the pending reply
  // recall: what the assistant remembers about the user that the prompt includes (memory/).
  std::vector<RecalledMemory> memories;
  int dropped_history = 0;  // build prompt
  // build prompt: the session's summary the prompt used in place of the messages it covers,
  // and how close the rest of the history is to outgrowing the model (summary/ decides from
  // these whether the session is due a new summary).
  std::optional<store::Summary> summary;
  int64_t history_tokens = 0;
  int64_t history_budget = 0;
  bool history_truncated = false;  // messages were left out (the window, or max_history)
  // classify intent: what the message asks for (intent/), stored on it; and what the prompt's
  // system message is told besides (a gathered request's fields).
  std::string intent;
  std::optional<double> intent_confidence;
  std::vector<std::string> prompt_notes;
  store::UsageRecord usage;  // account: what persist stores with the reply
  // Work the reply leads to (memory extraction, summaries): persist queues it in the reply's
  // own transaction, so it exists exactly when the reply does.
  std::vector<store::NewJob> follow_up_jobs;
  store::Message reply;  // persist: the reply as stored
};

// A passage of a knowledge base that a reply's prompt included (the retrieve stage), numbered
// as the prompt cites it ([1], [2]...), with where it came from.
struct Citation {
  int number = 0;
  std::string knowledge_base_id;
  std::string document_id;
  std::string document_name;
  std::string chunk_id;
  std::string section;
  int64_t page = 0;  // 0 when the document has no pages
  int64_t page_end = 0;
  int64_t start_offset = 0;  // characters of the document's extracted text
  int64_t end_offset = 0;
  double score = 0;
  std::string text;
};

// Citations as replies show and store them: [{"number", "knowledge_base_id", "document_id",
// "document_name", "chunk_id", "section", "page", "page_end", "start_offset", "end_offset",
// "score", "text"}].
nlohmann::json citations_json(const std::vector<Citation>& citations);

// What the response caches (cache/response_cache.hpp) made of a turn.
struct CacheState {
  // From the request's Cache-Control: no-cache looks nothing up (the answer is still kept),
  // no-store keeps nothing.
  bool no_cache = false;
  bool no_store = false;
  std::string status;     // "" (no cache ran), "hit", "miss" or "bypass"
  std::string match;      // on a hit: "exact" or "semantic"
  double similarity = 0;  // a semantic hit's
  double saved_usd = 0;   // on a hit: what the answer cost when it was made
  // Kept between the lookup and the store stage.
  std::string exact_key;
  std::string partition;
  std::vector<float> question;
};

// One request's journey through the pipeline. The way in fills the first block; stages
// fill the rest.
struct Turn {
  // --- Filled by the way in ---------------------------------------------------------------
  limits::Actor actor;  // who it acts for, and their limits
  std::string request_id;
  std::string source = "chat";  // usage records' source: "chat" (sessions), "api" (stateless)
  bool stream = false;          // the caller takes the reply as it grows, through `sink`
  llm::Cancellation* cancel = nullptr;
  const llm::DeltaSink* sink = nullptr;
  // Where a blocked reply is reported ("reply", "choices[0].message.content").
  std::string reply_field = "reply";

  // Stored turns (null for stateless ones): the session, the message and what was stored.
  // Apart, so that a stateless turn — the OpenAI-compatible proxy path, thousands of streams
  // held at once — does not carry them.
  std::unique_ptr<StoredTurn> stored;
  // Knowledge bases the request names besides its assistant's (ids).
  std::vector<std::string> knowledge_base_ids;
  // Overrides of the assistant's settings for this turn.
  std::optional<std::string> model;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;

  // Stateless turns: the request as sent (model name in `model`); `openai_body`, when the
  // request came in OpenAI's format, is kept in step with redactions so that it can travel
  // upstream as is.
  llm::ChatRequest prompt;
  nlohmann::json* openai_body = nullptr;

  // --- Filled by the stages ----------------------------------------------------------------
  const Assistant* assistant = nullptr;
  llm::Route route;
  // retrieve: the passages put into the prompt, in citation order (knowledge/retrieve.hpp).
  std::vector<Citation> citations;
  limits::ModelAdmission admission;  // stream slots, held until the turn ends
  moderation::Subject subject;
  std::string upstream_body;  // openai_body re-serialised after a redaction

  llm::GatewayResult generation;
  std::optional<Error> generation_error;
  // A streamed reply checked as it grows (generate, when moderation is on).
  std::unique_ptr<moderation::StreamCheck> stream_check;
  std::optional<Error> output_blocked;  // the reply was blocked (400 content_blocked)
  bool usage_settled = false;           // the usage estimate is taken (it is taken once)
  bool answered = false;                // a stage answered; only finishing stages run
  CacheState cache;
};

enum class Flow { kContinue, kAnswered };

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  // Whether the stage runs for this turn at all (record input and persist: stored turns).
  virtual bool applies(const Turn&) const { return true; }
  // Finishing stages run even after an earlier stage answered (account, persist).
  virtual bool finishing() const { return false; }
  virtual Task<Result<Flow>> run(Turn& turn) = 0;
};

// What the built-in stages need; owned by the app, alive while requests run.
struct ChatDeps {
  store::Storage& storage;
  BlockingPool& blocking;
  llm::Gateway& gateway;
  llm::Accountant& accountant;
  const Assistants& assistants;
  limits::Admission& admission;
  moderation::Moderator& moderator;
  const Clock& clock;
  obs::Metrics* metrics = nullptr;
  int64_t default_context_window = 8192;
  // Whether the server is stopping (a reply cut by it is "shutdown", not "cancelled").
  std::function<bool()> draining;
  // This process among the replicas (store::ReplicaRepository): the owner of its turns.
  std::string replica_id;
};

class Pipeline {
 public:
  explicit Pipeline(ChatDeps& deps) : deps_(deps) {}

  // Appends a stage; stages run in the order added. Call before serving.
  void add(std::unique_ptr<Stage> stage) { stages_.push_back(std::move(stage)); }
  // Puts a feature's stage just before the stage named `anchor` (retrieval before
  // "build_prompt", a cache before "generate"); false, and nothing added, when no stage has
  // that name. Call before serving.
  bool insert_before(std::string_view anchor, std::unique_ptr<Stage> stage);
  const std::vector<std::unique_ptr<Stage>>& stages() const { return stages_; }

  // Runs the turn through every stage that applies. An Error is a failure before there was
  // a reply to give (no such session, a refused or blocked input, storage down); a
  // generation failure comes back inside the Turn (generation_error), with a stored turn's
  // partial reply persisted.
  Task<Result<void>> run(Turn& turn);

 private:
  ChatDeps& deps_;
  std::vector<std::unique_ptr<Stage>> stages_;
};

// Books what a model call used outside the chat pipeline (embeddings): the caller's token
// buckets and budgets, and a usage row queued for the usage table.
void book_api_usage(ChatDeps& deps, const limits::Actor& actor, store::UsageRecord record);

}  // namespace parley::chat
