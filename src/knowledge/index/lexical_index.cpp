// The Xapian index of one knowledge base (see lexical_index.hpp).
#include "knowledge/index/lexical_index.hpp"

#include <xapian.h>

#include "obs/log.hpp"

namespace parley::knowledge {

namespace {

constexpr const char* kAppliedKey = "parley_applied_seq";
constexpr const char* kDocumentPrefix = "D";
constexpr Xapian::termcount kSectionWeight = 2;  // heading words count twice

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

}  // namespace

LexicalResult::LexicalResult() = default;
LexicalResult::~LexicalResult() = default;
LexicalResult::LexicalResult(LexicalResult&&) noexcept = default;
LexicalResult& LexicalResult::operator=(LexicalResult&&) noexcept = default;

std::string LexicalResult::highlight(const std::string& text, size_t length) const {
  if (!mset_ || lock_ == nullptr) return {};
  std::lock_guard lock(*lock_);
  try {
    return mset_->snippet(text, length, english(), Xapian::MSet::SNIPPET_EMPTY_WITHOUT_MATCH,
                          "\u00ab", "\u00bb", "\u2026");
  } catch (const Xapian::Error&) {
    return {};
  }
}

Result<std::unique_ptr<LexicalIndex>> LexicalIndex::open(const std::string& directory) {
  try {
    auto db =
        directory.empty()
            ? std::make_unique<Xapian::WritableDatabase>(std::string(), Xapian::DB_BACKEND_INMEMORY)
            : std::make_unique<Xapian::WritableDatabase>(directory, Xapian::DB_CREATE_OR_OPEN);
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
  Xapian::Document doc;
  Xapian::TermGenerator terms;
  terms.set_stemmer(english());
  terms.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL_Z);
  terms.set_document(doc);
  // Stemmed terms only, without positions: four times faster to index than every form with
  // positions, and BM25 needs neither (phrase queries are not offered).
  if (!section.empty()) terms.index_text_without_positions(std::string(section), kSectionWeight);
  terms.index_text_without_positions(std::string(text));
  std::string document_term = kDocumentPrefix;
  document_term.append(document_id.data(), document_id.size());
  doc.add_boolean_term(document_term);
  doc.set_data(data);
  std::lock_guard lock(mutex_);
  db_->replace_document(static_cast<Xapian::docid>(label), doc);
}

void LexicalIndex::remove(uint64_t label) {
  if (label == 0 || label > UINT32_MAX) return;
  std::lock_guard lock(mutex_);
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

LexicalResult LexicalIndex::search(std::string_view query, size_t k,
                                   const std::vector<std::string>* documents,
                                   const std::function<bool(uint64_t)>* allowed) const {
  LexicalResult result;
  result.lock_ = &mutex_;
  std::lock_guard lock(mutex_);
  try {
    Xapian::Query q = parse(query);
    if (documents != nullptr) {
      std::vector<Xapian::Query> terms;
      terms.reserve(documents->size());
      for (const auto& d : *documents) terms.emplace_back(std::string(kDocumentPrefix) + d);
      q = Xapian::Query(Xapian::Query::OP_FILTER, q,
                        Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end()));
    }
    Xapian::Enquire enquire(*db_);
    enquire.set_query(q);
    std::unique_ptr<LabelDecider> decider;
    if (allowed != nullptr) decider = std::make_unique<LabelDecider>(*allowed);
    auto mset = std::make_unique<Xapian::MSet>(
        enquire.get_mset(0, static_cast<Xapian::doccount>(k), nullptr, decider.get()));
    for (auto it = mset->begin(); it != mset->end(); ++it) {
      result.hits.push_back({static_cast<uint64_t>(*it), it.get_weight()});
    }
    result.mset_ = std::move(mset);
  } catch (const Xapian::Error& e) {
    log::warn("lexical search failed", {{"error", e.get_description()}});
  }
  return result;
}

std::optional<std::string> LexicalIndex::data(uint64_t label) const {
  if (label == 0 || label > UINT32_MAX) return std::nullopt;
  std::lock_guard lock(mutex_);
  try {
    return db_->get_document(static_cast<Xapian::docid>(label)).get_data();
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
