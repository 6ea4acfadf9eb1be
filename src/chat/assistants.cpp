// Assistant lookup.
#include "chat/assistants.hpp"

#include <algorithm>

namespace parley::chat {

Assistants::Assistants(const ChatSettings& settings)
    : all_(settings.assistants), default_name_(settings.default_assistant) {
  if (!find(default_name_)) {
    Assistant a;
    a.name = default_name_;
    a.description = "A helpful general-purpose assistant.";
    a.system_prompt = "You are a helpful assistant. Answer clearly and concisely.";
    a.source = "built in";
    all_.insert(all_.begin(), std::move(a));
  }
}

const Assistant* Assistants::find(std::string_view name) const {
  auto it = std::find_if(all_.begin(), all_.end(), [&](const auto& a) { return a.name == name; });
  return it == all_.end() ? nullptr : &*it;
}

const Assistant& Assistants::default_assistant() const { return *find(default_name_); }

}  // namespace parley::chat
