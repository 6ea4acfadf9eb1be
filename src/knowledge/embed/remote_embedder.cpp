// Embeddings from an OpenAI-compatible endpoint (see remote_embedder.hpp).
#include "knowledge/embed/remote_embedder.hpp"

#include <algorithm>

namespace parley::knowledge {

RemoteEmbedder::RemoteEmbedder(llm::Gateway& gateway, llm::Route route, std::string model,
                               int batch, EmbeddingCache* cache)
    : gateway_(gateway),
      route_(std::move(route)),
      model_(std::move(model)),
      batch_(static_cast<size_t>(std::max(1, batch))),
      cache_(cache) {}

Task<Result<Vectors>> RemoteEmbedder::embed(std::vector<std::string> texts) {
  std::vector<std::vector<float>> found(texts.size());
  std::vector<size_t> missing;  // indexes of texts to ask for
  for (size_t i = 0; i < texts.size(); ++i) {
    auto cached = cache_ ? cache_->get(model_, texts[i]) : std::nullopt;
    if (cached) {
      found[i] = std::move(*cached);
    } else {
      missing.push_back(i);
    }
  }
  int64_t input_tokens = 0;
  for (size_t first = 0; first < missing.size(); first += batch_) {
    const size_t last = std::min(missing.size(), first + batch_);
    llm::EmbeddingRequest request;
    request.inputs.reserve(last - first);
    for (size_t j = first; j < last; ++j) request.inputs.push_back(texts[missing[j]]);
    llm::Cancellation cancel;
    auto answer = co_await gateway_.embed(route_, std::move(request), cancel);
    if (!answer) co_return std::move(answer).error();
    if (answer->vectors.size() != last - first) {
      co_return Error::bad_gateway("the embedding endpoint returned " +
                                   std::to_string(answer->vectors.size()) + " vectors for " +
                                   std::to_string(last - first) + " texts");
    }
    input_tokens += answer->usage.input_tokens;
    for (size_t j = first; j < last; ++j) {
      auto& vector = answer->vectors[j - first];
      if (vector.empty()) co_return Error::bad_gateway("the embedding endpoint returned no vector");
      normalize(vector);
      if (cache_) cache_->put(model_, texts[missing[j]], vector);
      found[missing[j]] = std::move(vector);
    }
  }
  Vectors out;
  if (!found.empty()) out.dimension = static_cast<int>(found.front().size());
  out.values.reserve(found.size() * static_cast<size_t>(out.dimension));
  for (const auto& v : found) {
    if (v.size() != static_cast<size_t>(out.dimension)) {
      co_return Error::bad_gateway("the embedding endpoint returned vectors of different sizes (" +
                                   std::to_string(v.size()) + " and " +
                                   std::to_string(out.dimension) + ")");
    }
    out.values.insert(out.values.end(), v.begin(), v.end());
  }
  out.input_tokens = input_tokens;
  if (out.dimension > 0) dimension_.store(out.dimension);
  co_return out;
}

}  // namespace parley::knowledge
