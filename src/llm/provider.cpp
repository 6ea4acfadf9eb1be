// Defaults for what a provider type may not support.
#include "llm/provider.hpp"

namespace parley::llm {

Task<Result<Embeddings>> Provider::embed(const EmbeddingRequest&, const CallLimits&,
                                         Cancellation&) {
  co_return Error::invalid("provider '" + name() + "' (" + type() + ") does not make embeddings",
                           "embeddings_unsupported");
}

}  // namespace parley::llm
