// Hybrid search over one knowledge base: the vector index (vector_index.hpp) and the lexical
// index (lexical_index.hpp) of its chunks, fused by reciprocal rank fusion (each side's rank r
// adds 1/(60 + r): robust to the two sides' scores being on unrelated scales), with metadata
// filters evaluated on its documents and highlights from the lexical side. Derived from the
// database (index_manager.hpp keeps it caught up); it never writes there.
//
// Thread-safe: searches run beside changes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "knowledge/index/chunk_record.hpp"
#include "knowledge/index/lexical_index.hpp"
#include "knowledge/index/vector_index.hpp"
#include "store/knowledge.hpp"

namespace parley::knowledge {

// A filter on documents, in OpenAI's shape: {"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|
// "nin", "key", "value"} or {"type": "and"|"or", "filters": [...]}. Keys name a document's
// attributes; "document_id", "document_name" and "format" name its own fields.
class Filter {
 public:
  // kInvalidArgument (param "filters") for anything else.
  static Result<Filter> parse(const nlohmann::json& spec);
  // Whether a document passes, reading each field the filter names through `field` (null: no
  // such field), so testing thousands of documents copies none of their attributes.
  using FieldLookup = std::function<const nlohmann::json*(const std::string& key)>;
  bool matches(const FieldLookup& field) const;
  // The filter as text: equal for equal filters.
  const std::string& key() const { return key_; }

 private:
  nlohmann::json spec_;
  std::string key_;
};

enum class SearchMode { kHybrid, kVector, kLexical };

struct SearchRequest {
  std::string query;
  std::vector<float> query_vector;  // from the base's embedder; empty: lexical only
  // The embedder query_vector came from: when it is not the one the index's vectors came from
  // (a re-embedding finished and this replica has not caught up yet), the search is lexical.
  std::string query_embedder;
  size_t k = 10;
  SearchMode mode = SearchMode::kHybrid;
  std::optional<Filter> filter;
  size_t highlight_length = 300;  // 0: no highlights (the chat's retrieval shows none)
  // The graph walk's beam on the vector side (knowledge.search_beam): wider finds more of the
  // true nearest neighbours, slower.
  size_t beam = 256;
};

// A chunk found: its citation and text (what the index keeps with it), and what the search and
// the chunk's document add.
struct SearchHit : ChunkRecord {
  uint64_t label = 0;
  double score = 0;                     // the fused score (hybrid), or the one side's score
  std::optional<double> vector_score;   // cosine similarity
  std::optional<double> lexical_score;  // BM25
  std::string document_name;
  std::string file_id;  // the document's file (OpenAI's search answers name it)
  std::string highlight;
  nlohmann::json attributes;
};

class BaseIndex {
 public:
  // `embedder`: the one the vectors come from ("" when not known: any query vector of the
  // right dimension is used).
  BaseIndex(std::string kb_id, int dimension, std::unique_ptr<VectorIndex> vectors,
            std::unique_ptr<LexicalIndex> lexical, std::string embedder = "");

  const std::string& kb_id() const { return kb_id_; }
  int dimension() const;
  std::string embedder() const;

  // Changes from the log (idempotent: applying one twice is harmless).
  void add(const store::StoredChunk& chunk);
  // Many chunks: the vectors inserted on `threads` threads while the lexical index takes the
  // texts, each thread inserting at most `per_thread` per hold of the lock searches share
  // (VectorIndex::upsert_many). Chunks the index holds already are skipped: a chunk's vector
  // never changes (a new embedder replaces the whole vector index), and hnswlib's update of
  // a vector is costly and not safe on several threads.
  void add_many(const std::vector<store::StoredChunk>& chunks, size_t threads,
                size_t per_thread = SIZE_MAX);
  void remove(uint64_t label, const std::string& document_id);
  void set_documents(const std::vector<store::IndexedDocument>& documents);
  void set_document(const store::IndexedDocument& document);

  // Every vector replaced at once (a re-embedding finished): searches use the old ones until
  // this returns.
  void replace_vectors(std::unique_ptr<VectorIndex> vectors, std::string embedder);

  std::vector<SearchHit> search(const SearchRequest& request) const;

  size_t chunks() const { return vectors()->size(); }
  std::shared_ptr<VectorIndex> vectors() const;
  LexicalIndex& lexical() { return *lexical_; }

 private:
  struct DocumentInfo {
    std::string file_id;
    std::string name;
    std::string format;
    nlohmann::json attributes = nlohmann::json::object();
    std::vector<uint64_t> labels;
  };

  // The labels of the chunks a filter allows (every document tested: 20,000 at 1M chunks).
  std::shared_ptr<const std::vector<uint64_t>> allowed_labels(const Filter& filter) const;

  std::string kb_id_;
  mutable std::mutex vectors_mutex_;  // guards vectors_ and embedder_ (the pointer, not the index)
  std::shared_ptr<VectorIndex> vectors_;
  std::string embedder_;
  std::unique_ptr<LexicalIndex> lexical_;
  mutable std::shared_mutex documents_mutex_;
  std::unordered_map<std::string, DocumentInfo> documents_;
  uint64_t documents_generation_ = 0;  // changed with documents_ (and its mutex)

  // What the filters searched most recently allowed, until a document or chunk changes: a
  // base searched with the same filter (a product's documents) tests its documents once.
  struct Allowed {
    std::string filter;
    uint64_t generation = 0;
    uint64_t used = 0;
    std::shared_ptr<const std::vector<uint64_t>> labels;
  };
  mutable std::mutex allowed_mutex_;
  mutable std::vector<Allowed> allowed_;
  mutable uint64_t allowed_uses_ = 0;
};

// What the lexical index stores with a chunk (and search results show).
std::string chunk_data(const store::StoredChunk& chunk);

}  // namespace parley::knowledge
