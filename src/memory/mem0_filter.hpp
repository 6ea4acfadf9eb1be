// Mem0's `filters`, as its search and list calls take them, checked against one memory's
// fields. Accepted, as Mem0 documents them:
//   {"category": "food", "agent_id": "travel"}           every key equal (AND)
//   {"importance": {"gte": 0.5}}                         eq, ne, in, nin, gt, gte, lt, lte,
//                                                        contains, icontains
//   {"category": "*"}                                    any value, as long as the key is there
//   {"AND": [f, ...]}, {"OR": [f, ...]}, {"NOT": [f, ...]}   (lists of filters, nested)
// A filter that cannot mean anything (an unknown operator, a list where a value belongs, more
// than 16 levels) is refused when it is parsed, naming what is wrong, never matched silently.
// Pure: no I/O.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace parley::memory {

class Mem0Filter {
 public:
  // Matches everything.
  Mem0Filter() = default;

  // kInvalidArgument on field "filters" when `filters` is not one (null: everything).
  static Result<Mem0Filter> parse(const nlohmann::json& filters);

  // Whether a memory whose fields are `fields` (an object: its metadata's keys, then user_id,
  // agent_id, run_id, memory, kind and the rest) passes.
  bool matches(const nlohmann::json& fields) const;

  // Whether the filter names `key` as a plain equality at its top level (then, with `value`,
  // what it must equal): how callers narrow the rows they read before matching.
  bool equality(const std::string& key, std::string* value) const;

 private:
  explicit Mem0Filter(nlohmann::json tree) : tree_(std::move(tree)) {}
  nlohmann::json tree_ = nlohmann::json::object();  // checked by parse()
};

}  // namespace parley::memory
