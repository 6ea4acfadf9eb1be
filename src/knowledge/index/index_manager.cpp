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
// Vectors each thread inserts per hold of a serving index's lock while catching up.
constexpr size_t kInsertsPerThreadPerHold = 4;
// What the saved files hold, in the state file's name: a version that finds no state file of
// its own format rebuilds, whether the files are older or newer than it (earlier versions read
// "state.json"). 2: vectors as 8-bit codes, chunk records in binary, 64 KiB Xapian blocks.
// 3: word counts scaled by the chunk's length (lexical_index.cpp's kWdfScale).
constexpr const char* kStateFile = "state-v3.json";
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

// Whether `directory` holds the state file of another format ("state.json", "state-v2.json"…).
bool saved_in_another_format(const std::string& directory) {
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name != kStateFile && name.starts_with("state") && name.ends_with(".json")) return true;
  }
  return false;
}

}  // namespace

std::optional<std::chrono::milliseconds> RebuildProgress::remaining(
    std::chrono::steady_clock::time_point now) const {
  if (chunks_done <= 0 || now <= started) return std::nullopt;
  const auto elapsed = std::chrono::duration<double, std::milli>(now - started).count();
  const double left = static_cast<double>(std::max<int64_t>(0, chunks_total - chunks_done));
  return std::chrono::milliseconds(
      static_cast<int64_t>(elapsed * left / static_cast<double>(chunks_done)));
}

nlohmann::json readiness(const IndexManager& index, std::chrono::steady_clock::time_point now) {
  const auto progress = index.rebuilding();
  if (!progress) return {{"status", "ok"}};
  const auto left = progress->remaining(now);
  return {{"status", "degraded"},
          {"rebuilding",
           {{"bases_done", progress->bases_done},
            {"bases", progress->bases_total},
            {"chunks_done", progress->chunks_done},
            {"chunks", progress->chunks_total},
            {"remaining_seconds",
             left ? nlohmann::json(left->count() / 1000) : nlohmann::json(nullptr)}}}};
}

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
  auto loaded = load();
  if (!loaded) return std::move(loaded).error();
  const bool rebuild_first = !*loaded && options_.rebuild_in_background;
  if (rebuild_first) {
    // Set before start() returns: until the thread reaches a base, searches of it are refused
    // rather than answered as if it had no chunks.
    std::lock_guard lock(progress_mutex_);
    rebuilding_ = RebuildProgress{.started = std::chrono::steady_clock::now()};
  } else if (!*loaded) {
    if (auto r = rebuild(); !r) return r;
  } else if (auto r = catch_up(); !r) {
    return r;
  }
  thread_ = std::thread([this, rebuild_first] { run(rebuild_first); });
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

bool IndexManager::stopping() const {
  std::lock_guard lock(wake_mutex_);
  return stopping_;
}

void IndexManager::run(bool rebuild_first) {
  // A rebuild that fails (the database away) is tried again, as a catch-up would be.
  while (rebuild_first) {
    const auto r = rebuild();
    if (r.ok()) break;
    if (stopping()) return;
    log::warn("knowledge index rebuild failed; retrying", {{"error", r.error().message}});
    std::unique_lock lock(wake_mutex_);
    if (wake_.wait_for(lock, options_.sync_interval * 5, [&] { return stopping_; })) return;
  }
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

Result<bool> IndexManager::load() {
  if (options_.directory.empty()) return false;
  std::error_code ec;
  fs::create_directories(options_.directory, ec);
  if (ec) return Error::internal("cannot create " + options_.directory + ": " + ec.message());
  std::ifstream in(options_.directory + "/" + kStateFile);
  const json state = in ? json::parse(in, nullptr, false) : json();
  if (!state.is_object() || state.value("identity", "") != identity_) {
    if (state.is_object()) {
      log::info("knowledge indexes come from another database; rebuilding", {});
    } else if (saved_in_another_format(options_.directory)) {
      log::info("knowledge indexes were saved in another format; rebuilding", {});
    }
    return false;
  }
  for (const auto& b : state.value("bases", json::array())) {
    const std::string id = b.value("id", "");
    auto base = open_base(id, b.value("dimension", 0), b.value("embedder", ""), false);
    if (!base) {
      log::warn("knowledge index unreadable; rebuilding",
                {{"kb_id", id}, {"error", base.error().message}});
      std::unique_lock lock(bases_mutex_);
      bases_.clear();
      return false;
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
  return true;
}

void IndexManager::report(const std::function<void(RebuildProgress&)>& change) {
  RebuildProgress now;
  {
    std::lock_guard lock(progress_mutex_);
    if (!rebuilding_) rebuilding_ = RebuildProgress{.started = std::chrono::steady_clock::now()};
    change(*rebuilding_);
    now = *rebuilding_;
  }
  if (options_.on_rebuild_progress) options_.on_rebuild_progress(now);
}

Result<void> IndexManager::rebuild() {
  std::lock_guard applying(apply_mutex_);
  if (auto r = rebuild_locked(); !r) return r;
  // What was logged while the bases were read, applied before they all serve: a base created
  // meanwhile must not be answered as empty.
  auto applied = apply_log(applied_, false);
  if (!applied) return std::move(applied).error();  // tried again with every base kept
  rebuild_mark_.reset();
  {
    std::lock_guard lock(progress_mutex_);
    rebuilding_.reset();
  }
  log::info("knowledge indexes rebuilt from the database",
            {{"bases", static_cast<int64_t>(bases_count())}, {"applied_seq", applied_.load()}});
  // A save that fails (a full disk) leaves the indexes serving; the periodic save tries again.
  if (auto r = checkpoint_locked(); !r) {
    log::warn("knowledge index not saved", {{"error", r.error().message}});
  }
  return success();
}

Result<void> IndexManager::rebuild_locked() {
  if (!rebuild_mark_) {
    report([](RebuildProgress& p) {
      p = RebuildProgress{.started = std::chrono::steady_clock::now()};
    });
    // Changes logged after this mark are applied again by rebuild() once every base is read
    // (harmless: applying one twice changes nothing).
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
    rebuild_mark_ = *mark;
    rebuild_followed_ = *mark;
  } else {
    // Tried again: the bases that serve catch up on what was logged since the last try first
    // (a document deleted meanwhile must not stay found while the rest is read).
    auto seen = apply_log(rebuild_followed_, true);
    if (!seen) return std::move(seen).error();
    rebuild_followed_ = *seen;
  }
  std::vector<store::KnowledgeBase> all;
  std::optional<std::string> cursor;
  do {
    auto page = repository_.list_bases({std::nullopt, std::nullopt, 100, cursor});
    if (!page) return std::move(page).error();
    for (auto& kb : page->items) all.push_back(std::move(kb));
    cursor = page->next_cursor;
  } while (cursor);
  // Smallest first: most bases serve again soon, whatever the largest one costs.
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.chunks < b.chunks; });
  // Counted afresh at every try; the bases an earlier try finished count as done.
  RebuildProgress counted;
  for (const auto& kb : all) {
    counted.chunks_total += kb.chunks;
    if (base(kb.id) == nullptr) continue;
    ++counted.bases_done;
    counted.chunks_done += kb.chunks;
  }
  report([&](RebuildProgress& p) {
    p.bases_total = static_cast<int64_t>(all.size());
    p.bases_done = counted.bases_done;
    p.chunks_total = counted.chunks_total;
    p.chunks_done = counted.chunks_done;
  });
  int64_t chunks = 0;
  auto last_log = std::chrono::steady_clock::now();
  for (const auto& kb : all) {
    if (this->base(kb.id) != nullptr) continue;  // served since an earlier try
    auto base = open_base(kb.id, static_cast<int>(kb.dimension), kb.embedder, true);
    if (!base) return std::move(base).error();
    int64_t after = 0;
    for (;;) {
      if (stopping()) return Error::cancelled("stopping: the knowledge index rebuild is left");
      auto batch = repository_.base_chunks(kb.id, after, kRebuildPage);
      if (!batch) return std::move(batch).error();
      if (batch->empty()) break;
      (*base)->add_many(*batch, build_threads());
      const auto added = static_cast<int64_t>(batch->size());
      chunks += added;
      after = batch->back().seq;
      report([&](RebuildProgress& p) {
        p.chunks_done += added;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_log < std::chrono::seconds(30)) return;
        last_log = now;
        const auto left = p.remaining(now);
        log::info("rebuilding knowledge indexes",
                  {{"bases_done", p.bases_done},
                   {"bases", p.bases_total},
                   {"chunks_done", p.chunks_done},
                   {"chunks", p.chunks_total},
                   {"remaining_seconds", left ? left->count() / 1000 : int64_t{-1}}});
      });
    }
    auto documents = repository_.indexed_documents(kb.id);
    if (!documents) return std::move(documents).error();
    (*base)->set_documents(*documents);
    {
      std::unique_lock lock(bases_mutex_);
      bases_[kb.id] = std::move(base).value();
    }
    // The bases that serve already follow the log (a deleted document must not stay found
    // for the rest of a long rebuild); all of it is applied again once every base is read.
    auto seen = apply_log(rebuild_followed_, true);
    if (!seen) return std::move(seen).error();
    rebuild_followed_ = *seen;
    report([](RebuildProgress& p) { ++p.bases_done; });
  }
  applied_ = *rebuild_mark_;  // the mark stays until rebuild() has applied the log since it
  dirty_ = true;
  log::info("knowledge indexes read from the database",
            {{"bases", static_cast<int64_t>(all.size())}, {"chunks", chunks}});
  return success();
}

size_t IndexManager::bases_count() const {
  std::shared_lock lock(bases_mutex_);
  return bases_.size();
}

std::shared_ptr<BaseIndex> IndexManager::base(const std::string& kb_id) const {
  std::shared_lock lock(bases_mutex_);
  const auto it = bases_.find(kb_id);
  return it == bases_.end() ? nullptr : it->second;
}

std::optional<RebuildProgress> IndexManager::rebuilding() const {
  std::lock_guard lock(progress_mutex_);
  return rebuilding_;
}

Result<std::shared_ptr<BaseIndex>> IndexManager::serving(const std::string& kb_id) const {
  // In this order: a rebuild that ends in between leaves the base found.
  const auto progress = rebuilding();
  if (auto found = base(kb_id)) return found;
  if (!progress) return std::shared_ptr<BaseIndex>();
  const auto left = progress->remaining(std::chrono::steady_clock::now());
  std::string message = "the search indexes are being rebuilt from the database after a restart (" +
                        std::to_string(progress->chunks_done) + " of " +
                        std::to_string(progress->chunks_total) + " chunks";
  if (left) message += ", about " + std::to_string(left->count() / 1000 + 1) + " s left";
  message += "); this knowledge base is not searchable until its turn comes: try again shortly";
  auto error = Error::unavailable(std::move(message), "knowledge_index_rebuilding");
  // Retried no sooner than a second, no later than a minute: bases finish one by one.
  error.retry_after_ms = std::clamp<int64_t>(left ? left->count() : 5'000, 1'000, 60'000);
  return error;
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
  // A rebuild catches up itself when it ends; before that, bases it has not reached would
  // be created here from the log alone.
  if (rebuilding()) return success();
  std::lock_guard applying(apply_mutex_);
  auto applied = apply_log(applied_, false);
  if (!applied) return std::move(applied).error();
  return success();
}

Result<int64_t> IndexManager::apply_log(int64_t after, bool published_only) {
  // With published_only, a change to a base not serving yet is left to the rebuild, which
  // reads its chunks as they are then (and to the catch-up that follows it).
  const auto serving_base = [&](const std::string& kb_id) {
    return !published_only || base(kb_id) != nullptr;
  };
  for (;;) {
    auto changes = repository_.changes_since(after, options_.batch);
    if (!changes) return std::move(changes).error();
    if (changes->empty()) return after;
    std::vector<int64_t> added;
    for (const auto& c : *changes) {
      if (c.op == store::ChunkChange::Op::kAdd && serving_base(c.kb_id))
        added.push_back(c.chunk_seq);
    }
    std::map<int64_t, store::StoredChunk> chunks;
    if (!added.empty()) {
      auto read = repository_.chunks_by_seq(added);
      if (!read) return std::move(read).error();
      for (auto& c : *read) chunks.emplace(c.seq, std::move(c));
    }
    std::set<std::string> documents_changed;  // bases whose document table to refresh
    // A run of additions to one base is inserted on every core, a few vectors per hold of the
    // lock searches share (a search waits for one slice: a few inserts' time).
    std::string adding_to;
    std::vector<store::StoredChunk> adding;
    const auto add_run = [&] {
      if (adding.empty()) return;
      if (auto index = base_for_change(adding_to, static_cast<int>(adding.front().vector.size()))) {
        index->add_many(adding, build_threads(), kInsertsPerThreadPerHold);
        documents_changed.insert(adding_to);
      }
      adding.clear();
    };
    for (const auto& c : *changes) {
      if (c.op != store::ChunkChange::Op::kAdd || c.kb_id != adding_to) add_run();
      if (!serving_base(c.kb_id)) continue;
      switch (c.op) {
        case store::ChunkChange::Op::kAdd: {
          const auto it = chunks.find(c.chunk_seq);
          if (it == chunks.end()) break;  // deleted since: its removal follows
          adding_to = c.kb_id;
          adding.push_back(std::move(it->second));
          chunks.erase(it);  // (a second entry for it, if any, finds nothing to add)
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
          if (auto r = replace_vectors(c.kb_id); !r) return std::move(r).error();
          break;
      }
    }
    add_run();
    for (const auto& kb_id : documents_changed) {
      auto index = base(kb_id);
      if (!index) continue;
      auto documents = repository_.indexed_documents(kb_id);
      if (!documents) return std::move(documents).error();
      index->set_documents(*documents);
    }
    after = changes->back().seq;
    if (!published_only) {
      applied_ = after;
      dirty_ = true;
    }
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
  // Nothing whole to save yet (and the rebuild holds the applier's lock).
  if (rebuilding()) return success();
  std::lock_guard applying(apply_mutex_);
  return checkpoint_locked();
}

Result<void> IndexManager::checkpoint_locked() {
  // Not started, or refused the directory: nothing here is this manager's to write. Nor is a
  // rebuild's half: the next start does it again.
  if (options_.directory.empty() || directory_lock_ < 0 || rebuilding()) return success();
  if (!dirty_.exchange(false)) return success();
  auto result = save_locked();
  if (!result) dirty_ = true;  // tried again at the next checkpoint
  return result;
}

Result<void> IndexManager::save_locked() {
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
