// Runs a turn through the pipeline's stages (see pipeline.hpp).
#include "chat/pipeline.hpp"

#include "obs/log.hpp"

namespace parley::chat {

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
    if (!turn.started.assistant.id.empty() && turn.reply.id.empty()) {
      // The input is stored but no reply will come: close the pending row rather than leave
      // it waiting for the next restart.
      store::FinishedTurn closed;
      closed.assistant_message_id = turn.started.assistant.id;
      closed.status = "partial";
      closed.finish_reason = llm::finish::kError;
      (void)co_await deps_.blocking.run(
          [&] { return deps_.storage.messages().finish_turn(closed); });
    }
    co_return e;
  }
  co_return success();
}

void book_api_usage(ChatDeps& deps, const limits::Actor& actor, store::UsageRecord record) {
  deps.admission.book(actor, record.input_tokens + record.output_tokens, record.cost_usd);
  deps.accountant.enqueue(std::move(record));
}

}  // namespace parley::chat
