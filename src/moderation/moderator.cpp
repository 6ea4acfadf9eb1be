// Moderation decisions, their metrics and their log (see moderator.hpp).
#include "moderation/moderator.hpp"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "llm/gateway.hpp"
#include "llm/provider.hpp"
#include "llm/settings.hpp"
#include "moderation/settings.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::moderation {
namespace {
// The log writer: entries gathered for kFlushInterval go in one batch (at once past kFlushAt).
// Bounded: when the database cannot keep up, the oldest decisions are dropped, and counted.
constexpr size_t kMaxQueued = 100'000;
constexpr size_t kFlushAt = 512;
constexpr auto kFlushInterval = std::chrono::milliseconds(200);

jobs::BatchWriter<store::ModerationLogEntry>::Options writer_options(obs::Metrics* metrics) {
  jobs::BatchWriter<store::ModerationLogEntry>::Options o;
  o.name = "moderation_log";
  o.interval = kFlushInterval;
  o.flush_at = kFlushAt;
  o.max_queued = kMaxQueued;
  if (metrics) {
    o.on_drop = [metrics](std::string_view writer, int64_t n) {
      metrics->count_dropped(writer, n);
    };
  }
  return o;
}

// A provider's category names become metric labels: bounded in number and in form.
constexpr size_t kMaxProviderCategories = 32;

std::string provider_category(const std::string& name) {
  const bool plain =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '/' || c == '_' || c == '-' || c == '.';
      });
  return plain ? name : "other";
}

void add_finding(Verdict& v, Finding f) {
  if (f.action > v.action) v.action = f.action;
  if (f.action == Action::kBlock && v.blocked_category.empty()) v.blocked_category = f.category;
  v.findings.push_back(std::move(f));
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
}  // namespace

Moderator::Moderator(RuleSet rules, bool enabled, store::ModerationLogRepository* log,
                     obs::Metrics* metrics, ProviderCheck provider, const Clock& clock)
    : rules_(std::move(rules)),
      enabled_(enabled),
      provider_(std::move(provider)),
      log_(log),
      metrics_(metrics),
      clock_(clock),
      writer_(writer_options(metrics),
              [this](const std::vector<store::ModerationLogEntry>& batch) -> Result<void> {
                if (!log_) return success();
                return log_->append(batch);
              }) {
  if (enabled_ && log_) writer_.start();
}

Moderator::~Moderator() { stop(); }

void Moderator::stop() { writer_.stop(); }

Verdict Moderator::evaluate(std::string_view text, Stage stage) const {
  if (!enabled_) return Verdict{};
  return rules_.evaluate(text, stage);
}

Task<Verdict> Moderator::check(std::string_view text, Stage stage, const Subject& subject) {
  if (!enabled_) co_return Verdict{};
  Verdict v = rules_.evaluate(text, stage);
  std::string_view source = "rules";
  const bool ask = provider_.provider && v.action != Action::kBlock &&
                   (stage == Stage::kInput ? provider_.input : provider_.output);
  if (ask) {
    source = "rules+provider";
    llm::ModerationRequest request;
    request.model = provider_.model;
    // What the rules redact (personal data) is not sent to a third party either.
    request.inputs.push_back(v.redacted ? *v.redacted : std::string(text));
    llm::Cancellation cancel;
    auto answer = co_await provider_.provider->moderate(request, provider_.limits, cancel);
    if (!answer) {
      log::warn("the moderation provider failed; on_error applies",
                {{"provider", provider_.provider->name()},
                 {"error", answer.error().message},
                 {"action", provider_.fail_closed ? "block" : "allow"},
                 {"request_id", subject.request_id}});
      add_finding(v,
                  {"provider_error", provider_.fail_closed ? Action::kBlock : Action::kAllow, 1});
    } else if (!answer->results.empty()) {
      const auto& flagged = answer->results.front().categories;
      for (size_t i = 0; i < flagged.size() && i < kMaxProviderCategories; ++i) {
        add_finding(v, {provider_category(flagged[i]),
                        provider_.block ? Action::kBlock : Action::kAllow, 1});
      }
    }
  }
  record(v, stage, subject, source);
  co_return v;
}

void Moderator::record(const Verdict& v, Stage stage, const Subject& subject,
                       std::string_view source) {
  if (!enabled_) return;
  const std::string_view stage_text = stage_name(stage);
  if (metrics_) {
    if (v.findings.empty()) {
      metrics_->count_moderation(stage_text, "none", "allow");
    }
    for (const auto& f : v.findings) {
      metrics_->count_moderation(stage_text, f.category, action_name(f.action));
    }
  }
  if (!log_) return;
  store::ModerationLogEntry e;
  e.id = new_resource_id("mod");
  e.at_ms = to_unix_ms(clock_.now());
  e.tenant_id = subject.tenant_id;
  e.user_id = subject.user_id;
  e.session_id = subject.session_id;
  e.request_id = subject.request_id;
  e.stage = std::string(stage_text);
  e.action = std::string(action_name(v.action));
  e.source = std::string(source);
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : v.findings) {
    findings.push_back(
        {{"category", f.category}, {"action", action_name(f.action)}, {"count", f.count}});
  }
  e.findings_json = findings.dump();
  writer_.enqueue(std::move(e));
}

void Moderator::flush() { (void)writer_.flush(); }

Error blocked_error(const Verdict& verdict, Stage stage, std::string param) {
  Error e = Error::invalid(
      std::string(stage == Stage::kInput ? "the message" : "the reply") +
          " was blocked by content moderation (category: " + verdict.blocked_category + ")",
      "content_blocked", std::move(param));
  return e;
}

StreamCheck::StreamCheck(Moderator* moderator, Subject subject)
    : moderator_(moderator && moderator->enabled() ? moderator : nullptr),
      subject_(std::move(subject)) {}

std::string StreamCheck::feed(std::string_view piece) {
  if (!moderator_) {
    released_ += piece;
    return std::string(piece);
  }
  if (blocked()) return {};
  text_ += piece;
  // Release up to the last whitespace: what follows may be half a word.
  size_t cut = text_.size();
  while (cut > checked_ && !is_space(text_[cut - 1])) --cut;
  if (cut <= checked_ || cut - checked_ < std::min(kMaxHeld, text_.size() / 16)) return {};
  return release(cut);
}

std::string StreamCheck::finish() {
  if (!moderator_ || recorded_) return {};
  std::string out;
  if (!blocked() && checked_ < text_.size()) out = release(text_.size());
  recorded_ = true;
  if (!text_.empty()) moderator_->record(verdict_, Stage::kOutput, subject_, "rules");
  return out;
}

std::string StreamCheck::release(size_t upto) {
  const std::string_view whole = std::string_view(text_).substr(0, upto);
  verdict_ = moderator_->evaluate(whole, Stage::kOutput);
  if (verdict_.action == Action::kBlock) return {};
  std::string out;
  if (!verdict_.redacted) {
    out = whole.substr(checked_);
  } else if (verdict_.redacted->compare(0, released_.size(), released_) == 0) {
    out = verdict_.redacted->substr(released_.size());
  } else {
    // A redaction reached back into text already sent: redact what is still unsent.
    Verdict tail = moderator_->evaluate(whole.substr(checked_), Stage::kOutput);
    out = tail.redacted ? *tail.redacted : std::string(whole.substr(checked_));
  }
  checked_ = upto;
  released_ += out;
  return out;
}

Result<std::unique_ptr<Moderator>> make_moderator(const config::Settings& settings,
                                                  llm::Gateway& gateway,
                                                  store::ModerationLogRepository* log,
                                                  obs::Metrics* metrics) {
  const auto& m = settings.get<ModerationSettings>();
  auto rules = RuleSet::compile(policy(m));
  if (!rules) return std::move(rules).error();
  ProviderCheck check;
  if (const auto& mp = m.provider; !mp.name.empty()) {
    llm::Provider* provider = gateway.provider(mp.name);
    if (!provider || !provider->supports_moderation()) {
      return Error::invalid("moderation.provider.name: provider '" + mp.name +
                            "' has no moderation endpoint");
    }
    const auto& llm = settings.get<llm::LlmSettings>();
    check.provider = provider;
    check.model = mp.model;
    check.input = mp.input;
    check.output = mp.output;
    check.block = mp.action == "block";
    check.fail_closed = mp.on_error == "block";
    check.limits.connect_timeout = std::min(llm.gateway.limits.connect_timeout, mp.timeout);
    check.limits.first_token_timeout = mp.timeout;
    check.limits.total_timeout = mp.timeout;
  }
  return std::make_unique<Moderator>(*rules, m.configured(), log, metrics, std::move(check));
}

}  // namespace parley::moderation
