// A chat model's answer from a job's worker thread: the call runs on the event loop (libcurl
// lives there) while the worker waits for it, the way Embedders::embed_blocking does for
// remote embeddings. What the call cost is booked as usage of the tenant (source "memory").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/io_pool.hpp"
#include "core/result.hpp"
#include "llm/gateway.hpp"

namespace parley::llm {
class Accountant;
}

namespace parley::memory {

struct ModelReply {
  std::string content;
  std::string provider;
  std::string model;
};

// One non-streamed completion of `messages` for a tenant, asking for a JSON object. Blocking.
using CompleteFn = std::function<Result<ModelReply>(const std::string& tenant_id,
                                                    std::vector<llm::Message> messages)>;

// Through `gateway` on `route`, on `io`'s main loop; kUnavailable when the loops stopped.
// `accountant` may be null (nothing booked).
CompleteFn blocking_completion(llm::Gateway& gateway, IoPool& io, llm::Route route,
                               llm::Accountant* accountant, const Clock& clock);

// Whether `route` is answered by a model rather than by the built-in provider (which has none
// to extract with).
bool has_model(const llm::Route& route);

}  // namespace parley::memory
