// Knowledge bases, files, documents and chunks on SQLite (store/knowledge.hpp). Writes go
// through the one write connection, so the change log's order is the commit order.
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/knowledge.hpp"
#include "store/knowledge_sql.hpp"
#include "store/sqlite/database.hpp"

namespace parley::store::sqlite {
namespace {

using namespace knowledge_sql;

KnowledgeBase read_base(const Statement& row) {
  KnowledgeBase b;
  b.id = row.column_text(0);
  b.tenant_id = row.column_text(1);
  b.name = row.column_text(2);
  b.description = row.column_text(3);
  b.embedder = row.column_text(4);
  b.dimension = row.column_int(5);
  b.settings_json = row.column_text(6);
  b.metadata_json = row.column_text(7);
  b.created_at_ms = row.column_int(8);
  b.updated_at_ms = row.column_int(9);
  b.documents = row.column_int(10);
  b.documents_ready = row.column_int(11);
  b.documents_processing = row.column_int(12);
  b.documents_failed = row.column_int(13);
  b.chunks = row.column_int(14);
  b.bytes = row.column_int(15);
  b.next_embedder = row.column_text(16);
  b.owner_user_id = row.column_text(17);
  return b;
}

StoredFile read_file(const Statement& row) {
  StoredFile f;
  f.id = row.column_text(0);
  f.tenant_id = row.column_text(1);
  f.user_id = row.column_text(2);
  f.filename = row.column_text(3);
  f.purpose = row.column_text(4);
  f.bytes = row.column_int(5);
  f.sha256 = row.column_text(6);
  f.created_at_ms = row.column_int(7);
  return f;
}

KnowledgeDocument read_document(const Statement& row) {
  KnowledgeDocument d;
  d.id = row.column_text(0);
  d.kb_id = row.column_text(1);
  d.tenant_id = row.column_text(2);
  d.file_id = row.column_text(3);
  d.name = row.column_text(4);
  d.sha256 = row.column_text(5);
  d.bytes = row.column_int(6);
  d.status = row.column_text(7);
  d.format = row.column_text(8);
  d.error_reason = row.column_text(9);
  d.error_message = row.column_text(10);
  d.progress_json = row.column_text(11);
  d.chunks = row.column_int(12);
  d.tokens = row.column_int(13);
  d.pages = row.column_int(14);
  d.attributes_json = row.column_text(15);
  d.created_at_ms = row.column_int(16);
  d.updated_at_ms = row.column_int(17);
  d.ingested_at_ms = row.column_optional_int(18);
  return d;
}

StoredChunk read_chunk(const Statement& row) {
  StoredChunk c;
  c.seq = row.column_int(0);
  c.kb_id = row.column_text(1);
  c.document_id = row.column_text(2);
  c.ordinal = row.column_int(3);
  c.text = row.column_text(4);
  c.section = row.column_text(5);
  c.page = row.column_int(6);
  c.page_end = row.column_int(7);
  c.start_offset = row.column_int(8);
  c.end_offset = row.column_int(9);
  c.tokens = row.column_int(10);
  c.vector = decode_vector(row.column_text(11));
  return c;
}

class KnowledgeTable final : public KnowledgeRepository {
 public:
  explicit KnowledgeTable(Database& db) : db_(db) {}

  // --- Knowledge bases ------------------------------------------------------------------

  Result<KnowledgeBase> create_base(const NewKnowledgeBase& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_create");
    const std::string id = new_resource_id("kb");
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      auto stmt = db_.writer->prepare(
          "INSERT INTO knowledge_bases (id, tenant_id, name, description, embedder, dimension, "
          "settings, metadata, created_at, updated_at, owner_user_id) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, id).bind(2, in.tenant_id).bind(3, in.name).bind(4, in.description);
      stmt->bind(5, in.embedder).bind(6, in.dimension).bind(7, in.settings_json);
      stmt->bind(8, in.metadata_json).bind(9, now_ms).bind(10, now_ms).bind(11, in.owner_user_id);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("create knowledge base");
    }
    return get_base(id);
  }

  Result<KnowledgeBase> get_base(std::string_view id) override {
    static const std::string sql =
        std::string("SELECT ") + kBaseColumns + " FROM knowledge_bases kb WHERE kb.id = ?";
    return base_by_id(id, sql);
  }

  Result<KnowledgeBase> get_base_brief(std::string_view id) override {
    static const std::string sql =
        std::string("SELECT ") + kBaseBriefColumns + " FROM knowledge_bases kb WHERE kb.id = ?";
    return base_by_id(id, sql);
  }

  Result<KnowledgeBase> base_by_id(std::string_view id, const std::string& sql) {
    QueryTimer timer(db_.options.metrics, "kb_get");
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return knowledge_base_not_found(id);
    if (rc != SQLITE_ROW) return reader->last_error("get knowledge base");
    return read_base(*stmt);
  }

  Result<KnowledgeBasePage> list_bases(const KnowledgeBaseListQuery& query) override {
    QueryTimer timer(db_.options.metrics, "kb_list");
    auto after = parse_cursor(query.cursor);
    if (after.error) return *after.error;
    auto reader = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kBaseColumns +
        " FROM knowledge_bases kb WHERE kb.seq < ?1 AND (?2 IS NULL OR kb.tenant_id = ?2) "
        "AND (?4 IS NULL OR kb.owner_user_id = '' OR kb.owner_user_id = ?4) "
        "ORDER BY kb.seq DESC LIMIT ?3";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, after.after.value_or(INT64_MAX)).bind_optional(2, query.tenant_id);
    stmt->bind(3, static_cast<int64_t>(query.limit) + 1).bind_optional(4, query.visible_to_user);
    KnowledgeBasePage page;
    int rc;
    int64_t last_seq = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      if (static_cast<int>(page.items.size()) == query.limit) {
        page.next_cursor = std::to_string(last_seq);
        break;
      }
      page.items.push_back(read_base(*stmt));
      last_seq = stmt->column_int(kBaseSeqColumn);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return reader->last_error("list knowledge bases");
    return page;
  }

  Result<KnowledgeBase> update_base(std::string_view id, const KnowledgeBasePatch& patch,
                                    int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_update");
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      auto stmt = db_.writer->prepare(
          "UPDATE knowledge_bases SET name = COALESCE(?2, name), description = COALESCE(?3, "
          "description), settings = COALESCE(?4, settings), metadata = COALESCE(?5, metadata), "
          "updated_at = ?6 WHERE id = ?1");
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, id).bind_optional(2, patch.name).bind_optional(3, patch.description);
      stmt->bind_optional(4, patch.settings_json).bind_optional(5, patch.metadata_json);
      stmt->bind(6, now_ms);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("update knowledge base");
      if (db_.writer->changes() == 0) return knowledge_base_not_found(id);
    }
    return get_base(id);
  }

  Result<void> delete_base(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "kb_delete");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto base = db_.writer->prepare("DELETE FROM knowledge_bases WHERE id = ?");
    if (!base) return std::move(base).error();
    base->bind(1, id);
    if (base->step() != SQLITE_DONE) return db_.writer->last_error("delete knowledge base");
    if (db_.writer->changes() == 0) return knowledge_base_not_found(id);
    for (const char* sql :
         {"DELETE FROM kb_chunks WHERE kb_id = ?", "DELETE FROM kb_documents WHERE kb_id = ?",
          "INSERT INTO kb_changes (kb_id, op) VALUES (?, 'drop')"}) {
      auto stmt = db_.writer->prepare(sql);
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, id);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("delete knowledge base");
    }
    return tx.commit();
  }

  // --- Files ----------------------------------------------------------------------------

  Result<StoredFile> put_file(const NewFile& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "file_put");
    const StoredFile f = stored_file_of(in, now_ms);
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    auto content = db_.writer->prepare(
        "INSERT INTO file_contents (tenant_id, sha256, content, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (tenant_id, sha256) DO NOTHING");
    if (!content) return std::move(content).error();
    content->bind(1, in.tenant_id).bind(2, in.sha256).bind_blob(3, in.content).bind(4, now_ms);
    if (content->step() != SQLITE_DONE) return db_.writer->last_error("store file");
    auto file = db_.writer->prepare(
        "INSERT INTO files (id, tenant_id, user_id, filename, purpose, bytes, sha256, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!file) return std::move(file).error();
    file->bind(1, f.id).bind(2, f.tenant_id).bind(3, f.user_id).bind(4, f.filename);
    file->bind(5, f.purpose).bind(6, f.bytes).bind(7, f.sha256).bind(8, now_ms);
    if (file->step() != SQLITE_DONE) return db_.writer->last_error("store file");
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return f;
  }

  Result<StoredFile> get_file(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "file_get");
    auto reader = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kFileColumns + " FROM files WHERE id = ?";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return file_not_found(id);
    if (rc != SQLITE_ROW) return reader->last_error("get file");
    return read_file(*stmt);
  }

  Result<std::string> file_content(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "file_content");
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare(
        "SELECT c.content FROM files f JOIN file_contents c ON c.tenant_id = f.tenant_id AND "
        "c.sha256 = f.sha256 WHERE f.id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return file_not_found(id);
    if (rc != SQLITE_ROW) return reader->last_error("read file");
    return stmt->column_text(0);
  }

  Result<FilePage> list_files(std::string_view tenant_id, const std::optional<std::string>& purpose,
                              int limit, const std::optional<std::string>& cursor) override {
    QueryTimer timer(db_.options.metrics, "file_list");
    auto after = parse_cursor(cursor);
    if (after.error) return *after.error;
    auto reader = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kFileColumns +
        " FROM files WHERE tenant_id = ?1 AND seq < ?2 AND (?3 IS NULL OR purpose = ?3) ORDER BY "
        "seq DESC LIMIT ?4";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, tenant_id).bind(2, after.after.value_or(INT64_MAX)).bind_optional(3, purpose);
    stmt->bind(4, static_cast<int64_t>(limit) + 1);
    FilePage page;
    int rc;
    int64_t last_seq = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      if (static_cast<int>(page.items.size()) == limit) {
        page.next_cursor = std::to_string(last_seq);
        break;
      }
      page.items.push_back(read_file(*stmt));
      last_seq = stmt->column_int(kFileSeqColumn);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return reader->last_error("list files");
    return page;
  }

  Result<void> delete_file(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "file_delete");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    std::string tenant;
    std::string sha;
    {
      auto file = db_.writer->prepare("DELETE FROM files WHERE id = ? RETURNING tenant_id, sha256");
      if (!file) return std::move(file).error();
      file->bind(1, id);
      if (file->step() != SQLITE_ROW) return file_not_found(id);
      tenant = file->column_text(0);
      sha = file->column_text(1);
      if (file->step() != SQLITE_DONE) return db_.writer->last_error("delete file");
    }
    // Every document made from it goes too.
    std::vector<std::string> documents;
    {
      auto docs = db_.writer->prepare("SELECT id FROM kb_documents WHERE file_id = ?");
      if (!docs) return std::move(docs).error();
      docs->bind(1, id);
      while (docs->step() == SQLITE_ROW) documents.push_back(docs->column_text(0));
    }
    for (const auto& doc : documents) {
      if (auto r = remove_document_locked(doc); !r) return r;
    }
    auto content = db_.writer->prepare(
        "DELETE FROM file_contents WHERE tenant_id = ?1 AND sha256 = ?2 AND NOT EXISTS (SELECT 1 "
        "FROM files WHERE tenant_id = ?1 AND sha256 = ?2)");
    if (!content) return std::move(content).error();
    content->bind(1, tenant).bind(2, sha);
    if (content->step() != SQLITE_DONE) return db_.writer->last_error("delete file");
    return tx.commit();
  }

  // --- Documents ------------------------------------------------------------------------

  Result<AddedDocument> add_document(const NewDocument& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_add");
    std::string id;
    bool duplicate = false;
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      WriteTransaction tx(*db_.writer);
      if (!tx.begun()) return tx.begun().error();
      std::string sha;
      int64_t bytes = 0;
      {
        auto file =
            db_.writer->prepare("SELECT sha256, bytes FROM files WHERE id = ? AND tenant_id = ?");
        if (!file) return std::move(file).error();
        file->bind(1, in.file_id).bind(2, in.tenant_id);
        if (file->step() != SQLITE_ROW) return file_not_found(in.file_id);
        sha = file->column_text(0);
        bytes = file->column_int(1);
      }
      {
        auto base = db_.writer->prepare("SELECT 1 FROM knowledge_bases WHERE id = ?");
        if (!base) return std::move(base).error();
        base->bind(1, in.kb_id);
        if (base->step() != SQLITE_ROW) return knowledge_base_not_found(in.kb_id);
      }
      {
        auto existing = db_.writer->prepare(
            "SELECT id FROM kb_documents WHERE kb_id = ? AND sha256 = ? ORDER BY seq LIMIT 1");
        if (!existing) return std::move(existing).error();
        existing->bind(1, in.kb_id).bind(2, sha);
        if (existing->step() == SQLITE_ROW) {
          id = existing->column_text(0);
          duplicate = true;
        }
      }
      if (!duplicate) {
        id = new_resource_id("doc");
        auto insert = db_.writer->prepare(
            "INSERT INTO kb_documents (id, kb_id, tenant_id, file_id, name, sha256, bytes, status, "
            "attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)");
        if (!insert) return std::move(insert).error();
        insert->bind(1, id).bind(2, in.kb_id).bind(3, in.tenant_id).bind(4, in.file_id);
        insert->bind(5, in.name).bind(6, sha).bind(7, bytes).bind(8, in.attributes_json);
        insert->bind(9, now_ms).bind(10, now_ms);
        if (insert->step() != SQLITE_DONE) return db_.writer->last_error("add document");
      }
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    auto doc = get_document(id);
    if (!doc) return std::move(doc).error();
    return AddedDocument{std::move(doc).value(), duplicate};
  }

  Result<KnowledgeDocument> get_document(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "document_get");
    auto reader = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kDocumentColumns + " FROM kb_documents WHERE id = ?";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return document_not_found(id);
    if (rc != SQLITE_ROW) return reader->last_error("get document");
    return read_document(*stmt);
  }

  Result<KnowledgeDocument> document_for_file(std::string_view kb_id,
                                              std::string_view file_id) override {
    QueryTimer timer(db_.options.metrics, "document_get");
    auto reader = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kDocumentColumns +
        " FROM kb_documents WHERE kb_id = ?1 AND (file_id = ?2 OR sha256 = (SELECT sha256 FROM "
        "files WHERE id = ?2 AND tenant_id = kb_documents.tenant_id)) ORDER BY file_id = ?2 DESC, "
        "seq LIMIT 1";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, kb_id).bind(2, file_id);
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return document_not_found(file_id);
    if (rc != SQLITE_ROW) return reader->last_error("get document");
    return read_document(*stmt);
  }

  Result<DocumentPage> list_documents(const DocumentListQuery& q) override {
    QueryTimer timer(db_.options.metrics, "document_list");
    auto after = parse_cursor(q.cursor);
    if (after.error) return *after.error;
    auto reader = db_.readers.borrow();
    static const std::string sql =
        std::string("SELECT ") + kDocumentColumns +
        " FROM kb_documents WHERE kb_id = ?1 AND seq < ?2 AND (?3 IS NULL OR status = ?3) ORDER "
        "BY seq DESC LIMIT ?4";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, q.kb_id).bind(2, after.after.value_or(INT64_MAX)).bind_optional(3, q.status);
    stmt->bind(4, static_cast<int64_t>(q.limit) + 1);
    DocumentPage page;
    int rc;
    int64_t last_seq = 0;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      if (static_cast<int>(page.items.size()) == q.limit) {
        page.next_cursor = std::to_string(last_seq);
        break;
      }
      page.items.push_back(read_document(*stmt));
      last_seq = stmt->column_int(kDocumentSeqColumn);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return reader->last_error("list documents");
    return page;
  }

  Result<KnowledgeDocument> replace_document(std::string_view id, std::string_view file_id,
                                             std::string_view name, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_replace");
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      auto stmt = db_.writer->prepare(
          "UPDATE kb_documents SET file_id = f.id, sha256 = f.sha256, bytes = f.bytes, "
          "name = CASE WHEN ?3 = '' THEN kb_documents.name ELSE ?3 END, status = 'queued', "
          "error_reason = '', error_message = '', progress = '{}', updated_at = ?4 "
          "FROM files f WHERE kb_documents.id = ?1 AND f.id = ?2 AND f.tenant_id = "
          "kb_documents.tenant_id");
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, id).bind(2, file_id).bind(3, name).bind(4, now_ms);
      if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("replace document");
      if (db_.writer->changes() == 0) {
        auto doc = get_document(id);
        if (!doc) return std::move(doc).error();
        return file_not_found(file_id);
      }
    }
    return get_document(id);
  }

  Result<KnowledgeDocument> update_document(std::string_view id, std::string_view name,
                                            const std::optional<std::string>& attributes_json,
                                            int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_update");
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      WriteTransaction tx(*db_.writer);
      if (!tx.begun()) return tx.begun().error();
      std::string kb_id;
      {
        auto stmt = db_.writer->prepare(
            "UPDATE kb_documents SET name = CASE WHEN ?2 = '' THEN name ELSE ?2 END, attributes = "
            "COALESCE(?3, attributes), updated_at = ?4 WHERE id = ?1 RETURNING kb_id");
        if (!stmt) return std::move(stmt).error();
        stmt->bind(1, id).bind(2, name).bind_optional(3, attributes_json).bind(4, now_ms);
        if (stmt->step() != SQLITE_ROW) return document_not_found(id);
        kb_id = stmt->column_text(0);
        if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("update document");
      }
      if (auto r = log_change(kb_id, "document", 0, id); !r) return std::move(r).error();
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    return get_document(id);
  }

  Result<void> delete_document(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "document_delete");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    if (auto r = remove_document_locked(id); !r) return r;
    return tx.commit();
  }

  Result<void> set_progress(std::string_view id, std::string_view progress_json,
                            int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_progress");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto stmt = db_.writer->prepare(
        "UPDATE kb_documents SET status = 'processing', progress = ?2, updated_at = ?3 WHERE id = "
        "?1");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, progress_json).bind(3, now_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("record progress");
    if (db_.writer->changes() == 0) return document_not_found(id);
    return success();
  }

  Result<void> fail_document(std::string_view id, std::string_view reason, std::string_view message,
                             int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_fail");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    auto stmt = db_.writer->prepare(
        "UPDATE kb_documents SET status = 'failed', error_reason = ?2, error_message = ?3, "
        "progress = '{}', updated_at = ?4 WHERE id = ?1");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id).bind(2, reason).bind(3, message).bind(4, now_ms);
    if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("fail document");
    if (db_.writer->changes() == 0) return document_not_found(id);
    return success();
  }

  Result<void> commit_chunks(const ChunkCommit& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_commit");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    std::string kb_id;
    {
      auto doc = db_.writer->prepare("SELECT kb_id, file_id FROM kb_documents WHERE id = ?");
      if (!doc) return std::move(doc).error();
      doc->bind(1, in.document_id);
      if (doc->step() != SQLITE_ROW) return document_not_found(in.document_id);
      kb_id = doc->column_text(0);
      if (doc->column_text(1) != in.file_id) return document_changed(in.document_id);
    }
    {
      auto base =
          db_.writer->prepare("SELECT embedder, dimension FROM knowledge_bases WHERE id = ?");
      if (!base) return std::move(base).error();
      base->bind(1, kb_id);
      if (base->step() != SQLITE_ROW) return knowledge_base_not_found(kb_id);
      if (!in.embedder.empty() && base->column_text(0) != in.embedder) {
        return embedder_changed(kb_id, in.embedder);
      }
      const int64_t dimension = base->column_int(1);
      auto checked = check_dimension(kb_id, dimension, in.chunks);
      if (!checked) return std::move(checked).error();
      if (*checked) {
        auto set = db_.writer->prepare("UPDATE knowledge_bases SET dimension = ? WHERE id = ?");
        if (!set) return std::move(set).error();
        set->bind(1, static_cast<int64_t>(in.chunks.front().vector.size())).bind(2, kb_id);
        if (set->step() != SQLITE_DONE) return db_.writer->last_error("store chunks");
      }
    }
    if (auto r = remove_chunks_locked(in.document_id); !r) return r;
    int64_t tokens = 0;
    for (const auto& c : in.chunks) {
      int64_t seq = 0;
      {
        auto insert = db_.writer->prepare(
            "INSERT INTO kb_chunks (kb_id, document_id, ordinal, text, section, page, page_end, "
            "start_offset, end_offset, tokens, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING seq");
        if (!insert) return std::move(insert).error();
        insert->bind(1, kb_id).bind(2, in.document_id).bind(3, c.ordinal).bind(4, c.text);
        insert->bind(5, c.section).bind(6, c.page).bind(7, c.page_end).bind(8, c.start_offset);
        insert->bind(9, c.end_offset).bind(10, c.tokens).bind_blob(11, encode_vector(c.vector));
        if (insert->step() != SQLITE_ROW) return db_.writer->last_error("store chunks");
        seq = insert->column_int(0);
        if (insert->step() != SQLITE_DONE) return db_.writer->last_error("store chunks");
      }
      if (auto r = log_change(kb_id, "add", seq, in.document_id); !r) return r;
      tokens += c.tokens;
    }
    auto ready = db_.writer->prepare(
        "UPDATE kb_documents SET status = 'ready', format = ?2, pages = ?3, chunks = ?4, tokens = "
        "?5, error_reason = '', error_message = '', progress = '{}', updated_at = ?6, "
        "ingested_at = ?6 WHERE id = ?1");
    if (!ready) return std::move(ready).error();
    ready->bind(1, in.document_id).bind(2, in.format).bind(3, in.pages);
    ready->bind(4, static_cast<int64_t>(in.chunks.size())).bind(5, tokens).bind(6, now_ms);
    if (ready->step() != SQLITE_DONE) return db_.writer->last_error("store chunks");
    return tx.commit();
  }

  // --- Re-embedding ---------------------------------------------------------------------

  Result<KnowledgeBase> begin_reembed(std::string_view kb_id, std::string_view embedder,
                                      int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_reembed");
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      WriteTransaction tx(*db_.writer);
      if (!tx.begun()) return tx.begun().error();
      auto base = db_.writer->prepare(
          "UPDATE knowledge_bases SET next_embedder = CASE WHEN embedder = ?2 THEN '' ELSE ?2 "
          "END, updated_at = ?3 WHERE id = ?1");
      if (!base) return std::move(base).error();
      base->bind(1, kb_id).bind(2, embedder).bind(3, now_ms);
      if (base->step() != SQLITE_DONE) return db_.writer->last_error("re-embed");
      if (db_.writer->changes() == 0) return knowledge_base_not_found(kb_id);
      auto chunks = db_.writer->prepare(
          "UPDATE kb_chunks SET next_vector = NULL WHERE kb_id = ? AND next_vector IS NOT NULL");
      if (!chunks) return std::move(chunks).error();
      chunks->bind(1, kb_id);
      if (chunks->step() != SQLITE_DONE) return db_.writer->last_error("re-embed");
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    return get_base(kb_id);
  }

  Result<std::vector<StoredChunk>> chunks_to_reembed(std::string_view kb_id, int64_t after_seq,
                                                     int limit) override {
    QueryTimer timer(db_.options.metrics, "chunks_read");
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare(
        "SELECT seq, kb_id, document_id, ordinal, text, section, page, page_end, start_offset, "
        "end_offset, tokens, x'' FROM kb_chunks WHERE kb_id = ? AND seq > ? AND next_vector IS "
        "NULL ORDER BY seq LIMIT ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, kb_id).bind(2, after_seq).bind(3, static_cast<int64_t>(limit));
    std::vector<StoredChunk> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_chunk(*stmt));
    if (rc != SQLITE_DONE) return reader->last_error("read chunks");
    return out;
  }

  Result<void> store_next_vectors(
      std::string_view kb_id, std::string_view embedder,
      const std::vector<std::pair<int64_t, std::vector<float>>>& vectors) override {
    QueryTimer timer(db_.options.metrics, "kb_reembed");
    std::lock_guard lock(db_.write_mutex);
    if (!db_.writer) return storage_closed();
    WriteTransaction tx(*db_.writer);
    if (!tx.begun()) return tx.begun().error();
    if (auto r = check_next_embedder_locked(kb_id, embedder); !r) return r;
    for (const auto& [seq, vector] : vectors) {
      auto update =
          db_.writer->prepare("UPDATE kb_chunks SET next_vector = ? WHERE seq = ? AND kb_id = ?");
      if (!update) return std::move(update).error();
      update->bind_blob(1, encode_vector(vector)).bind(2, seq).bind(3, kb_id);
      if (update->step() != SQLITE_DONE) return db_.writer->last_error("store vectors");
    }
    return tx.commit();
  }

  Result<KnowledgeBase> finish_reembed(std::string_view kb_id, std::string_view embedder,
                                       int64_t dimension, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_reembed");
    {
      std::lock_guard lock(db_.write_mutex);
      if (!db_.writer) return storage_closed();
      WriteTransaction tx(*db_.writer);
      if (!tx.begun()) return tx.begun().error();
      if (auto r = check_next_embedder_locked(kb_id, embedder); !r) return std::move(r).error();
      {
        auto missing = db_.writer->prepare(
            "SELECT count(*) FROM kb_chunks WHERE kb_id = ? AND next_vector IS NULL");
        if (!missing) return std::move(missing).error();
        missing->bind(1, kb_id);
        if (missing->step() != SQLITE_ROW) return db_.writer->last_error("re-embed");
        if (missing->column_int(0) > 0) return reembed_incomplete(kb_id, missing->column_int(0));
      }
      for (const char* sql :
           {"UPDATE kb_chunks SET vector = next_vector, next_vector = NULL WHERE kb_id = ?1",
            "UPDATE knowledge_bases SET embedder = next_embedder, next_embedder = '', dimension = "
            "?2, updated_at = ?3 WHERE id = ?1",
            "INSERT INTO kb_changes (kb_id, op) VALUES (?1, 'vectors')"}) {
        auto stmt = db_.writer->prepare(sql);
        if (!stmt) return std::move(stmt).error();
        stmt->bind(1, kb_id);
        if (std::string_view(sql).find("?2") != std::string_view::npos) {
          stmt->bind(2, dimension).bind(3, now_ms);
        }
        if (stmt->step() != SQLITE_DONE) return db_.writer->last_error("re-embed");
      }
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    return get_base(kb_id);
  }

  // --- Derived indexes ------------------------------------------------------------------

  Result<std::string> database_identity() override {
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare("SELECT id FROM database_identity LIMIT 1");
    if (!stmt) return std::move(stmt).error();
    if (stmt->step() != SQLITE_ROW) return reader->last_error("read database identity");
    return stmt->column_text(0);
  }

  Result<std::vector<ChunkChange>> changes_since(int64_t after_seq, int limit) override {
    QueryTimer timer(db_.options.metrics, "kb_changes");
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare(
        "SELECT seq, kb_id, op, chunk_seq, document_id FROM kb_changes WHERE seq > ? ORDER BY seq "
        "LIMIT ?");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, after_seq).bind(2, static_cast<int64_t>(limit));
    std::vector<ChunkChange> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      ChunkChange c;
      c.seq = stmt->column_int(0);
      c.kb_id = stmt->column_text(1);
      c.op = static_cast<ChunkChange::Op>(change_op_from(stmt->column_text(2)));
      c.chunk_seq = stmt->column_int(3);
      c.document_id = stmt->column_text(4);
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return reader->last_error("read changes");
    return out;
  }

  Result<int64_t> last_change() override {
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare("SELECT COALESCE(max(seq), 0) FROM kb_changes");
    if (!stmt) return std::move(stmt).error();
    if (stmt->step() != SQLITE_ROW) return reader->last_error("read changes");
    return stmt->column_int(0);
  }

  Result<std::vector<StoredChunk>> chunks_by_seq(const std::vector<int64_t>& seqs) override {
    QueryTimer timer(db_.options.metrics, "chunks_read");
    auto reader = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kChunkColumns +
                                   " FROM kb_chunks WHERE seq IN (SELECT value FROM json_each(?)) "
                                   "ORDER BY seq";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, json_integers(seqs));
    std::vector<StoredChunk> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_chunk(*stmt));
    if (rc != SQLITE_DONE) return reader->last_error("read chunks");
    return out;
  }

  Result<std::vector<StoredChunk>> base_chunks(std::string_view kb_id, int64_t after_seq,
                                               int limit) override {
    QueryTimer timer(db_.options.metrics, "chunks_read");
    auto reader = db_.readers.borrow();
    static const std::string sql = std::string("SELECT ") + kChunkColumns +
                                   " FROM kb_chunks WHERE kb_id = ? AND seq > ? ORDER BY seq "
                                   "LIMIT ?";
    auto stmt = reader->prepare(sql.c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, kb_id).bind(2, after_seq).bind(3, static_cast<int64_t>(limit));
    std::vector<StoredChunk> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) out.push_back(read_chunk(*stmt));
    if (rc != SQLITE_DONE) return reader->last_error("read chunks");
    return out;
  }

  Result<std::vector<IndexedDocument>> indexed_documents(std::string_view kb_id) override {
    auto reader = db_.readers.borrow();
    auto stmt = reader->prepare(
        "SELECT id, file_id, name, format, attributes FROM kb_documents WHERE kb_id = ? ORDER BY "
        "seq");
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, kb_id);
    std::vector<IndexedDocument> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      out.push_back({stmt->column_text(0), stmt->column_text(1), stmt->column_text(2),
                     stmt->column_text(3), stmt->column_text(4)});
    }
    if (rc != SQLITE_DONE) return reader->last_error("read documents");
    return out;
  }

 private:
  // With the write lock held, inside a transaction.
  Result<void> remove_chunks_locked(std::string_view document_id) {
    std::vector<std::pair<int64_t, std::string>> gone;
    {
      auto removed =
          db_.writer->prepare("DELETE FROM kb_chunks WHERE document_id = ? RETURNING seq, kb_id");
      if (!removed) return std::move(removed).error();
      removed->bind(1, document_id);
      int rc;
      while ((rc = removed->step()) == SQLITE_ROW) {
        gone.emplace_back(removed->column_int(0), removed->column_text(1));
      }
      if (rc != SQLITE_DONE) return db_.writer->last_error("remove chunks");
    }
    for (const auto& [seq, kb_id] : gone) {
      if (auto r = log_change(kb_id, "remove", seq, document_id); !r) return r;
    }
    return success();
  }

  // With the write lock held, inside a transaction.
  Result<void> check_next_embedder_locked(std::string_view kb_id, std::string_view embedder) {
    auto base = db_.writer->prepare("SELECT next_embedder FROM knowledge_bases WHERE id = ?");
    if (!base) return std::move(base).error();
    base->bind(1, kb_id);
    if (base->step() != SQLITE_ROW) return knowledge_base_not_found(kb_id);
    if (base->column_text(0) != embedder) return embedder_changed(kb_id, embedder);
    return success();
  }

  Result<void> log_change(std::string_view kb_id, const char* op, int64_t chunk_seq,
                          std::string_view document_id) {
    auto log = db_.writer->prepare(
        "INSERT INTO kb_changes (kb_id, op, chunk_seq, document_id) VALUES (?, ?, ?, ?)");
    if (!log) return std::move(log).error();
    log->bind(1, kb_id).bind(2, op).bind(3, chunk_seq).bind(4, document_id);
    if (log->step() != SQLITE_DONE) return db_.writer->last_error("log change");
    return success();
  }

  Result<void> remove_document_locked(std::string_view id) {
    auto doc = db_.writer->prepare("DELETE FROM kb_documents WHERE id = ?");
    if (!doc) return std::move(doc).error();
    doc->bind(1, id);
    if (doc->step() != SQLITE_DONE) return db_.writer->last_error("delete document");
    if (db_.writer->changes() == 0) return document_not_found(id);
    return remove_chunks_locked(id);
  }

  Database& db_;
};

}  // namespace

std::unique_ptr<KnowledgeRepository> make_knowledge_table(Database& db) {
  return std::make_unique<KnowledgeTable>(db);
}

}  // namespace parley::store::sqlite
