// The built-in stages of the chat pipeline (see pipeline.hpp for what each does and when).
#include "chat/stages.hpp"

#include <nlohmann/json.hpp>

#include "chat/context_window.hpp"
#include "llm/cost_routing.hpp"
#include "llm/upstream.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::chat::stages {
namespace {

using nlohmann::json;

Task<Result<Flow>> next() { co_return Flow::kContinue; }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Stages that only read their dependencies.
class DepsStage : public Stage {
 public:
  explicit DepsStage(ChatDeps& deps) : deps_(deps) {}

 protected:
  ChatDeps& deps_;
};

// The session (loaded when only its id was given), its assistant, whose turn it is for the
// moderation log, and the model's route: a model that resolves to nothing fails here, before
// anything is stored.
class Resolve final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "resolve"; }
  Task<Result<Flow>> run(Turn& turn) override { return resolve(deps_, turn); }

 private:
  static Task<Result<Flow>> resolve(ChatDeps& deps, Turn& turn) {
    std::string model;
    if (turn.stored) {
      if (!turn.stored->session && !turn.stored->new_session) {
        const std::string id = turn.stored->session_id;
        auto session = co_await deps.blocking.run([&] { return deps.storage.sessions().get(id); });
        if (!session) co_return std::move(session).error();
        turn.stored->session = std::move(*session);
      }
      const std::string& assistant_name = turn.stored->session
                                              ? turn.stored->session->assistant
                                              : turn.stored->new_session->assistant;
      turn.assistant = deps.assistants.find(assistant_name);
      if (!turn.assistant) turn.assistant = &deps.assistants.default_assistant();
      if (turn.stored->session) {
        turn.stored->session_id = turn.stored->session->id;
        turn.subject = {turn.stored->session->tenant_id, turn.stored->session->user_id,
                        turn.stored->session->id, turn.request_id};
      } else {
        turn.subject = {turn.stored->new_session->tenant_id, turn.stored->new_session->user_id, "",
                        turn.request_id};
      }
      model = turn.model.value_or(turn.assistant->model);
    } else {
      turn.subject = {turn.actor.tenant_id, turn.actor.user_id, "", turn.request_id};
      model = turn.model.value_or("");
    }
    auto route = deps.gateway.resolve(model);
    if (!route) co_return std::move(route).error();
    turn.route = std::move(*route);
    co_return Flow::kContinue;
  }
};

class Admit final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "admit"; }
  Task<Result<Flow>> run(Turn& turn) override { return admit(deps_, turn); }

 private:
  static Task<Result<Flow>> admit(ChatDeps& deps, Turn& turn) {
    auto admitted = co_await deps.admission.admit(turn.actor, turn.stream);
    if (!admitted) co_return std::move(admitted).error();
    turn.admission = std::move(*admitted);
    co_return Flow::kContinue;
  }
};

// Redacts the text parts of OpenAI content parts one by one (images and audio pass as sent).
void redact_parts(moderation::Moderator& moderator, json& parts) {
  for (auto& part : parts) {
    if (!part.is_object() || !part.contains("text") || !part["text"].is_string()) continue;
    auto v = moderator.evaluate(part["text"].get<std::string>(), moderation::Stage::kInput);
    if (v.redacted) part["text"] = std::move(*v.redacted);
  }
}

// Stored turns: the new message. Stateless turns: every user message of the conversation;
// a redaction rewrites the message, and the request body when it travels upstream as is.
class ModerateInput final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "moderate"; }
  Task<Result<Flow>> run(Turn& turn) override {
    if (!deps_.moderator.enabled()) return next();
    return turn.stored ? message(deps_, turn) : conversation(deps_, turn);
  }

 private:
  static Task<Result<Flow>> message(ChatDeps& deps, Turn& turn) {
    auto verdict = co_await deps.moderator.check(turn.stored->content, moderation::Stage::kInput,
                                                 turn.subject);
    if (verdict.action == moderation::Action::kBlock) {
      co_return moderation::blocked_error(verdict, moderation::Stage::kInput, "content");
    }
    if (verdict.action == moderation::Action::kRedact && verdict.redacted) {
      turn.stored->content = std::move(*verdict.redacted);
    }
    co_return Flow::kContinue;
  }

  static Task<Result<Flow>> conversation(ChatDeps& deps, Turn& turn) {
    bool rewritten = false;
    auto& messages = turn.prompt.messages;
    for (size_t i = 0; i < messages.size(); ++i) {
      auto& m = messages[i];
      if (m.role != "user" || m.content.empty()) continue;
      auto verdict =
          co_await deps.moderator.check(m.content, moderation::Stage::kInput, turn.subject);
      if (verdict.action == moderation::Action::kBlock) {
        co_return moderation::blocked_error(verdict, moderation::Stage::kInput,
                                            "messages[" + std::to_string(i) + "].content");
      }
      if (verdict.action != moderation::Action::kRedact || !verdict.redacted) continue;
      if (m.parts.is_array()) redact_parts(deps.moderator, m.parts);
      m.content = std::move(*verdict.redacted);
      if (turn.openai_body) {
        auto& sent = (*turn.openai_body)["messages"][i]["content"];
        sent = m.parts.is_array() ? m.parts : json(m.content);
      }
      rewritten = true;
    }
    if (rewritten && turn.openai_body) {
      turn.upstream_body = dump(*turn.openai_body);
      turn.prompt.openai_text = turn.upstream_body;
    }
    co_return Flow::kContinue;
  }
};

// POST /api/v1/chat without a session: the session is opened only once the caller is
// admitted and the message allowed, so a refused turn leaves nothing behind.
class OpenSession final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "open_session"; }
  bool applies(const Turn& turn) const override {
    return turn.stored && !turn.stored->session && turn.stored->new_session;
  }
  Task<Result<Flow>> run(Turn& turn) override { return open(deps_, turn); }

 private:
  // The first words of the message, as chat UIs show a conversation: at most kTitleBytes,
  // never cutting a UTF-8 character in half.
  static std::string title_from(const std::string& message) {
    constexpr size_t kTitleBytes = 60;
    if (message.size() <= kTitleBytes) return message;
    size_t end = kTitleBytes;
    while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
    return message.substr(0, end);
  }

  static Task<Result<Flow>> open(ChatDeps& deps, Turn& turn) {
    store::NewSession& in = *turn.stored->new_session;
    // From the message as moderation left it: a redacted address must not survive in the title.
    if (!in.title) in.title = title_from(turn.stored->content);
    auto session = co_await deps.blocking.run([&] { return deps.storage.sessions().create(in); });
    if (!session) co_return std::move(session).error();
    turn.stored->session = std::move(*session);
    turn.stored->session_id = turn.stored->session->id;
    turn.subject.session_id = turn.stored->session->id;
    co_return Flow::kContinue;
  }
};

class RecordInput final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "record_input"; }
  bool applies(const Turn& turn) const override { return turn.stored != nullptr; }
  Task<Result<Flow>> run(Turn& turn) override { return record(deps_, turn); }

 private:
  static Task<Result<Flow>> record(ChatDeps& deps, Turn& turn) {
    std::string model = turn.model.value_or(turn.assistant->model);
    if (model.empty()) model = deps.gateway.default_route();
    store::NewTurn in{turn.stored->session_id, turn.stored->content, turn.request_id,
                      std::move(model),        deps.replica_id,      turn.stored->regenerate_of};
    auto started =
        co_await deps.blocking.run([&] { return deps.storage.messages().begin_turn(in); });
    if (!started) co_return std::move(started).error();
    turn.stored->started = std::move(*started);
    if (deps.metrics) deps.metrics->note_session_activity(turn.stored->session_id);
    co_return Flow::kContinue;
  }
};

llm::Message to_llm_message(const store::Message& m) {
  llm::Message out;
  out.role = m.role;
  out.content = m.content;
  if (!m.tool_calls_json.empty()) {
    auto calls = json::parse(m.tool_calls_json, nullptr, false);
    if (calls.is_array()) {
      for (const auto& c : calls) {
        if (!c.is_object()) continue;
        out.tool_calls.push_back(
            {c.value("id", ""), c.value("name", ""), c.value("arguments", "")});
      }
    }
  }
  return out;
}

// Stored turns: the assistant's system prompt, the session's history (newest first, fitted
// into the first target's context window minus the room kept for the reply) and the new
// message. Stateless turns bring their conversation whole.
// "guide.md, Install > Linux, page 3": where a passage comes from, as the prompt names it.
std::string source_title(const Citation& c) {
  std::string title = c.document_name.empty() ? c.document_id : c.document_name;
  if (!c.section.empty()) title += ", " + c.section;
  if (c.page > 0) {
    title += ", page " + std::to_string(c.page);
    if (c.page_end > c.page) title += "-" + std::to_string(c.page_end);
  }
  return title;
}

// The passages of a turn's knowledge bases, after the assistant's own system prompt.
std::string sources_prompt(const std::vector<Citation>& citations, bool strict) {
  std::string out =
      "Answer with the help of the numbered passages below, from the knowledge base, and cite "
      "the passages you use as [1], [2]. ";
  out += strict ? "Answer only from these passages: if they do not contain the answer, say that "
                  "the documents do not cover it, and do not answer from anything else."
                : "If they do not help, answer from what you know and say that you did.";
  for (const auto& c : citations) {
    out += "\n\n[" + std::to_string(c.number) + "] " + source_title(c) + "\n" + c.text;
  }
  return out;
}

std::string memories_prompt(const std::vector<RecalledMemory>& memories) {
  std::string out =
      "What you remember about this user from earlier conversations (use it where it helps, "
      "follow their standing instructions, and do not recite it unasked):";
  for (const auto& m : memories) out += "\n- " + m.text;
  return out;
}

std::string summary_prompt(const store::Summary& summary) {
  return "Summary of the earlier part of this conversation (its messages are not repeated "
         "below):\n" +
         summary.text;
}

class BuildPrompt final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "build_prompt"; }
  bool applies(const Turn& turn) const override { return turn.stored != nullptr; }
  Task<Result<Flow>> run(Turn& turn) override { return build(deps_, turn); }

 private:
  static Task<Result<Flow>> build(ChatDeps& deps, Turn& turn) {
    const Assistant& assistant = *turn.assistant;
    // History before this turn's two rows (the user's message goes last, on its own).
    const int limit = assistant.max_history + 2;
    const std::string session_id = turn.stored->session_id;
    // The session's summary, when it has one, stands in for the messages it covers.
    std::optional<store::Summary> summary;
    auto history = co_await deps.blocking.run([&]() -> Result<std::vector<store::Message>> {
      auto latest = deps.storage.summaries().latest(session_id);
      if (latest) {
        summary = std::move(*latest);
      } else {
        log::warn("summary not read; the turn goes on with its history",
                  {{"session_id", session_id}, {"error", latest.error().message}});
      }
      return deps.storage.messages().history(session_id, limit);
    });
    if (!history) co_return std::move(history).error();
    FitInput fit;
    fit.system.role = "system";
    fit.system.content = assistant.system_prompt;
    const bool strict = assistant.grounding == "strict";
    if (!turn.citations.empty()) {
      if (!fit.system.content.empty()) fit.system.content += "\n\n";
      fit.system.content += sources_prompt(turn.citations, strict);
      for (const auto& c : turn.citations) {
        turn.prompt.sources.push_back({c.number, source_title(c), c.text});
      }
    }
    turn.prompt.grounded_strictly = strict;
    if (!turn.stored->memories.empty()) {
      if (!fit.system.content.empty()) fit.system.content += "\n\n";
      fit.system.content += memories_prompt(turn.stored->memories);
      for (const auto& m : turn.stored->memories) turn.prompt.memories.push_back(m.text);
    }
    if (summary) {
      if (!fit.system.content.empty()) fit.system.content += "\n\n";
      fit.system.content += summary_prompt(*summary);
    }
    for (const auto& note : turn.stored->prompt_notes) {
      if (!fit.system.content.empty()) fit.system.content += "\n\n";
      fit.system.content += note;
    }
    // The history came back whole when it is shorter than asked for, or reaches back into what
    // the summary covers; else older messages were left out by max_history.
    bool reached_start = static_cast<int>(history->size()) < limit;
    for (const auto& m : *history) {
      if (summary && m.seq <= summary->through_seq) {
        reached_start = true;
        continue;
      }
      if (m.id == turn.stored->started.user.id || m.id == turn.stored->started.assistant.id)
        continue;
      // Regenerating: the replies being replaced are not part of the conversation asked about.
      if (!turn.stored->regenerate_of.empty() && m.seq > turn.stored->started.user.seq) continue;
      fit.history.push_back(to_llm_message(m));
      fit.known_tokens.push_back(m.role == "assistant" ? m.output_tokens : 0);
    }
    fit.newest.role = "user";
    fit.newest.content = turn.stored->content;
    const std::string first_model = turn.route.targets.empty()
                                        ? turn.model.value_or(assistant.model)
                                        : turn.route.targets.front().model;
    const auto info = deps.accountant.models().find(first_model);
    fit.context_window =
        info.context_window > 0 ? info.context_window : deps.default_context_window;
    const auto max_tokens = turn.max_tokens ? turn.max_tokens : assistant.max_tokens;
    fit.reply_reserve = max_tokens.value_or(std::min<int64_t>(1024, fit.context_window / 4));
    auto fitted = fit_context(fit);
    turn.stored->dropped_history = fitted.dropped;
    turn.stored->history_tokens = fitted.history_tokens;
    turn.stored->history_budget = fitted.history_budget;
    turn.stored->history_truncated = fitted.dropped > 0 || !reached_start;
    turn.stored->summary = std::move(summary);

    turn.prompt.messages = std::move(fitted.messages);
    turn.prompt.temperature = turn.temperature ? turn.temperature : assistant.temperature;
    turn.prompt.max_tokens = max_tokens;
    turn.prompt.user = turn.stored->started.session.user_id;
    co_return Flow::kContinue;
  }
};

// Cost-aware routes: targets ordered by the request's complexity and what is left of the
// user's daily budget (spend as the usage table has it: the API path's is up to one flush
// interval behind).
class PlanRoute final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "plan_route"; }
  bool applies(const Turn& turn) const override { return turn.route.strategy == "cost"; }
  Task<Result<Flow>> run(Turn& turn) override { return plan(deps_, turn); }

 private:
  static Task<Result<Flow>> plan(ChatDeps& deps, Turn& turn) {
    std::optional<double> remaining;
    if (turn.route.daily_budget_usd > 0) {
      const int64_t now_ms = to_unix_ms(deps.clock.now());
      const int64_t day_start = now_ms - now_ms % 86'400'000;
      const std::string tenant = turn.subject.tenant_id;
      const std::string user = turn.subject.user_id;
      auto spent = co_await deps.blocking.run(
          [&] { return deps.storage.usage().spent(tenant, user, day_start); });
      if (spent) remaining = turn.route.daily_budget_usd - *spent;
    }
    turn.route = llm::plan_cost_route(turn.route, llm::complexity_score(turn.prompt), remaining);
    co_return Flow::kContinue;
  }
};

class Generate final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "generate"; }
  Task<Result<Flow>> run(Turn& turn) override { return generate(deps_, turn); }

 private:
  static Task<Result<Flow>> generate(ChatDeps& deps, Turn& turn) {
    if (turn.stored && turn.stored->on_started) {
      co_await turn.stored->on_started(turn.stored->started);
    }
    // The first target's model, so that its attempt needs no copy of the prompt.
    if (!turn.route.targets.empty()) turn.prompt.model = turn.route.targets.front().model;
    if (turn.sink && deps.moderator.enabled()) {
      co_await checked_stream(deps, turn);
    } else {
      auto result = co_await deps.gateway.chat(turn.route, turn.prompt, *turn.cancel, turn.sink,
                                               turn.generation);
      if (!result) turn.generation_error = std::move(result).error();
    }
    co_return Flow::kContinue;  // account and persist record it either way
  }

  // A moderated stream: the caller gets what StreamCheck releases; a block ends the call. Its
  // own coroutine, so that unmoderated streams do not carry its state in their frames.
  static Task<void> checked_stream(ChatDeps& deps, Turn& turn) {
    turn.stream_check = std::make_unique<moderation::StreamCheck>(&deps.moderator, turn.subject);
    const llm::DeltaSink& client = *turn.sink;
    moderation::StreamCheck& check = *turn.stream_check;
    const llm::DeltaSink checked = [&client, &check](const llm::Delta& delta) -> Task<bool> {
      if (delta.content.empty()) co_return co_await client(delta);  // the start, or tool calls
      llm::Delta released;
      released.content = check.feed(delta.content);
      released.tool_calls = delta.tool_calls;
      if (check.blocked()) co_return false;
      if (released.content.empty() && released.tool_calls.empty()) co_return true;  // held
      co_return co_await client(released);
    };
    auto result = co_await deps.gateway.chat(turn.route, turn.prompt, *turn.cancel, &checked,
                                             turn.generation);
    if (!result) turn.generation_error = std::move(result).error();
    llm::Delta tail;
    tail.content = check.finish();
    if (!tail.content.empty() && !check.blocked()) (void)co_await client(tail);
  }
};

// Providers that report no usage (and replies cut short) get Parley's estimate. Taken before
// output moderation changes the text: the tokens were generated and paid for.
void settle_usage(Turn& turn) {
  auto& usage = turn.generation.completion.usage;
  if (usage.reported || turn.usage_settled) return;
  usage.input_tokens = llm::estimate_tokens(turn.prompt.messages);
  usage.output_tokens = llm::estimate_tokens(turn.generation.completion.content);
  turn.usage_settled = true;
}

// An OpenAI-format answer passed on as received gets the redacted text too; one whose shape
// is not the expected one is rendered by Parley instead.
void redact_raw_openai(llm::Completion& completion) {
  if (completion.raw_openai.empty()) return;
  auto raw = json::parse(completion.raw_openai, nullptr, false);
  if (raw.is_object() && raw.contains("choices") && raw["choices"].is_array() &&
      !raw["choices"].empty() && raw["choices"][0].is_object() &&
      raw["choices"][0].contains("message") && raw["choices"][0]["message"].is_object()) {
    raw["choices"][0]["message"]["content"] = completion.content;
    completion.raw_openai = dump(raw);
  } else {
    completion.raw_openai.clear();
  }
}

class ModerateOutput final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "moderate_output"; }
  Task<Result<Flow>> run(Turn& turn) override {
    if (!deps_.moderator.enabled()) return next();
    return moderate(deps_, turn);
  }

 private:
  static Task<Result<Flow>> moderate(ChatDeps& deps, Turn& turn) {
    auto& completion = turn.generation.completion;
    moderation::Verdict verdict;
    if (turn.stream_check) {
      // Checked as it streamed (generate); recorded there.
      verdict = turn.stream_check->verdict();
      if (verdict.action == moderation::Action::kRedact) {
        verdict.redacted = turn.stream_check->released();
      }
      if (verdict.action == moderation::Action::kBlock && turn.generation_error &&
          turn.generation_error->code == ErrorCode::kCancelled) {
        turn.generation_error.reset();  // stopped by the block, not by the client
      }
    } else {
      if (completion.content.empty()) co_return Flow::kContinue;
      verdict = co_await deps.moderator.check(completion.content, moderation::Stage::kOutput,
                                              turn.subject);
    }
    if (verdict.action == moderation::Action::kBlock) {
      turn.output_blocked =
          moderation::blocked_error(verdict, moderation::Stage::kOutput, turn.reply_field);
    }
    settle_usage(turn);
    if (turn.output_blocked) {
      completion.content.clear();
      completion.tool_calls.clear();
      completion.raw_openai.clear();
      completion.finish_reason = "content_filter";
    } else if (verdict.action == moderation::Action::kRedact && verdict.redacted) {
      completion.content = *verdict.redacted;
      redact_raw_openai(completion);
    }
    co_return Flow::kContinue;
  }
};

// What the turn used: the usage record (persisted with the reply for stored turns, queued
// for the usage table for stateless ones) and the caller's token buckets and budgets.
class Account final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "account"; }
  bool finishing() const override { return true; }
  Task<Result<Flow>> run(Turn& turn) override {
    settle_usage(turn);
    const auto& generation = turn.generation;
    const auto& usage = generation.completion.usage;
    store::UsageRecord r;
    r.at_ms = to_unix_ms(deps_.clock.now());
    r.tenant_id = turn.subject.tenant_id;
    r.user_id = turn.subject.user_id;
    r.key_id = turn.actor.key_id;
    r.session_id = turn.stored ? turn.stored->session_id : "";
    r.source = turn.source;
    r.provider = generation.provider;
    r.model = generation.model;
    r.input_tokens = usage.input_tokens;
    r.output_tokens = usage.output_tokens;
    r.cost_usd = deps_.accountant.cost(generation.model, usage);
    r.status = turn.output_blocked     ? turn.output_blocked->reason
               : turn.generation_error ? turn.generation_error->reason
                                       : "ok";
    r.request_id = turn.request_id;
    // A stateless call that reached no provider (every circuit open) used nothing.
    if (!turn.stored && r.provider.empty()) return next();
    if (turn.cache.status == "hit") {
      // Served from the response cache: the tokens it stands for, at no cost, and nothing
      // taken from the caller's token buckets or budgets.
      r.provider = "cache";
      r.cost_usd = 0;
      r.status = "cache_hit";
    } else {
      deps_.admission.book(turn.actor, r.input_tokens + r.output_tokens, r.cost_usd);
    }
    if (turn.stored) {
      turn.stored->usage = std::move(r);  // persisted with the reply
    } else {
      deps_.accountant.enqueue(std::move(r));
    }
    return next();
  }
};

class Persist final : public DepsStage {
 public:
  using DepsStage::DepsStage;
  const char* name() const override { return "persist"; }
  bool applies(const Turn& turn) const override { return turn.stored != nullptr; }
  bool finishing() const override { return true; }
  Task<Result<Flow>> run(Turn& turn) override { return persist(deps_, turn); }

 private:
  static std::string finish_reason(const ChatDeps& deps, const Turn& turn) {
    if (!turn.generation_error) return turn.generation.completion.finish_reason;
    switch (turn.generation_error->code) {
      case ErrorCode::kCancelled:
        return deps.draining && deps.draining() ? llm::finish::kShutdown : llm::finish::kCancelled;
      case ErrorCode::kDeadlineExceeded:
        return llm::finish::kTimeout;
      default:
        return llm::finish::kError;
    }
  }

  static std::string tool_calls_json(const std::vector<llm::ToolCall>& calls) {
    if (calls.empty()) return {};
    json out = json::array();
    for (const auto& c : calls)
      out.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
    return dump(out);
  }

  static Task<Result<Flow>> persist(ChatDeps& deps, Turn& turn) {
    const auto& completion = turn.generation.completion;
    store::FinishedTurn done;
    done.assistant_message_id = turn.stored->started.assistant.id;
    done.content = completion.content;
    done.tool_calls_json = tool_calls_json(completion.tool_calls);
    done.status = turn.generation_error ? "partial" : "complete";
    done.model = turn.generation.model;
    done.provider = turn.generation.provider;
    done.input_tokens = turn.stored->usage.input_tokens;
    done.output_tokens = turn.stored->usage.output_tokens;
    done.cost_usd = turn.stored->usage.cost_usd;
    done.latency_ms = static_cast<int64_t>(turn.generation.duration * 1000.0);
    if (turn.generation.time_to_first_token > 0) {
      done.ttft_ms = static_cast<int64_t>(turn.generation.time_to_first_token * 1000.0);
    }
    done.finish_reason = finish_reason(deps, turn);
    if (!turn.citations.empty()) done.citations_json = citations_json(turn.citations).dump();
    if (!turn.stored->memories.empty()) {
      done.memories_json = memories_json(turn.stored->memories).dump();
    }
    done.usage = turn.stored->usage;
    done.follow_up_jobs = std::move(turn.stored->follow_up_jobs);
    done.user_message_id = turn.stored->started.user.id;
    // A regenerated reply that failed leaves the earlier one as it was.
    done.regenerated =
        !turn.stored->regenerate_of.empty() && done.finish_reason != llm::finish::kError;
    done.intent = turn.stored->intent;
    done.intent_confidence = turn.stored->intent_confidence;
    auto stored =
        co_await deps.blocking.run([&] { return deps.storage.messages().finish_turn(done); });
    if (!stored) {
      log::error("reply not stored", {{"request_id", turn.request_id},
                                      {"message_id", done.assistant_message_id},
                                      {"error", stored.error().message}});
      co_return std::move(stored).error();
    }
    turn.stored->reply = std::move(*stored);
    co_return Flow::kContinue;
  }
};

}  // namespace

std::unique_ptr<Stage> resolve(ChatDeps& deps) { return std::make_unique<Resolve>(deps); }
std::unique_ptr<Stage> admit(ChatDeps& deps) { return std::make_unique<Admit>(deps); }
std::unique_ptr<Stage> moderate_input(ChatDeps& deps) {
  return std::make_unique<ModerateInput>(deps);
}
std::unique_ptr<Stage> open_session(ChatDeps& deps) { return std::make_unique<OpenSession>(deps); }
std::unique_ptr<Stage> record_input(ChatDeps& deps) { return std::make_unique<RecordInput>(deps); }
std::unique_ptr<Stage> build_prompt(ChatDeps& deps) { return std::make_unique<BuildPrompt>(deps); }
std::unique_ptr<Stage> plan_route(ChatDeps& deps) { return std::make_unique<PlanRoute>(deps); }
std::unique_ptr<Stage> generate(ChatDeps& deps) { return std::make_unique<Generate>(deps); }
std::unique_ptr<Stage> moderate_output(ChatDeps& deps) {
  return std::make_unique<ModerateOutput>(deps);
}
std::unique_ptr<Stage> account(ChatDeps& deps) { return std::make_unique<Account>(deps); }
std::unique_ptr<Stage> persist(ChatDeps& deps) { return std::make_unique<Persist>(deps); }

void add_builtin_stages(Pipeline& pipeline, ChatDeps& deps) {
  for (auto* make : {&resolve, &admit, &moderate_input, &open_session, &record_input, &build_prompt,
                     &plan_route, &generate, &moderate_output, &account, &persist}) {
    pipeline.add(make(deps));
  }
}

}  // namespace parley::chat::stages
