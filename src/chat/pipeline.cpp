// Runs a turn through the pipeline's stages (see pipeline.hpp).
#include "chat/pipeline.hpp"

#include "chat/answer.hpp"
#include "obs/log.hpp"

namespace parley::chat {
namespace {

// The input is stored but no reply will come: the pending row is closed rather than left
// waiting for the next restart. A coroutine of its own, so that what it holds is not part of
// every turn's frame (thousands of streams are held at once).
Task<void> close_pending(ChatDeps& deps, const std::string& assistant_message_id) {
  store::FinishedTurn closed;
  closed.assistant_message_id = assistant_message_id;
  closed.status = "partial";
  closed.finish_reason = llm::finish::kError;
  (void)co_await deps.blocking.run([&] { return deps.storage.messages().finish_turn(closed); });
}

}  // namespace

Task<Result<void>> Pipeline::run(Turn& turn) {
  for (const auto& stage : stages_) {
    if (!stage->applies(turn)) continue;
    if (turn.answered && !stage->finishing()) continue;
    auto result = co_await stage->run(turn);
    if (result) {
      if (*result == Flow::kAnswered) turn.answered = true;
      continue;
    }
    Error e = std::move(result).error();
    if (e.code == ErrorCode::kInternal) {
      log::error("chat turn stage failed",
                 {{"stage", stage->name()}, {"request_id", turn.request_id}, {"error", e.message}});
    }
    if (turn.stored && !turn.stored->started.assistant.id.empty() &&
        turn.stored->reply.id.empty()) {
      co_await close_pending(deps_, turn.stored->started.assistant.id);
    }
    co_return e;
  }
  co_return success();
}

bool Pipeline::insert_before(std::string_view anchor, std::unique_ptr<Stage> stage) {
  for (auto it = stages_.begin(); it != stages_.end(); ++it) {
    if ((*it)->name() == anchor) {
      stages_.insert(it, std::move(stage));
      return true;
    }
  }
  return false;
}

void book_api_usage(ChatDeps& deps, const limits::Actor& actor, store::UsageRecord record) {
  deps.admission.book(actor, record.input_tokens + record.output_tokens, record.cost_usd);
  deps.accountant.enqueue(std::move(record));
}

Task<void> answer_without_model(Turn& turn, std::string text, std::string provider,
                                std::string model) {
  auto& completion = turn.generation.completion;
  completion.content = std::move(text);
  completion.finish_reason = llm::finish::kStop;
  turn.generation.provider = std::move(provider);
  turn.generation.model = std::move(model);
  if (turn.sink != nullptr) {
    llm::Delta delta;
    delta.content = completion.content;
    const bool sent = co_await (*turn.sink)(delta);
    (void)sent;
  }
}

nlohmann::json citations_json(const std::vector<Citation>& citations) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : citations) {
    out.push_back(
        {{"number", c.number},
         {"knowledge_base_id", c.knowledge_base_id},
         {"document_id", c.document_id},
         {"document_name", c.document_name},
         {"chunk_id", c.chunk_id},
         {"section", c.section},
         {"page", c.page > 0 ? nlohmann::json(c.page) : nlohmann::json(nullptr)},
         {"page_end", c.page_end > 0 ? nlohmann::json(c.page_end) : nlohmann::json(nullptr)},
         {"start_offset", c.start_offset},
         {"end_offset", c.end_offset},
         {"score", c.score},
         {"text", c.text}});
  }
  return out;
}

nlohmann::json memories_json(const std::vector<RecalledMemory>& memories) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : memories) {
    out.push_back({{"id", m.id}, {"text", m.text}, {"kind", m.kind}, {"score", m.score}});
  }
  return out;
}

}  // namespace parley::chat
