// The assistants sessions can talk to, from the `assistants:` section of the configuration
// (chat/settings.hpp), with a built-in general-purpose one named `chat.default_assistant`
// when the configuration defines none by that name. Immutable after construction;
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::chat {

// Who answers in a session: its system prompt, model and generation settings.
struct Assistant {
  std::string name;
  std::string description;
  std::string system_prompt;
  std::string model;  // as in a request: route, provider/model or model; empty = default
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  int max_history = 100;  // past messages considered before fitting the context window
  // Knowledge bases it answers from (ids, or names in the caller's tenant), and how: with
  // grounding "strict" it answers only from their passages and says so when they hold no
  // answer; "normal" lets the model add what it knows.
  std::vector<std::string> knowledge_bases;
  std::string grounding = "normal";
  int retrieval_top_k = 5;               // passages at most
  int64_t retrieval_max_tokens = 2'000;  // of passages in the prompt
  // A passage found only by the nearest-neighbour side counts when its similarity reaches
  // this (every one that shares words with the question counts): the nearest neighbours of a
  // question the documents know nothing of are still returned, just not close.
  double retrieval_min_similarity = 0.25;
  // Long-term memory (memory/recall.hpp): whether its prompts include what is remembered
  // about the user, at most how many memories within how many tokens, and how close to the
  // message a memory must be (a profile fact or a standing instruction always counts), and
  // which kinds of memory it uses (empty: every kind).
  bool memory_recall = true;
  int memory_top_k = 8;
  int64_t memory_max_tokens = 500;
  double memory_min_similarity = 0.25;
  std::vector<std::string> memory_kinds;
  std::string source;  // where it was defined, for messages
};

struct ChatSettings {
  std::string default_assistant = "default";
  int64_t default_context_window = 8192;  // for models the model table does not know
  std::vector<Assistant> assistants;
};

class Assistants {
 public:
  explicit Assistants(const ChatSettings& settings);

  // nullptr when there is no such assistant.
  const Assistant* find(std::string_view name) const;
  const Assistant& default_assistant() const;
  const std::vector<Assistant>& all() const { return all_; }

 private:
  std::vector<Assistant> all_;
  std::string default_name_;
};

}  // namespace parley::chat
