// Routes for operators (admin keys only; see access.cpp's table):
//   POST   /api/v1/admin/keys            create a key; the token is in the answer, once
//   GET    /api/v1/admin/keys            list (?tenant_id, ?include_revoked=true)
//   GET    /api/v1/admin/keys/{id}       one key (never its secret or hash)
//   DELETE /api/v1/admin/keys/{id}       revoke (the row stays, for audit)
//   GET    /api/v1/admin/moderation/logs moderation decisions (?user_id, ?tenant_id,
//                                        ?action, ?since, ?limit, ?cursor), newest first
//   GET    /api/v1/admin/jobs            the job queue (?state, ?limit), newest first, with
//                                        how many jobs are in each state
//   GET    /api/v1/admin/jobs/{id}       one job: its payload, attempts, last error, result
//   POST   /api/v1/admin/jobs/{id}/retry a dead job queued again with fresh attempts
// And for everyone, on their own data (the right of access and the right to erasure):
//   GET    /api/v1/users/{id}/export     everything held about the user, as JSON
//   DELETE /api/v1/users/{id}            erase it all: 202 with the job that does it (its
//                                        result holds the counts)
// A user key may export or erase only its own user (another user is a 404); a service key
// the users of its tenant; an admin anyone (?tenant_id narrows to one tenant).
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"

namespace parley::api {

void add_admin_routes(http::Router& router, Context& context);
void add_user_data_routes(http::Router& router, Context& context);

}  // namespace parley::api
