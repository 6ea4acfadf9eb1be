#include "llm/blocking_completion.hpp"

#include <utility>

#include <future>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "llm/accounting.hpp"

namespace parley::llm {

bool has_model(const Route& route) {
  for (const auto& target : route.targets) {
    if (target.provider != nullptr && std::string_view(target.provider->type()) != "builtin") {
      return true;
    }
  }
  return false;
}

CompleteFn blocking_completion(Gateway& gateway, IoPool& io, Route route, Accountant* accountant,
                               const Clock& clock, CompletionUse use) {
  return [&gateway, &io, route = std::move(route), accountant, &clock, use = std::move(use)](
             const std::string& tenant_id, std::vector<Message> messages) -> Result<ModelReply> {
    auto request = std::make_shared<ChatRequest>();
    request->messages = std::move(messages);
    request->temperature = 0.0;
    if (use.max_tokens > 0) request->max_tokens = use.max_tokens;
    if (use.json_object) request->extra["response_format"] = {{"type", "json_object"}};
    auto promise = std::make_shared<std::promise<Result<GatewayResult>>>();
    auto future = promise->get_future();
    boost::asio::co_spawn(
        io.main(),
        [&gateway, route, request, promise]() -> Task<void> {
          Cancellation cancel;
          GatewayResult out;
          auto done = co_await gateway.chat(route, *request, cancel, nullptr, out);
          if (done) {
            promise->set_value(std::move(out));
          } else {
            promise->set_value(std::move(done).error());
          }
        },
        boost::asio::detached);
    // The call has its own time limits (llm.*); a loop that stopped never answers.
    while (future.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
      if (io.main().stopped()) {
        return Error::unavailable("shutting down: the model call was abandoned", "shutting_down");
      }
    }
    auto result = future.get();
    if (!result) return std::move(result).error();
    if (accountant != nullptr) {
      store::UsageRecord r;
      r.at_ms = to_unix_ms(clock.now());
      r.tenant_id = tenant_id;
      r.source = use.usage_source;
      r.provider = result->provider;
      r.model = result->model;
      r.input_tokens = result->completion.usage.input_tokens;
      r.output_tokens = result->completion.usage.output_tokens;
      r.cost_usd = accountant->models().cost(result->model, r.input_tokens, r.output_tokens);
      r.status = "ok";
      accountant->enqueue(std::move(r));
    }
    return ModelReply{std::move(result->completion.content), result->provider, result->model};
  };
}

Result<CompleteFn> job_model(std::string_view name, Gateway& gateway, IoPool& io,
                             Accountant* accountant, const Clock& clock, CompletionUse use) {
  auto route = gateway.resolve(name.empty() ? std::string_view(gateway.default_route()) : name);
  if (!route) return std::move(route).error();
  if (!has_model(*route)) return CompleteFn();
  return blocking_completion(gateway, io, std::move(*route), accountant, clock, std::move(use));
}

}  // namespace parley::llm
