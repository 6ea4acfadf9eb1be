#include "memory/mem0_filter.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace parley::memory {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 16;
constexpr int kMaxConditions = 256;

constexpr std::array<std::string_view, 10> kOperators = {
    "eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "icontains"};

bool is_logic(std::string_view key) { return key == "AND" || key == "OR" || key == "NOT"; }

bool is_scalar(const json& v) { return v.is_string() || v.is_number() || v.is_boolean(); }

Error bad(const std::string& why) { return Error::invalid_field("filters", why); }

// "'op' on 'key'", for messages.
std::string op_on(const std::string& op, const std::string& key) {
  std::string out = "'";
  out += op;
  out += "' on '";
  out += key;
  out += "'";
  return out;
}

struct Checker {
  int conditions = 0;

  Result<void> node(const json& f, int depth) {
    if (depth > kMaxDepth) return bad("nest at most " + std::to_string(kMaxDepth) + " levels");
    if (!f.is_object()) return bad("each filter must be an object");
    for (const auto& [key, value] : f.items()) {
      if (++conditions > kMaxConditions) {
        return bad("hold at most " + std::to_string(kMaxConditions) + " conditions");
      }
      if (is_logic(key)) {
        if (!value.is_array() || value.empty()) {
          return bad("'" + key + "' takes a non-empty list of filters");
        }
        for (const auto& inner : value) {
          if (auto r = node(inner, depth + 1); !r) return r;
        }
        continue;
      }
      if (key.empty()) return bad("a field name is empty");
      if (is_scalar(value)) continue;
      if (!value.is_object() || value.empty()) {
        return bad("'" + key +
                   "' must be a value, or operators such as {\"in\": [...]} or {\"gte\": 1}");
      }
      for (const auto& [op, operand] : value.items()) {
        if (std::find(kOperators.begin(), kOperators.end(), op) == kOperators.end()) {
          return bad(op_on(op, key) +
                     ": not an operator (eq, ne, in, nin, gt, gte, lt, lte, contains, "
                     "icontains)");
        }
        if (op == "in" || op == "nin") {
          const bool ok =
              operand.is_array() && std::all_of(operand.begin(), operand.end(),
                                                [](const json& v) { return is_scalar(v); });
          if (!ok) return bad(op_on(op, key) + " takes a list of values");
        } else if (op == "contains" || op == "icontains") {
          if (!operand.is_string()) return bad(op_on(op, key) + " takes a string");
        } else if (!is_scalar(operand)) {
          return bad(op_on(op, key) + " takes a value");
        }
      }
    }
    return {};
  }
};

// Equal as Mem0 compares: numbers by value (1 == 1.0), everything else exactly.
bool same(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

// -1, 0, 1; nullopt when the two cannot be ordered (a number against a string).
std::optional<int> order(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>();
    const double y = b.get<double>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains(const json& value, const std::string& needle, bool fold) {
  if (!value.is_string()) return false;
  const auto& text = value.get_ref<const std::string&>();
  if (!fold) return text.find(needle) != std::string::npos;
  return lower(text).find(lower(needle)) != std::string::npos;
}

bool holds(const json* value, const std::string& op, const json& operand) {
  const bool present = value != nullptr && !value->is_null();
  if (op == "eq") return present && same(*value, operand);
  if (op == "ne") return !present || !same(*value, operand);
  if (op == "in" || op == "nin") {
    const bool found = present && std::any_of(operand.begin(), operand.end(),
                                              [&](const json& v) { return same(*value, v); });
    return op == "in" ? found : !found;
  }
  if (op == "contains" || op == "icontains") {
    return present && contains(*value, operand.get<std::string>(), op == "icontains");
  }
  if (!present) return false;
  const auto o = order(*value, operand);
  if (!o) return false;
  if (op == "gt") return *o > 0;
  if (op == "gte") return *o >= 0;
  if (op == "lt") return *o < 0;
  return *o <= 0;  // lte
}

bool matches_node(const json& f, const json& fields) {
  for (const auto& [key, condition] : f.items()) {
    if (key == "AND" || key == "OR" || key == "NOT") {
      const bool any = std::any_of(condition.begin(), condition.end(),
                                   [&](const json& inner) { return matches_node(inner, fields); });
      const bool all = std::all_of(condition.begin(), condition.end(),
                                   [&](const json& inner) { return matches_node(inner, fields); });
      const bool ok = key == "AND" ? all : key == "OR" ? any : !any;
      if (!ok) return false;
      continue;
    }
    auto it = fields.find(key);
    const json* value = it == fields.end() ? nullptr : &*it;
    if (condition.is_string() && condition.get_ref<const std::string&>() == "*") {
      if (value == nullptr || value->is_null()) return false;
      continue;
    }
    if (is_scalar(condition)) {
      if (!holds(value, "eq", condition)) return false;
      continue;
    }
    for (const auto& [op, operand] : condition.items()) {
      if (!holds(value, op, operand)) return false;
    }
  }
  return true;
}

}  // namespace

Result<Mem0Filter> Mem0Filter::parse(const json& filters) {
  if (filters.is_null()) return Mem0Filter();
  Checker checker;
  if (auto r = checker.node(filters, 1); !r) return std::move(r).error();
  return Mem0Filter(filters);
}

bool Mem0Filter::matches(const json& fields) const { return matches_node(tree_, fields); }

bool Mem0Filter::equality(const std::string& key, std::string* value) const {
  auto it = tree_.find(key);
  if (it == tree_.end() || !it->is_string() || it->get_ref<const std::string&>() == "*") {
    return false;
  }
  if (value) *value = it->get<std::string>();
  return true;
}

}  // namespace parley::memory
