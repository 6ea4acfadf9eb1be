// Hybrid search over one knowledge base (see base_index.hpp).
#include "knowledge/index/base_index.hpp"

#include <algorithm>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace parley::knowledge {

namespace {

using nlohmann::json;

constexpr double kRrfK = 60;           // the usual constant of reciprocal rank fusion
constexpr size_t kMinCandidates = 30;  // each side's list before fusion, at least
// A filter's chunks, up to this many, are given to the lexical side as a list (sorted there:
// a few milliseconds at this size); beyond it, the lexical side tests each match. Also the most
// a remembered filter lists.
constexpr size_t kListedFilterLabels = 100'000;
constexpr size_t kRememberedFilters = 8;  // per base

Error bad_filter(const std::string& message) {
  return Error::invalid_field("filters", "filters: " + message);
}

Result<void> check_filter(const json& spec, int depth) {
  if (depth > 16) return bad_filter("nested too deeply");
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return bad_filter("each filter is an object with a \"type\"");
  }
  const std::string type = spec["type"];
  if (type == "and" || type == "or") {
    if (!spec.contains("filters") || !spec["filters"].is_array()) {
      return bad_filter("\"" + type + "\" takes a \"filters\" array");
    }
    for (const auto& f : spec["filters"]) {
      if (auto r = check_filter(f, depth + 1); !r) return r;
    }
    return success();
  }
  static const std::unordered_set<std::string> kCompare = {"eq", "ne",  "gt", "gte",
                                                           "lt", "lte", "in", "nin"};
  if (!kCompare.contains(type)) return bad_filter("unknown type \"" + type + "\"");
  if (!spec.contains("key") || !spec["key"].is_string())
    return bad_filter("a comparison needs a \"key\"");
  if (!spec.contains("value")) return bad_filter("a comparison needs a \"value\"");
  if ((type == "in" || type == "nin") != spec["value"].is_array()) {
    return bad_filter("\"in\" and \"nin\" take an array value, the others a single value");
  }
  return success();
}

bool compare(const std::string& type, const json& field, const json& value) {
  if (type == "in" || type == "nin") {
    const bool found = std::find(value.begin(), value.end(), field) != value.end();
    return type == "in" ? found : !found;
  }
  if (type == "eq") return field == value;
  if (type == "ne") return field != value;
  // Ordered comparisons: numbers with numbers, strings with strings.
  const bool numbers = field.is_number() && value.is_number();
  const bool strings = field.is_string() && value.is_string();
  if (!numbers && !strings) return false;
  const bool less = numbers ? field.get<double>() < value.get<double>() : field < value;
  const bool equal = numbers ? field.get<double>() == value.get<double>() : field == value;
  if (type == "gt") return !less && !equal;
  if (type == "gte") return !less;
  if (type == "lt") return less;
  return less || equal;  // lte
}

bool evaluate(const json& spec, const Filter::FieldLookup& field) {
  const std::string& type = spec["type"].get_ref<const std::string&>();
  if (type == "and" || type == "or") {
    for (const auto& f : spec["filters"]) {
      const bool m = evaluate(f, field);
      if (type == "and" && !m) return false;
      if (type == "or" && m) return true;
    }
    return type == "and";
  }
  const json* value = field(spec["key"].get_ref<const std::string&>());
  if (value == nullptr) return type == "ne" || type == "nin";
  return compare(type, *value, spec["value"]);
}

}  // namespace

Result<Filter> Filter::parse(const json& spec) {
  if (auto r = check_filter(spec, 0); !r) return std::move(r).error();
  Filter f;
  f.spec_ = spec;
  f.key_ = spec.dump();
  return f;
}

bool Filter::matches(const FieldLookup& field) const { return evaluate(spec_, field); }

std::string chunk_data(const store::StoredChunk& c) {
  ChunkRecord r;
  r.document_id = c.document_id;
  r.section = c.section;
  r.ordinal = c.ordinal;
  r.page = c.page;
  r.page_end = c.page_end;
  r.start_offset = c.start_offset;
  r.end_offset = c.end_offset;
  r.text = c.text;
  return encode_chunk_record(r);
}

BaseIndex::BaseIndex(std::string kb_id, int dimension, std::unique_ptr<VectorIndex> vectors,
                     std::unique_ptr<LexicalIndex> lexical, std::string embedder)
    : kb_id_(std::move(kb_id)),
      vectors_(vectors ? std::move(vectors) : std::make_unique<VectorIndex>(dimension)),
      embedder_(std::move(embedder)),
      lexical_(std::move(lexical)) {
  // The document-to-chunks table, from what the lexical index holds.
  for (auto& [document, labels] : lexical_->document_labels()) {
    documents_[document].labels = std::move(labels);
  }
}

int BaseIndex::dimension() const { return vectors()->dimension(); }

std::string BaseIndex::embedder() const {
  std::lock_guard lock(vectors_mutex_);
  return embedder_;
}

std::shared_ptr<VectorIndex> BaseIndex::vectors() const {
  std::lock_guard lock(vectors_mutex_);
  return vectors_;
}

void BaseIndex::replace_vectors(std::unique_ptr<VectorIndex> vectors, std::string embedder) {
  std::lock_guard lock(vectors_mutex_);
  vectors_ = std::move(vectors);
  embedder_ = std::move(embedder);
}

void BaseIndex::add(const store::StoredChunk& chunk) {
  const auto label = static_cast<uint64_t>(chunk.seq);
  // A vector of another dimension comes from an embedder this index does not hold yet (a
  // re-embedding finished after this change was logged): the replacement that follows in the
  // log brings it.
  auto vectors = this->vectors();
  if (vectors->dimension() == 0 && !chunk.vector.empty()) {
    // The base's first vectors, from an embedder whose dimension was not known before.
    std::lock_guard lock(vectors_mutex_);
    if (vectors_->dimension() == 0) {
      vectors_ = std::make_shared<VectorIndex>(static_cast<int>(chunk.vector.size()));
    }
    vectors = vectors_;
  }
  if (!chunk.vector.empty() && chunk.vector.size() == static_cast<size_t>(vectors->dimension())) {
    vectors->upsert(label, chunk.vector);
  }
  lexical_->upsert(label, chunk.document_id, chunk.section, chunk.text, chunk_data(chunk));
  std::unique_lock lock(documents_mutex_);
  ++documents_generation_;
  auto& labels = documents_[chunk.document_id].labels;
  if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
}

void BaseIndex::add_many(const std::vector<store::StoredChunk>& all, size_t threads,
                         size_t per_thread) {
  std::vector<const store::StoredChunk*> chunks;
  chunks.reserve(all.size());
  auto vectors = this->vectors();
  for (const auto& c : all) {
    if (!vectors->contains(static_cast<uint64_t>(c.seq))) chunks.push_back(&c);
  }
  if (vectors->dimension() == 0) {
    // The first vectors of a base whose embedder's dimension was not known: add() sets it.
    const auto first = std::find_if(chunks.begin(), chunks.end(),
                                    [](const store::StoredChunk* c) { return !c->vector.empty(); });
    if (first != chunks.end()) {
      add(**first);
      vectors = this->vectors();
    }
  }
  std::vector<std::pair<uint64_t, std::span<const float>>> items;
  items.reserve(chunks.size());
  for (const auto* c : chunks) {
    if (c->vector.size() == static_cast<size_t>(vectors->dimension()) &&
        !vectors->contains(static_cast<uint64_t>(c->seq))) {
      items.emplace_back(static_cast<uint64_t>(c->seq), c->vector);
    }
  }
  std::thread vector_side([&] { vectors->upsert_many(items, threads, per_thread); });
  for (const auto* c : chunks) {
    const auto label = static_cast<uint64_t>(c->seq);
    lexical_->upsert(label, c->document_id, c->section, c->text, chunk_data(*c));
    std::unique_lock lock(documents_mutex_);
    ++documents_generation_;
    auto& labels = documents_[c->document_id].labels;
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
  }
  vector_side.join();
}

void BaseIndex::remove(uint64_t label, const std::string& document_id) {
  vectors()->remove(label);
  lexical_->remove(label);
  std::unique_lock lock(documents_mutex_);
  ++documents_generation_;
  const auto it = documents_.find(document_id);
  if (it == documents_.end()) return;
  auto& labels = it->second.labels;
  labels.erase(std::remove(labels.begin(), labels.end(), label), labels.end());
}

void BaseIndex::set_documents(const std::vector<store::IndexedDocument>& documents) {
  for (const auto& d : documents) set_document(d);
}

void BaseIndex::set_document(const store::IndexedDocument& d) {
  json attributes = json::parse(d.attributes_json, nullptr, false);
  std::unique_lock lock(documents_mutex_);
  ++documents_generation_;
  auto& info = documents_[d.id];
  info.file_id = d.file_id;
  info.name = d.name;
  info.format = d.format;
  info.attributes = attributes.is_object() ? std::move(attributes) : json::object();
}

// Every document tested, under the documents' lock; the result remembered for the filters
// searched most recently (kRememberedFilters), unless it lists too many chunks to keep.
std::shared_ptr<const std::vector<uint64_t>> BaseIndex::allowed_labels(const Filter& filter) const {
  std::shared_lock lock(documents_mutex_);
  {
    std::lock_guard remembered(allowed_mutex_);
    for (auto& a : allowed_) {
      if (a.filter == filter.key() && a.generation == documents_generation_) {
        a.used = ++allowed_uses_;
        return a.labels;
      }
    }
  }
  auto labels = std::make_shared<std::vector<uint64_t>>();
  // One lookup for every document (a std::function made per document would allocate): it
  // reads the document the loop is at.
  const std::string* id = nullptr;
  const DocumentInfo* info = nullptr;
  json special;  // the value of a document field the filter asks for
  const Filter::FieldLookup field = [&](const std::string& key) -> const json* {
    if (key == "document_id") return &(special = *id);
    if (key == "document_name") return &(special = info->name);
    if (key == "format") return &(special = info->format);
    const auto it = info->attributes.find(key);
    return it == info->attributes.end() ? nullptr : &*it;
  };
  for (const auto& document : documents_) {
    id = &document.first;
    info = &document.second;
    if (!filter.matches(field)) continue;
    labels->insert(labels->end(), info->labels.begin(), info->labels.end());
  }
  if (labels->size() > kListedFilterLabels) return labels;
  std::lock_guard remembered(allowed_mutex_);
  auto slot = std::find_if(allowed_.begin(), allowed_.end(),
                           [&](const Allowed& a) { return a.filter == filter.key(); });
  if (slot == allowed_.end() && allowed_.size() < kRememberedFilters) {
    slot = allowed_.emplace(allowed_.end());
  } else if (slot == allowed_.end()) {
    slot = std::min_element(allowed_.begin(), allowed_.end(),
                            [](const Allowed& a, const Allowed& b) { return a.used < b.used; });
  }
  *slot = {filter.key(), documents_generation_, ++allowed_uses_, labels};
  return labels;
}

std::vector<SearchHit> BaseIndex::search(const SearchRequest& request) const {
  const size_t k = std::max<size_t>(1, request.k);
  const size_t candidates = std::max(kMinCandidates, k * 4);

  // Filters become the labels a search may return: listed, and as a test of one label (its
  // set made on first use: a filter the exact scan and the lexical list serve never needs it).
  std::shared_ptr<const std::vector<uint64_t>> filtered;
  if (request.filter) {
    filtered = allowed_labels(*request.filter);
    if (filtered->empty()) return {};
  }
  static const std::vector<uint64_t> kNone;
  const std::vector<uint64_t>& allowed_list = filtered ? *filtered : kNone;
  std::unordered_set<uint64_t> allowed_set;
  bool allowed_set_made = false;
  std::function<bool(uint64_t)> allowed = [&](uint64_t label) {
    if (!allowed_set_made) {
      allowed_set.insert(allowed_list.begin(), allowed_list.end());
      allowed_set_made = true;
    }
    return allowed_set.contains(label);
  };
  const auto* filter_fn = request.filter ? &allowed : nullptr;

  std::vector<VectorHit> vector_hits;
  std::shared_ptr<VectorIndex> vectors;
  {
    std::lock_guard lock(vectors_mutex_);
    if (request.query_embedder.empty() || embedder_.empty() ||
        request.query_embedder == embedder_) {
      vectors = vectors_;
    }
  }
  if (vectors && request.mode != SearchMode::kLexical &&
      request.query_vector.size() == static_cast<size_t>(vectors->dimension())) {
    VectorSearch options;
    options.k = request.mode == SearchMode::kVector ? k : candidates;
    options.ef = std::max(request.beam, options.k);
    options.allowed = filter_fn;
    options.allowed_labels = request.filter ? &allowed_list : nullptr;
    vector_hits = vectors->search(request.query_vector, options);
  }
  LexicalResult lexical;
  if (request.mode != SearchMode::kVector) {
    // The allowed chunks as a list while sorting it is cheap; beyond that each match is tested.
    const bool by_labels = request.filter && allowed_list.size() <= kListedFilterLabels;
    LexicalSearch options;
    options.k = request.mode == SearchMode::kLexical ? k : candidates;
    options.only = by_labels ? &allowed_list : nullptr;
    options.allowed = request.filter && !by_labels ? filter_fn : nullptr;
    std::vector<uint64_t> vector_labels;
    if (request.mode == SearchMode::kHybrid) {
      vector_labels.reserve(vector_hits.size());
      for (const auto& h : vector_hits) vector_labels.push_back(h.label);
      options.candidates = &vector_labels;
    }
    lexical = lexical_->search(request.query, options);
  }

  // Fuse.
  struct Fused {
    double rrf = 0;
    std::optional<double> vector_score;
    std::optional<double> lexical_score;
  };
  std::unordered_map<uint64_t, Fused> fused;
  for (size_t r = 0; r < vector_hits.size(); ++r) {
    auto& f = fused[vector_hits[r].label];
    f.rrf += 1.0 / (kRrfK + static_cast<double>(r + 1));
    f.vector_score = vector_hits[r].score;
  }
  for (size_t r = 0; r < lexical.hits.size(); ++r) {
    auto& f = fused[lexical.hits[r].label];
    f.rrf += 1.0 / (kRrfK + static_cast<double>(r + 1));
    f.lexical_score = lexical.hits[r].score;
  }
  std::vector<std::pair<uint64_t, Fused>> ranked(fused.begin(), fused.end());
  const auto score_of = [&](const Fused& f) {
    if (request.mode == SearchMode::kVector) return f.vector_score.value_or(-2);
    if (request.mode == SearchMode::kLexical) return f.lexical_score.value_or(-1);
    return f.rrf;
  };
  std::sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    const double sa = score_of(a.second);
    const double sb = score_of(b.second);
    return sa > sb || (sa == sb && a.first < b.first);
  });
  if (ranked.size() > k) ranked.resize(k);

  std::vector<SearchHit> hits;
  hits.reserve(ranked.size());
  for (const auto& [label, f] : ranked) {
    const auto data = lexical_->data(label);
    if (!data) continue;
    auto record = decode_chunk_record(*data);
    if (!record) continue;
    SearchHit hit;
    static_cast<ChunkRecord&>(hit) = std::move(*record);
    hit.label = label;
    hit.score = score_of(f);
    hit.vector_score = f.vector_score;
    hit.lexical_score = f.lexical_score;
    if (request.highlight_length > 0) {
      hit.highlight = lexical.highlight(hit.text, request.highlight_length);
    }
    {
      std::shared_lock lock(documents_mutex_);
      if (const auto it = documents_.find(hit.document_id); it != documents_.end()) {
        hit.document_name = it->second.name;
        hit.file_id = it->second.file_id;
        hit.attributes = it->second.attributes;
      }
    }
    if (!hit.attributes.is_object()) hit.attributes = json::object();
    hits.push_back(std::move(hit));
  }
  return hits;
}

}  // namespace parley::knowledge
