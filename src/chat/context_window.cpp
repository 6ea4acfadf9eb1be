// Oldest-first dropping of history to fit the context window.
#include "chat/context_window.hpp"

#include <algorithm>

#include "llm/upstream.hpp"

namespace parley::chat {

FitResult fit_context(const FitInput& in) {
  FitResult out;
  const bool has_system = !in.system.content.empty();
  int64_t used = llm::estimate_tokens(std::vector<llm::Message>{in.newest});
  if (has_system) used += llm::estimate_tokens(std::vector<llm::Message>{in.system});
  const int64_t budget = std::max<int64_t>(0, in.context_window - in.reply_reserve);
  const auto cost_of = [&](size_t i) {
    const int64_t known = i < in.known_tokens.size() ? in.known_tokens[i] : 0;
    return known > 0 ? known + 4 : llm::estimate_tokens(std::vector<llm::Message>{in.history[i]});
  };
  out.history_budget = std::max<int64_t>(0, budget - used);
  for (size_t i = 0; i < in.history.size(); ++i) out.history_tokens += cost_of(i);
  // Walk back from the newest history message; keep while it fits.
  size_t keep_from = in.history.size();
  while (keep_from > 0) {
    const size_t i = keep_from - 1;
    const int64_t cost = cost_of(i);
    if (used + cost > budget) break;
    used += cost;
    keep_from = i;
  }
  // A tool result must not lead: its call would be missing (providers reject that).
  while (keep_from < in.history.size() && in.history[keep_from].role == "tool") ++keep_from;
  if (has_system) out.messages.push_back(in.system);
  out.messages.insert(out.messages.end(),
                      in.history.begin() + static_cast<std::ptrdiff_t>(keep_from),
                      in.history.end());
  out.messages.push_back(in.newest);
  out.estimated_tokens = used;
  out.dropped = static_cast<int>(keep_from);
  return out;
}

}  // namespace parley::chat
