// What both backends' memory tables share above their SQL (store/memory.hpp): how a patch
// changes a memory, and how one decision of an extraction is applied. Private to store/.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "store/memory.hpp"

namespace parley::store::memory_apply {

// The memory once the patch's fields are applied.
inline Memory patched(const Memory& current, const MemoryPatch& patch) {
  Memory next = current;
  if (patch.text) next.text = *patch.text;
  if (patch.hash) next.hash = *patch.hash;
  if (patch.embedder) next.embedder = *patch.embedder;
  if (patch.kind) next.kind = *patch.kind;
  if (patch.slot) next.slot = *patch.slot;
  if (patch.importance) next.importance = *patch.importance;
  if (patch.retention) next.retention = *patch.retention;
  if (patch.expires_at_ms) next.expires_at_ms = *patch.expires_at_ms;
  if (patch.metadata_json) next.metadata_json = *patch.metadata_json;
  return next;
}

// Applies `d` for the user inside the caller's transaction through the backend's writer (its
// find, add, update, retire and erase keep history and the change log) and appends what
// happened to `out`.
template <typename Writer>
Result<void> apply_decision(Writer& w, std::string_view tenant_id, std::string_view user_id,
                            const MemoryDecision& d, AppliedDecisions& out) {
  if (d.action == MemoryDecision::Action::kAdd) {
    NewMemory in = d.memory;
    in.tenant_id = std::string(tenant_id);
    in.user_id = std::string(user_id);
    auto created = w.add(in, d.reason);
    if (!created) return std::move(created).error();
    if (created->retired) {
      out.results.push_back({"RETIRE", *created->retired, created->retired->text});
    }
    out.results.push_back({created->created ? "ADD" : "NONE", created->memory, std::nullopt});
    return success();
  }
  auto target = w.find(d.target_id);
  if (!target) return std::move(target).error();
  // Only this user's memories: a proposal naming anything else changes nothing.
  if (!*target || (*target)->tenant_id != tenant_id || (*target)->user_id != user_id) {
    return success();
  }
  const Memory& m = **target;
  if (d.action == MemoryDecision::Action::kDelete) {
    if (auto r = w.erase(m, "DELETE", d.reason); !r) return r;
    out.results.push_back({"DELETE", m, m.text});
    return success();
  }
  if (m.status != "active") return success();
  if (d.action == MemoryDecision::Action::kRetire) {
    auto retired = w.retire(m, std::nullopt, d.reason);
    if (!retired) return std::move(retired).error();
    out.results.push_back({"RETIRE", std::move(*retired), m.text});
    return success();
  }
  // kUpdate: nothing new unless the text changes or the fact matters more now.
  if (d.memory.hash == m.hash && d.memory.importance <= m.importance) {
    out.results.push_back({"NONE", m, std::nullopt});
    return success();
  }
  MemoryPatch patch;
  patch.text = d.memory.text;
  patch.hash = d.memory.hash;
  if (!d.memory.vector.empty()) {
    patch.embedder = d.memory.embedder;
    patch.vector = d.memory.vector;
  }
  if (!d.memory.kind.empty()) patch.kind = d.memory.kind;
  if (!d.memory.slot.empty()) patch.slot = d.memory.slot;
  patch.importance = std::max(m.importance, d.memory.importance);
  auto updated = w.update(m, patch, d.reason);
  if (!updated && updated.error().code == ErrorCode::kConflict) {
    // The new text is another memory already: this one adds nothing beside it.
    out.results.push_back({"NONE", m, std::nullopt});
    return success();
  }
  if (!updated) return std::move(updated).error();
  out.results.push_back({"UPDATE", std::move(*updated), m.text});
  return success();
}

}  // namespace parley::store::memory_apply
