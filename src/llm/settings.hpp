// The model layer's settings: `llm.*` (timeouts, retries, circuit breakers, the default
// model), and the structured sections `providers:`, `routes:` and `models:`, plus the
// providers that the ecosystem's variables add (OPENAI_API_KEY, ANTHROPIC_API_KEY,
// GROQ_API_KEY, OLLAMA_BASE_URL). Declared by llm/ (declare_settings) and read back with
// settings.get<llm::LlmSettings>().
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llm/gateway.hpp"
#include "llm/pricing.hpp"
#include "llm/upstream.hpp"

namespace parley::config {
class Schema;
}

namespace parley::llm {

// A named model route: targets tried in order ("provider/model" or "provider"), or with
// strategy "cost", chosen by the request's complexity and the remaining budget.
struct RouteSettings {
  std::string name;
  std::vector<std::string> targets;
  std::string strategy = "fallback";  // "fallback" or "cost"
  double complexity_threshold = 0.5;  // cost: at or above, start with the strongest target
  double daily_budget_usd = 0;        // cost: per user and day; 0 = no budget
  std::string source;
};

struct LlmSettings {
  std::string default_model;  // route, provider/model or model; empty = first provider
  GatewayOptions gateway;     // retries, back-off, breakers, call limits
  std::chrono::milliseconds usage_flush_interval{1'000};
  std::vector<ProviderSettings> providers;
  std::vector<RouteSettings> routes;
  std::vector<ModelOverride> models;
};

void declare_settings(config::Schema& schema);

// The gateway the settings describe: their providers, the built-in one (always there: the
// default when nothing else is configured, and "builtin/" for anyone who asks), their routes
// and the default route ("default" unless llm.default_model names a route).
std::unique_ptr<Gateway> make_gateway(const LlmSettings& settings, http::HttpClient& client,
                                      GatewayObserver observer);

}  // namespace parley::llm
