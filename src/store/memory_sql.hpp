// The column lists of the memory tables, the same SQL on both backends (store/memory.hpp), in
// the order each backend's row readers expect them. Private to store/.
#pragma once

namespace parley::store::memory_sql {

inline constexpr const char* kMemoryColumns =
    "seq, id, tenant_id, user_id, assistant, session_id, text, kind, slot, importance, "
    "retention, status, superseded_by, hash, source, metadata, embedder, created_at, updated_at, "
    "last_used_at, invalid_at, expires_at";
// The same, then the vector (column kVectorColumn).
inline constexpr const char* kMemoryColumnsWithVector =
    "seq, id, tenant_id, user_id, assistant, session_id, text, kind, slot, importance, "
    "retention, status, superseded_by, hash, source, metadata, embedder, created_at, updated_at, "
    "last_used_at, invalid_at, expires_at, vector";
inline constexpr int kVectorColumn = 22;

inline constexpr const char* kHistoryColumns =
    "id, memory_id, tenant_id, user_id, event, old_text, new_text, actor, reason, source, "
    "job_id, created_at";

}  // namespace parley::store::memory_sql
