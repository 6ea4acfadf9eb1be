// The lexical side of search for one knowledge base: Xapian's BM25 over each chunk's section
// heading and text, with English stemming (stemmed terms only, no positions: phrases in
// quotes are searched as their words). Xapian ranks the top k with bounds on each term's
// best possible weight, so it does not score every match: queries of common words stay fast.
// BM25's length normalisation is applied when a chunk is indexed (its word counts scaled by its
// length), so a search reads no chunk's length (lexical_index.cpp's kWdfScale).
//
// Words in a large share of a big base's chunks (knowledge/index/lexical_index.cpp's
// kCommonShare, at least kCommonFloor chunks) do not choose chunks, they only add to the scores
// of chunks that something else chose: a rarer word of the query, or the vector side's
// candidates. A query of such words alone therefore reads a few postings instead of every
// chunk's, and ranks as BM25 would among the chunks it reads. Words in more than half of a big
// base's chunks, to which BM25's inverse document frequency gives no positive weight, are left
// out of a query that has other words.
// A chunk's Xapian document id is its label (store::StoredChunk::seq); its data is the chunk
// as search results show it, so a search needs no database read. Each chunk is also filed
// under its document ("D" + document id), which document filters use and from which the
// document-to-chunks table is rebuilt when the index is opened.
//
// On disk (a directory, glass format) or in memory. Thread-safe: one lock around the
// database, since Xapian objects are not safe to share between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"

#include "knowledge/index/highlight.hpp"

namespace Xapian {
class WritableDatabase;
}  // namespace Xapian

namespace parley::knowledge {

struct LexicalHit {
  uint64_t label = 0;
  double score = 0;  // BM25
};

// A search's answer, which can also highlight the query's terms in any chunk's text.
class LexicalResult {
 public:
  LexicalResult();
  ~LexicalResult();
  LexicalResult(LexicalResult&&) noexcept;
  LexicalResult& operator=(LexicalResult&&) noexcept;

  std::vector<LexicalHit> hits;
  // The passage of `text` (about `length` bytes) that best matches, its matching words within
  // «» marks. Empty when nothing matched.
  std::string highlight(const std::string& text, size_t length = 300) const;

 private:
  friend class LexicalIndex;
  Highlighter highlighter_;
};

struct LexicalSearch {
  size_t k = 10;
  // Only these chunks (a filter's; any order); null: any.
  const std::vector<uint64_t>* only = nullptr;
  // Or a test of each match (for a filter that allows too many chunks to list).
  const std::function<bool(uint64_t)>* allowed = nullptr;
  // Chunks a query of common words scores (the vector side's candidates), sorted; null: such a
  // query scores every chunk that has its words, as plain BM25 does (but for the words in most
  // chunks, left out when other words remain).
  const std::vector<uint64_t>* candidates = nullptr;
};

class LexicalIndex {
 public:
  // `directory` empty: in memory (nothing persists).
  static Result<std::unique_ptr<LexicalIndex>> open(const std::string& directory);
  ~LexicalIndex();

  void upsert(uint64_t label, std::string_view document_id, std::string_view section,
              std::string_view text, const std::string& data);
  void remove(uint64_t label);
  // Makes the changes durable, with `applied_seq` (how far the change log is applied).
  Result<void> commit(int64_t applied_seq);
  int64_t applied_seq() const;

  LexicalResult search(std::string_view query, const LexicalSearch& options) const;
  // The data stored with a chunk.
  std::optional<std::string> data(uint64_t label) const;
  // Every document and the labels of its chunks (the table filters use).
  std::map<std::string, std::vector<uint64_t>> document_labels() const;

 private:
  explicit LexicalIndex(std::unique_ptr<Xapian::WritableDatabase> db);
  std::unique_ptr<Xapian::WritableDatabase> db_;
  mutable std::mutex mutex_;
  // Words' chunk counts, remembered until the index changes. With mutex_ held.
  mutable std::unordered_map<std::string, unsigned> term_frequencies_;
};

}  // namespace parley::knowledge
