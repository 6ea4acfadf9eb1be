// The column lists of the knowledge tables, the same SQL on both backends (store/knowledge.hpp),
// in the order each backend's row readers expect them. Private to store/.
#pragma once

#include <string>
#include <vector>

namespace parley::store::knowledge_sql {

// A base with its counts; the last column is its seq (for page cursors).
inline constexpr const char* kBaseColumns =
    "kb.id, kb.tenant_id, kb.name, kb.description, kb.embedder, kb.dimension, kb.settings, "
    "kb.metadata, kb.created_at, kb.updated_at, "
    "(SELECT count(*) FROM kb_documents d WHERE d.kb_id = kb.id), "
    "(SELECT count(*) FROM kb_documents d WHERE d.kb_id = kb.id AND d.status = 'ready'), "
    "(SELECT count(*) FROM kb_documents d WHERE d.kb_id = kb.id AND d.status IN ('queued', "
    "'processing')), "
    "(SELECT count(*) FROM kb_documents d WHERE d.kb_id = kb.id AND d.status = 'failed'), "
    "(SELECT COALESCE(sum(d.chunks), 0) FROM kb_documents d WHERE d.kb_id = kb.id), "
    "(SELECT COALESCE(sum(d.bytes), 0) FROM kb_documents d WHERE d.kb_id = kb.id), "
    "kb.next_embedder, kb.owner_user_id, kb.seq";
inline constexpr int kBaseSeqColumn = 18;
// The same columns without the counts and sizes (zeros), which read every document's row.
inline constexpr const char* kBaseBriefColumns =
    "kb.id, kb.tenant_id, kb.name, kb.description, kb.embedder, kb.dimension, kb.settings, "
    "kb.metadata, kb.created_at, kb.updated_at, 0, 0, 0, 0, 0, 0, kb.next_embedder, "
    "kb.owner_user_id, kb.seq";

inline constexpr const char* kFileColumns =
    "id, tenant_id, user_id, filename, purpose, bytes, sha256, created_at, seq";
inline constexpr int kFileSeqColumn = 8;

inline constexpr const char* kDocumentColumns =
    "id, kb_id, tenant_id, file_id, name, sha256, bytes, status, format, error_reason, "
    "error_message, progress, chunks, tokens, pages, attributes, created_at, updated_at, "
    "ingested_at, seq";
inline constexpr int kDocumentSeqColumn = 19;

inline constexpr const char* kChunkColumns =
    "seq, kb_id, document_id, ordinal, text, section, page, page_end, start_offset, end_offset, "
    "tokens, vector";

// What erasing a user removes of knowledge (UserDataRepository::erase_user), in the order it
// runs, inside the erasure's transaction: the user's own bases (each logged as dropped for the
// search indexes) with the files uploaded into them that no other base uses; then the files
// the user uploaded, with every document made from them (their chunks logged as removed); then
// the bytes no file holds any longer. Parameters are `mark` followed by 1 (the user) and, with
// a tenant, 2: '?' on SQLite, '$' on PostgreSQL. `lock` (PostgreSQL): the rows it changes are
// locked first and then the change log's lock taken, the order every writer of the log uses.
std::vector<std::string> erase_user_sql(bool with_tenant, char mark, const char* lock);

}  // namespace parley::store::knowledge_sql
