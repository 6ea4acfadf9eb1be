// Moderation as the request paths use it: the configured rules (rules.hpp) applied to a
// message, every decision counted in moderation_decisions_total{stage,category,action} and
// written to the moderation log (store::ModerationLogRepository), which admins read through
// GET /api/v1/admin/moderation/logs. The log holds what was found and what was done, never the
// text itself.
//
// Log entries are written by a background thread in batches (like usage): a request never
// waits on the database for them. With no rules configured nothing is checked or logged.
//
// Thread-safety: check() from any thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "moderation/rules.hpp"
#include "store/store.hpp"

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

class Moderator {
 public:
  // `log` may be null (tests); so may `metrics`.
  Moderator(RuleSet rules, bool enabled, store::ModerationLogRepository* log,
            obs::Metrics* metrics);
  ~Moderator();
  Moderator(const Moderator&) = delete;
  Moderator& operator=(const Moderator&) = delete;

  bool enabled() const { return enabled_; }
  Verdict check(std::string_view text, Stage stage, const Subject& subject);
  // Writes the queued log entries now (shutdown, tests).
  void flush();
  void stop();

 private:
  void writer_loop();

  RuleSet rules_;
  bool enabled_;
  store::ModerationLogRepository* log_;
  obs::Metrics* metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<store::ModerationLogEntry> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

// The error a block becomes: 400 content_blocked, naming the category and the stage.
Error blocked_error(const Verdict& verdict, Stage stage, std::string param);

}  // namespace parley::moderation
