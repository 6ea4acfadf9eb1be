// The assistants sessions can talk to, from the configuration's `assistants:` section, with a
// built-in general-purpose "default" when the configuration names none by that name.
// Immutable after construction; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace parley::chat {

using Assistant = config::AssistantConfig;

class Assistants {
 public:
  explicit Assistants(const config::ChatConfig& config);

  // nullptr when there is no such assistant.
  const Assistant* find(std::string_view name) const;
  const Assistant& default_assistant() const;
  const std::vector<Assistant>& all() const { return all_; }

 private:
  std::vector<Assistant> all_;
  std::string default_name_;
};

}  // namespace parley::chat
