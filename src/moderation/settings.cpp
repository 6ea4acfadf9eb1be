// The `moderation:` section and the Moderator it describes (see settings.hpp).
#include "moderation/settings.hpp"

#include <algorithm>

#include "config/entry.hpp"
#include "config/settings.hpp"
#include "config/units.hpp"
#include "llm/settings.hpp"

namespace parley::moderation {
namespace {

using config::Entry;
using config::Problems;
using config::where;
using nlohmann::json;

// Stages as a list ("input", "output"); both when absent.
void read_stages(Entry& e, const std::string& key, bool& input, bool& output) {
  auto stages = e.list(key);
  if (stages.empty()) return;
  input = output = false;
  for (const auto& s : stages) {
    if (s == "input") {
      input = true;
    } else if (s == "output") {
      output = true;
    } else {
      e.problem(key, "stages are input and output, not '" + s + "'");
    }
  }
}

bool valid_action(const std::string& a) { return a == "allow" || a == "redact" || a == "block"; }

void parse_pii(ModerationSettings& m, const YAML::Node& pii, const std::string& source,
               Problems& problems) {
  for (const auto& kv : pii) {
    PiiSettings p;
    p.kind = kv.first.as<std::string>();
    const std::string path = "moderation.pii." + p.kind;
    if (p.kind != "email" && p.kind != "phone" && p.kind != "card") {
      problems.push_back({path, "", where(source, kv.first), "expected email, phone or card"});
      continue;
    }
    if (kv.second.IsScalar()) {
      p.action = kv.second.Scalar();
    } else if (kv.second.IsMap()) {
      Entry pe(kv.second, path, source, problems);
      p.action = pe.text("action").value_or("redact");
      read_stages(pe, "stages", p.input, p.output);
      pe.reject_unknown();
    } else {
      problems.push_back({path, "", where(source, kv.second), "must be an action or a mapping"});
      continue;
    }
    if (!valid_action(p.action)) {
      problems.push_back(
          {path, p.action, where(source, kv.second), "action must be allow, redact or block"});
      continue;
    }
    std::erase_if(m.pii, [&](const auto& x) { return x.kind == p.kind; });
    m.pii.push_back(std::move(p));
  }
}

void parse_categories(ModerationSettings& m, const YAML::Node& categories,
                      const std::string& source, Problems& problems) {
  for (const auto& kv : categories) {
    CategorySettings c;
    c.name = kv.first.as<std::string>();
    const std::string path = "moderation.categories." + c.name;
    if (!config::valid_name(c.name)) {
      problems.push_back({path, "", where(source, kv.first),
                          "names are 1 to 64 letters, digits, '-', '_' or '.'"});
      continue;
    }
    if (!kv.second.IsMap()) {
      problems.push_back({path, "", where(source, kv.second), "must be a mapping"});
      continue;
    }
    Entry ce(kv.second, path, source, problems);
    c.words = ce.list("words");
    c.patterns = ce.list("patterns");
    c.action = ce.text("action").value_or("block");
    if (!valid_action(c.action)) ce.problem("action", "must be allow, redact or block");
    read_stages(ce, "stages", c.input, c.output);
    ce.reject_unknown();
    std::erase_if(m.categories, [&](const auto& x) { return x.name == c.name; });
    m.categories.push_back(std::move(c));
  }
}

void parse_provider(ModerationSettings& m, const YAML::Node& provider, const std::string& source,
                    Problems& problems) {
  Entry pe(provider, "moderation.provider", source, problems);
  auto& p = m.provider;
  p.name = pe.text("name").value_or("");
  if (p.name.empty()) pe.problem("name", "names a provider from `providers:`");
  if (auto v = pe.text("model")) p.model = *v;
  // The rules' keyword, with another default: input only (output waits on the reply).
  p.input = true;
  p.output = false;
  read_stages(pe, "stages", p.input, p.output);
  p.action = pe.text("action").value_or("block");
  if (p.action != "block" && p.action != "allow") {
    pe.problem("action", "must be block or allow (a flagged message cannot be redacted)");
  }
  p.on_error = pe.text("on_error").value_or("allow");
  if (p.on_error != "block" && p.on_error != "allow") {
    pe.problem("on_error", "must be allow or block");
  }
  if (auto t = pe.text("timeout")) {
    auto d = config::parse_duration(*t);
    if (!d || d->count() <= 0) {
      pe.problem("timeout", "must be a duration such as 5s or 500ms");
    } else {
      p.timeout = *d;
    }
  }
  pe.reject_unknown();
}

void parse(ModerationSettings& m, const YAML::Node& node, const std::string& source,
           Problems& problems) {
  if (!node.IsMap()) {
    problems.push_back({"moderation", "", where(source, node), "must be a mapping"});
    return;
  }
  Entry e(node, "moderation", source, problems);
  if (auto v = e.number("max_input_chars", 0, 1e9)) m.max_input_chars = static_cast<int64_t>(*v);
  if (auto v = e.number("max_output_chars", 0, 1e9)) m.max_output_chars = static_cast<int64_t>(*v);
  if (auto pii = node["pii"]; pii && !pii.IsNull()) {
    if (!pii.IsMap()) {
      e.problem("pii", "must map email, phone and card to an action");
    } else {
      parse_pii(m, pii, source, problems);
    }
  }
  if (auto categories = node["categories"]; categories && !categories.IsNull()) {
    if (!categories.IsMap()) {
      e.problem("categories", "must be a mapping of category names to rules");
    } else {
      parse_categories(m, categories, source, problems);
    }
  }
  if (auto provider = node["provider"]; provider && !provider.IsNull()) {
    if (!provider.IsMap()) {
      e.problem("provider", "must be a mapping: {name: <a provider>, model: ...}");
    } else {
      parse_provider(m, provider, source, problems);
    }
  }
  e.skip("pii");  // read above, by hand
  e.skip("categories");
  e.skip("provider");
  e.reject_unknown();
}

json stages_json(bool input, bool output) {
  json stages = json::array();
  if (input) stages.push_back("input");
  if (output) stages.push_back("output");
  return stages;
}

json show(const ModerationSettings& m) {
  json categories = json::object();
  for (const auto& c : m.categories) {
    categories[c.name] = {{"words", c.words},
                          {"patterns", c.patterns},
                          {"action", c.action},
                          {"stages", stages_json(c.input, c.output)}};
  }
  json pii = json::object();
  for (const auto& p : m.pii) {
    pii[p.kind] = {{"action", p.action}, {"stages", stages_json(p.input, p.output)}};
  }
  json out = {{"max_input_chars", m.max_input_chars},
              {"max_output_chars", m.max_output_chars},
              {"pii", pii},
              {"categories", categories}};
  if (const auto& mp = m.provider; !mp.name.empty()) {
    out["provider"] = {{"name", mp.name},
                       {"model", mp.model},
                       {"stages", stages_json(mp.input, mp.output)},
                       {"action", mp.action},
                       {"on_error", mp.on_error},
                       {"timeout_ms", mp.timeout.count()}};
  }
  return out;
}

}  // namespace

Policy policy(const ModerationSettings& c) {
  Policy p;
  for (const auto& cat : c.categories) {
    CategoryRule r;
    r.name = cat.name;
    r.words = cat.words;
    r.patterns = cat.patterns;
    r.action = parse_action(cat.action).value_or(Action::kBlock);
    r.input = cat.input;
    r.output = cat.output;
    p.categories.push_back(std::move(r));
  }
  for (const auto& pii : c.pii) {
    PiiRule r;
    r.kind = parse_pii_kind(pii.kind).value_or(PiiKind::kEmail);
    r.action = parse_action(pii.action).value_or(Action::kRedact);
    r.input = pii.input;
    r.output = pii.output;
    p.pii.push_back(r);
  }
  p.max_input_chars = static_cast<size_t>(c.max_input_chars);
  p.max_output_chars = static_cast<size_t>(c.max_output_chars);
  return p;
}

void declare_settings(config::Schema& schema) {
  schema.block<ModerationSettings>(
      "moderation", "Content moderation: word lists, patterns, personal data, a provider.", parse,
      show);
  schema.check([](const config::Settings& settings, Problems& problems) {
    const auto& m = settings.get<ModerationSettings>();
    const auto& providers = settings.get<llm::LlmSettings>().providers;
    if (const auto& mp = m.provider; !mp.name.empty()) {
      auto it = std::find_if(providers.begin(), providers.end(),
                             [&](const auto& p) { return p.name == mp.name; });
      if (it == providers.end()) {
        problems.push_back({"moderation.provider.name", mp.name, "moderation",
                            "names provider '" + mp.name + "', which is not configured"});
      } else if (it->type != "openai") {
        problems.push_back({"moderation.provider.name", mp.name, "moderation",
                            "provider '" + mp.name + "' is of type " + it->type +
                                "; a moderation endpoint needs an OpenAI-compatible provider"});
      }
    }
    // The rules compile (regular expressions, names): found now, not at startup.
    if (auto compiled = RuleSet::compile(policy(m)); !compiled) {
      problems.push_back({compiled.error().param, "", "moderation", compiled.error().message});
    }
  });
}

}  // namespace parley::moderation
