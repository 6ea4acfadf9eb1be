#include "summary/plan.hpp"

#include "summary/summarize.hpp"

namespace parley::summary {
namespace {

class PlanSummary final : public chat::Stage {
 public:
  explicit PlanSummary(const SummarySettings& settings) : settings_(settings) {}
  const char* name() const override { return "plan_summary"; }
  bool applies(const chat::Turn& turn) const override { return turn.stored != nullptr; }
  bool finishing() const override { return true; }

  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    chat::StoredTurn& stored = *turn.stored;
    const bool complete =
        !turn.generation_error && !turn.output_blocked && !stored.started.assistant.id.empty();
    if (settings_.enabled && complete && due(stored, settings_)) {
      stored.follow_up_jobs.push_back(summarize_job(stored.started.session.tenant_id,
                                                    stored.started.session.id,
                                                    stored.history_budget, settings_));
    }
    co_return chat::Flow::kContinue;
  }

 private:
  SummarySettings settings_;
};

}  // namespace

bool due(const chat::StoredTurn& turn, const SummarySettings& settings) {
  if (turn.history_budget <= 0) return false;
  if (turn.history_truncated) return true;
  return static_cast<double>(turn.history_tokens) >=
         settings.trigger_ratio * static_cast<double>(turn.history_budget);
}

std::unique_ptr<chat::Stage> plan_summary_stage(const SummarySettings& settings) {
  return std::make_unique<PlanSummary>(settings);
}

}  // namespace parley::summary
