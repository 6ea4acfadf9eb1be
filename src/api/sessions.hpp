// Chat sessions over REST:
//   POST   /api/v1/sessions           create            201 + Location
//   GET    /api/v1/sessions           list (?user_id, ?q: title contains, ?limit, ?cursor),
//                                     newest first; a user key sees its own, a service key
//                                     its tenant's
//   GET    /api/v1/sessions/{id}      read
//   PATCH  /api/v1/sessions/{id}      change title and/or metadata
//   DELETE /api/v1/sessions/{id}      delete            204
// Bodies are validated field by field; an error names the field (`param`). Unknown fields are
// rejected, so a typo or a field the client must not set never passes silently.
// A session that belongs to someone else is answered as not found (404), never 403: the
// caller learns nothing about other users' ids.
#pragma once

// Boost 1.74's asio/awaitable.hpp misses this include on g++ 12.
#include <utility>

#include <optional>
#include <string>

#include "api/access.hpp"
#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_session_routes(http::Router& router, Context& context);

// A session as every route shows it (also the user export, api/admin.cpp), appended as JSON.
void append_session(std::string& out, const store::Session& session);
// A session's summary (summary/) as the sessions API and the user export show it.
nlohmann::json summary_json(const store::Summary& summary);

// The session, when the request's principal may see it; kNotFound otherwise (other routes
// reach sessions too: messages, chat turns).
Task<Result<store::Session>> owned_session(Context& ctx, const http::Request& req,
                                           const std::string& id);
// The user a listing is confined to: a user principal's own (naming another is a 403),
// otherwise what the request asked for.
Result<std::optional<std::string>> user_filter(const http::Request& req,
                                               std::optional<std::string> requested);
// The end user a request acts for (Access::actor, or the anonymous user without a guard).
Task<Result<Actor>> acting_user(Context& ctx, http::Request& req,
                                const std::optional<std::string>& requested);

}  // namespace parley::api
