// A chat model's answer from a job's worker thread (memory extraction, conversation
// summaries): the call runs on the event loop (libcurl lives there) while the worker waits for
// it, the way Embedders::embed_blocking does for remote embeddings. What the call cost is
// booked as usage of the tenant, with the source the job names ("memory", "summary").
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

struct ModelReply {
  std::string content;
  std::string provider;
  std::string model;
};

// One non-streamed completion of `messages` for a tenant. Blocking.
using CompleteFn =
    std::function<Result<ModelReply>(const std::string& tenant_id, std::vector<Message> messages)>;

// What the calls are for.
struct CompletionUse {
  std::string usage_source;  // booked with the usage ("memory", "summary")
  bool json_object = false;  // asks for `response_format: json_object`
  int64_t max_tokens = 0;    // 0: the model's default
};

// Through `gateway` on `route`, on `io`'s main loop; kUnavailable when the loops stopped.
// `accountant` may be null (nothing booked).
CompleteFn blocking_completion(Gateway& gateway, IoPool& io, Route route, Accountant* accountant,
                               const Clock& clock, CompletionUse use);

// Whether `route` is answered by a model rather than by the built-in provider (which has none
// to extract or summarise with).
bool has_model(const Route& route);

// The model a job's setting names (a route, provider/model or model; "" means the default
// route), when it is one: empty when the built-in provider answers it (the job then does
// without). kInvalidArgument when it names nothing the gateway knows.
Result<CompleteFn> job_model(std::string_view name, Gateway& gateway, IoPool& io,
                             Accountant* accountant, const Clock& clock, CompletionUse use);

}  // namespace parley::llm
