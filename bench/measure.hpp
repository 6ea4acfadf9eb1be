// What the benchmarks measure with: percentiles of samples, and this process's memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace parley::bench {

// The sample at `p` (0..1) of the samples in order (the nearest rank below); 0 for none.
inline double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto i = static_cast<size_t>(p * static_cast<double>(values.size()));
  return values[std::min(values.size() - 1, i)];
}

// This process's resident memory, from /proc.
inline int64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace parley::bench
