// The complexity score and target ordering of cost-aware routes.
#include "llm/cost_routing.hpp"

#include <algorithm>
#include <cctype>

namespace parley::llm {

double complexity_score(const ChatRequest& request) {
  std::string newest;
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") {
      newest = it->content;
      break;
    }
  }
  std::string lower(newest);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  double score = 0.40 * std::min(1.0, static_cast<double>(newest.size()) / 4000.0);
  score += 0.15 * std::min(1.0, static_cast<double>(request.messages.size()) / 20.0);
  const bool code =
      lower.find("```") != std::string::npos ||
      (lower.find('{') != std::string::npos && lower.find(';') != std::string::npos) ||
      lower.find("def ") != std::string::npos || lower.find("fn ") != std::string::npos;
  if (code) score += 0.15;
  static constexpr const char* kReasoning[] = {"explain",      "why",      "analy",  "compare",
                                               "step by step", "prove",    "design", "debug",
                                               "optimi",       "trade-off"};
  for (const char* cue : kReasoning) {
    if (lower.find(cue) != std::string::npos) {
      score += 0.20;
      break;
    }
  }
  if (request.tools.is_array() && !request.tools.empty()) score += 0.10;
  return std::min(1.0, score);
}

Route plan_cost_route(const Route& route, double complexity,
                      std::optional<double> remaining_budget_usd) {
  Route planned = route;
  if (route.targets.empty()) return planned;
  if (remaining_budget_usd && *remaining_budget_usd < 0.01) {
    planned.targets = {route.targets.front()};
    return planned;
  }
  if (complexity >= route.complexity_threshold) {
    std::reverse(planned.targets.begin(), planned.targets.end());
  }
  return planned;
}

}  // namespace parley::llm
