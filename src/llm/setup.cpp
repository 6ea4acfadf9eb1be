// The gateway built from the model settings (see settings.hpp, make_gateway).
#include <algorithm>

#include "llm/anthropic/anthropic_provider.hpp"
#include "llm/builtin/builtin_provider.hpp"
#include "llm/openai/openai_provider.hpp"
#include "llm/settings.hpp"

namespace parley::llm {
namespace {

std::vector<std::unique_ptr<Provider>> make_providers(const LlmSettings& settings,
                                                      http::HttpClient& client) {
  std::vector<std::unique_ptr<Provider>> out;
  for (const auto& p : settings.providers) {
    if (p.type == "anthropic") {
      out.push_back(make_anthropic_provider(p, client));
    } else if (p.type == "builtin") {
      out.push_back(make_builtin_provider(p.name));
    } else {
      out.push_back(make_openai_provider(p, client));
    }
  }
  const bool has_builtin =
      std::any_of(out.begin(), out.end(), [](const auto& p) { return p->name() == "builtin"; });
  if (!has_builtin) out.push_back(make_builtin_provider("builtin"));
  return out;
}

Provider* find_provider(const std::vector<std::unique_ptr<Provider>>& providers,
                        std::string_view name) {
  for (const auto& p : providers) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

// "provider/model" or "provider" as a target; nullopt when the provider does not exist.
std::optional<Target> parse_target(const std::vector<std::unique_ptr<Provider>>& providers,
                                   const std::string& text) {
  const auto slash = text.find('/');
  Provider* p = find_provider(providers, text.substr(0, slash));
  if (!p) return std::nullopt;
  std::string model = slash == std::string::npos ? std::string() : text.substr(slash + 1);
  if (model.empty()) model = p->default_model();
  return Target{p, model};
}

std::pair<std::map<std::string, Route>, std::string> make_routes(
    const LlmSettings& settings, const std::vector<std::unique_ptr<Provider>>& providers) {
  std::map<std::string, Route> routes;
  for (const auto& r : settings.routes) {
    Route route;
    route.name = r.name;
    route.strategy = r.strategy;
    route.complexity_threshold = r.complexity_threshold;
    route.daily_budget_usd = r.daily_budget_usd;
    for (const auto& t : r.targets) {
      if (auto target = parse_target(providers, t)) route.targets.push_back(*target);
    }
    routes[r.name] = std::move(route);
  }
  const std::string& wanted = settings.default_model;
  if (!wanted.empty() && routes.count(wanted)) return {std::move(routes), wanted};
  Route def;
  def.name = "default";
  if (!wanted.empty()) {
    if (auto target = parse_target(providers, wanted);
        target && wanted.find('/') != std::string::npos) {
      def.targets.push_back(*target);
    } else {
      // A bare model: the first configured provider that lists it, else the first provider.
      Provider* chosen = providers.front().get();
      for (const auto& p : providers) {
        const auto& listed = p->models();
        if (std::find(listed.begin(), listed.end(), wanted) != listed.end()) {
          chosen = p.get();
          break;
        }
      }
      def.targets.push_back({chosen, wanted});
    }
  } else {
    // The first configured provider; the built-in one (last) when there is none.
    def.targets.push_back({providers.front().get(), providers.front()->default_model()});
  }
  routes["default"] = std::move(def);
  return {std::move(routes), "default"};
}

}  // namespace

std::unique_ptr<Gateway> make_gateway(const LlmSettings& settings, http::HttpClient& client,
                                      GatewayObserver observer) {
  auto providers = make_providers(settings, client);
  auto [routes, default_route] = make_routes(settings, providers);
  return std::make_unique<Gateway>(std::move(providers), std::move(routes), default_route,
                                   settings.gateway, std::move(observer));
}

}  // namespace parley::llm
