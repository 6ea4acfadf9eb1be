// What the assistant remembers about a user, in that user's control (store/memory.hpp):
//   GET    /api/v1/users/{id}/memories               list (?kind=a,b ?retention ?status=active|
//                                                     retired|all ?assistant ?session_id
//                                                     ?limit ?cursor), newest first
//   POST   /api/v1/users/{id}/memories               remember a text (201; 200 with the memory
//                                                     it already is when the text is known)
//   DELETE /api/v1/users/{id}/memories               forget every memory (narrowed by the same
//                                                     filters as the list); how many
//   POST   /api/v1/users/{id}/memories/search        the memories closest to a query, scored
//   GET    /api/v1/users/{id}/memories/{memory_id}   one memory
//   PATCH  /api/v1/users/{id}/memories/{memory_id}   change its text, kind, slot, importance,
//                                                     retention or metadata (history kept)
//   DELETE /api/v1/users/{id}/memories/{memory_id}   forget it (its history keeps no text)
//   GET    /api/v1/users/{id}/memories/{memory_id}/history   every change, oldest first
// A user key reaches only its own user (another user's memories are 404, as if missing); a
// service key the users of its tenant; an admin any user (?tenant_id, else "default").
#pragma once

#include <string>

#include "api/context.hpp"
#include "http/router.hpp"
#include "memory/settings.hpp"

namespace parley::knowledge {
class Embedders;
}

namespace parley::api {

// `embedder` is the canonical name memories' vectors come from (memory.embedder, else
// knowledge.embedder).
void add_memory_routes(http::Router& router, Context& context,
                       const memory::MemorySettings& settings, knowledge::Embedders& embedders,
                       std::string embedder);

}  // namespace parley::api
