// Moderation as the request paths use it: the configured rules (rules.hpp) applied to a
// message, then, where configured, an OpenAI-compatible /v1/moderations provider; every
// decision counted in moderation_decisions_total{stage,category,action} and written to the
// moderation log (store::ModerationLogRepository), which admins read through
// GET /api/v1/admin/moderation/logs. The log holds what was found and what was done, never the
// text itself.
//
// The provider is asked only when the rules did not already block, and is sent the text as the
// rules redacted it (personal data the rules redact never leaves the server). Its flagged
// categories become findings with the configured action; when it fails, the decision is the
// configured on_error action under the category "provider_error".
//
// Streamed replies are checked as they grow (StreamCheck below): text is released to the
// client only up to the last whitespace, so a word, e-mail address or card number is checked
// whole before any of it is sent.
//
// Log entries are written in batches by a BatchWriter (jobs/batch_writer.hpp, like usage): a
// request never waits on the database for them. At most 100'000 wait; past that the oldest are
// dropped and counted in background_items_dropped_total{writer="moderation_log"}, and a failed
// write is retried. With no rules configured nothing is checked or logged.
//
// Thread-safety: check() from any I/O thread.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/task.hpp"
#include "jobs/batch_writer.hpp"
#include "llm/types.hpp"
#include "moderation/rules.hpp"
#include "store/store.hpp"

namespace parley::llm {
class Provider;
}

namespace parley::obs {
class Metrics;
}

namespace parley::moderation {

// Whose message it is, for the log.
struct Subject {
  std::string tenant_id = "default";
  std::string user_id;
  std::string session_id;
  std::string request_id;
};

// An OpenAI-compatible moderation endpoint, asked after the rules.
struct ProviderCheck {
  llm::Provider* provider = nullptr;  // null: none
  std::string model;
  bool input = true;
  bool output = false;
  bool block = true;         // a flagged message is blocked; else allowed (and logged)
  bool fail_closed = false;  // a failed call blocks; else allows (and is logged)
  llm::CallLimits limits;
};

class Moderator {
 public:
  // `log` may be null (tests); so may `metrics`. `clock` stamps the log entries (tests pass a
  // ManualClock); it must outlive the Moderator.
  Moderator(RuleSet rules, bool enabled, store::ModerationLogRepository* log, obs::Metrics* metrics,
            ProviderCheck provider = {}, const Clock& clock = Clock::system());
  ~Moderator();
  Moderator(const Moderator&) = delete;
  Moderator& operator=(const Moderator&) = delete;

  bool enabled() const { return enabled_; }
  // The rules, then the provider where it applies to `stage`; counted and logged.
  Task<Verdict> check(std::string_view text, Stage stage, const Subject& subject);
  // The rules alone, neither counted nor logged (StreamCheck's checks as a reply grows).
  Verdict evaluate(std::string_view text, Stage stage) const;
  // Counts and logs a decision; `source` is "rules", "provider" or "rules+provider".
  void record(const Verdict& verdict, Stage stage, const Subject& subject, std::string_view source);
  // The provider's model, for POST /v1/moderations ("" when none).
  const std::string& provider_model() const { return provider_.model; }
  bool has_provider() const { return provider_.provider != nullptr; }
  // Writes the queued log entries now and returns when it is done (shutdown, tests).
  void flush();
  // Stops the log writer and writes what is left. Idempotent.
  void stop();

 private:
  RuleSet rules_;
  bool enabled_;
  ProviderCheck provider_;
  store::ModerationLogRepository* log_;
  obs::Metrics* metrics_;
  const Clock& clock_;
  jobs::BatchWriter<store::ModerationLogEntry> writer_;  // last: its thread uses log_
};

// The error a block becomes: 400 content_blocked, naming the category and the stage.
Error blocked_error(const Verdict& verdict, Stage stage, std::string param);

// A streamed reply checked as it grows. feed() takes each piece as it arrives and returns the
// text that may be sent now: everything up to the last whitespace, checked together with all
// that came before it, with the redact-action matches replaced. The whole text is checked at
// each release, so releases wait for a sixteenth of the text so far to be new, at most
// kMaxHeld bytes: short replies flow word by word, and a long one costs a few checks per
// kMaxHeld bytes instead of one per token (which would cost the square of its length). Once a
// block-action rule matches, blocked() is true and nothing more is released: the caller stops the
// call and ends the stream with content_blocked. finish() releases the held tail after the final
// check and records the decision once for the whole reply.
//
// A redaction spanning text already sent (a multi-word pattern completed by a later word)
// can only replace its unsent part; single words, e-mail addresses, phone and card numbers
// contain no whitespace and are always checked whole. The moderation provider is not asked
// about streamed replies: its verdict would come after the text had been sent.
class StreamCheck {
 public:
  // `moderator` null or disabled: everything is released as it comes.
  StreamCheck(Moderator* moderator, Subject subject);

  std::string feed(std::string_view piece);
  std::string finish();
  bool blocked() const { return verdict_.action == Action::kBlock; }
  // The decision so far (the final one after finish()).
  const Verdict& verdict() const { return verdict_; }
  // The whole reply as released (redacted), for storing.
  const std::string& released() const { return released_; }

 private:
  static constexpr size_t kMaxHeld = 128;
  std::string release(size_t upto);

  Moderator* moderator_;
  Subject subject_;
  std::string text_;      // everything received
  size_t checked_ = 0;    // text_[0, checked_) has been released
  std::string released_;  // what was released, redactions applied
  Verdict verdict_;
  bool recorded_ = false;
};

}  // namespace parley::moderation
