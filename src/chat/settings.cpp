// `chat.*` and `assistants:` (see settings.hpp).
#include "chat/settings.hpp"

#include "config/entry.hpp"
#include "config/settings.hpp"
#include "store/memory.hpp"

namespace parley::chat {
namespace {

using config::Problems;
using nlohmann::json;

void parse_assistant(ChatSettings& s, const std::string& name, const YAML::Node& node,
                     const std::string& source, Problems& problems) {
  config::Entry e(node, "assistants." + name, source, problems);
  Assistant a;
  a.name = name;
  a.source = config::where(source, node);
  a.description = e.text("description").value_or("");
  a.system_prompt = e.text("system_prompt").value_or("");
  a.model = e.text("model").value_or("");
  a.temperature = e.number("temperature", 0, 2);
  if (auto m = e.number("max_tokens", 1, 10'000'000)) a.max_tokens = static_cast<int64_t>(*m);
  a.max_history = static_cast<int>(e.number("max_history", 0, 10'000).value_or(100));
  a.knowledge_bases = e.list("knowledge_bases");
  a.grounding = e.text("grounding").value_or("normal");
  if (a.grounding != "normal" && a.grounding != "strict") {
    e.problem("grounding", "must be normal or strict");
  }
  a.retrieval_top_k = static_cast<int>(e.number("retrieval_top_k", 1, 50).value_or(5));
  a.retrieval_max_tokens =
      static_cast<int64_t>(e.number("retrieval_max_tokens", 100, 100'000).value_or(2'000));
  a.retrieval_min_similarity = e.number("retrieval_min_similarity", -1, 1).value_or(0.25);
  a.memory_recall = e.boolean("memory_recall").value_or(true);
  a.memory_top_k = static_cast<int>(e.number("memory_top_k", 1, 100).value_or(8));
  a.memory_max_tokens =
      static_cast<int64_t>(e.number("memory_max_tokens", 50, 100'000).value_or(500));
  a.memory_min_similarity = e.number("memory_min_similarity", -1, 1).value_or(0.25);
  a.memory_kinds = e.list("memory_kinds");
  for (const auto& kind : a.memory_kinds) {
    if (!store::is_memory_kind(kind)) {
      e.problem("memory_kinds",
                "'" + kind +
                    "' is not a kind of memory (fact, preference, event, instruction, "
                    "profile)");
    }
  }
  e.reject_unknown();
  std::erase_if(s.assistants, [&](const auto& x) { return x.name == name; });
  s.assistants.push_back(std::move(a));
}

}  // namespace

void declare_settings(config::Schema& schema) {
  schema.group<ChatSettings>("chat")
      .text("default_assistant", &ChatSettings::default_assistant,
            "Assistant of sessions that name none.",
            [](const std::string& t) -> std::optional<std::string> {
              if (t.empty()) return "must not be empty";
              return std::nullopt;
            })
      .integer("default_context_window", &ChatSettings::default_context_window,
               "Context window (tokens) assumed for models the model table does not know.", 256,
               100'000'000);
  schema.block<ChatSettings>(
      "assistants",
      "Assistants by name: system_prompt, model, temperature, max_tokens, knowledge_bases, "
      "grounding, retrieval_top_k, retrieval_max_tokens, retrieval_min_similarity, "
      "memory_recall, memory_top_k, memory_max_tokens, memory_min_similarity, memory_kinds.",
      [](ChatSettings& s, const YAML::Node& node, const std::string& source, Problems& problems) {
        config::for_each_entry(
            node, "assistants", source, problems,
            [&](const std::string& name, const YAML::Node& value, const std::string& path) {
              if (!value.IsMap() && !value.IsNull()) {
                problems.push_back({path, "", config::where(source, value), "must be a mapping"});
                return;
              }
              parse_assistant(s, name, value.IsNull() ? YAML::Node(YAML::NodeType::Map) : value,
                              source, problems);
            });
      },
      [](const ChatSettings& s) {
        json assistants = json::object();
        for (const auto& a : s.assistants) {
          json entry = {{"description", a.description},
                        {"system_prompt", a.system_prompt},
                        {"model", a.model},
                        {"max_history", a.max_history},
                        {"knowledge_bases", a.knowledge_bases},
                        {"grounding", a.grounding},
                        {"retrieval_top_k", a.retrieval_top_k},
                        {"retrieval_max_tokens", a.retrieval_max_tokens},
                        {"retrieval_min_similarity", a.retrieval_min_similarity},
                        {"memory_recall", a.memory_recall},
                        {"memory_top_k", a.memory_top_k},
                        {"memory_max_tokens", a.memory_max_tokens},
                        {"memory_min_similarity", a.memory_min_similarity},
                        {"memory_kinds", a.memory_kinds}};
          if (a.temperature) entry["temperature"] = *a.temperature;
          if (a.max_tokens) entry["max_tokens"] = *a.max_tokens;
          assistants[a.name] = std::move(entry);
        }
        return assistants;
      });
}

}  // namespace parley::chat
