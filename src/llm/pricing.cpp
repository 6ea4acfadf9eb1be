// Built-in prices and context windows (list prices as published by the providers; override
// them in the configuration when yours differ).
#include "llm/pricing.hpp"

namespace parley::llm {

ModelTable::ModelTable(const std::vector<ModelOverride>& overrides) {
  struct Row {
    const char* model;
    double input;
    double output;
    int64_t context;
  };
  static constexpr Row kDefaults[] = {
      {"gpt-4o", 2.50, 10.00, 128'000},
      {"gpt-4o-mini", 0.15, 0.60, 128'000},
      {"gpt-4.1", 2.00, 8.00, 1'047'576},
      {"gpt-4.1-mini", 0.40, 1.60, 1'047'576},
      {"gpt-4.1-nano", 0.10, 0.40, 1'047'576},
      {"gpt-4-turbo", 10.00, 30.00, 128'000},
      {"gpt-4", 30.00, 60.00, 8'192},
      {"gpt-3.5-turbo", 0.50, 1.50, 16'385},
      {"o3-mini", 1.10, 4.40, 200'000},
      {"o4-mini", 1.10, 4.40, 200'000},
      {"text-embedding-3-small", 0.02, 0, 8'191},
      {"text-embedding-3-large", 0.13, 0, 8'191},
      {"claude-3-haiku", 0.25, 1.25, 200'000},
      {"claude-3-5-haiku", 0.80, 4.00, 200'000},
      {"claude-3-5-sonnet", 3.00, 15.00, 200'000},
      {"claude-3-7-sonnet", 3.00, 15.00, 200'000},
      {"claude-sonnet-4", 3.00, 15.00, 200'000},
      {"claude-opus-4", 15.00, 75.00, 200'000},
      {"llama-3.3-70b-versatile", 0.59, 0.79, 131'072},
      {"llama-3.1-8b-instant", 0.05, 0.08, 131'072},
      {"mixtral-8x7b-32768", 0.24, 0.24, 32'768},
      {"parley-builtin", 0, 0, 1'000'000},
  };
  for (const auto& row : kDefaults) {
    models_[row.model] = ModelInfo{row.input, row.output, row.context, true};
  }
  for (const auto& o : overrides) {
    ModelInfo base = find(o.model);
    if (o.input_per_million) base.input_per_million = *o.input_per_million;
    if (o.output_per_million) base.output_per_million = *o.output_per_million;
    if (o.context_window) base.context_window = *o.context_window;
    base.known = true;
    models_[o.model] = base;
  }
}

ModelInfo ModelTable::find(std::string_view model) const {
  // "provider/model" names price as the model.
  if (auto slash = model.rfind('/');
      slash != std::string_view::npos && models_.find(model) == models_.end()) {
    model = model.substr(slash + 1);
  }
  if (auto it = models_.find(model); it != models_.end()) return it->second;
  const ModelInfo* best = nullptr;
  size_t best_length = 0;
  for (const auto& [name, info] : models_) {
    if (name.size() > best_length && model.substr(0, name.size()) == name) {
      best = &info;
      best_length = name.size();
    }
  }
  return best ? *best : ModelInfo{};
}

double ModelTable::cost(std::string_view model, int64_t input_tokens, int64_t output_tokens) const {
  const ModelInfo info = find(model);
  return (static_cast<double>(input_tokens) * info.input_per_million +
          static_cast<double>(output_tokens) * info.output_per_million) /
         1e6;
}

}  // namespace parley::llm
