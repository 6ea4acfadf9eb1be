// Fuzz target: the YAML configuration loader. Any input must end in a configuration plus a
// list of problems, never in a crash or an escaped exception.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  parley::config::Config config;
  std::vector<parley::config::Problem> problems;
  parley::config::apply_yaml(text, "fuzz.yaml", config, problems);
  for (const auto& p : problems) (void)parley::config::to_string(p);
  (void)parley::config::to_yaml(config);
  return 0;
}
