// Who the caller is, for clients that adapt to it (the web chat: whose conversations and
// memories it shows, whether it may administer):
//   GET /api/v1/me   {"object":"identity","scope","tenant_id","key_id","user_id","local"}
// `user_id` is the user the server acts for when a request names none: a user key's or
// token's own user, or "anonymous" for service and admin keys.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_identity_routes(http::Router& router, Context& context);

}  // namespace parley::api
