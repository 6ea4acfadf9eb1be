#include "intent/classify_stage.hpp"

#include <chrono>
#include <map>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include "chat/answer.hpp"
#include "chat/assistants.hpp"
#include "intent/classifier.hpp"
#include "llm/accounting.hpp"
#include "llm/blocking_completion.hpp"
#include "llm/gateway.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace parley::intent {
namespace {

using nlohmann::json;

constexpr size_t kMaxFieldBytes = 200;
constexpr const char* kStateKey = "intent_state";

struct Decision {
  std::string intent;  // "" when none
  double confidence = 0;
  std::string method;  // examples | model | fallback | continued | cancelled | undecided
};

class Metrics {
 public:
  explicit Metrics(prometheus::Registry& registry)
      : classified_(
            prometheus::BuildCounter()
                .Name("intent_classifications_total")
                .Help("Messages classified by assistant, intent (\"\" when none) and "
                      "method (examples, model, fallback, continued, cancelled, undecided).")
                .Register(registry)),
        seconds_(prometheus::BuildHistogram()
                     .Name("intent_classification_seconds")
                     .Help("Time to classify a message, by method (a model's answer included).")
                     .Register(registry)),
        handovers_(prometheus::BuildCounter()
                       .Name("intent_handovers_total")
                       .Help("Conversations handed over to a person, by assistant and intent.")
                       .Register(registry)) {}

  void classified(const std::string& assistant, const Decision& d, double seconds) {
    classified_.Add({{"assistant", assistant}, {"intent", d.intent}, {"method", d.method}})
        .Increment();
    seconds_
        .Add({{"method", d.method}},
             prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01,
                                                     0.1, 1, 10})
        .Observe(seconds);
  }
  void handover(const std::string& assistant, const std::string& intent) {
    handovers_.Add({{"assistant", assistant}, {"intent", intent}}).Increment();
  }

 private:
  prometheus::Family<prometheus::Counter>& classified_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  prometheus::Family<prometheus::Counter>& handovers_;
};

// What the assistant's intents need at run time.
struct Prepared {
  const AssistantIntents* config = nullptr;
  std::unique_ptr<Classifier> classifier;
  std::optional<llm::Route> model;  // asked when the examples leave it ambiguous
  // The fields' patterns, compiled, by "intent/field"; each with a group for the value.
  std::map<std::string, std::unique_ptr<RE2>> patterns;
};

std::string trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.size() > kMaxFieldBytes) {
    size_t cut = kMaxFieldBytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut);
  }
  return std::string(s);
}

// `text` with each {field} replaced by its value.
std::string filled(const std::string& text, const json& fields) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find('{', at);
    const size_t close = open == std::string::npos ? open : text.find('}', open);
    if (close == std::string::npos) {
      out += text.substr(at);
      break;
    }
    out += text.substr(at, open - at);
    const std::string name = text.substr(open + 1, close - open - 1);
    out += fields.contains(name) && fields[name].is_string() ? fields[name].get<std::string>()
                                                             : text.substr(open, close - open + 1);
    at = close + 1;
  }
  return out;
}

// The intent a model names for `message`, among `config`'s; nullopt when it names none or
// cannot be asked.
std::vector<llm::Message> classification_request(const AssistantIntents& config,
                                                 const std::string& message) {
  std::string system =
      "Classify the customer's message into exactly one of these intents, or none if no intent "
      "fits. Answer with a JSON object {\"intent\": \"<name>\"} and nothing else.\nIntents:";
  for (const auto& i : config.intents) {
    system += "\n- " + i.name + (i.description.empty() ? "" : ": " + i.description);
    for (size_t e = 0; e < std::min<size_t>(3, i.examples.size()); ++e) {
      system += (e == 0 ? " (e.g. \"" : "; \"") + i.examples[e] + "\"";
      if (e + 1 == std::min<size_t>(3, i.examples.size())) system += ")";
    }
  }
  std::vector<llm::Message> out(2);
  out[0].role = "system";
  out[0].content = std::move(system);
  out[1].role = "user";
  out[1].content = message;
  return out;
}

std::optional<std::string> named_intent(const AssistantIntents& config, const std::string& reply) {
  const size_t open = reply.find('{');
  const size_t close = reply.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  const json answer = json::parse(reply.substr(open, close - open + 1), nullptr, false);
  if (!answer.is_object() || !answer.contains("intent") || !answer["intent"].is_string()) {
    return std::nullopt;
  }
  const std::string name = answer["intent"];
  if (config.find(name) == nullptr) return std::nullopt;
  return name;
}

class ClassifyIntent final : public chat::Stage {
 public:
  ClassifyIntent(chat::ChatDeps& deps, std::map<std::string, Prepared> prepared)
      : deps_(deps),
        prepared_(std::move(prepared)),
        metrics_(deps.metrics ? std::make_unique<Metrics>(deps.metrics->registry()) : nullptr) {}

  const char* name() const override { return "classify_intent"; }
  // Not for a regenerated reply: its message was classified when it was sent, and the
  // session's gathering state already moved on from it.
  bool applies(const chat::Turn& turn) const override {
    return turn.stored != nullptr && turn.assistant != nullptr &&
           turn.stored->regenerate_of.empty() && prepared_.count(turn.assistant->name) != 0;
  }

  Task<Result<chat::Flow>> run(chat::Turn& turn) override {
    const std::string assistant = turn.assistant->name;
    const Prepared& p = prepared_.at(assistant);
    const AssistantIntents& config = *p.config;
    chat::StoredTurn& stored = *turn.stored;
    const auto started = std::chrono::steady_clock::now();
    json metadata = json::parse(stored.started.session.metadata_json, nullptr, false);
    if (!metadata.is_object()) metadata = json::object();

    // A `require` intent still gathering its fields goes on.
    Decision d;
    json state = metadata.contains(kStateKey) ? metadata[kStateKey] : json();
    const Intent* continuing = nullptr;
    if (state.is_object() && state.contains("intent") && state["intent"].is_string()) {
      continuing = config.find(state["intent"].get<std::string>());
      if (continuing != nullptr && continuing->action != "require") continuing = nullptr;
    }
    const bool cancelled = continuing != nullptr && cancels(config, stored.content);
    if (cancelled) {
      d = {continuing->name, 1.0, "cancelled"};
    } else if (continuing != nullptr) {
      d = {continuing->name, 1.0, "continued"};
    } else {
      const Classification c = p.classifier->classify(stored.content);
      if (c.decided) {
        d = {c.intent, c.confidence, "examples"};
      } else {
        std::optional<std::string> asked;
        if (p.model) asked = co_await ask_model(turn, *p.model, config);
        if (asked) {
          d = {*asked, c.confidence, "model"};
        } else if (!config.fallback.empty()) {
          d = {config.fallback, c.confidence, "fallback"};
        } else {
          d = {"", c.confidence, "undecided"};
        }
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (metrics_) metrics_->classified(assistant, d, seconds);
    log::info("intent", {{"request_id", turn.request_id},
                         {"session_id", stored.started.session.id},
                         {"assistant", assistant},
                         {"intent", d.intent},
                         {"confidence", d.confidence},
                         {"method", d.method}});
    if (d.intent.empty()) co_return chat::Flow::kContinue;
    stored.intent = d.intent;
    stored.intent_confidence = d.confidence;
    const Intent& intent = *config.find(d.intent);
    if (cancelled) {
      // The customer dropped what was being gathered: nothing of it is kept.
      metadata.erase(kStateKey);
      co_await save(stored, metadata);
      co_return co_await answer(turn, intent, config.cancelled);
    }

    if (intent.action == "route") co_return route(turn, intent);
    if (intent.action == "template") co_return co_await answer(turn, intent, intent.text);
    if (intent.action == "handover") {
      metadata["handover"] = {{"intent", intent.name},
                              {"at", format_utc_ms(to_unix_ms(deps_.clock.now()))},
                              {"request_id", turn.request_id}};
      co_await save(stored, metadata);
      if (metrics_) metrics_->handover(assistant, intent.name);
      log::info("handed over to a person", {{"session_id", stored.started.session.id},
                                            {"assistant", assistant},
                                            {"intent", intent.name}});
      co_return co_await answer(turn, intent, intent.text);
    }
    if (intent.action == "require") {
      // (Built before the co_await: g++ 12 mishandles a conditional's temporary inside one.)
      json prior = continuing != nullptr ? state : json::object();
      co_return co_await require(turn, intent, p.patterns, std::move(metadata), std::move(prior));
    }
    co_return chat::Flow::kContinue;
  }

 private:
  Task<std::optional<std::string>> ask_model(chat::Turn& turn, const llm::Route& route,
                                             const AssistantIntents& config) {
    llm::ChatRequest request;
    request.messages = classification_request(config, turn.stored->content);
    request.temperature = 0.0;
    request.max_tokens = 50;
    request.extra["response_format"] = {{"type", "json_object"}};
    llm::Cancellation cancel;
    llm::GatewayResult out;
    auto done = co_await deps_.gateway.chat(route, request, cancel, nullptr, out);
    if (!done) {
      log::warn("intent model not answering; the fallback decides",
                {{"request_id", turn.request_id}, {"error", done.error().message}});
      co_return std::nullopt;
    }
    store::UsageRecord r;
    r.at_ms = to_unix_ms(deps_.clock.now());
    r.tenant_id = turn.stored->started.session.tenant_id;
    r.user_id = turn.stored->started.session.user_id;
    r.session_id = turn.stored->started.session.id;
    r.source = "intent";
    r.provider = out.provider;
    r.model = out.model;
    r.input_tokens = out.completion.usage.input_tokens;
    r.output_tokens = out.completion.usage.output_tokens;
    r.cost_usd = deps_.accountant.models().cost(out.model, r.input_tokens, r.output_tokens);
    r.status = "ok";
    r.request_id = turn.request_id;
    deps_.accountant.enqueue(std::move(r));
    co_return named_intent(config, out.completion.content);
  }

  Result<chat::Flow> route(chat::Turn& turn, const Intent& intent) {
    if (!intent.assistant.empty()) {
      const chat::Assistant* other = deps_.assistants.find(intent.assistant);
      if (other != nullptr) turn.assistant = other;
    }
    const std::string model =
        !intent.model.empty() ? intent.model : turn.model.value_or(turn.assistant->model);
    auto resolved = deps_.gateway.resolve(model);
    if (!resolved) return std::move(resolved).error();
    turn.route = std::move(*resolved);
    return chat::Flow::kContinue;
  }

  // Answers the turn with `text`, no model involved.
  static Task<Result<chat::Flow>> answer(chat::Turn& turn, const Intent& intent, std::string text) {
    co_await chat::answer_without_model(turn, std::move(text), "parley", "intent:" + intent.name);
    co_return chat::Flow::kAnswered;
  }

  Task<void> save(chat::StoredTurn& stored, const json& metadata) {
    store::SessionPatch patch;
    patch.metadata_json = metadata.dump();
    const std::string id = stored.started.session.id;
    auto updated =
        co_await deps_.blocking.run([&] { return deps_.storage.sessions().update(id, patch); });
    if (!updated) {
      log::warn("intent state not saved", {{"session_id", id}, {"error", updated.error().message}});
    } else {
      stored.started.session.metadata_json = updated->metadata_json;
    }
  }

  // Gathers the intent's fields from this message (by their patterns, and the one last asked
  // for from the whole answer), asks for the next missing one, or, with all of them, answers
  // with `then` or lets the assistant answer, told them.
  Task<Result<chat::Flow>> require(chat::Turn& turn, const Intent& intent,
                                   const std::map<std::string, std::unique_ptr<RE2>>& patterns,
                                   json metadata, json state) {
    chat::StoredTurn& stored = *turn.stored;
    // The state sits in the session's metadata, which its owner may also write: only the
    // intent's own fields, as strings within the length a gathered value may have, are taken.
    json fields = json::object();
    if (state.contains("fields") && state["fields"].is_object()) {
      for (const auto& f : intent.fields) {
        auto given = state["fields"].find(f.name);
        if (given == state["fields"].end() || !given->is_string()) continue;
        std::string value = trimmed(given->get<std::string>());
        if (!value.empty()) fields[f.name] = std::move(value);
      }
    }
    const std::string asked = state.contains("asked") && state["asked"].is_string()
                                  ? state["asked"].get<std::string>()
                                  : std::string();
    for (const auto& f : intent.fields) {
      if (fields.contains(f.name)) continue;
      std::string value;
      auto pattern = patterns.find(intent.name + "/" + f.name);
      if (pattern != patterns.end())
        (void)RE2::PartialMatch(stored.content, *pattern->second, &value);
      if (value.empty() && f.name == asked) value = stored.content;
      value = trimmed(value);
      if (!value.empty()) fields[f.name] = value;
    }
    const Field* missing = nullptr;
    for (const auto& f : intent.fields) {
      if (!fields.contains(f.name)) {
        missing = &f;
        break;
      }
    }
    if (missing != nullptr) {
      metadata[kStateKey] = {{"intent", intent.name}, {"fields", fields}, {"asked", missing->name}};
      co_await save(stored, metadata);
      co_return co_await answer(turn, intent, missing->prompt);
    }
    metadata.erase(kStateKey);
    metadata["last_intent"] = {{"intent", intent.name}, {"fields", fields}};
    co_await save(stored, metadata);
    if (!intent.text.empty()) co_return co_await answer(turn, intent, filled(intent.text, fields));
    std::string note = "The customer's request (" + intent.name + "), with what they gave:";
    for (const auto& f : intent.fields)
      note += "\n- " + f.name + ": " + fields[f.name].get<std::string>();
    stored.prompt_notes.push_back(std::move(note));
    co_return chat::Flow::kContinue;
  }

  chat::ChatDeps& deps_;
  std::map<std::string, Prepared> prepared_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace

Result<std::unique_ptr<chat::Stage>> classify_stage(const IntentSettings& settings,
                                                    chat::ChatDeps& deps) {
  std::map<std::string, Prepared> prepared;
  for (const auto& config : settings.assistants) {
    const std::string where = "intents." + config.assistant;
    if (deps.assistants.find(config.assistant) == nullptr) {
      return Error::invalid(where + ": no assistant '" + config.assistant + "' (" + config.source +
                            ")");
    }
    for (const auto& i : config.intents) {
      if (i.action == "route" && !i.assistant.empty() &&
          deps.assistants.find(i.assistant) == nullptr) {
        return Error::invalid(where + ".intents." + i.name + ": no assistant '" + i.assistant +
                              "' (" + i.source + ")");
      }
      if (i.action == "route" && !i.model.empty()) {
        if (auto r = deps.gateway.resolve(i.model); !r) {
          return Error::invalid(where + ".intents." + i.name + ".model: " + r.error().message);
        }
      }
    }
    Prepared p;
    p.config = &config;
    p.classifier = std::make_unique<Classifier>(config);
    for (const auto& i : config.intents) {
      for (const auto& f : i.fields) {
        if (f.pattern.empty()) continue;
        auto re = std::make_unique<RE2>(f.pattern, RE2::Quiet);
        // The value is the first group, or the whole match when the pattern has none.
        if (re->ok() && re->NumberOfCapturingGroups() == 0) {
          re = std::make_unique<RE2>("(" + f.pattern + ")", RE2::Quiet);
        }
        if (!re->ok()) {
          return Error::invalid(where + ".intents." + i.name + ".fields." + f.name +
                                ".pattern: " + re->error());
        }
        p.patterns.emplace(i.name + "/" + f.name, std::move(re));
      }
    }
    auto route = deps.gateway.resolve(config.model);
    if (!route) return Error::invalid(where + ".model: " + route.error().message);
    if (llm::has_model(*route)) p.model = std::move(*route);
    prepared.emplace(config.assistant, std::move(p));
  }
  return std::unique_ptr<chat::Stage>(std::make_unique<ClassifyIntent>(deps, std::move(prepared)));
}

}  // namespace parley::intent
