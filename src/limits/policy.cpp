// Limit overrides: applying them, and their JSON form (see policy.hpp).
#include "limits/policy.hpp"

#include <nlohmann/json.hpp>

namespace parley::limits {
namespace {

using nlohmann::json;

// The fields, in one table so parsing and printing cannot drift apart.
struct IntField {
  const char* name;
  std::optional<int64_t> LimitOverrides::*member;
};
struct MoneyField {
  const char* name;
  std::optional<double> LimitOverrides::*member;
};
constexpr IntField kIntFields[] = {
    {"requests_per_minute", &LimitOverrides::requests_per_minute},
    {"requests_per_hour", &LimitOverrides::requests_per_hour},
    {"burst", &LimitOverrides::burst},
    {"tokens_per_minute", &LimitOverrides::tokens_per_minute},
    {"concurrent_streams", &LimitOverrides::concurrent_streams},
};
constexpr MoneyField kMoneyFields[] = {
    {"usd_per_day", &LimitOverrides::usd_per_day},
    {"usd_per_month", &LimitOverrides::usd_per_month},
};

Result<LimitOverrides> parse_set(const json& value, const std::string& field) {
  LimitOverrides out;
  if (!value.is_object()) return Error::invalid_field(field, field + " must be an object");
  for (const auto& [name, v] : value.items()) {
    std::string path = field;
    path += '.';
    path += name;
    bool known = false;
    for (const auto& f : kIntFields) {
      if (name != f.name) continue;
      known = true;
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1'000'000'000'000) {
        return Error::invalid_field(path, path + " must be a whole number from 0 to 10^12");
      }
      out.*f.member = v.get<int64_t>();
    }
    for (const auto& f : kMoneyFields) {
      if (name != f.name) continue;
      known = true;
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1e9) {
        return Error::invalid_field(path, path + " must be a number of USD from 0 to 10^9");
      }
      out.*f.member = v.get<double>();
    }
    if (!known) return Error::invalid_field(path, "unknown limit '" + name + "'");
  }
  return out;
}

json set_json(const LimitOverrides& o) {
  json out = json::object();
  for (const auto& f : kIntFields) {
    if (o.*f.member) out[f.name] = *(o.*f.member);
  }
  for (const auto& f : kMoneyFields) {
    if (o.*f.member) out[f.name] = *(o.*f.member);
  }
  return out;
}

}  // namespace

Limits LimitOverrides::apply(Limits base) const {
  if (requests_per_minute) base.requests_per_minute = *requests_per_minute;
  if (requests_per_hour) base.requests_per_hour = *requests_per_hour;
  if (burst) base.burst = *burst;
  if (tokens_per_minute) base.tokens_per_minute = *tokens_per_minute;
  if (concurrent_streams) base.concurrent_streams = *concurrent_streams;
  if (usd_per_day) base.usd_per_day = *usd_per_day;
  if (usd_per_month) base.usd_per_month = *usd_per_month;
  return base;
}

bool LimitOverrides::empty() const {
  for (const auto& f : kIntFields) {
    if (this->*f.member) return false;
  }
  for (const auto& f : kMoneyFields) {
    if (this->*f.member) return false;
  }
  return true;
}

Result<KeyLimitOverrides> parse_overrides(const json& value, const std::string& field) {
  KeyLimitOverrides out;
  if (value.is_null()) return out;
  if (!value.is_object()) return Error::invalid_field(field, field + " must be an object");
  for (const auto& [name, v] : value.items()) {
    if (name == "key") {
      auto set = parse_set(v, field + ".key");
      if (!set) return std::move(set).error();
      out.key = *set;
    } else if (name == "user") {
      auto set = parse_set(v, field + ".user");
      if (!set) return std::move(set).error();
      out.user = *set;
    } else {
      std::string path = field;
      path += '.';
      path += name;
      return Error::invalid_field(std::move(path),
                                  "limits has two parts, key and user; '" + name + "' is neither");
    }
  }
  return out;
}

json to_json(const KeyLimitOverrides& overrides) {
  json out = json::object();
  if (!overrides.key.empty()) out["key"] = set_json(overrides.key);
  if (!overrides.user.empty()) out["user"] = set_json(overrides.user);
  return out;
}

}  // namespace parley::limits
