// Defaults for what a provider type may not support.
#include "llm/provider.hpp"

namespace parley::llm {

Task<Result<Embeddings>> Provider::embed(const EmbeddingRequest&, const CallLimits&,
                                         Cancellation&) {
  co_return Error::invalid("provider '" + name() + "' (" + type() + ") does not make embeddings",
                           "embeddings_unsupported");
}

Task<Result<Moderations>> Provider::moderate(const ModerationRequest&, const CallLimits&,
                                             Cancellation&) {
  co_return Error::invalid("provider '" + name() + "' (" + type() + ") has no moderation endpoint",
                           "moderation_unsupported");
}

}  // namespace parley::llm
