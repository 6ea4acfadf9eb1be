// Knowledge bases, files, documents and chunks on PostgreSQL (store/knowledge.hpp).
//
// The change log must be read in commit order: a replica that has read up to seq N never
// looks below N again. Identity values are handed out when rows are inserted, not when they
// commit, so two transactions writing the log at once could commit out of order. Every writer
// of the log therefore takes one transaction-level advisory lock just before it writes there,
// which makes log order and commit order the same.
#include "core/ids.hpp"
#include "store/common.hpp"
#include "store/knowledge.hpp"
#include "store/knowledge_sql.hpp"
#include "store/postgres/database.hpp"

namespace parley::store::postgres {
namespace {

constexpr const char* kChangeLogLock = kKnowledgeChangeLogLock;

using namespace knowledge_sql;

KnowledgeBase read_base(const Rows& rows, int r) {
  KnowledgeBase b;
  b.id = rows.text(r, 0);
  b.tenant_id = rows.text(r, 1);
  b.name = rows.text(r, 2);
  b.description = rows.text(r, 3);
  b.embedder = rows.text(r, 4);
  b.dimension = rows.integer(r, 5);
  b.settings_json = rows.text(r, 6);
  b.metadata_json = rows.text(r, 7);
  b.created_at_ms = rows.integer(r, 8);
  b.updated_at_ms = rows.integer(r, 9);
  b.documents = rows.integer(r, 10);
  b.documents_ready = rows.integer(r, 11);
  b.documents_processing = rows.integer(r, 12);
  b.documents_failed = rows.integer(r, 13);
  b.chunks = rows.integer(r, 14);
  b.bytes = rows.integer(r, 15);
  b.next_embedder = rows.text(r, 16);
  b.owner_user_id = rows.text(r, 17);
  return b;
}

StoredFile read_file(const Rows& rows, int r) {
  StoredFile f;
  f.id = rows.text(r, 0);
  f.tenant_id = rows.text(r, 1);
  f.user_id = rows.text(r, 2);
  f.filename = rows.text(r, 3);
  f.purpose = rows.text(r, 4);
  f.bytes = rows.integer(r, 5);
  f.sha256 = rows.text(r, 6);
  f.created_at_ms = rows.integer(r, 7);
  return f;
}

KnowledgeDocument read_document(const Rows& rows, int r) {
  KnowledgeDocument d;
  d.id = rows.text(r, 0);
  d.kb_id = rows.text(r, 1);
  d.tenant_id = rows.text(r, 2);
  d.file_id = rows.text(r, 3);
  d.name = rows.text(r, 4);
  d.sha256 = rows.text(r, 5);
  d.bytes = rows.integer(r, 6);
  d.status = rows.text(r, 7);
  d.format = rows.text(r, 8);
  d.error_reason = rows.text(r, 9);
  d.error_message = rows.text(r, 10);
  d.progress_json = rows.text(r, 11);
  d.chunks = rows.integer(r, 12);
  d.tokens = rows.integer(r, 13);
  d.pages = rows.integer(r, 14);
  d.attributes_json = rows.text(r, 15);
  d.created_at_ms = rows.integer(r, 16);
  d.updated_at_ms = rows.integer(r, 17);
  d.ingested_at_ms = rows.optional_integer(r, 18);
  return d;
}

StoredChunk read_chunk(const Rows& rows, int r) {
  StoredChunk c;
  c.seq = rows.integer(r, 0);
  c.kb_id = rows.text(r, 1);
  c.document_id = rows.text(r, 2);
  c.ordinal = rows.integer(r, 3);
  c.text = rows.text(r, 4);
  c.section = rows.text(r, 5);
  c.page = rows.integer(r, 6);
  c.page_end = rows.integer(r, 7);
  c.start_offset = rows.integer(r, 8);
  c.end_offset = rows.integer(r, 9);
  c.tokens = rows.integer(r, 10);
  c.vector = decode_vector(rows.bytes(r, 11));
  return c;
}

template <typename Page, typename Reader>
Page read_page(const Rows& rows, int limit, int seq_column, Reader read) {
  Page page;
  const int n = std::min(rows.size(), limit);
  for (int i = 0; i < n; ++i) page.items.push_back(read(rows, i));
  if (rows.size() > limit && n > 0)
    page.next_cursor = std::to_string(rows.integer(n - 1, seq_column));
  return page;
}

class KnowledgeTable final : public KnowledgeRepository {
 public:
  explicit KnowledgeTable(Database& db) : db_(db) {}

  // --- Knowledge bases ------------------------------------------------------------------

  Result<KnowledgeBase> create_base(const NewKnowledgeBase& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_create");
    const std::string id = new_resource_id("kb");
    {
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      auto rows = (**lease).query(
          "INSERT INTO knowledge_bases (id, tenant_id, name, description, embedder, dimension, "
          "settings, metadata, created_at, updated_at, owner_user_id) VALUES ($1, $2, $3, $4, $5, "
          "$6, $7, $8, $9, $9, $10)",
          Params()
              .text(id)
              .text(in.tenant_id)
              .text(in.name)
              .text(in.description)
              .text(in.embedder)
              .integer(in.dimension)
              .text(in.settings_json)
              .text(in.metadata_json)
              .integer(now_ms)
              .text(in.owner_user_id));
      if (!rows) return std::move(rows).error();
    }
    return get_base(id);
  }

  Result<KnowledgeBase> get_base(std::string_view id) override {
    static const std::string sql =
        std::string("SELECT ") + kBaseColumns + " FROM knowledge_bases kb WHERE kb.id = $1";
    return base_by_id(id, sql);
  }

  Result<KnowledgeBase> get_base_brief(std::string_view id) override {
    static const std::string sql =
        std::string("SELECT ") + kBaseBriefColumns + " FROM knowledge_bases kb WHERE kb.id = $1";
    return base_by_id(id, sql);
  }

  Result<KnowledgeBase> base_by_id(std::string_view id, const std::string& sql) {
    QueryTimer timer(db_.options.metrics, "kb_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return knowledge_base_not_found(id);
    return read_base(*rows, 0);
  }

  Result<KnowledgeBasePage> list_bases(const KnowledgeBaseListQuery& query) override {
    QueryTimer timer(db_.options.metrics, "kb_list");
    auto after = parse_cursor(query.cursor);
    if (after.error) return *after.error;
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kBaseColumns +
        " FROM knowledge_bases kb WHERE kb.seq < $1 AND ($2::text IS NULL OR kb.tenant_id = $2) "
        "AND ($4::text IS NULL OR kb.owner_user_id = '' OR kb.owner_user_id = $4) "
        "ORDER BY kb.seq DESC LIMIT $3";
    auto rows = (**lease).query(sql, Params()
                                         .integer(after.after.value_or(INT64_MAX))
                                         .optional_text(query.tenant_id)
                                         .integer(query.limit + 1)
                                         .optional_text(query.visible_to_user));
    if (!rows) return std::move(rows).error();
    return read_page<KnowledgeBasePage>(*rows, query.limit, kBaseSeqColumn, read_base);
  }

  Result<KnowledgeBase> update_base(std::string_view id, const KnowledgeBasePatch& patch,
                                    int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_update");
    {
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      auto rows = (**lease).query(
          "UPDATE knowledge_bases SET name = COALESCE($2, name), description = COALESCE($3, "
          "description), settings = COALESCE($4, settings), metadata = COALESCE($5, metadata), "
          "updated_at = $6 WHERE id = $1",
          Params()
              .text(id)
              .optional_text(patch.name)
              .optional_text(patch.description)
              .optional_text(patch.settings_json)
              .optional_text(patch.metadata_json)
              .integer(now_ms));
      if (!rows) return std::move(rows).error();
      if (rows->affected() == 0) return knowledge_base_not_found(id);
    }
    return get_base(id);
  }

  Result<void> delete_base(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "kb_delete");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    auto base = db.query("DELETE FROM knowledge_bases WHERE id = $1", Params().text(id));
    if (!base) return std::move(base).error();
    if (base->affected() == 0) return knowledge_base_not_found(id);
    for (const char* sql :
         {"DELETE FROM kb_chunks WHERE kb_id = $1", "DELETE FROM kb_documents WHERE kb_id = $1",
          kChangeLogLock, "INSERT INTO kb_changes (kb_id, op) VALUES ($1, 'drop')"}) {
      auto r = sql == kChangeLogLock ? db.query(sql) : db.query(sql, Params().text(id));
      if (!r) return std::move(r).error();
    }
    return tx.commit();
  }

  // --- Files ----------------------------------------------------------------------------

  Result<StoredFile> put_file(const NewFile& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "file_put");
    const StoredFile f = stored_file_of(in, now_ms);
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    auto content = db.query(
        "INSERT INTO file_contents (tenant_id, sha256, content, created_at) VALUES ($1, $2, $3, "
        "$4) ON CONFLICT (tenant_id, sha256) DO NOTHING",
        Params().text(in.tenant_id).text(in.sha256).bytes(in.content).integer(now_ms));
    if (!content) return std::move(content).error();
    auto file = db.query(
        "INSERT INTO files (id, tenant_id, user_id, filename, purpose, bytes, sha256, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Params()
            .text(f.id)
            .text(f.tenant_id)
            .text(f.user_id)
            .text(f.filename)
            .text(f.purpose)
            .integer(f.bytes)
            .text(f.sha256)
            .integer(now_ms));
    if (!file) return std::move(file).error();
    if (auto r = tx.commit(); !r) return std::move(r).error();
    return f;
  }

  Result<StoredFile> get_file(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "file_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kFileColumns + " FROM files WHERE id = $1";
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return file_not_found(id);
    return read_file(*rows, 0);
  }

  Result<std::string> file_content(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "file_content");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT c.content FROM files f JOIN file_contents c ON c.tenant_id = f.tenant_id AND "
        "c.sha256 = f.sha256 WHERE f.id = $1",
        Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return file_not_found(id);
    return rows->bytes(0, 0);
  }

  Result<FilePage> list_files(std::string_view tenant_id, const std::optional<std::string>& purpose,
                              int limit, const std::optional<std::string>& cursor) override {
    QueryTimer timer(db_.options.metrics, "file_list");
    auto after = parse_cursor(cursor);
    if (after.error) return *after.error;
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kFileColumns +
        " FROM files WHERE tenant_id = $1 AND seq < $2 AND ($3::text IS NULL OR purpose = $3) "
        "ORDER BY seq DESC LIMIT $4";
    auto rows = (**lease).query(sql, Params()
                                         .text(tenant_id)
                                         .integer(after.after.value_or(INT64_MAX))
                                         .optional_text(purpose)
                                         .integer(limit + 1));
    if (!rows) return std::move(rows).error();
    return read_page<FilePage>(*rows, limit, kFileSeqColumn, read_file);
  }

  Result<void> delete_file(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "file_delete");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    auto file =
        db.query("DELETE FROM files WHERE id = $1 RETURNING tenant_id, sha256", Params().text(id));
    if (!file) return std::move(file).error();
    if (file->empty()) return file_not_found(id);
    const std::string tenant = file->text(0, 0);
    const std::string sha = file->text(0, 1);
    auto docs =
        db.query("SELECT id FROM kb_documents WHERE file_id = $1 FOR UPDATE", Params().text(id));
    if (!docs) return std::move(docs).error();
    if (!docs->empty()) {
      if (auto r = lock_change_log(db); !r) return r;
    }
    for (int i = 0; i < docs->size(); ++i) {
      if (auto r = remove_document_in(db, docs->text(i, 0)); !r) return r;
    }
    auto content = db.query(
        "DELETE FROM file_contents WHERE tenant_id = $1 AND sha256 = $2 AND NOT EXISTS (SELECT 1 "
        "FROM files WHERE tenant_id = $1 AND sha256 = $2)",
        Params().text(tenant).text(sha));
    if (!content) return std::move(content).error();
    return tx.commit();
  }

  // --- Documents ------------------------------------------------------------------------

  Result<AddedDocument> add_document(const NewDocument& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_add");
    std::string id;
    bool duplicate = false;
    {
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      Connection& db = **lease;
      Transaction tx(db);
      if (!tx.begun()) return tx.begun().error();
      // The base's row lock makes two uploads of the same content take turns: the second
      // finds the first.
      auto base = db.query("SELECT 1 FROM knowledge_bases WHERE id = $1 FOR UPDATE",
                           Params().text(in.kb_id));
      if (!base) return std::move(base).error();
      if (base->empty()) return knowledge_base_not_found(in.kb_id);
      auto file = db.query("SELECT sha256, bytes FROM files WHERE id = $1 AND tenant_id = $2",
                           Params().text(in.file_id).text(in.tenant_id));
      if (!file) return std::move(file).error();
      if (file->empty()) return file_not_found(in.file_id);
      const std::string sha = file->text(0, 0);
      const int64_t bytes = file->integer(0, 1);
      auto existing = db.query(
          "SELECT id FROM kb_documents WHERE kb_id = $1 AND sha256 = $2 ORDER BY seq LIMIT 1",
          Params().text(in.kb_id).text(sha));
      if (!existing) return std::move(existing).error();
      if (!existing->empty()) {
        id = existing->text(0, 0);
        duplicate = true;
      } else {
        id = new_resource_id("doc");
        auto inserted = db.query(
            "INSERT INTO kb_documents (id, kb_id, tenant_id, file_id, name, sha256, bytes, status, "
            "attributes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, "
            "$9, $9)",
            Params()
                .text(id)
                .text(in.kb_id)
                .text(in.tenant_id)
                .text(in.file_id)
                .text(in.name)
                .text(sha)
                .integer(bytes)
                .text(in.attributes_json)
                .integer(now_ms));
        if (!inserted) return std::move(inserted).error();
      }
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    auto doc = get_document(id);
    if (!doc) return std::move(doc).error();
    return AddedDocument{std::move(doc).value(), duplicate};
  }

  Result<KnowledgeDocument> get_document(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "document_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kDocumentColumns + " FROM kb_documents WHERE id = $1";
    auto rows = (**lease).query(sql, Params().text(id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return document_not_found(id);
    return read_document(*rows, 0);
  }

  Result<KnowledgeDocument> document_for_file(std::string_view kb_id,
                                              std::string_view file_id) override {
    QueryTimer timer(db_.options.metrics, "document_get");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kDocumentColumns +
        " FROM kb_documents d WHERE kb_id = $1 AND (file_id = $2 OR sha256 = (SELECT sha256 FROM "
        "files WHERE id = $2 AND tenant_id = d.tenant_id)) ORDER BY file_id = $2 DESC, seq LIMIT 1";
    auto rows = (**lease).query(sql, Params().text(kb_id).text(file_id));
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return document_not_found(file_id);
    return read_document(*rows, 0);
  }

  Result<DocumentPage> list_documents(const DocumentListQuery& q) override {
    QueryTimer timer(db_.options.metrics, "document_list");
    auto after = parse_cursor(q.cursor);
    if (after.error) return *after.error;
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql =
        std::string("SELECT ") + kDocumentColumns +
        " FROM kb_documents WHERE kb_id = $1 AND seq < $2 AND ($3::text IS NULL OR status = $3) "
        "ORDER BY seq DESC LIMIT $4";
    auto rows = (**lease).query(sql, Params()
                                         .text(q.kb_id)
                                         .integer(after.after.value_or(INT64_MAX))
                                         .optional_text(q.status)
                                         .integer(q.limit + 1));
    if (!rows) return std::move(rows).error();
    return read_page<DocumentPage>(*rows, q.limit, kDocumentSeqColumn, read_document);
  }

  Result<KnowledgeDocument> replace_document(std::string_view id, std::string_view file_id,
                                             std::string_view name, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_replace");
    {
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      auto rows = (**lease).query(
          "UPDATE kb_documents d SET file_id = f.id, sha256 = f.sha256, bytes = f.bytes, "
          "name = CASE WHEN $3 = '' THEN d.name ELSE $3 END, status = 'queued', "
          "error_reason = '', error_message = '', progress = '{}', updated_at = $4 "
          "FROM files f WHERE d.id = $1 AND f.id = $2 AND f.tenant_id = d.tenant_id",
          Params().text(id).text(file_id).text(name).integer(now_ms));
      if (!rows) return std::move(rows).error();
      if (rows->affected() == 0) {
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
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      Connection& db = **lease;
      Transaction tx(db);
      if (!tx.begun()) return tx.begun().error();
      auto rows = db.query(
          "UPDATE kb_documents SET name = CASE WHEN $2 = '' THEN name ELSE $2 END, attributes = "
          "COALESCE($3, attributes), updated_at = $4 WHERE id = $1 RETURNING kb_id",
          Params().text(id).text(name).optional_text(attributes_json).integer(now_ms));
      if (!rows) return std::move(rows).error();
      if (rows->empty()) return document_not_found(id);
      if (auto r = lock_change_log(db); !r) return std::move(r).error();
      auto log =
          db.query("INSERT INTO kb_changes (kb_id, op, document_id) VALUES ($1, 'document', $2)",
                   Params().text(rows->text(0, 0)).text(id));
      if (!log) return std::move(log).error();
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    return get_document(id);
  }

  Result<void> delete_document(std::string_view id) override {
    QueryTimer timer(db_.options.metrics, "document_delete");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    if (auto r = lock_change_log(db); !r) return r;
    if (auto r = remove_document_in(db, id); !r) return r;
    return tx.commit();
  }

  Result<void> set_progress(std::string_view id, std::string_view progress_json,
                            int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_progress");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "UPDATE kb_documents SET status = 'processing', progress = $2, updated_at = $3 WHERE id = "
        "$1",
        Params().text(id).text(progress_json).integer(now_ms));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 0) return document_not_found(id);
    return success();
  }

  Result<void> fail_document(std::string_view id, std::string_view reason, std::string_view message,
                             int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_fail");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "UPDATE kb_documents SET status = 'failed', error_reason = $2, error_message = $3, "
        "progress = '{}', updated_at = $4 WHERE id = $1",
        Params().text(id).text(reason).text(message).integer(now_ms));
    if (!rows) return std::move(rows).error();
    if (rows->affected() == 0) return document_not_found(id);
    return success();
  }

  Result<void> commit_chunks(const ChunkCommit& in, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "document_commit");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    // Row locks, the base's first (as delete_base takes them): a re-embedding cannot finish
    // between the embedder check and the commit, and two ingestions of one document commit
    // one after the other.
    auto owner =
        db.query("SELECT kb_id FROM kb_documents WHERE id = $1", Params().text(in.document_id));
    if (!owner) return std::move(owner).error();
    if (owner->empty()) return document_not_found(in.document_id);
    const std::string kb_id = owner->text(0, 0);
    auto base = db.query("SELECT embedder, dimension FROM knowledge_bases WHERE id = $1 FOR UPDATE",
                         Params().text(kb_id));
    if (!base) return std::move(base).error();
    if (base->empty()) return document_not_found(in.document_id);
    auto doc = db.query("SELECT file_id FROM kb_documents WHERE id = $1 FOR UPDATE",
                        Params().text(in.document_id));
    if (!doc) return std::move(doc).error();
    if (doc->empty()) return document_not_found(in.document_id);
    if (doc->text(0, 0) != in.file_id) return document_changed(in.document_id);
    if (!in.embedder.empty() && base->text(0, 0) != in.embedder) {
      return embedder_changed(kb_id, in.embedder);
    }
    auto checked = check_dimension(kb_id, base->integer(0, 1), in.chunks);
    if (!checked) return std::move(checked).error();
    if (*checked) {
      auto set = db.query(
          "UPDATE knowledge_bases SET dimension = $2 WHERE id = $1",
          Params().text(kb_id).integer(static_cast<int64_t>(in.chunks.front().vector.size())));
      if (!set) return std::move(set).error();
    }
    std::vector<int64_t> added;
    added.reserve(in.chunks.size());
    int64_t tokens = 0;
    for (const auto& c : in.chunks) {
      auto row = db.query(
          "INSERT INTO kb_chunks (kb_id, document_id, ordinal, text, section, page, page_end, "
          "start_offset, end_offset, tokens, vector) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
          "$10, $11) RETURNING seq",
          Params()
              .text(kb_id)
              .text(in.document_id)
              .integer(c.ordinal)
              .text(c.text)
              .text(c.section)
              .integer(c.page)
              .integer(c.page_end)
              .integer(c.start_offset)
              .integer(c.end_offset)
              .integer(c.tokens)
              .bytes(encode_vector(c.vector)));
      if (!row) return std::move(row).error();
      added.push_back(row->integer(0, 0));
      tokens += c.tokens;
    }
    if (auto r = lock_change_log(db); !r) return r;
    auto removed = db.query(
        "WITH gone AS (DELETE FROM kb_chunks WHERE document_id = $1 AND NOT (seq = "
        "ANY($2::bigint[])) "
        "RETURNING seq, kb_id) INSERT INTO kb_changes (kb_id, op, chunk_seq, document_id) SELECT "
        "kb_id, 'remove', seq, $1 FROM gone ORDER BY seq",
        Params().text(in.document_id).text(integer_array(added)));
    if (!removed) return std::move(removed).error();
    auto logged = db.query(
        "INSERT INTO kb_changes (kb_id, op, chunk_seq, document_id) SELECT $1, 'add', s, $2 FROM "
        "unnest($3::bigint[]) AS s ORDER BY s",
        Params().text(kb_id).text(in.document_id).text(integer_array(added)));
    if (!logged) return std::move(logged).error();
    auto ready = db.query(
        "UPDATE kb_documents SET status = 'ready', format = $2, pages = $3, chunks = $4, tokens = "
        "$5, error_reason = '', error_message = '', progress = '{}', updated_at = $6, "
        "ingested_at = $6 WHERE id = $1",
        Params()
            .text(in.document_id)
            .text(in.format)
            .integer(in.pages)
            .integer(static_cast<int64_t>(in.chunks.size()))
            .integer(tokens)
            .integer(now_ms));
    if (!ready) return std::move(ready).error();
    return tx.commit();
  }

  // --- Re-embedding ---------------------------------------------------------------------

  Result<KnowledgeBase> begin_reembed(std::string_view kb_id, std::string_view embedder,
                                      int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_reembed");
    {
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      Connection& db = **lease;
      Transaction tx(db);
      if (!tx.begun()) return tx.begun().error();
      auto base = db.query(
          "UPDATE knowledge_bases SET next_embedder = CASE WHEN embedder = $2 THEN '' ELSE $2 "
          "END, updated_at = $3 WHERE id = $1 RETURNING id",
          Params().text(kb_id).text(embedder).integer(now_ms));
      if (!base) return std::move(base).error();
      if (base->empty()) return knowledge_base_not_found(kb_id);
      auto chunks = db.query(
          "UPDATE kb_chunks SET next_vector = NULL WHERE kb_id = $1 AND next_vector IS NOT NULL",
          Params().text(kb_id));
      if (!chunks) return std::move(chunks).error();
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    return get_base(kb_id);
  }

  Result<std::vector<StoredChunk>> chunks_to_reembed(std::string_view kb_id, int64_t after_seq,
                                                     int limit) override {
    QueryTimer timer(db_.options.metrics, "chunks_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT seq, kb_id, document_id, ordinal, text, section, page, page_end, start_offset, "
        "end_offset, tokens, ''::bytea FROM kb_chunks WHERE kb_id = $1 AND seq > $2 AND "
        "next_vector IS NULL ORDER BY seq LIMIT $3",
        Params().text(kb_id).integer(after_seq).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<StoredChunk> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_chunk(*rows, i));
    return out;
  }

  Result<void> store_next_vectors(
      std::string_view kb_id, std::string_view embedder,
      const std::vector<std::pair<int64_t, std::vector<float>>>& vectors) override {
    QueryTimer timer(db_.options.metrics, "kb_reembed");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    Connection& db = **lease;
    Transaction tx(db);
    if (!tx.begun()) return tx.begun().error();
    if (auto r = check_next_embedder(db, kb_id, embedder, "FOR SHARE"); !r) return r;
    for (const auto& [seq, vector] : vectors) {
      auto updated = db.query("UPDATE kb_chunks SET next_vector = $1 WHERE seq = $2 AND kb_id = $3",
                              Params().bytes(encode_vector(vector)).integer(seq).text(kb_id));
      if (!updated) return std::move(updated).error();
    }
    return tx.commit();
  }

  Result<KnowledgeBase> finish_reembed(std::string_view kb_id, std::string_view embedder,
                                       int64_t dimension, int64_t now_ms) override {
    QueryTimer timer(db_.options.metrics, "kb_reembed");
    {
      auto lease = db_.pool.borrow();
      if (!lease) return std::move(lease).error();
      Connection& db = **lease;
      Transaction tx(db);
      if (!tx.begun()) return tx.begun().error();
      if (auto r = check_next_embedder(db, kb_id, embedder, "FOR UPDATE"); !r) {
        return std::move(r).error();
      }
      auto missing =
          db.query("SELECT count(*) FROM kb_chunks WHERE kb_id = $1 AND next_vector IS NULL",
                   Params().text(kb_id));
      if (!missing) return std::move(missing).error();
      if (missing->integer(0, 0) > 0) return reembed_incomplete(kb_id, missing->integer(0, 0));
      auto moved =
          db.query("UPDATE kb_chunks SET vector = next_vector, next_vector = NULL WHERE kb_id = $1",
                   Params().text(kb_id));
      if (!moved) return std::move(moved).error();
      auto base = db.query(
          "UPDATE knowledge_bases SET embedder = next_embedder, next_embedder = '', dimension = "
          "$2, updated_at = $3 WHERE id = $1",
          Params().text(kb_id).integer(dimension).integer(now_ms));
      if (!base) return std::move(base).error();
      if (auto r = lock_change_log(db); !r) return std::move(r).error();
      auto logged = db.query("INSERT INTO kb_changes (kb_id, op) VALUES ($1, 'vectors')",
                             Params().text(kb_id));
      if (!logged) return std::move(logged).error();
      if (auto r = tx.commit(); !r) return std::move(r).error();
    }
    return get_base(kb_id);
  }

  // --- Derived indexes ------------------------------------------------------------------

  Result<std::string> database_identity() override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("SELECT id FROM database_identity LIMIT 1");
    if (!rows) return std::move(rows).error();
    if (rows->empty()) return Error::internal("the database has no identity row");
    return rows->text(0, 0);
  }

  Result<std::vector<ChunkChange>> changes_since(int64_t after_seq, int limit) override {
    QueryTimer timer(db_.options.metrics, "kb_changes");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT seq, kb_id, op, chunk_seq, document_id FROM kb_changes WHERE seq > $1 ORDER BY "
        "seq LIMIT $2",
        Params().integer(after_seq).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<ChunkChange> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) {
      ChunkChange c;
      c.seq = rows->integer(i, 0);
      c.kb_id = rows->text(i, 1);
      c.op = static_cast<ChunkChange::Op>(change_op_from(rows->text(i, 2)));
      c.chunk_seq = rows->integer(i, 3);
      c.document_id = rows->text(i, 4);
      out.push_back(std::move(c));
    }
    return out;
  }

  Result<int64_t> last_change() override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query("SELECT COALESCE(max(seq), 0) FROM kb_changes");
    if (!rows) return std::move(rows).error();
    return rows->integer(0, 0);
  }

  Result<std::vector<StoredChunk>> chunks_by_seq(const std::vector<int64_t>& seqs) override {
    QueryTimer timer(db_.options.metrics, "chunks_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kChunkColumns +
                                   " FROM kb_chunks WHERE seq = ANY($1::bigint[]) ORDER BY seq";
    auto rows = (**lease).query(sql, Params().text(integer_array(seqs)));
    if (!rows) return std::move(rows).error();
    std::vector<StoredChunk> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_chunk(*rows, i));
    return out;
  }

  Result<std::vector<StoredChunk>> base_chunks(std::string_view kb_id, int64_t after_seq,
                                               int limit) override {
    QueryTimer timer(db_.options.metrics, "chunks_read");
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    static const std::string sql = std::string("SELECT ") + kChunkColumns +
                                   " FROM kb_chunks WHERE kb_id = $1 AND seq > $2 ORDER BY seq "
                                   "LIMIT $3";
    auto rows = (**lease).query(sql, Params().text(kb_id).integer(after_seq).integer(limit));
    if (!rows) return std::move(rows).error();
    std::vector<StoredChunk> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) out.push_back(read_chunk(*rows, i));
    return out;
  }

  Result<std::vector<IndexedDocument>> indexed_documents(std::string_view kb_id) override {
    auto lease = db_.pool.borrow();
    if (!lease) return std::move(lease).error();
    auto rows = (**lease).query(
        "SELECT id, file_id, name, format, attributes FROM kb_documents WHERE kb_id = $1 ORDER "
        "BY seq",
        Params().text(kb_id));
    if (!rows) return std::move(rows).error();
    std::vector<IndexedDocument> out;
    out.reserve(static_cast<size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) {
      out.push_back({rows->text(i, 0), rows->text(i, 1), rows->text(i, 2), rows->text(i, 3),
                     rows->text(i, 4)});
    }
    return out;
  }

 private:
  // Inside a transaction: the base's next embedder is still `embedder` (its row locked so).
  static Result<void> check_next_embedder(Connection& db, std::string_view kb_id,
                                          std::string_view embedder, std::string_view lock) {
    auto base = db.query(
        std::string("SELECT next_embedder FROM knowledge_bases WHERE id = $1 ").append(lock),
        Params().text(kb_id));
    if (!base) return std::move(base).error();
    if (base->empty()) return knowledge_base_not_found(kb_id);
    if (base->text(0, 0) != embedder) return embedder_changed(kb_id, embedder);
    return success();
  }

  static Result<void> lock_change_log(Connection& db) {
    auto locked = db.query(kChangeLogLock);
    if (!locked) return std::move(locked).error();
    return success();
  }

  // Inside a transaction holding the change-log lock.
  static Result<void> remove_document_in(Connection& db, std::string_view id) {
    auto doc = db.query("DELETE FROM kb_documents WHERE id = $1", Params().text(id));
    if (!doc) return std::move(doc).error();
    if (doc->affected() == 0) return document_not_found(id);
    auto removed = db.query(
        "WITH gone AS (DELETE FROM kb_chunks WHERE document_id = $1 RETURNING seq, kb_id) INSERT "
        "INTO kb_changes (kb_id, op, chunk_seq, document_id) SELECT kb_id, 'remove', seq, $1 FROM "
        "gone ORDER BY seq",
        Params().text(id));
    if (!removed) return std::move(removed).error();
    return success();
  }

  Database& db_;
};

}  // namespace

std::unique_ptr<KnowledgeRepository> make_knowledge_table(Database& db) {
  return std::make_unique<KnowledgeTable>(db);
}

}  // namespace parley::store::postgres
