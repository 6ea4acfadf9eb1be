// The YAML entry reader of structured sections (see entry.hpp).
#include "config/entry.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace parley::config {

std::string where(const std::string& source, const YAML::Node& node) {
  return source + ":" + std::to_string(node.Mark().line + 1);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

void Entry::problem(const std::string& key, const std::string& message) {
  problems_.push_back({path_ + (key.empty() ? "" : "." + key), "", where(source_, node_), message});
}

std::optional<std::string> Entry::text(const std::string& key) {
  seen_.push_back(key);
  auto v = node_[key];
  if (!v) return std::nullopt;
  if (!v.IsScalar()) {
    problem(key, "must be a string");
    return std::nullopt;
  }
  return v.Scalar();
}

std::optional<std::string> Entry::secret(const std::string& key) {
  auto direct = text(key);
  auto file = text(key + "_file");
  if (!file) return direct;
  if (direct) {
    problem(key, "set " + key + " or " + key + "_file, not both");
    return std::nullopt;
  }
  std::ifstream in(*file, std::ios::binary);
  if (!in) {
    problem(key + "_file", "cannot read secret file '" + *file + "'");
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string out = ss.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) {
    problem(key + "_file", "secret file '" + *file + "' is empty");
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> Entry::list(const std::string& key) {
  seen_.push_back(key);
  std::vector<std::string> out;
  auto v = node_[key];
  if (!v) return out;
  if (v.IsScalar()) return {v.Scalar()};
  if (!v.IsSequence()) {
    problem(key, "must be a list of strings");
    return out;
  }
  for (const auto& item : v) {
    if (item.IsScalar()) {
      out.push_back(item.Scalar());
    } else {
      problem(key, "must be a list of strings");
    }
  }
  return out;
}

std::optional<double> Entry::number(const std::string& key, double min, double max) {
  auto t = text(key);
  if (!t) return std::nullopt;
  double value = 0;
  if (auto err = detail::parse_number(*t, min, max, value)) {
    problem(key, *err);
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Entry::boolean(const std::string& key) {
  auto t = text(key);
  if (!t) return std::nullopt;
  bool value = false;
  if (auto err = detail::parse_bool(*t, value)) {
    problem(key, *err);
    return std::nullopt;
  }
  return value;
}

std::vector<std::pair<std::string, std::string>> Entry::map(const std::string& key) {
  seen_.push_back(key);
  std::vector<std::pair<std::string, std::string>> out;
  auto v = node_[key];
  if (!v) return out;
  if (!v.IsMap()) {
    problem(key, "must be a mapping of names to values");
    return out;
  }
  for (const auto& kv : v) {
    if (!kv.second.IsScalar()) {
      problem(key, "values must be strings");
      continue;
    }
    out.emplace_back(kv.first.as<std::string>(), kv.second.Scalar());
  }
  return out;
}

void Entry::reject_unknown() {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    auto key = kv.first.as<std::string>();
    if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) problem(key, "unknown key");
  }
}

void for_each_entry(const YAML::Node& node, const std::string& key, const std::string& source,
                    Problems& problems,
                    const std::function<void(const std::string& name, const YAML::Node& value,
                                             const std::string& path)>& parse) {
  if (!node.IsMap()) {
    problems.push_back({key, "", where(source, node), "must be a mapping of names to entries"});
    return;
  }
  for (const auto& kv : node) {
    std::string name;
    try {
      name = kv.first.as<std::string>();
    } catch (const YAML::Exception&) {
      problems.push_back({key, "", where(source, kv.first), "a name that is not a string"});
      continue;
    }
    std::string path = key;
    path.append(".").append(name);
    if (!valid_name(name)) {
      problems.push_back({path, "", where(source, kv.first),
                          "names are 1 to 64 letters, digits, '-', '_' or '.'"});
      continue;
    }
    parse(name, kv.second, path);
  }
}

}  // namespace parley::config
