// Keeping the derived indexes caught up with the database (see index_manager.hpp).
#include "knowledge/index/index_manager.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "obs/log.hpp"

namespace parley::knowledge {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kRebuildPage = 1'000;
// What the saved files hold, in the state file's name: a version that finds no state file of
// its own format rebuilds, whether the files are older or newer than it (earlier versions read
// "state.json"). 2: vectors as 8-bit codes, chunk records in binary, 64 KiB Xapian blocks.
constexpr const char* kStateFile = "state-v2.json";
constexpr const char* kLockFile = "lock";
constexpr const char* kVectorsFile = "vectors.hnsw";
constexpr const char* kLexicalDir = "lexical";

Result<void> write_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return Error::internal("cannot write " + path);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Error::internal("cannot replace " + path + ": " + ec.message());
  return success();
}

}  // namespace

IndexManager::IndexManager(store::KnowledgeRepository& repository, IndexOptions options)
    : repository_(repository), options_(std::move(options)) {}

IndexManager::~IndexManager() {
  stop();
  if (directory_lock_ >= 0) ::close(directory_lock_);
}

size_t IndexManager::build_threads() const {
  if (options_.build_threads > 0) return options_.build_threads;
  return std::max(1U, std::thread::hardware_concurrency());
}

std::string IndexManager::base_directory(const std::string& kb_id) const {
  return options_.directory.empty() ? std::string() : options_.directory + "/" + kb_id;
}

Result<void> IndexManager::start() {
  if (!options_.directory.empty() && directory_lock_ < 0) {
    // Two processes over one directory would each rebuild it under the other.
    std::error_code ec;
    fs::create_directories(options_.directory, ec);
    const std::string path = options_.directory + "/" + kLockFile;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Error::internal("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return Error::internal("the knowledge index directory " + options_.directory +
                             " is in use by another process: give each Parley process its own "
                             "data_dir");
    }
    directory_lock_ = fd;
  }
  auto identity = repository_.database_identity();
  if (!identity) return std::move(identity).error();
  identity_ = *identity;
  if (auto r = load_or_rebuild(); !r) return r;
  if (auto r = catch_up(); !r) return r;
  thread_ = std::thread([this] { run(); });
  return success();
}

void IndexManager::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (auto r = checkpoint(); !r)
    log::warn("knowledge index not saved", {{"error", r.error().message}});
}

void IndexManager::nudge() {
  {
    std::lock_guard lock(wake_mutex_);
    nudged_ = true;
  }
  wake_.notify_one();
}

void IndexManager::run() {
  auto last_checkpoint = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, options_.sync_interval, [&] { return stopping_ || nudged_; });
      if (stopping_) return;
      nudged_ = false;
    }
    if (auto r = catch_up(); !r) {
      log::warn("knowledge index catch-up failed; retrying", {{"error", r.error().message}});
    }
    if (std::chrono::steady_clock::now() - last_checkpoint >= options_.checkpoint_interval) {
      last_checkpoint = std::chrono::steady_clock::now();
      if (auto r = checkpoint(); !r) {
        log::warn("knowledge index not saved", {{"error", r.error().message}});
      }
    }
  }
}

Result<std::shared_ptr<BaseIndex>> IndexManager::open_base(const std::string& kb_id, int dimension,
                                                           const std::string& embedder,
                                                           bool fresh) {
  const std::string dir = base_directory(kb_id);
  std::unique_ptr<VectorIndex> vectors;
  if (!dir.empty()) {
    std::error_code ec;
    if (fresh) fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) return Error::internal("cannot create " + dir + ": " + ec.message());
    if (!fresh && fs::exists(dir + "/" + kVectorsFile)) {
      auto loaded = VectorIndex::load(dir + "/" + kVectorsFile, dimension);
      if (!loaded) return std::move(loaded).error();
      vectors = std::move(loaded).value();
    }
  }
  if (!vectors) vectors = std::make_unique<VectorIndex>(dimension);
  auto lexical = LexicalIndex::open(dir.empty() ? std::string() : dir + "/" + kLexicalDir);
  if (!lexical) return std::move(lexical).error();
  return std::make_shared<BaseIndex>(kb_id, dimension, std::move(vectors),
                                     std::move(lexical).value(), embedder);
}

Result<void> IndexManager::load_or_rebuild() {
  if (options_.directory.empty()) return rebuild();
  std::error_code ec;
  fs::create_directories(options_.directory, ec);
  if (ec) return Error::internal("cannot create " + options_.directory + ": " + ec.message());
  std::ifstream in(options_.directory + "/" + kStateFile);
  const json state = in ? json::parse(in, nullptr, false) : json();
  if (!state.is_object() || state.value("identity", "") != identity_) {
    if (state.is_object()) {
      log::info("knowledge indexes come from another database; rebuilding", {});
    } else if (fs::exists(options_.directory + "/state.json", ec)) {
      log::info("knowledge indexes were saved by an earlier version; rebuilding", {});
    }
    return rebuild();
  }
  for (const auto& b : state.value("bases", json::array())) {
    const std::string id = b.value("id", "");
    auto base = open_base(id, b.value("dimension", 0), b.value("embedder", ""), false);
    if (!base) {
      log::warn("knowledge index unreadable; rebuilding",
                {{"kb_id", id}, {"error", base.error().message}});
      return rebuild();
    }
    auto documents = repository_.indexed_documents(id);
    if (!documents) return std::move(documents).error();
    (*base)->set_documents(*documents);
    std::unique_lock lock(bases_mutex_);
    bases_[id] = std::move(base).value();
  }
  applied_ = state.value("applied_seq", int64_t{0});
  log::info("knowledge indexes loaded",
            {{"bases", static_cast<int64_t>(bases_.size())}, {"applied_seq", applied_.load()}});
  return success();
}

Result<void> IndexManager::rebuild() {
  // Changes logged after this mark are applied again by catch_up (harmless: idempotent).
  auto mark = repository_.last_change();
  if (!mark) return std::move(mark).error();
  {
    std::unique_lock lock(bases_mutex_);
    bases_.clear();
  }
  if (!options_.directory.empty()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(options_.directory, ec)) {
      if (entry.path().filename() == kLockFile) continue;
      fs::remove_all(entry.path(), ec);
    }
  }
  int64_t chunks = 0;
  std::optional<std::string> cursor;
  do {
    auto page = repository_.list_bases(std::nullopt, 100, cursor);
    if (!page) return std::move(page).error();
    for (const auto& kb : page->items) {
      auto base = open_base(kb.id, static_cast<int>(kb.dimension), kb.embedder, true);
      if (!base) return std::move(base).error();
      int64_t after = 0;
      for (;;) {
        auto batch = repository_.base_chunks(kb.id, after, kRebuildPage);
        if (!batch) return std::move(batch).error();
        if (batch->empty()) break;
        (*base)->add_many(*batch, build_threads());
        chunks += static_cast<int64_t>(batch->size());
        after = batch->back().seq;
      }
      auto documents = repository_.indexed_documents(kb.id);
      if (!documents) return std::move(documents).error();
      (*base)->set_documents(*documents);
      std::unique_lock lock(bases_mutex_);
      bases_[kb.id] = std::move(base).value();
    }
    cursor = page->next_cursor;
  } while (cursor);
  applied_ = *mark;
  dirty_ = true;
  log::info("knowledge indexes rebuilt from the database",
            {{"bases", static_cast<int64_t>(bases_.size())}, {"chunks", chunks}});
  return checkpoint();
}

std::shared_ptr<BaseIndex> IndexManager::base(const std::string& kb_id) const {
  std::shared_lock lock(bases_mutex_);
  const auto it = bases_.find(kb_id);
  return it == bases_.end() ? nullptr : it->second;
}

std::shared_ptr<BaseIndex> IndexManager::base_for_change(const std::string& kb_id,
                                                         int dimension_hint) {
  if (auto existing = base(kb_id)) return existing;
  auto kb = repository_.get_base_brief(kb_id);
  if (!kb) return nullptr;  // dropped since: its drop is further on in the log
  const int dimension = dimension_hint > 0 ? dimension_hint : static_cast<int>(kb->dimension);
  auto opened = open_base(kb_id, dimension, kb->embedder, true);
  if (!opened) {
    log::warn("knowledge index not created", {{"kb_id", kb_id}, {"error", opened.error().message}});
    return nullptr;
  }
  std::unique_lock lock(bases_mutex_);
  return bases_.emplace(kb_id, std::move(opened).value()).first->second;
}

void IndexManager::drop_base(const std::string& kb_id) {
  {
    std::unique_lock lock(bases_mutex_);
    bases_.erase(kb_id);
  }
  if (!options_.directory.empty()) {
    std::error_code ec;
    fs::remove_all(base_directory(kb_id), ec);
  }
}

Result<void> IndexManager::catch_up() {
  std::lock_guard applying(apply_mutex_);
  for (;;) {
    auto changes = repository_.changes_since(applied_, options_.batch);
    if (!changes) return std::move(changes).error();
    if (changes->empty()) return success();
    std::vector<int64_t> added;
    for (const auto& c : *changes) {
      if (c.op == store::ChunkChange::Op::kAdd) added.push_back(c.chunk_seq);
    }
    std::map<int64_t, store::StoredChunk> chunks;
    if (!added.empty()) {
      auto read = repository_.chunks_by_seq(added);
      if (!read) return std::move(read).error();
      for (auto& c : *read) chunks.emplace(c.seq, std::move(c));
    }
    std::set<std::string> documents_changed;  // bases whose document table to refresh
    for (const auto& c : *changes) {
      switch (c.op) {
        case store::ChunkChange::Op::kAdd: {
          const auto it = chunks.find(c.chunk_seq);
          if (it == chunks.end()) break;  // deleted since: its removal follows
          auto index = base_for_change(c.kb_id, static_cast<int>(it->second.vector.size()));
          if (!index) break;
          index->add(it->second);
          documents_changed.insert(c.kb_id);
          break;
        }
        case store::ChunkChange::Op::kRemove:
          if (auto index = base(c.kb_id))
            index->remove(static_cast<uint64_t>(c.chunk_seq), c.document_id);
          break;
        case store::ChunkChange::Op::kDropBase:
          drop_base(c.kb_id);
          documents_changed.erase(c.kb_id);
          break;
        case store::ChunkChange::Op::kDocument:
          documents_changed.insert(c.kb_id);
          break;
        case store::ChunkChange::Op::kVectors:
          if (auto r = replace_vectors(c.kb_id); !r) return r;
          break;
      }
    }
    for (const auto& kb_id : documents_changed) {
      auto index = base(kb_id);
      if (!index) continue;
      auto documents = repository_.indexed_documents(kb_id);
      if (!documents) return std::move(documents).error();
      index->set_documents(*documents);
    }
    applied_ = changes->back().seq;
    dirty_ = true;
  }
}

Result<void> IndexManager::replace_vectors(const std::string& kb_id) {
  auto kb = repository_.get_base_brief(kb_id);
  if (!kb && kb.error().code == ErrorCode::kNotFound) return success();  // its drop follows
  if (!kb) return std::move(kb).error();
  auto index = base_for_change(kb_id, static_cast<int>(kb->dimension));
  if (!index) return success();
  // Built aside while searches use the old vectors, then swapped in at once.
  auto vectors = std::make_unique<VectorIndex>(static_cast<int>(kb->dimension));
  int64_t after = 0;
  // (A base of dimension 0 has no vectors: its first chunk sets the dimension.)
  for (;;) {
    auto batch = repository_.base_chunks(kb_id, after, kRebuildPage);
    if (!batch) return std::move(batch).error();
    if (batch->empty()) break;
    std::vector<std::pair<uint64_t, std::span<const float>>> items;
    items.reserve(batch->size());
    for (const auto& c : *batch) items.emplace_back(static_cast<uint64_t>(c.seq), c.vector);
    vectors->upsert_many(items, build_threads());
    after = batch->back().seq;
  }
  log::info("knowledge base vectors replaced",
            {{"kb_id", kb_id},
             {"embedder", kb->embedder},
             {"vectors", static_cast<int64_t>(vectors->size())}});
  index->replace_vectors(std::move(vectors), kb->embedder);
  return success();
}

Result<void> IndexManager::checkpoint() {
  // Not started, or refused the directory: nothing here is this manager's to write.
  if (options_.directory.empty() || directory_lock_ < 0) return success();
  if (!dirty_.exchange(false)) return success();
  std::lock_guard applying(apply_mutex_);
  const int64_t applied = applied_;
  json bases = json::array();
  std::vector<std::shared_ptr<BaseIndex>> all;
  {
    std::shared_lock lock(bases_mutex_);
    for (const auto& [id, index] : bases_) all.push_back(index);
  }
  for (const auto& index : all) {
    const std::string dir = base_directory(index->kb_id());
    if (auto r = index->vectors()->save(dir + "/" + kVectorsFile + ".tmp"); !r) return r;
    std::error_code ec;
    fs::rename(dir + "/" + kVectorsFile + ".tmp", dir + "/" + kVectorsFile, ec);
    if (ec) return Error::internal("cannot save the vector index: " + ec.message());
    if (auto r = index->lexical().commit(applied); !r) return r;
    bases.push_back({{"id", index->kb_id()},
                     {"dimension", index->dimension()},
                     {"embedder", index->embedder()}});
  }
  return write_atomically(
      options_.directory + "/" + kStateFile,
      json{{"identity", identity_}, {"applied_seq", applied}, {"bases", bases}}.dump(2));
}

}  // namespace parley::knowledge
