// Stateless turns (see stateless_turn.hpp).
#include "api/stateless_turn.hpp"

#include "api/access.hpp"
#include "auth/principal.hpp"
#include "cache/response_cache.hpp"

namespace parley::api {

Result<chat::Turn> stateless_turn(Context& ctx, http::Request& req, std::string model, bool stream,
                                  llm::ChatRequest request) {
  auto actor = ctx.access.resolve_actor(
      req, request.user.empty() ? std::nullopt : std::optional<std::string>(request.user));
  if (!actor) return std::move(actor).error();
  if (!request.user.empty() || (req.principal && req.principal->scope == auth::Scope::kUser)) {
    request.user = actor->user_id;
  }
  chat::Turn turn;
  turn.source = "api";
  turn.actor = std::move(*actor);
  turn.request_id = req.request_id;
  turn.model = std::move(model);
  turn.stream = stream;
  turn.prompt = std::move(request);
  return turn;
}

void follow_client(http::Request& req, chat::Turn& turn, llm::Cancellation& cancel) {
  if (req.channel) req.channel->watch([&cancel] { cancel.request(llm::finish::kCancelled); });
  turn.cancel = &cancel;
  cache::apply_request_directives(req.header("cache-control"), turn);
}

std::optional<Error> reply_error(const chat::Turn& turn) {
  if (turn.output_blocked) return turn.output_blocked;
  return turn.generation_error;
}

}  // namespace parley::api
