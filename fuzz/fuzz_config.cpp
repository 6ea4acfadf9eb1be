// Fuzz target: the YAML configuration loader, over every module's settings and sections (the
// schema `parley serve` reads). Any input must end in settings plus a list of problems, never
// in a crash or an escaped exception; showing the result must not fail either.
#include <cstdint>
#include <string>
#include <vector>

#include "app/settings.hpp"
#include "config/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto settings = parley::app::settings_schema().defaults();
  std::vector<parley::config::Problem> problems;
  parley::config::apply_yaml(text, "fuzz.yaml", settings, problems);
  for (const auto& p : problems) (void)parley::config::to_string(p);
  (void)settings.to_yaml();
  (void)settings.secret_values();
  return 0;
}
