// `memory.*`: long-term memory of users (store/memory.hpp). After each complete reply a job
// extracts what the user said about themselves worth keeping; later turns recall it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::config {
class Schema;
}

namespace parley::memory {

struct MemorySettings {
  // Whether replies lead to extraction at all (recall of memories already kept follows each
  // assistant's own setting).
  bool enabled = true;
  // How long each retention level keeps a memory; `permanent` keeps it until it is deleted.
  std::string default_retention = "long";
  std::chrono::milliseconds retention_session{std::chrono::hours(24)};
  std::chrono::milliseconds retention_short{std::chrono::hours(24 * 30)};
  std::chrono::milliseconds retention_long{std::chrono::hours(24 * 365)};
  int64_t extract_attempts = 5;
  // How often expired memories are deleted (they stop being recalled the moment they expire).
  std::chrono::milliseconds purge_interval{std::chrono::hours(1)};
  // What embeds memories: "" means knowledge.embedder.
  std::string embedder;
  // What proposes memories: a route, provider/model or model; "" means the default route. A
  // route answered by the built-in provider (no model configured) leaves it to the rules.
  std::string model;
  // How long `POST /mem0/memories` waits for its extraction job before answering PENDING with
  // the job's id (the memories still arrive; the job runs to the end).
  std::chrono::milliseconds mem0_add_wait{std::chrono::seconds(20)};
};

void declare_settings(config::Schema& schema);

// Whether `name` is a retention level.
bool is_retention(std::string_view name);

// When a memory of `retention` made at `now_ms` expires; nullopt for `permanent` (and for
// an unknown level, which the settings never let through).
std::optional<int64_t> expires_at(const MemorySettings& settings, std::string_view retention,
                                  int64_t now_ms);

}  // namespace parley::memory
