// Intents (intent/): the `intents:` block as read from a file, what it refuses, and the
// classifier over the order-taking agent's example configuration (docs/examples).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "app/settings.hpp"
#include "config/settings.hpp"
#include "intent/classifier.hpp"
#include "intent/settings.hpp"
#include "temp_dir.hpp"

namespace parley::intent {
namespace {

using parley::testing::TempDir;

struct Loaded {
  bool ok = false;
  std::string problems;
  IntentSettings settings;
};

Loaded load_file(const std::string& path) {
  config::Sources sources;
  sources.config_file = path;
  auto loaded = config::load(app::settings_schema(), sources);
  Loaded out;
  out.ok = loaded.ok();
  for (const auto& p : loaded.problems) out.problems += p.path + ": " + p.message + "\n";
  if (loaded.ok()) out.settings = loaded.settings.get<IntentSettings>();
  return out;
}

Loaded load(const std::string& yaml) {
  TempDir dir;
  return load_file(dir.write("parley.yaml", yaml));
}

const std::string kExample =
    std::string(PARLEY_FIXTURES_DIR) + "/../../docs/examples/order-agent.yaml";

TEST(IntentSettings, TheOrderAgentExampleReads) {
  const Loaded l = load_file(kExample);
  ASSERT_TRUE(l.ok) << l.problems;
  const AssistantIntents* shop = l.settings.find("shop");
  ASSERT_NE(shop, nullptr);
  EXPECT_EQ(shop->fallback, "small_talk");
  ASSERT_NE(shop->find("order"), nullptr);
  EXPECT_EQ(shop->find("order")->action, "require");
  EXPECT_EQ(shop->find("order")->fields.size(), 3u);
  EXPECT_EQ(shop->find("order_status")->assistant, "support");
  EXPECT_EQ(shop->find("complaint")->action, "handover");
  EXPECT_FALSE(shop->find("small_talk")->text.empty());
}

TEST(IntentSettings, CancelPhrasesDropAGatheringWithTwoWordsMoreAtMost) {
  AssistantIntents shop;
  EXPECT_TRUE(cancels(shop, "Cancel"));
  EXPECT_TRUE(cancels(shop, "  never   mind!"));
  EXPECT_TRUE(cancels(shop, "Forget it, thanks"));
  EXPECT_TRUE(cancels(shop, "cancel the order"));
  EXPECT_FALSE(cancels(shop, "Stop by the back door"));  // an answer that starts with one
  EXPECT_FALSE(cancels(shop, "stop sending me the old address"));
  EXPECT_FALSE(cancels(shop, "cancellation policy?"));  // a word that starts with one is not it
  EXPECT_FALSE(cancels(shop, "12 Baker Street"));

  const Loaded l = load(
      "assistants: {shop: {}}\n"
      "intents:\n"
      "  shop:\n"
      "    cancel: [\"Abort!\", \"no thanks\"]\n"
      "    cancelled: Dropped.\n"
      "    intents:\n"
      "      order: {examples: [\"I want a pizza\"], action: require,\n"
      "              fields: {address: {prompt: \"Where to?\"}}}\n");
  ASSERT_TRUE(l.ok) << l.problems;
  const AssistantIntents& configured = *l.settings.find("shop");
  EXPECT_EQ(configured.cancel, (std::vector<std::string>{"abort", "no thanks"}));
  EXPECT_EQ(configured.cancelled, "Dropped.");
  EXPECT_TRUE(cancels(configured, "No, thanks."));
  EXPECT_FALSE(cancels(configured, "cancel"));
}

TEST(IntentSettings, WhatCannotWorkIsRefusedWithWhere) {
  const auto refused = [](const std::string& yaml, const std::string& says) {
    const Loaded l = load(yaml);
    EXPECT_FALSE(l.ok) << yaml;
    EXPECT_NE(l.problems.find(says), std::string::npos) << l.problems;
  };
  refused("intents:\n  shop:\n    intents:\n      hi: {examples: [hello], action: fly}\n",
          "must be route, template, require, handover or none");
  refused("intents:\n  shop:\n    intents:\n      hi: {examples: [hello], action: template}\n",
          "template");
  refused("intents:\n  shop:\n    intents:\n      hi: {examples: [hello], action: route}\n",
          "route needs an assistant or a model");
  refused(
      "intents:\n  shop:\n    intents:\n      o:\n        examples: [order]\n        action: "
      "require\n        fields: {n: {prompt: 'How many', pattern: '(unclosed'}}\n",
      "not a regular expression");
  refused(
      "intents:\n  shop:\n    intents:\n      o:\n        examples: [order]\n        action: "
      "require\n        fields: {n: {prompt: 'How many'}}\n        then: 'ok {m}'\n",
      "{m} names no field");
  refused("intents:\n  shop:\n    fallback: nope\n    intents:\n      hi: {examples: [hello]}\n",
          "'nope' is not one of its intents");
  refused("intents:\n  shop:\n    intents:\n      hi: {action: none}\n", "no intent has examples");
  refused("intents:\n  shop:\n    threshold: 2\n    intents:\n      hi: {examples: [hello]}\n",
          "threshold");
  refused("intents:\n  shop:\n    intents:\n      hi: {examples: [hello], colour: red}\n",
          "colour");
}

class OrderAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    const Loaded l = load_file(kExample);
    ASSERT_TRUE(l.ok) << l.problems;
    settings_ = l.settings;
    classifier_ = std::make_unique<Classifier>(*settings_.find("shop"));
  }
  IntentSettings settings_;
  std::unique_ptr<Classifier> classifier_;
};

TEST_F(OrderAgent, TheExamplesDecideWhatTheyClearlyCover) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Hi there!", "small_talk"},
      {"I'd like to order 2 pizzas", "order"},
      {"Where is my order? It has not arrived yet", "order_status"},
      {"Do you have vegan cheese?", "product_question"},
      {"This is terrible, my pizza arrived cold, I want a refund", "complaint"},
  };
  for (const auto& [message, intent] : cases) {
    const Classification c = classifier_->classify(message);
    EXPECT_EQ(c.intent, intent) << message << " (" << c.confidence << ", runner-up " << c.runner_up
                                << " " << c.runner_up_confidence << ")";
    EXPECT_TRUE(c.decided) << message << " " << c.confidence << " vs " << c.runner_up_confidence;
    EXPECT_GT(c.confidence, c.runner_up_confidence);
  }
}

TEST_F(OrderAgent, WhatNoExampleResemblesIsLeftUndecided) {
  const Classification c = classifier_->classify("quantum chromodynamics lattice");
  EXPECT_FALSE(c.decided) << c.intent << " " << c.confidence;
}

TEST(Classifier, ThresholdAndMarginDecide) {
  AssistantIntents config;
  config.intents = {{"greet", "", {"hello there", "hi there"}, "none", "", "", "", {}, ""},
                    {"bye", "", {"goodbye now", "bye for now"}, "none", "", "", "", {}, ""},
                    {"silent", "", {}, "none", "", "", "", {}, ""}};
  config.k = 2;
  config.threshold = 0.0;
  config.margin = 0.0;
  const Classification hello = Classifier(config).classify("hello there");
  EXPECT_EQ(hello.intent, "greet");
  EXPECT_EQ(hello.runner_up, "bye");
  EXPECT_TRUE(hello.decided);
  config.threshold = 0.99;  // an exact example still averages with the other one
  EXPECT_FALSE(Classifier(config).classify("hello there").decided);
  config.threshold = 0.0;
  config.margin = 1.5;  // no lead is that large
  EXPECT_FALSE(Classifier(config).classify("hello there").decided);
  EXPECT_TRUE(Classifier(AssistantIntents()).classify("hello").intent.empty());
}

}  // namespace
}  // namespace parley::intent
