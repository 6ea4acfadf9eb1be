// GET /api/v1/me (see identity.hpp).
#include "api/identity.hpp"

#include <nlohmann/json.hpp>

#include "api/access.hpp"
#include "auth/principal.hpp"
#include "http/errors.hpp"

namespace parley::api {

void add_identity_routes(http::Router& router, Context& ctx) {
  router.add(http::Method::kGet, "/api/v1/me", http::kAuthenticated,
             [&ctx](http::Request& req) -> Task<http::Response> {
               auto actor = ctx.access.resolve_actor(req, std::nullopt);
               if (!actor) co_return http::error_response(actor.error(), req.request_id);
               const auth::Principal* who = req.principal;
               nlohmann::json body = {
                   {"object", "identity"},
                   {"scope", who ? std::string(auth::scope_name(who->scope)) : "admin"},
                   {"tenant_id", actor->tenant_id},
                   {"key_id", who ? who->key_id : std::string("local")},
                   {"user_id", actor->user_id},
                   {"local", !who || who->local()}};
               co_return http::Response::json(200, body);
             });
}

}  // namespace parley::api
