// `intents:` (see settings.hpp).
#include "intent/settings.hpp"

#include <algorithm>
#include <cctype>

#include <re2/re2.h>

#include "config/entry.hpp"
#include "config/settings.hpp"

namespace parley::intent {
namespace {

using config::Problems;
using nlohmann::json;

constexpr size_t kMaxExamples = 500;

bool is_action(const std::string& a) {
  return a == "route" || a == "template" || a == "require" || a == "handover" || a == "none";
}

void parse_fields(Intent& intent, const YAML::Node& node, const std::string& path,
                  const std::string& source, Problems& problems) {
  config::for_each_entry(
      node, path + ".fields", source, problems,
      [&](const std::string& name, const YAML::Node& value, const std::string& field_path) {
        if (!value.IsMap()) {
          problems.push_back({field_path, "", config::where(source, value),
                              "must be a mapping with a prompt (and a pattern)"});
          return;
        }
        config::Entry e(value, field_path, source, problems);
        Field f;
        f.name = name;
        f.pattern = e.text("pattern").value_or("");
        f.prompt = e.text("prompt").value_or("");
        if (f.prompt.empty()) e.problem("prompt", "is required: how the field is asked for");
        if (!f.pattern.empty()) {
          RE2 re(f.pattern, RE2::Quiet);
          if (!re.ok()) e.problem("pattern", "is not a regular expression: " + re.error());
        }
        e.reject_unknown();
        intent.fields.push_back(std::move(f));
      });
}

void parse_intent(AssistantIntents& owner, const std::string& name, const YAML::Node& node,
                  const std::string& path, const std::string& source, Problems& problems) {
  config::Entry e(node, path, source, problems);
  Intent i;
  i.name = name;
  i.source = config::where(source, node);
  i.description = e.text("description").value_or("");
  i.examples = e.list("examples");
  if (i.examples.size() > kMaxExamples) {
    e.problem("examples", "at most " + std::to_string(kMaxExamples) + " examples");
  }
  i.action = e.text("action").value_or("none");
  if (!is_action(i.action)) {
    e.problem("action", "must be route, template, require, handover or none");
  }
  i.assistant = e.text("assistant").value_or("");
  i.model = e.text("model").value_or("");
  if (i.action == "template" || i.action == "handover") {
    i.text = e.text("template").value_or("");
    if (i.text.empty()) e.problem("template", "is required: the answer " + i.action + " gives");
  } else {
    e.skip("template");
  }
  if (i.action == "require") {
    i.text = e.text("then").value_or("");
    e.skip("fields");
    if (node["fields"]) parse_fields(i, node["fields"], path, source, problems);
    if (i.fields.empty()) e.problem("fields", "require needs at least one field");
    // Every {placeholder} of `then` names a field.
    for (size_t open = i.text.find('{'); open != std::string::npos;
         open = i.text.find('{', open + 1)) {
      const size_t close = i.text.find('}', open);
      if (close == std::string::npos) break;
      const std::string field = i.text.substr(open + 1, close - open - 1);
      bool known = false;
      for (const auto& f : i.fields) known = known || f.name == field;
      if (!known) e.problem("then", "{" + field + "} names no field");
    }
  } else {
    e.skip("then");
    e.skip("fields");
  }
  if (i.action == "route" && i.assistant.empty() && i.model.empty()) {
    e.problem("action", "route needs an assistant or a model");
  }
  e.reject_unknown();
  owner.intents.push_back(std::move(i));
}

void parse_assistant(IntentSettings& s, const std::string& name, const YAML::Node& node,
                     const std::string& path, const std::string& source, Problems& problems) {
  config::Entry e(node, path, source, problems);
  AssistantIntents a;
  a.assistant = name;
  a.source = config::where(source, node);
  a.threshold = e.number("threshold", 0, 1).value_or(a.threshold);
  a.margin = e.number("margin", 0, 1).value_or(a.margin);
  a.k = static_cast<int>(e.number("k", 1, 50).value_or(a.k));
  a.model = e.text("model").value_or("");
  a.fallback = e.text("fallback").value_or("");
  if (node["cancel"]) {
    a.cancel = e.list("cancel");
    for (auto& phrase : a.cancel) phrase = cancel_form(phrase);
    std::erase(a.cancel, std::string());
  }
  a.cancelled = e.text("cancelled").value_or(a.cancelled);
  if (a.cancelled.empty()) e.problem("cancelled", "must not be empty");
  e.skip("intents");
  if (node["intents"]) {
    config::for_each_entry(
        node["intents"], path + ".intents", source, problems,
        [&](const std::string& intent, const YAML::Node& value, const std::string& intent_path) {
          if (!value.IsMap()) {
            problems.push_back(
                {intent_path, "", config::where(source, value), "must be a mapping"});
            return;
          }
          parse_intent(a, intent, value, intent_path, source, problems);
        });
  }
  if (a.intents.empty()) e.problem("intents", "names no intent");
  size_t with_examples = 0;
  for (const auto& i : a.intents) with_examples += i.examples.empty() ? 0 : 1;
  if (!a.intents.empty() && with_examples == 0) {
    e.problem("intents", "no intent has examples to recognise it by");
  }
  if (!a.fallback.empty() && a.find(a.fallback) == nullptr) {
    e.problem("fallback", "'" + a.fallback + "' is not one of its intents");
  }
  e.reject_unknown();
  std::erase_if(s.assistants, [&](const auto& x) { return x.assistant == name; });
  s.assistants.push_back(std::move(a));
}

json show_intent(const Intent& i) {
  json fields = json::object();
  for (const auto& f : i.fields) fields[f.name] = {{"pattern", f.pattern}, {"prompt", f.prompt}};
  json out = {{"description", i.description}, {"examples", i.examples}, {"action", i.action}};
  if (!i.assistant.empty()) out["assistant"] = i.assistant;
  if (!i.model.empty()) out["model"] = i.model;
  if (i.action == "require") {
    out["fields"] = std::move(fields);
    out["then"] = i.text;
  } else if (!i.text.empty()) {
    out["template"] = i.text;
  }
  return out;
}

}  // namespace

std::string cancel_form(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80 || c == '\'') {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(std::tolower(u));
    } else {
      space = true;
    }
  }
  return out;
}

bool cancels(const AssistantIntents& intents, std::string_view message) {
  const std::string said = cancel_form(message);
  const auto words = [](std::string_view s) { return std::count(s.begin(), s.end(), ' ') + 1; };
  for (const auto& phrase : intents.cancel) {
    if (said == phrase) return true;
    // The phrase and two words more at most: "cancel the order" is a way out, "stop by the back
    // door" an answer.
    if (said.size() > phrase.size() && said.compare(0, phrase.size(), phrase) == 0 &&
        said[phrase.size()] == ' ' && words(said) <= words(phrase) + 2) {
      return true;
    }
  }
  return false;
}

const Intent* AssistantIntents::find(const std::string& name) const {
  for (const auto& i : intents) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

const AssistantIntents* IntentSettings::find(const std::string& assistant) const {
  for (const auto& a : assistants) {
    if (a.assistant == assistant) return &a;
  }
  return nullptr;
}

void declare_settings(config::Schema& schema) {
  schema.block<IntentSettings>(
      "intents",
      "Per assistant, the intents its messages are classified into before it answers: "
      "threshold, margin, k, model, fallback, cancel, cancelled, and intents by name (description, "
      "examples, "
      "action: route (assistant, model), template, require (fields, then), handover, none).",
      [](IntentSettings& s, const YAML::Node& node, const std::string& source, Problems& problems) {
        config::for_each_entry(
            node, "intents", source, problems,
            [&](const std::string& name, const YAML::Node& value, const std::string& path) {
              if (!value.IsMap()) {
                problems.push_back({path, "", config::where(source, value), "must be a mapping"});
                return;
              }
              parse_assistant(s, name, value, path, source, problems);
            });
      },
      [](const IntentSettings& s) {
        json out = json::object();
        for (const auto& a : s.assistants) {
          json intents = json::object();
          for (const auto& i : a.intents) intents[i.name] = show_intent(i);
          out[a.assistant] = {
              {"threshold", a.threshold}, {"margin", a.margin},           {"k", a.k},
              {"model", a.model},         {"fallback", a.fallback},       {"cancel", a.cancel},
              {"cancelled", a.cancelled}, {"intents", std::move(intents)}};
        }
        return out;
      });
}

}  // namespace parley::intent
