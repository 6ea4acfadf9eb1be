// Moderation decisions, their metrics and their log (see moderator.hpp).
#include "moderation/moderator.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::moderation {
namespace {
// Bounded: when the database cannot keep up, the oldest decisions are dropped, and said so.
constexpr size_t kMaxQueued = 100'000;
constexpr auto kFlushInterval = std::chrono::milliseconds(200);
}  // namespace

Moderator::Moderator(RuleSet rules, bool enabled, store::ModerationLogRepository* log,
                     obs::Metrics* metrics)
    : rules_(std::move(rules)), enabled_(enabled), log_(log), metrics_(metrics) {
  if (enabled_ && log_) writer_ = std::thread([this] { writer_loop(); });
}

Moderator::~Moderator() { stop(); }

void Moderator::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  flush();
}

Verdict Moderator::check(std::string_view text, Stage stage, const Subject& subject) {
  if (!enabled_) return Verdict{};
  Verdict v = rules_.evaluate(text, stage);
  const std::string_view stage_text = stage_name(stage);
  if (metrics_) {
    if (v.findings.empty()) {
      metrics_->count_moderation(stage_text, "none", "allow");
    }
    for (const auto& f : v.findings) {
      metrics_->count_moderation(stage_text, f.category, action_name(f.action));
    }
  }
  if (!log_) return v;
  store::ModerationLogEntry e;
  e.id = new_resource_id("mod");
  e.at_ms = to_unix_ms(std::chrono::system_clock::now());
  e.tenant_id = subject.tenant_id;
  e.user_id = subject.user_id;
  e.session_id = subject.session_id;
  e.request_id = subject.request_id;
  e.stage = std::string(stage_text);
  e.action = std::string(action_name(v.action));
  e.source = "rules";
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : v.findings) {
    findings.push_back(
        {{"category", f.category}, {"action", action_name(f.action)}, {"count", f.count}});
  }
  e.findings_json = findings.dump();
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxQueued) {
      queue_.erase(queue_.begin());
      log::warn("moderation log queue full: the oldest decision was dropped");
    }
    queue_.push_back(std::move(e));
  }
  wake_.notify_one();
  return v;
}

void Moderator::flush() {
  std::vector<store::ModerationLogEntry> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(queue_);
  }
  if (batch.empty() || !log_) return;
  if (auto r = log_->append(batch); !r) {
    log::warn("moderation decisions could not be logged",
              {{"decisions", static_cast<int64_t>(batch.size())}, {"error", r.error().message}});
  }
}

void Moderator::writer_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    lock.unlock();
    std::this_thread::sleep_for(kFlushInterval);  // gather a batch
    flush();
    lock.lock();
  }
}

Error blocked_error(const Verdict& verdict, Stage stage, std::string param) {
  Error e = Error::invalid(
      std::string(stage == Stage::kInput ? "the message" : "the reply") +
          " was blocked by content moderation (category: " + verdict.blocked_category + ")",
      "content_blocked", std::move(param));
  return e;
}

}  // namespace parley::moderation
