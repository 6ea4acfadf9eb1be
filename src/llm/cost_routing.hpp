// Cost-aware routing, for routes with strategy "cost" (the seeds' cost-optimised model
// selection). The route lists its targets from cheapest to strongest. Per request:
//   - when the user's remaining daily budget is under one cent, only the cheapest target;
//   - else, when the request's complexity score reaches the route's threshold, the strongest
//     first and then the others in falling strength (fallbacks get cheaper);
//   - else the cheapest first and then the others in rising strength.
//
// The complexity score is a deliberately simple, explainable number in [0, 1], the sum of:
//   0.40 x min(1, characters of the newest user message / 4000)
//   0.15 x min(1, messages in the conversation / 20)
//   0.15 when the newest message contains code (a ``` fence, or "{" with ";" or "def "/"fn ")
//   0.20 when it asks for reasoning ("explain", "why", "analy", "compare", "step by step",
//        "prove", "design", "debug", "optimi", "trade-off")
//   0.10 when the request offers tools
#pragma once

#include <optional>

#include "llm/gateway.hpp"
#include "llm/types.hpp"

namespace parley::llm {

double complexity_score(const ChatRequest& request);

// The route's targets in the order to try them (see above). `remaining_budget_usd` is empty
// when the route has no budget.
Route plan_cost_route(const Route& route, double complexity,
                      std::optional<double> remaining_budget_usd);

}  // namespace parley::llm
