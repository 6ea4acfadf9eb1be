// The model table: price (USD per million input and output tokens) and context window per
// model. Defaults for common models are built in; the configuration's `models:` section
// overrides or adds entries. A model is found by its exact name, else by the longest known
// name it starts with ("gpt-4o-mini-2024-07-18" is priced as "gpt-4o-mini"); an unknown model
// costs nothing and says so (`known` false), so usage reports can flag it.
//
// Immutable after construction; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::llm {

// Price (USD per million tokens) and context window of a model; the built-in table
// (pricing.cpp) has common models, the configuration's `models:` entries override or add.
struct ModelOverride {
  std::string model;
  std::optional<double> input_per_million;
  std::optional<double> output_per_million;
  std::optional<int64_t> context_window;
};

struct ModelInfo {
  double input_per_million = 0;
  double output_per_million = 0;
  int64_t context_window = 0;  // 0: unknown
  bool known = false;
};

class ModelTable {
 public:
  // Built-in defaults, then `overrides` on top.
  explicit ModelTable(const std::vector<ModelOverride>& overrides = {});

  ModelInfo find(std::string_view model) const;
  // USD for a call to `model` with these token counts.
  double cost(std::string_view model, int64_t input_tokens, int64_t output_tokens) const;

 private:
  std::map<std::string, ModelInfo, std::less<>> models_;
};

}  // namespace parley::llm
