// Chat sessions over REST:
//   POST   /api/v1/sessions           create            201 + Location
//   GET    /api/v1/sessions           list (?user_id, ?limit, ?cursor), newest first
//   GET    /api/v1/sessions/{id}      read
//   PATCH  /api/v1/sessions/{id}      change title and/or metadata
//   DELETE /api/v1/sessions/{id}      delete            204
// Bodies are validated field by field; an error names the field (`param`). Unknown fields are
// rejected, so a typo or a field the client must not set never passes silently.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_session_routes(http::Router& router, Context& context);

}  // namespace parley::api
