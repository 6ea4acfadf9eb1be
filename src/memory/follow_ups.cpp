#include "memory/follow_ups.hpp"

#include "memory/extract.hpp"
#include "memory/rules.hpp"

namespace parley::memory {
namespace {

class PlanFollowUps final : public chat::Stage {
 public:
  PlanFollowUps(const MemorySettings& settings, bool by_model)
      : settings_(settings), by_model_(by_model) {}
  const char* name() const override { return "plan_follow_ups"; }
  bool applies(const chat::Turn& turn) const override { return turn.stored != nullptr; }
  bool finishing() const override { return true; }

  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    plan(turn);
    co_return chat::Flow::kContinue;
  }

 private:
  void plan(chat::Turn& turn) const {
    chat::StoredTurn& stored = *turn.stored;
    // Only a reply that will be stored complete: a failed, cut or blocked turn leaves its
    // words unremembered, as its reply is unanswered.
    if (!settings_.enabled || turn.generation_error || turn.output_blocked) return;
    if (stored.started.user.id.empty() || stored.started.assistant.id.empty()) return;
    if (stored.started.session.user_id.empty()) return;
    // Extraction by the built-in rules: a message they find nothing in (most small talk)
    // needs no job. Checking costs microseconds, against a queued job's writes and reads.
    if (!by_model_ && extract_by_rules(stored.content).empty()) return;
    ExtractRequest request;
    request.tenant_id = stored.started.session.tenant_id;
    request.user_id = stored.started.session.user_id;
    request.assistant = turn.assistant ? turn.assistant->name : std::string();
    request.session_id = stored.started.session.id;
    request.user_message_id = stored.started.user.id;
    request.reply_message_id = stored.started.assistant.id;
    stored.follow_up_jobs.push_back(extract_job(request, settings_.extract_attempts));
  }

  MemorySettings settings_;
  bool by_model_;
};

}  // namespace

std::unique_ptr<chat::Stage> plan_follow_ups_stage(const MemorySettings& settings, bool by_model) {
  return std::make_unique<PlanFollowUps>(settings, by_model);
}

}  // namespace parley::memory
