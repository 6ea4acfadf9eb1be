// The stages of a chat turn and the service that runs them (see turn.hpp).
#include "chat/turn.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "chat/context_window.hpp"
#include "core/clock.hpp"
#include "llm/cost_routing.hpp"
#include "llm/upstream.hpp"
#include "obs/log.hpp"

namespace parley::chat {
namespace {

using nlohmann::json;

class Moderate final : public Stage {
 public:
  explicit Moderate(ChatDeps& deps) : deps_(deps) {}
  const char* name() const override { return "moderate"; }
  Task<Result<void>> run(TurnContext& turn) override {
    if (!deps_.moderator || !deps_.moderator->enabled()) co_return success();
    auto verdict = co_await deps_.moderator->check(turn.request.content, moderation::Stage::kInput,
                                                   turn.subject);
    if (verdict.action == moderation::Action::kBlock) {
      co_return moderation::blocked_error(verdict, moderation::Stage::kInput, "content");
    }
    if (verdict.action == moderation::Action::kRedact && verdict.redacted) {
      turn.request.content = std::move(*verdict.redacted);
    }
    co_return success();
  }

 private:
  ChatDeps& deps_;
};

class ModerateOutput final : public Stage {
 public:
  explicit ModerateOutput(ChatDeps& deps) : deps_(deps) {}
  const char* name() const override { return "moderate_output"; }
  Task<Result<void>> run(TurnContext& turn) override {
    if (!deps_.moderator || !deps_.moderator->enabled()) co_return success();
    if (turn.stream_check) {
      // Checked as it streamed (generate); recorded there.
      turn.output_verdict = turn.stream_check->verdict();
      if (turn.output_verdict->action == moderation::Action::kRedact) {
        turn.output_verdict->redacted = turn.stream_check->released();
      }
      if (turn.output_verdict->action == moderation::Action::kBlock && turn.generation_error &&
          turn.generation_error->code == ErrorCode::kCancelled) {
        turn.generation_error.reset();  // stopped by the block, not by the client
      }
    } else {
      const auto& content = turn.generation.completion.content;
      if (content.empty()) co_return success();
      turn.output_verdict =
          co_await deps_.moderator->check(content, moderation::Stage::kOutput, turn.subject);
    }
    if (turn.output_verdict->action == moderation::Action::kBlock) {
      turn.output_blocked =
          moderation::blocked_error(*turn.output_verdict, moderation::Stage::kOutput, "reply");
    }
    co_return success();
  }

 private:
  ChatDeps& deps_;
};

class RecordInput final : public Stage {
 public:
  explicit RecordInput(ChatDeps& deps) : deps_(deps) {}
  const char* name() const override { return "record_input"; }
  Task<Result<void>> run(TurnContext& turn) override { return record(deps_, turn); }

 private:
  static Task<Result<void>> record(ChatDeps& deps, TurnContext& turn) {
    std::string model = turn.request.model.value_or(turn.assistant ? turn.assistant->model : "");
    if (model.empty()) model = deps.gateway.default_route();
    store::NewTurn in{turn.request.session_id, turn.request.content, turn.request.request_id,
                      std::move(model)};
    auto started =
        co_await deps.blocking.run([&] { return deps.storage.messages().begin_turn(in); });
    if (!started) co_return std::move(started).error();
    turn.started = std::move(*started);
    if (deps.metrics) deps.metrics->note_session_activity(turn.request.session_id);
    co_return success();
  }
  ChatDeps& deps_;
};

class RecallMemory final : public Stage {
 public:
  const char* name() const override { return "recall_memory"; }
  Task<Result<void>> run(TurnContext&) override { co_return success(); }
};

class Retrieve final : public Stage {
 public:
  const char* name() const override { return "retrieve"; }
  Task<Result<void>> run(TurnContext&) override { co_return success(); }
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

class BuildPrompt final : public Stage {
 public:
  explicit BuildPrompt(ChatDeps& deps) : deps_(deps) {}
  const char* name() const override { return "build_prompt"; }
  Task<Result<void>> run(TurnContext& turn) override { return build(deps_, turn); }

 private:
  static Task<Result<void>> build(ChatDeps& deps, TurnContext& turn) {
    const Assistant& assistant = *turn.assistant;
    const std::string model = turn.request.model.value_or(assistant.model);
    auto route = deps.gateway.resolve(model);
    if (!route) co_return std::move(route).error();
    turn.route = std::move(*route);

    // History before this turn's two rows (the user's message goes last, on its own).
    const int limit = assistant.max_history + 2;
    const std::string session_id = turn.request.session_id;
    auto history = co_await deps.blocking.run(
        [&] { return deps.storage.messages().history(session_id, limit); });
    if (!history) co_return std::move(history).error();
    FitInput fit;
    fit.system.role = "system";
    fit.system.content = assistant.system_prompt;
    for (const auto& m : *history) {
      if (m.id == turn.started.user.id || m.id == turn.started.assistant.id) continue;
      fit.history.push_back(to_llm_message(m));
      fit.known_tokens.push_back(m.role == "assistant" ? m.output_tokens : 0);
    }
    fit.newest.role = "user";
    fit.newest.content = turn.request.content;
    const std::string first_model =
        turn.route.targets.empty() ? model : turn.route.targets.front().model;
    const auto info = deps.accountant.models().find(first_model);
    fit.context_window =
        info.context_window > 0 ? info.context_window : deps.default_context_window;
    const auto max_tokens =
        turn.request.max_tokens ? turn.request.max_tokens : assistant.max_tokens;
    fit.reply_reserve = max_tokens.value_or(std::min<int64_t>(1024, fit.context_window / 4));
    auto fitted = fit_context(fit);
    turn.dropped_history = fitted.dropped;

    turn.prompt.messages = std::move(fitted.messages);
    turn.prompt.temperature =
        turn.request.temperature ? turn.request.temperature : assistant.temperature;
    turn.prompt.max_tokens = max_tokens;
    turn.prompt.user = turn.started.session.user_id;

    if (turn.route.strategy == "cost") {
      std::optional<double> remaining;
      if (turn.route.daily_budget_usd > 0) {
        const int64_t now_ms = to_unix_ms(std::chrono::system_clock::now());
        const int64_t day_start = now_ms - now_ms % 86'400'000;
        const std::string user = turn.started.session.user_id;
        auto spent = co_await deps.blocking.run([&] {
          return deps.storage.usage().spent(turn.started.session.tenant_id, user, day_start);
        });
        if (spent) remaining = turn.route.daily_budget_usd - *spent;
      }
      turn.route = llm::plan_cost_route(turn.route, llm::complexity_score(turn.prompt), remaining);
    }
    co_return success();
  }
  ChatDeps& deps_;
};

class Generate final : public Stage {
 public:
  explicit Generate(ChatDeps& deps) : deps_(deps) {}
  const char* name() const override { return "generate"; }
  Task<Result<void>> run(TurnContext& turn) override { return generate(deps_, turn); }

 private:
  static Task<Result<void>> generate(ChatDeps& deps, TurnContext& turn) {
    if (turn.on_started) co_await turn.on_started(turn.started);
    // The first target's model, so that its attempt needs no copy of the prompt.
    if (!turn.route.targets.empty()) turn.prompt.model = turn.route.targets.front().model;
    if (!turn.sink || !deps.moderator || !deps.moderator->enabled()) {
      auto result = co_await deps.gateway.chat(turn.route, turn.prompt, *turn.cancel, turn.sink,
                                               turn.generation);
      if (!result) turn.generation_error = std::move(result).error();
      co_return success();  // persist runs either way
    }
    // A moderated stream: the client gets what StreamCheck releases; a block ends the call.
    turn.stream_check.emplace(deps.moderator, turn.subject);
    const llm::DeltaSink& client = *turn.sink;
    moderation::StreamCheck& check = *turn.stream_check;
    const llm::DeltaSink checked = [&client, &check](const llm::Delta& delta) -> Task<bool> {
      if (delta.content.empty()) co_return co_await client(delta);  // the stream has begun
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
    co_return success();  // persist runs either way
  }
  ChatDeps& deps_;
};

std::string tool_calls_json(const std::vector<llm::ToolCall>& calls) {
  if (calls.empty()) return {};
  json out = json::array();
  for (const auto& c : calls)
    out.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

class Persist final : public Stage {
 public:
  explicit Persist(ChatDeps& deps) : deps_(deps) {}
  const char* name() const override { return "persist"; }
  Task<Result<void>> run(TurnContext& turn) override { return persist(deps_, turn); }

 private:
  static std::string finish_reason(const ChatDeps& deps, const TurnContext& turn) {
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

  static Task<Result<void>> persist(ChatDeps& deps, TurnContext& turn) {
    auto& completion = turn.generation.completion;
    // Providers that report no usage (or a reply cut short) get Parley's estimate.
    if (!completion.usage.reported) {
      completion.usage.input_tokens = llm::estimate_tokens(turn.prompt.messages);
      completion.usage.output_tokens = llm::estimate_tokens(completion.content);
    }
    const double cost = deps.accountant.cost(turn.generation.model, completion.usage);
    // Output moderation, after the usage estimate (the tokens were generated and paid for).
    if (turn.output_verdict) {
      if (turn.output_blocked) {
        completion.content.clear();
        completion.tool_calls.clear();
        completion.finish_reason = "content_filter";
      } else if (turn.output_verdict->redacted) {
        completion.content = std::move(*turn.output_verdict->redacted);
      }
    }
    store::FinishedTurn done;
    done.assistant_message_id = turn.started.assistant.id;
    done.content = completion.content;
    done.tool_calls_json = tool_calls_json(completion.tool_calls);
    done.status = turn.generation_error ? "partial" : "complete";
    done.model = turn.generation.model;
    done.provider = turn.generation.provider;
    done.input_tokens = completion.usage.input_tokens;
    done.output_tokens = completion.usage.output_tokens;
    done.cost_usd = cost;
    done.latency_ms = static_cast<int64_t>(turn.generation.duration * 1000.0);
    if (turn.generation.time_to_first_token > 0) {
      done.ttft_ms = static_cast<int64_t>(turn.generation.time_to_first_token * 1000.0);
    }
    done.finish_reason = finish_reason(deps, turn);
    store::UsageRecord usage;
    usage.at_ms = to_unix_ms(std::chrono::system_clock::now());
    usage.tenant_id = turn.started.session.tenant_id;
    usage.user_id = turn.started.session.user_id;
    usage.key_id = turn.request.key_id;
    usage.session_id = turn.request.session_id;
    usage.source = "chat";
    usage.provider = done.provider;
    usage.model = done.model;
    usage.input_tokens = done.input_tokens;
    usage.output_tokens = done.output_tokens;
    usage.cost_usd = cost;
    usage.status = turn.generation_error ? turn.generation_error->reason : "ok";
    usage.request_id = turn.request.request_id;
    done.usage = std::move(usage);
    auto stored =
        co_await deps.blocking.run([&] { return deps.storage.messages().finish_turn(done); });
    if (!stored) {
      log::error("reply not stored", {{"request_id", turn.request.request_id},
                                      {"message_id", done.assistant_message_id},
                                      {"error", stored.error().message}});
      co_return std::move(stored).error();
    }
    turn.reply = std::move(*stored);
    co_return success();
  }
  ChatDeps& deps_;
};

class ExtractMemory final : public Stage {
 public:
  const char* name() const override { return "extract_memory"; }
  Task<Result<void>> run(TurnContext&) override { co_return success(); }
};

}  // namespace

ChatService::ChatService(ChatDeps deps) : deps_(std::move(deps)) {
  stages_.push_back(std::make_unique<Moderate>(deps_));
  stages_.push_back(std::make_unique<RecordInput>(deps_));
  stages_.push_back(std::make_unique<RecallMemory>());
  stages_.push_back(std::make_unique<Retrieve>());
  stages_.push_back(std::make_unique<BuildPrompt>(deps_));
  stages_.push_back(std::make_unique<Generate>(deps_));
  stages_.push_back(std::make_unique<ModerateOutput>(deps_));
  stages_.push_back(std::make_unique<Persist>(deps_));
  stages_.push_back(std::make_unique<ExtractMemory>());
}

ChatService::~ChatService() = default;

Task<Result<TurnResult>> ChatService::run_turn(
    TurnRequest request, llm::Cancellation& cancel, const llm::DeltaSink* sink,
    std::function<Task<void>(const store::StartedTurn&)> on_started) {
  TurnContext turn;
  turn.request = std::move(request);
  turn.cancel = &cancel;
  turn.sink = sink;
  turn.on_started = std::move(on_started);
  return run(*this, std::move(turn));
}

Task<Result<TurnResult>> ChatService::run(ChatService& self, TurnContext turn) {
  // The session's assistant: looked up from the session row when the input is recorded, so
  // this first read is the session itself.
  const std::string session_id = turn.request.session_id;
  auto session = co_await self.deps_.blocking.run(
      [&] { return self.deps_.storage.sessions().get(session_id); });
  if (!session) co_return std::move(session).error();
  turn.assistant = self.deps_.assistants.find(session->assistant);
  turn.subject = {session->tenant_id, session->user_id, session->id, turn.request.request_id};
  if (!turn.assistant) turn.assistant = &self.deps_.assistants.default_assistant();

  for (const auto& stage : self.stages_) {
    auto result = co_await stage->run(turn);
    if (!result) {
      Error e = std::move(result).error();
      if (e.code == ErrorCode::kInternal) {
        log::error("chat turn stage failed", {{"stage", stage->name()},
                                              {"request_id", turn.request.request_id},
                                              {"error", e.message}});
      }
      if (!turn.started.assistant.id.empty() && turn.reply.id.empty()) {
        // The input is stored but no reply will come: close the pending row rather than
        // leave it waiting for the next restart.
        store::FinishedTurn closed;
        closed.assistant_message_id = turn.started.assistant.id;
        closed.status = "partial";
        closed.finish_reason = llm::finish::kError;
        (void)co_await self.deps_.blocking.run(
            [&] { return self.deps_.storage.messages().finish_turn(closed); });
      }
      co_return e;
    }
  }
  TurnResult out;
  out.user = std::move(turn.started.user);
  out.reply = std::move(turn.reply);
  out.generation = std::move(turn.generation);
  out.error = std::move(turn.generation_error);
  out.blocked = std::move(turn.output_blocked);
  co_return out;
}

}  // namespace parley::chat
