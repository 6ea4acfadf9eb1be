// Storage of knowledge bases: uploaded files (their bytes kept once per tenant and content
// hash), knowledge bases, their documents, and the chunks ingestion cuts them into, each with
// its embedding. Part of store.hpp's contract (blocking, thread-safe, durable on return,
// errors as values).
//
// The database is the record; the search indexes in each process are derived from it. Every
// change to the chunks a search can return is also appended to a change log (an increasing
// sequence, in commit order on both backends), which each replica reads to catch its indexes
// up. A chunk's `seq` is its label in those indexes and is never reused. The change log and
// `database_identity` (a random id per database, so an index built from one database is never
// used with another) are not moved by `parley copy-data`: a copied installation rebuilds its
// indexes from the chunks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace parley::store {

struct KnowledgeBase {
  std::string id;  // "kb_..."
  std::string tenant_id = "default";
  // "" when the base is the tenant's, shared by its users; otherwise the one end user whose
  // own base it is (created with that user's key): only that user's turns search it.
  std::string owner_user_id;
  std::string name;
  std::string description;
  std::string embedder;   // the embedder its vectors come from (knowledge/embed/embedder.hpp)
  int64_t dimension = 0;  // 0 until the first vectors when the embedder's is not known before
  // While its chunks are re-embedded: the embedder they move to ("" otherwise). Searches use
  // `embedder`'s vectors until every chunk has one from the next (finish_reembed).
  std::string next_embedder;
  std::string settings_json = "{}";  // chunking and search settings (knowledge/settings.hpp)
  std::string metadata_json = "{}";  // the owner's own key-value pairs
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  // Counted when read.
  int64_t documents = 0;
  int64_t documents_ready = 0;
  int64_t documents_processing = 0;  // queued or processing
  int64_t documents_failed = 0;
  int64_t chunks = 0;
  int64_t bytes = 0;  // of its documents' files
};

struct NewKnowledgeBase {
  std::string tenant_id = "default";
  std::string owner_user_id;  // "" = the tenant's
  std::string name;
  std::string description;
  std::string embedder;
  int64_t dimension = 0;
  std::string settings_json = "{}";
  std::string metadata_json = "{}";
};

// Only the fields that are set change.
struct KnowledgeBasePatch {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<std::string> settings_json;
  std::optional<std::string> metadata_json;
};

struct KnowledgeBaseListQuery {
  std::optional<std::string> tenant_id;  // every tenant's when nullopt
  // When set, only what this user may see: the tenant's shared bases and the user's own.
  std::optional<std::string> visible_to_user;
  int limit = 20;
  std::optional<std::string> cursor;
};

struct KnowledgeBasePage {
  std::vector<KnowledgeBase> items;  // newest first
  std::optional<std::string> next_cursor;
};

// An uploaded file (OpenAI's file object). Its bytes are stored once per tenant and SHA-256,
// however many files and documents share them.
struct StoredFile {
  std::string id;  // "file_..."
  std::string tenant_id = "default";
  std::string user_id;  // who uploaded it, when known
  std::string filename;
  std::string purpose;  // "assistants", "knowledge", ...
  int64_t bytes = 0;
  std::string sha256;  // lowercase hex
  int64_t created_at_ms = 0;
};

struct NewFile {
  std::string tenant_id = "default";
  std::string user_id;
  std::string filename;
  std::string purpose;
  std::string sha256;  // of content, computed by the caller
  std::string content;
};

struct FilePage {
  std::vector<StoredFile> items;  // newest first
  std::optional<std::string> next_cursor;
};

// A document of a knowledge base: a file, and what ingestion made of it.
struct KnowledgeDocument {
  std::string id;  // "doc_..."
  std::string kb_id;
  std::string tenant_id = "default";
  std::string file_id;
  std::string name;
  std::string sha256;
  int64_t bytes = 0;
  // "queued" (waiting for a worker), "processing", "ready" or "failed".
  std::string status;
  std::string format;                // what extraction found ("pdf", "markdown"...); "" before
  std::string error_reason;          // when failed: "document_encrypted", "unsupported_type"...
  std::string error_message;         // for a person
  std::string progress_json = "{}";  // {"stage": "embedding", "chunks": 120, "embedded": 64}
  int64_t chunks = 0;
  int64_t tokens = 0;
  int64_t pages = 0;
  std::string attributes_json = "{}";  // the owner's key-value pairs, usable in search filters
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> ingested_at_ms;  // when its current chunks were stored
};

struct NewDocument {
  std::string kb_id;
  std::string tenant_id = "default";
  std::string file_id;
  std::string name;
  std::string attributes_json = "{}";
};

struct AddedDocument {
  KnowledgeDocument document;
  // The knowledge base already had a document with the same content: that one is returned
  // and nothing was added.
  bool duplicate = false;
};

struct DocumentListQuery {
  std::string kb_id;
  std::optional<std::string> status;
  int limit = 20;
  std::optional<std::string> cursor;
};

struct DocumentPage {
  std::vector<KnowledgeDocument> items;  // newest first
  std::optional<std::string> next_cursor;
};

struct NewChunk {
  int64_t ordinal = 0;  // its place in the document, from 0
  std::string text;
  std::string section;
  int64_t page = 0;
  int64_t page_end = 0;
  int64_t start_offset = 0;  // into the document's extracted text
  int64_t end_offset = 0;
  int64_t tokens = 0;
  std::vector<float> vector;
};

// What ingestion stores for a document: its chunks replace any it had, in one transaction,
// and the document becomes ready.
struct ChunkCommit {
  std::string document_id;
  std::string file_id;  // the file ingested: kConflict if the document changed file meanwhile
  std::string format;
  int64_t pages = 0;
  std::vector<NewChunk> chunks;
  // The embedder the vectors came from: kConflict "embedder_changed" unless it is still the
  // base's (a re-embedding finished meanwhile); empty: not checked. A base of dimension 0
  // takes the vectors'.
  std::string embedder;
};

struct StoredChunk {
  int64_t seq = 0;  // the label in the derived indexes
  std::string kb_id;
  std::string document_id;
  int64_t ordinal = 0;
  std::string text;
  std::string section;
  int64_t page = 0;
  int64_t page_end = 0;
  int64_t start_offset = 0;
  int64_t end_offset = 0;
  int64_t tokens = 0;
  std::vector<float> vector;
};

// One entry of the change log.
struct ChunkChange {
  // kVectors: every vector of the base was replaced (a re-embedding finished, maybe with
  // another dimension): its vector index is rebuilt from the chunks.
  enum class Op { kAdd, kRemove, kDropBase, kDocument, kVectors };
  int64_t seq = 0;
  std::string kb_id;
  Op op = Op::kAdd;
  int64_t chunk_seq = 0;    // kAdd, kRemove
  std::string document_id;  // kAdd, kRemove, kDocument (its name or attributes changed)
};

// What a derived index needs of a document: its name and attributes, for filters and results.
struct IndexedDocument {
  std::string id;
  std::string file_id;
  std::string name;
  std::string format;
  std::string attributes_json;
};

class KnowledgeRepository {
 public:
  virtual ~KnowledgeRepository() = default;

  // --- Knowledge bases (kNotFound "knowledge_base_not_found") ---
  virtual Result<KnowledgeBase> create_base(const NewKnowledgeBase& base, int64_t now_ms) = 0;
  virtual Result<KnowledgeBase> get_base(std::string_view id) = 0;
  // The base without its document counts and sizes (left 0), which read every document's row:
  // for the paths that need only its owner, embedder and settings (ingestion, search,
  // retrieval, the indexes), whose cost must not grow with the base.
  virtual Result<KnowledgeBase> get_base_brief(std::string_view id) = 0;
  virtual Result<KnowledgeBasePage> list_bases(const KnowledgeBaseListQuery& query) = 0;
  virtual Result<KnowledgeBase> update_base(std::string_view id, const KnowledgeBasePatch& patch,
                                            int64_t now_ms) = 0;
  // Deletes the base, its documents and chunks (files stay); logs kDropBase.
  virtual Result<void> delete_base(std::string_view id) = 0;

  // --- Files (kNotFound "file_not_found") ---
  virtual Result<StoredFile> put_file(const NewFile& file, int64_t now_ms) = 0;
  virtual Result<StoredFile> get_file(std::string_view id) = 0;
  virtual Result<std::string> file_content(std::string_view id) = 0;
  virtual Result<FilePage> list_files(std::string_view tenant_id,
                                      const std::optional<std::string>& purpose, int limit,
                                      const std::optional<std::string>& cursor) = 0;
  // Deletes the file, every document made from it (with their chunks), and its bytes once no
  // other file shares them.
  virtual Result<void> delete_file(std::string_view id) = 0;

  // --- Documents (kNotFound "document_not_found") ---
  // Queued; or, when the base already has a document with the file's content, that one.
  virtual Result<AddedDocument> add_document(const NewDocument& document, int64_t now_ms) = 0;
  virtual Result<KnowledgeDocument> get_document(std::string_view id) = 0;
  // The base's document made from this file, or from another file with the same content (the
  // base stores content once); kNotFound "document_not_found" when there is none.
  virtual Result<KnowledgeDocument> document_for_file(std::string_view kb_id,
                                                      std::string_view file_id) = 0;
  virtual Result<DocumentPage> list_documents(const DocumentListQuery& query) = 0;
  // A new file for the document: queued again; its old chunks serve until the new ones are
  // committed.
  virtual Result<KnowledgeDocument> replace_document(std::string_view id, std::string_view file_id,
                                                     std::string_view name, int64_t now_ms) = 0;
  // New attributes (and name, when not empty); logs kDocument.
  virtual Result<KnowledgeDocument> update_document(
      std::string_view id, std::string_view name, const std::optional<std::string>& attributes_json,
      int64_t now_ms) = 0;
  // Deletes the document and its chunks; logs kRemove for each.
  virtual Result<void> delete_document(std::string_view id) = 0;
  // Ingestion's progress: status "processing" with `progress_json`.
  virtual Result<void> set_progress(std::string_view id, std::string_view progress_json,
                                    int64_t now_ms) = 0;
  // Failed, with a reason and a message; its previous chunks (if any) stay searchable.
  virtual Result<void> fail_document(std::string_view id, std::string_view reason,
                                     std::string_view message, int64_t now_ms) = 0;
  // Replaces the document's chunks and makes it ready; logs kRemove for the old chunks and
  // kAdd for the new. kNotFound when the document is gone, kConflict "document_changed" when
  // it now names another file (a replace came in while this ingestion ran).
  virtual Result<void> commit_chunks(const ChunkCommit& commit, int64_t now_ms) = 0;

  // --- Changing a base's embedder (the knowledge.reembed job) ---
  // Makes `embedder` the base's next one, forgetting vectors made for any previous next one;
  // naming the current embedder cancels a re-embedding instead. Searches keep the current
  // vectors meanwhile.
  virtual Result<KnowledgeBase> begin_reembed(std::string_view kb_id, std::string_view embedder,
                                              int64_t now_ms) = 0;
  // The base's chunks without a vector from the next embedder, after `after_seq` in seq order,
  // at most `limit` (their `vector` left empty).
  virtual Result<std::vector<StoredChunk>> chunks_to_reembed(std::string_view kb_id,
                                                             int64_t after_seq, int limit) = 0;
  // Stores vectors from the next embedder by chunk seq (chunks deleted since are skipped).
  // kConflict "embedder_changed" when `embedder` is no longer the base's next one.
  virtual Result<void> store_next_vectors(
      std::string_view kb_id, std::string_view embedder,
      const std::vector<std::pair<int64_t, std::vector<float>>>& vectors) = 0;
  // In one transaction: the next vectors become the current ones, the base's embedder and
  // dimension change, and kVectors is logged. kConflict "embedder_changed" when `embedder` is
  // no longer the next one; kConflict "reembed_incomplete" when a chunk has no next vector (it
  // was added meanwhile: embed it and try again).
  virtual Result<KnowledgeBase> finish_reembed(std::string_view kb_id, std::string_view embedder,
                                               int64_t dimension, int64_t now_ms) = 0;

  // --- What the derived indexes read ---
  virtual Result<std::string> database_identity() = 0;
  // The log after `after_seq`, oldest first, at most `limit` entries.
  virtual Result<std::vector<ChunkChange>> changes_since(int64_t after_seq, int limit) = 0;
  // The newest entry's seq (0 when the log is empty).
  virtual Result<int64_t> last_change() = 0;
  // Chunks by seq (those that still exist), with their vectors.
  virtual Result<std::vector<StoredChunk>> chunks_by_seq(const std::vector<int64_t>& seqs) = 0;
  // A base's chunks after `after_seq` in seq order, at most `limit` (rebuilding an index).
  virtual Result<std::vector<StoredChunk>> base_chunks(std::string_view kb_id, int64_t after_seq,
                                                       int limit) = 0;
  // A base's documents that have chunks or may get them.
  virtual Result<std::vector<IndexedDocument>> indexed_documents(std::string_view kb_id) = 0;
};

}  // namespace parley::store
