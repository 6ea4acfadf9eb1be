// `intents:`: per assistant, what a message may be asking for, recognised before the assistant
// answers (classify_stage.hpp), and what to do about it. Keyed by assistant:
//
//   intents:
//     shop:                          # the assistant whose messages are classified
//       threshold: 0.35              # nearest-example confidence that decides without a model
//       margin: 0.03                 # by how much the best intent must lead the next
//       k: 3                         # examples per intent averaged into its score
//       model: ""                    # asked when undecided ("" = the default route; none when
//                                    # the built-in provider answers it)
//       fallback: small_talk         # the intent when still undecided ("" = none: the
//                                    # assistant answers as usual)
//       cancel: ["cancel", "never mind"]   # what drops a `require` intent's gathering (the
//                                    # message, or it and two words more; [] = nothing does)
//       cancelled: "Okay, I have dropped that."   # and the answer then
//       intents:
//         order:
//           description: The customer wants to order something.
//           examples: ["I'd like to order a pizza", "Can I get two burgers?"]
//           action: require          # route | template | require | handover | none
//           fields:                  # require: gathered over the turns, asked in order
//             quantity: {pattern: "\\b(\\d+)\\b", prompt: "How many would you like?"}
//             address: {prompt: "Where should we deliver it?"}
//           then: "Order placed: {quantity} to {address}."   # require: the answer once every
//                                    # field is known (else the assistant answers, told them)
//         order_status: {examples: [...], action: route, assistant: support, model: fast}
//         complaint: {examples: [...], action: handover, template: "A person will call you."}
//         small_talk: {examples: [...], action: template, template: "Hello! I can take orders."}
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace parley::config {
class Schema;
}

namespace parley::intent {

struct Field {
  std::string name;
  std::string pattern;  // RE2; its first group (else its whole match) is the value; "" = the
                        // whole answer to this field's prompt
  std::string prompt;   // how it is asked for
};

struct Intent {
  std::string name;
  std::string description;
  std::vector<std::string> examples;
  std::string action = "none";  // route | template | require | handover | none
  std::string assistant;        // route: the assistant that answers instead
  std::string model;            // route: the model that answers instead
  std::string text;             // template, handover: the answer; require: `then`
  std::vector<Field> fields;    // require
  std::string source;           // file:line, for errors found later
};

struct AssistantIntents {
  std::string assistant;
  double threshold = 0.35;
  double margin = 0.03;
  int k = 3;
  std::string model;
  std::string fallback;
  std::vector<std::string> cancel = {"cancel", "never mind", "nevermind", "forget it", "stop"};
  std::string cancelled = "Okay, I have dropped that. What else can I do for you?";
  std::vector<Intent> intents;
  std::string source;

  const Intent* find(const std::string& name) const;
};

struct IntentSettings {
  std::vector<AssistantIntents> assistants;
  const AssistantIntents* find(const std::string& assistant) const;
};

void declare_settings(config::Schema& schema);

// A phrase as `cancel` compares it: lower case, words separated by one space, without
// punctuation.
std::string cancel_form(std::string_view text);
// Whether `message` drops a `require` intent's gathering: it is one of the cancel phrases, or
// one of them followed by two words at most.
bool cancels(const AssistantIntents& intents, std::string_view message);

}  // namespace parley::intent
