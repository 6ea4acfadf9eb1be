// Intents end to end: the order-taking agent of docs/examples/order-agent.yaml against the
// real binary and the fake provider. Each message is classified before the assistant
// answers; small talk and a complaint are answered without a model, an order's fields are
// gathered over turns, an order's status and a menu question go to their own assistants, and
// every user message keeps its intent.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace parley_it {
namespace {

using nlohmann::json;

std::string example() {
  std::ifstream in(std::string(PARLEY_SOURCE_DIR) + "/docs/examples/order-agent.yaml");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

json say(int port, const std::string& session, const std::string& text) {
  auto r = http("POST", port, "/api/v1/sessions/" + session + "/messages",
                json{{"content", text}}.dump());
  EXPECT_EQ(r.status, 200) << r.describe();
  return r.json_or_discarded();
}

TEST(Intents, TheOrderAgentTakesAnOrderRoutesQuestionsAndHandsOverAComplaint) {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  // The example as it is, in front of the fake model; undecided messages would ask it, so
  // each message here is one the examples decide.
  const std::string file = config_dir.write_file("parley.yaml", fake.base_config() + example());
  ParleyProcess p({.args = {"--config", file}});
  const int port = p.port();
  auto created = http("POST", port, "/api/v1/sessions", R"({"user_id":"ana","assistant":"shop"})");
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string session = created.json()["id"];

  const json hello = say(port, session, "Hi there!");
  if (hello.is_discarded()) {
    p.drain_output();
    FAIL() << p.output_dump();
  }
  EXPECT_EQ(hello["reply"]["content"],
            "Hello! I can take your order, tell you where an order is, or answer questions about "
            "our menu.");
  EXPECT_EQ(hello["user_message"]["intent"]["name"], "small_talk");

  // The order's fields, gathered over three turns (what a message already says is taken).
  const json order = say(port, session, "I'd like to order 2 pizzas");
  EXPECT_EQ(order["user_message"]["intent"]["name"], "order");
  EXPECT_NE(order["reply"]["content"].get<std::string>().find("Which pizza"), std::string::npos)
      << order["reply"].dump();
  const json product = say(port, session, "Pepperoni please");
  EXPECT_EQ(product["user_message"]["intent"]["name"], "order");
  EXPECT_EQ(product["reply"]["content"], "Where should we deliver it?");
  const json address = say(port, session, "12 Baker Street, Springfield");
  EXPECT_EQ(address["reply"]["content"],
            "Thank you! Your order of 2 × Pepperoni is on its way to 12 Baker Street, "
            "Springfield.");
  EXPECT_EQ(fake.calls(), 0) << "no model was needed so far";
  auto session_now = http("GET", port, "/api/v1/sessions/" + session).json();
  EXPECT_EQ(session_now["metadata"]["last_intent"]["fields"],
            (json{{"quantity", "2"},
                  {"product", "Pepperoni"},
                  {"address", "12 Baker Street, Springfield"}}))
      << session_now.dump();
  EXPECT_FALSE(session_now["metadata"].contains("intent_state"));

  // An order's status goes to the support assistant, a menu question to the products one.
  fake.enqueue({{"body", openai_completion_body("It left the shop ten minutes ago.")}});
  const json status = say(port, session, "Where is my order? It has not arrived yet");
  EXPECT_EQ(status["user_message"]["intent"]["name"], "order_status");
  EXPECT_EQ(status["reply"]["content"], "It left the shop ten minutes ago.");
  fake.enqueue({{"body", openai_completion_body("Yes, vegan cheese on request.")}});
  const json menu = say(port, session, "Do you have vegan cheese?");
  EXPECT_EQ(menu["user_message"]["intent"]["name"], "product_question");
  const json calls = fake.requests();
  ASSERT_EQ(calls.size(), 2u) << calls.dump();
  EXPECT_NE(
      calls[0]["body"]["messages"][0]["content"].get<std::string>().find("status of their orders"),
      std::string::npos);
  EXPECT_NE(calls[1]["body"]["messages"][0]["content"].get<std::string>().find("menu"),
            std::string::npos);

  // A complaint is handed over to a person, without a model.
  const json complaint =
      say(port, session, "This is terrible, my pizza arrived cold, I want a refund");
  EXPECT_EQ(complaint["user_message"]["intent"]["name"], "complaint");
  EXPECT_NE(complaint["reply"]["content"].get<std::string>().find("member of our team"),
            std::string::npos);
  EXPECT_EQ(fake.calls(), 2);
  session_now = http("GET", port, "/api/v1/sessions/" + session).json();
  EXPECT_EQ(session_now["metadata"]["handover"]["intent"], "complaint");

  // Every user message keeps its intent and how sure the classification was.
  auto listed = http("GET", port, "/api/v1/sessions/" + session + "/messages?limit=50").json();
  std::vector<std::string> intents;
  for (const auto& m : listed["data"]) {
    if (m["role"] != "user") continue;
    intents.push_back(m["intent"]["name"]);
    EXPECT_TRUE(m["intent"]["confidence"].is_number()) << m.dump();
  }
  EXPECT_EQ(intents, (std::vector<std::string>{"small_talk", "order", "order", "order",
                                               "order_status", "product_question", "complaint"}));

  // Counted by intent and method.
  const std::string metrics = http("GET", port, "/metrics").body;
  EXPECT_NE(
      metrics.find(
          R"(intent_classifications_total{assistant="shop",intent="order",method="continued"} 2)"),
      std::string::npos)
      << metrics.substr(0, 2000);
  EXPECT_NE(metrics.find(R"(intent_handovers_total{assistant="shop",intent="complaint"} 1)"),
            std::string::npos);
  EXPECT_NE(metrics.find("intent_classification_seconds_bucket"), std::string::npos);

  // The gathering state sits in metadata its owner may write: what is not one of the intent's
  // fields as a string is dropped, and the flow goes on.
  auto odd = http("POST", port, "/api/v1/sessions",
                  R"({"user_id":"bob","assistant":"shop","metadata":{"intent_state":{
                      "intent":"order","fields":{"quantity":5,"product":{"x":1},"nope":"y"},
                      "asked":7}}})");
  ASSERT_EQ(odd.status, 201) << odd.describe();
  const json going_on = say(port, odd.json()["id"], "Pepperoni");
  EXPECT_EQ(going_on["reply"]["content"], "How many would you like?") << going_on.dump();

  // "Never mind" drops the order being gathered, and the next message is classified afresh.
  const json dropped = say(port, odd.json()["id"], "Never mind");
  EXPECT_EQ(dropped["reply"]["content"], "Okay, I have dropped that. What else can I do for you?")
      << dropped.dump();
  EXPECT_EQ(dropped["user_message"]["intent"]["name"], "order");
  auto bob_now = http("GET", port, "/api/v1/sessions/" + odd.json()["id"].get<std::string>());
  EXPECT_FALSE(bob_now.json()["metadata"].contains("intent_state")) << bob_now.describe();
  const json afresh = say(port, odd.json()["id"], "Hi there!");
  EXPECT_EQ(afresh["user_message"]["intent"]["name"], "small_talk");
}

TEST(Intents, WhatTheExamplesLeaveAmbiguousIsAskedOfTheModel) {
  FakeProvider fake;
  TempDir config_dir{"parley-config"};
  const std::string file = config_dir.write_file(
      "parley.yaml", fake.base_config() +
                         "assistants:\n"
                         "  desk:\n"
                         "    system_prompt: You answer questions about a shop.\n"
                         "intents:\n"
                         "  desk:\n"
                         "    threshold: 0.95\n"
                         "    intents:\n"
                         "      refund:\n"
                         "        description: The customer wants their money back.\n"
                         "        examples: [I want a refund]\n"
                         "        action: template\n"
                         "        template: Refunds take five days.\n"
                         "      hours:\n"
                         "        description: The customer asks when the shop is open.\n"
                         "        examples: [When are you open]\n"
                         "        action: template\n"
                         "        template: We open at nine.\n");
  ParleyProcess p({.args = {"--config", file}});
  const int port = p.port();
  auto created = http("POST", port, "/api/v1/sessions", R"({"user_id":"ana","assistant":"desk"})");
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string session = created.json()["id"];

  // No example is that close: the model decides, and its intent acts.
  fake.enqueue({{"body", openai_completion_body(R"({"intent":"refund"})")}});
  const json asked = say(port, session, "Could I get my money returned for the broken lamp?");
  EXPECT_EQ(asked["user_message"]["intent"]["name"], "refund") << asked.dump();
  EXPECT_EQ(asked["reply"]["content"], "Refunds take five days.");
  json calls = fake.requests();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["body"]["response_format"]["type"], "json_object");
  EXPECT_NE(calls[0]["body"]["messages"][0]["content"].get<std::string>().find("- hours"),
            std::string::npos);

  // A model that names no intent leaves the assistant to answer as usual.
  fake.enqueue({{"body", openai_completion_body(R"({"intent":"weather"})")}});
  fake.enqueue({{"body", openai_completion_body("It is sunny, I hear.")}});
  const json other = say(port, session, "Is it going to rain on the parking lot today?");
  EXPECT_FALSE(other["user_message"].contains("intent")) << other.dump();
  EXPECT_EQ(other["reply"]["content"], "It is sunny, I hear.");
  const std::string metrics = http("GET", port, "/metrics").body;
  EXPECT_NE(
      metrics.find(
          R"(intent_classifications_total{assistant="desk",intent="refund",method="model"} 1)"),
      std::string::npos);
  EXPECT_NE(metrics.find(
                R"(intent_classifications_total{assistant="desk",intent="",method="undecided"} 1)"),
            std::string::npos);
}

TEST(Intents, AConfigurationNamingAnUnknownAssistantDoesNotStart) {
  TempDir data;
  TempDir config_dir{"parley-config"};
  const std::string file = config_dir.write_file(
      "parley.yaml", "intents:\n  nobody:\n    intents:\n      hi: {examples: [hello]}\n");
  auto r =
      run_parley({"serve", "--listen", "127.0.0.1:0", "--data-dir", data.path(), "--config", file},
                 {.timeout = Millis{10000}});
  ASSERT_FALSE(r.timed_out) << r.describe();
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("'pipeline'"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("no assistant 'nobody'"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace parley_it
