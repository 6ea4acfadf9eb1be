// Mem0's filters (memory/mem0_filter.hpp): what they let through, and what they refuse.
#include "memory/mem0_filter.hpp"

#include <gtest/gtest.h>

namespace parley::memory {
namespace {

using nlohmann::json;

const json kMemory = {{"user_id", "alice"},
                      {"agent_id", "travel"},
                      {"run_id", nullptr},
                      {"memory", "Is allergic to Peanuts"},
                      {"category", "food"},
                      {"importance", 0.7},
                      {"created_at", "2026-12-01T10:00:00.000Z"}};

bool passes(const json& filters) {
  auto f = Mem0Filter::parse(filters);
  EXPECT_TRUE(f.ok()) << filters.dump() << ": " << f.error().message;
  return f.ok() && f->matches(kMemory);
}

std::string refusal(const json& filters) {
  auto f = Mem0Filter::parse(filters);
  if (f.ok()) return "accepted";
  EXPECT_EQ(f.error().param, "filters");
  return f.error().message;
}

TEST(Mem0Filter, NothingAndAnEmptyObjectLetEverythingThrough) {
  EXPECT_TRUE(passes(nullptr));
  EXPECT_TRUE(passes(json::object()));
  EXPECT_TRUE(Mem0Filter().matches(kMemory));
}

TEST(Mem0Filter, AFlatMapIsEveryKeyEqual) {
  EXPECT_TRUE(passes({{"user_id", "alice"}, {"category", "food"}}));
  EXPECT_FALSE(passes({{"user_id", "alice"}, {"category", "travel"}}));
  EXPECT_FALSE(passes({{"missing", "x"}}));
  EXPECT_TRUE(passes({{"importance", 0.7}}));
}

TEST(Mem0Filter, AStarAsksOnlyThatTheKeyHoldsSomething) {
  EXPECT_TRUE(passes({{"agent_id", "*"}}));
  EXPECT_FALSE(passes({{"run_id", "*"}}));  // present, but null
  EXPECT_FALSE(passes({{"missing", "*"}}));
}

TEST(Mem0Filter, OperatorsCompareNumbersByValueAndTextInOrder) {
  EXPECT_TRUE(passes({{"importance", {{"gte", 0.5}}}}));
  EXPECT_TRUE(passes({{"importance", {{"gt", 0}, {"lte", 1}}}}));
  EXPECT_FALSE(passes({{"importance", {{"gt", 0.7}}}}));
  EXPECT_TRUE(passes({{"importance", {{"lt", 1}}}}));
  EXPECT_TRUE(passes({{"importance", {{"eq", 0.7}}}}));
  EXPECT_TRUE(passes({{"category", {{"ne", "travel"}}}}));
  EXPECT_TRUE(passes({{"missing", {{"ne", "travel"}}}}));
  EXPECT_TRUE(passes({{"created_at", {{"gte", "2026-11-30"}}}}));
  EXPECT_FALSE(passes({{"created_at", {{"gte", "2026-12-02"}}}}));
  // A number and a text never order.
  EXPECT_FALSE(passes({{"category", {{"gt", 1}}}}));
}

TEST(Mem0Filter, ListsAndTextSearch) {
  EXPECT_TRUE(passes({{"category", {{"in", {"food", "drink"}}}}}));
  EXPECT_FALSE(passes({{"category", {{"in", {"drink"}}}}}));
  EXPECT_TRUE(passes({{"category", {{"nin", {"drink"}}}}}));
  EXPECT_FALSE(passes({{"category", {{"nin", {"food"}}}}}));
  EXPECT_TRUE(passes({{"missing", {{"nin", {"food"}}}}}));
  EXPECT_TRUE(passes({{"memory", {{"contains", "Peanuts"}}}}));
  EXPECT_FALSE(passes({{"memory", {{"contains", "peanuts"}}}}));
  EXPECT_TRUE(passes({{"memory", {{"icontains", "PEANUT"}}}}));
}

TEST(Mem0Filter, AndOrAndNotNest) {
  EXPECT_TRUE(passes(json::parse(R"({"AND": [{"user_id": "alice"}, {"category": "food"}]})")));
  EXPECT_FALSE(passes(json::parse(R"({"AND": [{"user_id": "alice"}, {"category": "drink"}]})")));
  EXPECT_TRUE(passes(json::parse(R"({"OR": [{"category": "drink"}, {"agent_id": "travel"}]})")));
  EXPECT_FALSE(passes(json::parse(R"({"OR": [{"category": "drink"}, {"agent_id": "x"}]})")));
  EXPECT_TRUE(passes(json::parse(R"({"NOT": [{"category": "drink"}]})")));
  EXPECT_FALSE(passes(json::parse(R"({"NOT": [{"category": "food"}]})")));
  EXPECT_TRUE(passes(json::parse(R"({"user_id": "alice", "OR": [
      {"AND": [{"category": "food"}, {"importance": {"gte": 0.5}}]}, {"category": "drink"}]})")));
  EXPECT_FALSE(passes(json::parse(R"({"user_id": "bob", "OR": [{"category": "food"}]})")));
}

TEST(Mem0Filter, WhatCannotMeanAnythingIsRefusedByName) {
  const auto refused = [](const char* text, const char* says) {
    const std::string why = refusal(json::parse(text));
    EXPECT_NE(why.find(says), std::string::npos) << text << " -> " << why;
  };
  refused(R"({"importance": {"approx": 1}})", "'approx'");
  refused(R"({"category": ["food", "drink"]})", "'category'");
  refused(R"({"AND": ["alice"]})", "object");
  refused(R"({"AND": {"user_id": "alice"}})", "'AND'");
  refused(R"({"OR": []})", "'OR'");
  refused(R"({"category": {"in": "food"}})", "list");
  refused(R"({"memory": {"contains": 3}})", "string");
  refused(R"({"category": {}})", "'category'");
  refused(R"({"category": null})", "'category'");
  refused(R"([])", "object");
  refused(R"("alice")", "object");
  json deep = {{"category", "food"}};
  for (int i = 0; i < 20; ++i) deep = json{{"AND", json::array({deep})}};
  EXPECT_NE(refusal(deep).find("levels"), std::string::npos);
  json wide = json::object();
  for (int i = 0; i < 300; ++i) wide["k" + std::to_string(i)] = i;
  EXPECT_NE(refusal(wide).find("conditions"), std::string::npos);
}

TEST(Mem0Filter, APlainEqualityAtTheTopIsReadable) {
  auto f = Mem0Filter::parse(
      json::parse(R"({"user_id": "alice", "agent_id": "*", "AND": [{"run_id": "r"}]})"));
  ASSERT_TRUE(f.ok());
  std::string value;
  EXPECT_TRUE(f->equality("user_id", &value));
  EXPECT_EQ(value, "alice");
  EXPECT_FALSE(f->equality("agent_id", &value));  // any value is no value to narrow by
  EXPECT_FALSE(f->equality("run_id", &value));    // nested: not a narrowing
}

}  // namespace
}  // namespace parley::memory
