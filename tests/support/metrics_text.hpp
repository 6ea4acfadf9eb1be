// Reading the Prometheus text format (what /metrics answers) in tests.
#pragma once

#include <optional>
#include <sstream>
#include <string>

namespace parley::testing {

// The value of the sample whose name-and-labels part is exactly `series`, if there is one.
inline std::optional<double> metric_sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

}  // namespace parley::testing
