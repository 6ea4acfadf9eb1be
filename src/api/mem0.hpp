// A Mem0-compatible surface over the same memories (store/memory.hpp), so tools written for
// Mem0's self-hosted server work when pointed at `<parley>/mem0`:
//   POST   /mem0/memories                 add from messages: extracted (infer, the default; a
//                                         `memory.extract` job, waited for up to
//                                         memory.mem0_add_wait, else PENDING with its id) or
//                                         each message kept as it is (infer: false)
//   GET    /mem0/memories                 every memory of a user_id / agent_id / run_id
//   DELETE /mem0/memories                 forget them
//   POST   /mem0/search                   the memories closest to a query (top_k or limit,
//                                         threshold, filters)
//   GET    /mem0/memories/{id}            one memory
//   PUT    /mem0/memories/{id}            change its text (text, memory or data)
//   DELETE /mem0/memories/{id}            forget it
//   GET    /mem0/memories/{id}/history    its changes, oldest first
// Mem0's shapes: {"results": [{"id", "memory", "event"}]} from an add, memories as {"id",
// "memory", "hash", "metadata", "created_at", "updated_at", "user_id", "agent_id", "run_id"},
// {"message"} from changes. `agent_id` is Parley's assistant scope and `run_id` its session
// scope. Errors are Parley's envelope with Mem0's `detail` beside it.
//
// Keys: `X-API-Key` (Mem0's header) or `Authorization: Bearer`. Unlike Mem0's server, where any
// key reaches every memory, a user key reaches only its own user's memories, a service key
// only its tenant's users, an admin any (`?tenant_id`, else "default"); anything else is a 404.
// There is no /configure or /reset: both would reach across tenants.
#pragma once

#include <string>

#include "api/context.hpp"
#include "http/router.hpp"
#include "memory/settings.hpp"

namespace parley::knowledge {
class Embedders;
}

namespace parley::api {

void add_mem0_routes(http::Router& router, Context& context, const memory::MemorySettings& settings,
                     knowledge::Embedders& embedders, std::string embedder);

}  // namespace parley::api
