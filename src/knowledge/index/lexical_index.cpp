// The Xapian index of one knowledge base (see lexical_index.hpp).
#include "knowledge/index/lexical_index.hpp"

#include <xapian.h>

#include <algorithm>
#include <cmath>

#include "obs/log.hpp"

namespace parley::knowledge {

namespace {

constexpr const char* kAppliedKey = "parley_applied_seq";
constexpr const char* kDocumentPrefix = "D";
constexpr Xapian::termcount kSectionWeight = 2;  // heading words count twice
// A word is common when more than this share of the base's chunks, and more than kCommonFloor
// of them, have it: such a word's postings are most of a search's reading, for a weight that
// BM25's inverse document frequency makes small. Below the floor every posting list is short.
constexpr double kCommonShare = 0.05;
constexpr Xapian::doccount kCommonFloor = 1000;
// A common word in more than this share of the chunks is left out of a query that has other
// words: BM25's inverse document frequency, log((N - n + 0.5) / (n + 0.5)), gives it no
// positive weight (Xapian keeps it above zero, at most log 1.5 = 0.41, against 2.9 for a word
// in 5% of the chunks), and probing its postings for every chunk the other words chose was
// most of what remained of a search's time at 1M chunks.
constexpr double kWeightlessShare = 0.5;
// Xapian reads its B-trees a block at a time through pread, one system call each: a search's
// posting lists at 1M chunks took about a thousand, half of the lexical side's time. Larger
// blocks read them in fewer calls (Xapian's default is 8 KiB; a block size is fixed when the
// index is created).
constexpr int kBlockSize = 65536;
// Words whose chunk counts searches remember (until the index changes) to tell common words
// from rare: Xapian reads a word's count from the index every time it is asked (a block each),
// and reads it again to match.
constexpr size_t kTermFrequenciesKept = 100'000;
// BM25 as Xapian's defaults have it (k1 1, b 0.5, lengths under half the reference counted as
// half), with the length normalisation applied when a chunk is indexed rather than at each
// search: a chunk's word counts are scaled by kWdfScale / ((1 - b) + b * L), L its length
// against kReferenceLength (at least kMinNormalisedLength), and searches weigh them with
// k1 × kWdfScale and b = 0. That ranks as BM25 does with an average length of
// kReferenceLength, up to the rounding, every score multiplied by one constant (kScaledScore,
// divided out of the results), but a search reads no chunk's length: at 1M the
// length look-ups (a block of the index each) were most of the lexical side's time, and the
// bounds on each word's weight, no longer loosened by the shortest chunk's length, let Xapian
// skip more of the postings.
// The reference is a fixed length, not the base's average, so that an indexed chunk never
// has to be indexed again as the base grows; it is the words of a typical chunk at the
// default chunk size. Scaled counts are whole numbers: the weight of a word said once is
// within about 1% in chunks up to the default size (400 tokens), within 4% up to 1,000
// words, and up to 19% off in chunks of 5,000 words (chunk_tokens near its limit), where a
// larger kWdfScale would cost most postings a second byte.
constexpr double kK1 = 1.0;
constexpr double kB = 0.5;
constexpr double kMinNormalisedLength = 0.5;
constexpr double kReferenceLength = 200;
constexpr double kWdfScale = 32;
// What the scaled counts multiply every score by; results divide it out, so that a score is
// BM25's own.
constexpr double kScaledScore = (kK1 * kWdfScale + 1) / (kK1 + 1);

Xapian::Stem english() { return Xapian::Stem("english"); }

class LabelDecider final : public Xapian::MatchDecider {
 public:
  explicit LabelDecider(const std::function<bool(uint64_t)>& allowed) : allowed_(allowed) {}
  bool operator()(const Xapian::Document& doc) const override {
    return allowed_(static_cast<uint64_t>(doc.get_docid()));
  }

 private:
  const std::function<bool(uint64_t)>& allowed_;
};

bool exists(const Xapian::Database& db, Xapian::docid id) {
  try {
    db.get_doclength(id);
    return true;
  } catch (const Xapian::DocNotFoundError&) {
    return false;
  }
}

// The chunks of a sorted list of labels as a Xapian posting list of weight 0: the vector
// side's candidates, which a query of common words scores. A label the index does not hold
// (removed since the vector side answered) is matched with no weight; the search leaves it out
// of its results.
class LabelSource final : public Xapian::PostingSource {
 public:
  explicit LabelSource(std::vector<Xapian::docid> ids) : ids_(std::move(ids)) {}

  Xapian::doccount get_termfreq_min() const override { return 0; }
  Xapian::doccount get_termfreq_est() const override {
    return static_cast<Xapian::doccount>(ids_.size());
  }
  Xapian::doccount get_termfreq_max() const override {
    return static_cast<Xapian::doccount>(ids_.size());
  }
  void init(const Xapian::Database& /*db*/) override {
    position_ = 0;
    started_ = false;
  }
  void next(double /*min_wt*/) override {
    if (started_) ++position_;
    started_ = true;
  }
  void skip_to(Xapian::docid did, double /*min_wt*/) override {
    started_ = true;
    position_ = static_cast<size_t>(
        std::lower_bound(ids_.begin() + static_cast<std::ptrdiff_t>(position_), ids_.end(), did) -
        ids_.begin());
  }
  bool at_end() const override { return started_ && position_ >= ids_.size(); }
  Xapian::docid get_docid() const override { return ids_[position_]; }
  Xapian::PostingSource* clone() const override { return new LabelSource(ids_); }

 private:
  std::vector<Xapian::docid> ids_;
  size_t position_ = 0;
  bool started_ = false;
};

// Labels as Xapian's document ids: sorted, without repeats, within its range.
std::vector<Xapian::docid> docids(const std::vector<uint64_t>& labels) {
  std::vector<Xapian::docid> ids;
  ids.reserve(labels.size());
  for (uint64_t label : labels) {
    if (label > 0 && label <= UINT32_MAX) ids.push_back(static_cast<Xapian::docid>(label));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// A query of words (the parser's OR of terms) with the common ones moved to the optional side
// of an AND_MAYBE: the chunks with a rarer word, or among the candidates, are matched, and the
// common words add their BM25 weight to those. Each word weighs what it weighs in the plain
// query; only chunks chosen by common words alone are not read. Words in more than
// kWeightlessShare of the chunks are left out when other words remain: they score no chunk,
// candidates included (a candidate with none of the other words gets no lexical score, as a
// chunk that shares only "the" with the query should not). What is left is the OR of the rare
// words when no common word remains, and of the common words when no rare word and no
// candidates do. A query with operators (+, -, AND…), or whose words are all rare, is returned
// as it is, as is a query of common words alone when there are no candidates.
Xapian::Query focus(const Xapian::Database& db, const Xapian::Query& parsed,
                    const std::function<Xapian::doccount(const std::string&)>& term_frequency,
                    const std::vector<uint64_t>* candidates, bool& focused) {
  focused = false;
  std::vector<Xapian::Query> words;
  if (parsed.get_type() == Xapian::Query::LEAF_TERM) {
    words.push_back(parsed);
  } else if (parsed.get_type() == Xapian::Query::OP_OR) {
    for (size_t i = 0; i < parsed.get_num_subqueries(); ++i) {
      words.push_back(parsed.get_subquery(i));
      if (words.back().get_type() != Xapian::Query::LEAF_TERM) return parsed;
    }
  } else {
    return parsed;
  }
  const auto common_from =
      std::max(kCommonFloor, static_cast<Xapian::doccount>(kCommonShare * db.get_doccount()));
  const auto weightless_from =
      std::max(common_from, static_cast<Xapian::doccount>(kWeightlessShare * db.get_doccount()));
  std::vector<Xapian::Query> rare;
  std::vector<Xapian::Query> common;
  std::vector<Xapian::Query> weightless;
  for (auto& word : words) {
    const Xapian::doccount frequency = term_frequency(*word.get_terms_begin());
    (frequency > weightless_from ? weightless
     : frequency > common_from   ? common
                                 : rare)
        .push_back(std::move(word));
  }
  const bool any_candidates = candidates != nullptr && !candidates->empty();
  if (rare.empty() && common.empty()) {
    common = std::move(weightless);  // nothing else to rank by
  } else if (!weightless.empty()) {
    focused = true;
  }
  if (common.empty()) {
    return focused ? Xapian::Query(Xapian::Query::OP_OR, rare.begin(), rare.end()) : parsed;
  }
  if (rare.empty() && !any_candidates) {
    return focused ? Xapian::Query(Xapian::Query::OP_OR, common.begin(), common.end()) : parsed;
  }
  std::vector<Xapian::Query> chosen = std::move(rare);
  if (any_candidates) chosen.emplace_back((new LabelSource(docids(*candidates)))->release());
  focused = true;
  return {Xapian::Query::OP_AND_MAYBE,
          Xapian::Query(Xapian::Query::OP_OR, chosen.begin(), chosen.end()),
          Xapian::Query(Xapian::Query::OP_OR, common.begin(), common.end())};
}

// Adds a chunk's words to `doc` with their counts scaled by its length, as kWdfScale describes.
void add_normalised_counts(const Xapian::Document& counted, Xapian::Document& doc) {
  double length = 0;
  for (auto term = counted.termlist_begin(); term != counted.termlist_end(); ++term) {
    length += term.get_wdf();
  }
  const double normalised = std::max(kMinNormalisedLength, length / kReferenceLength);
  const double scale = kWdfScale / ((1 - kB) + kB * normalised);
  for (auto term = counted.termlist_begin(); term != counted.termlist_end(); ++term) {
    const double scaled = std::max(1.0, std::round(scale * term.get_wdf()));
    doc.add_term(*term, static_cast<Xapian::termcount>(scaled));
  }
}

// The weighting that, over the scaled counts, is BM25 (see kWdfScale).
Xapian::BM25Weight bm25() {
  return Xapian::BM25Weight(kK1 * kWdfScale, 0, 1, 0, kMinNormalisedLength);
}

Xapian::Query parse(std::string_view text) {
  Xapian::QueryParser parser;
  parser.set_stemmer(english());
  parser.set_stemming_strategy(Xapian::QueryParser::STEM_ALL_Z);
  parser.set_default_op(Xapian::Query::OP_OR);
  const std::string query(text);
  try {
    return parser.parse_query(
        query, Xapian::QueryParser::FLAG_LOVEHATE | Xapian::QueryParser::FLAG_BOOLEAN);
  } catch (const Xapian::QueryParserError&) {
    // Unbalanced quotes or a dangling operator: the words alone.
    return parser.parse_query(query, 0);
  }
}

// The query's words as the highlighter finds them in a text: stemmed, weighted by what each
// gave this search.
Highlighter highlighter(const Xapian::Query& parsed, const Xapian::MSet& mset) {
  Xapian::Stem stem = english();  // each result's own: a stemmer keeps state while it works
  const auto stem_word = [stem](const std::string& word) {
    return stem(Xapian::Unicode::tolower(word));
  };
  std::vector<HighlightTerm> terms;
  for (auto it = parsed.get_unique_terms_begin(); it != parsed.get_unique_terms_end(); ++it) {
    const std::string term = *it;
    // Stemmed terms carry a Z; any other (a word in a phrase) is stemmed here to compare.
    std::string word = term.starts_with('Z') ? term.substr(1) : stem_word(term);
    if (word.empty()) continue;
    double weight = 0;
    try {
      weight = mset.get_termweight(term);
    } catch (const Xapian::InvalidArgumentError&) {
      // a word no chunk has: nothing to weigh
    }
    terms.push_back({std::move(word), weight > 0 ? weight : 1e-6});
  }
  return {std::move(terms), stem_word,
          [](unsigned code_point) { return Xapian::Unicode::is_wordchar(code_point); }};
}

}  // namespace

LexicalResult::LexicalResult() = default;
LexicalResult::~LexicalResult() = default;
LexicalResult::LexicalResult(LexicalResult&&) noexcept = default;
LexicalResult& LexicalResult::operator=(LexicalResult&&) noexcept = default;

std::string LexicalResult::highlight(const std::string& text, size_t length) const {
  return highlighter_(text, length);
}

Result<std::unique_ptr<LexicalIndex>> LexicalIndex::open(const std::string& directory) {
  try {
    auto db = directory.empty() ? std::make_unique<Xapian::WritableDatabase>(
                                      std::string(), Xapian::DB_BACKEND_INMEMORY)
                                : std::make_unique<Xapian::WritableDatabase>(
                                      directory, Xapian::DB_CREATE_OR_OPEN, kBlockSize);
    return std::unique_ptr<LexicalIndex>(new LexicalIndex(std::move(db)));
  } catch (const Xapian::Error& e) {
    return Error::internal("cannot open the lexical index: " + e.get_description());
  }
}

LexicalIndex::LexicalIndex(std::unique_ptr<Xapian::WritableDatabase> db) : db_(std::move(db)) {}
LexicalIndex::~LexicalIndex() = default;

void LexicalIndex::upsert(uint64_t label, std::string_view document_id, std::string_view section,
                          std::string_view text, const std::string& data) {
  if (label == 0 || label > UINT32_MAX) {
    log::warn("chunk label out of the lexical index's range",
              {{"label", static_cast<int64_t>(label)}});
    return;
  }
  Xapian::Document counted;
  Xapian::TermGenerator terms;
  terms.set_stemmer(english());
  terms.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL_Z);
  terms.set_document(counted);
  // Stemmed terms only, without positions: four times faster to index than every form with
  // positions, and BM25 needs neither (phrase queries are not offered).
  if (!section.empty()) terms.index_text_without_positions(std::string(section), kSectionWeight);
  terms.index_text_without_positions(std::string(text));
  Xapian::Document doc;
  add_normalised_counts(counted, doc);
  std::string document_term = kDocumentPrefix;
  document_term.append(document_id.data(), document_id.size());
  doc.add_boolean_term(document_term);
  doc.set_data(data);
  std::lock_guard lock(mutex_);
  db_->replace_document(static_cast<Xapian::docid>(label), doc);
  term_frequencies_.clear();
}

void LexicalIndex::remove(uint64_t label) {
  if (label == 0 || label > UINT32_MAX) return;
  std::lock_guard lock(mutex_);
  term_frequencies_.clear();
  try {
    db_->delete_document(static_cast<Xapian::docid>(label));
  } catch (const Xapian::DocNotFoundError&) {
    // already gone: removals are applied again after a restart
  }
}

Result<void> LexicalIndex::commit(int64_t applied_seq) {
  std::lock_guard lock(mutex_);
  try {
    db_->set_metadata(kAppliedKey, std::to_string(applied_seq));
    db_->commit();
  } catch (const Xapian::Error& e) {
    return Error::internal("cannot commit the lexical index: " + e.get_description());
  }
  return success();
}

int64_t LexicalIndex::applied_seq() const {
  std::lock_guard lock(mutex_);
  const std::string value = db_->get_metadata(kAppliedKey);
  return value.empty() ? 0 : std::stoll(value);
}

LexicalResult LexicalIndex::search(std::string_view query, const LexicalSearch& options) const {
  LexicalResult result;
  std::lock_guard lock(mutex_);
  try {
    const Xapian::Query parsed = parse(query);
    // A filter's chunks as a posting list read from memory: an OR of the documents' terms
    // read three blocks of the index for each document (a 1% filter at 1M chunks, 200
    // documents, took 30 ms).
    Xapian::Query only;
    if (options.only != nullptr)
      only = Xapian::Query((new LabelSource(docids(*options.only)))->release());
    std::unique_ptr<LabelDecider> decider;
    if (options.allowed != nullptr) decider = std::make_unique<LabelDecider>(*options.allowed);
    const auto k = static_cast<Xapian::doccount>(options.k);
    const auto match = [&](const Xapian::Query& q) {
      Xapian::Enquire enquire(*db_);
      enquire.set_weighting_scheme(bm25());
      enquire.set_query(options.only != nullptr ? Xapian::Query(Xapian::Query::OP_FILTER, q, only)
                                                : q);
      return std::make_unique<Xapian::MSet>(enquire.get_mset(0, k, nullptr, decider.get()));
    };
    const auto term_frequency = [this](const std::string& term) {
      const auto known = term_frequencies_.find(term);
      if (known != term_frequencies_.end()) return known->second;
      if (term_frequencies_.size() >= kTermFrequenciesKept) term_frequencies_.clear();
      return term_frequencies_[term] = db_->get_termfreq(term);
    };
    bool focused = false;
    auto mset = match(focus(*db_, parsed, term_frequency, options.candidates, focused));
    // Fewer than k chunks were chosen (by the rarer words, or by the common ones once the
    // words in most chunks were left out), and no candidates fill the list: the plain query
    // chooses the rest.
    const bool no_candidates = options.candidates == nullptr || options.candidates->empty();
    if (focused && no_candidates && mset->size() < k) mset = match(parsed);
    for (auto it = mset->begin(); it != mset->end(); ++it) {
      // Only a candidate can be matched with no weight, and a removed one only so: those are
      // checked after the match (a read of the index each), rather than every candidate
      // before it.
      if (it.get_weight() <= 0 && !exists(*db_, *it)) continue;
      result.hits.push_back({static_cast<uint64_t>(*it), it.get_weight() / kScaledScore});
    }
    result.highlighter_ = highlighter(parsed, *mset);
  } catch (const Xapian::Error& e) {
    log::warn("lexical search failed", {{"error", e.get_description()}});
  }
  return result;
}

std::optional<std::string> LexicalIndex::data(uint64_t label) const {
  if (label == 0 || label > UINT32_MAX) return std::nullopt;
  std::lock_guard lock(mutex_);
  try {
    // Without the check that the document exists (a look-up of its length): a missing one has
    // no data, and every chunk has some.
    std::string data =
        db_->get_document(static_cast<Xapian::docid>(label), Xapian::DOC_ASSUME_VALID).get_data();
    if (data.empty()) return std::nullopt;
    return data;
  } catch (const Xapian::DocNotFoundError&) {
    return std::nullopt;
  }
}

std::map<std::string, std::vector<uint64_t>> LexicalIndex::document_labels() const {
  std::map<std::string, std::vector<uint64_t>> out;
  std::lock_guard lock(mutex_);
  for (auto term = db_->allterms_begin(kDocumentPrefix); term != db_->allterms_end(kDocumentPrefix);
       ++term) {
    const std::string name = *term;
    auto& labels = out[name.substr(1)];
    for (auto post = db_->postlist_begin(name); post != db_->postlist_end(name); ++post) {
      labels.push_back(static_cast<uint64_t>(*post));
    }
  }
  return out;
}

}  // namespace parley::knowledge
