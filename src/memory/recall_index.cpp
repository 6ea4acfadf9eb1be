#include "memory/recall_index.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <queue>

#include "core/common_words.hpp"
#include "knowledge/index/code_dot.hpp"
#include "obs/log.hpp"

namespace parley::memory {
namespace {

constexpr double kImportanceWeight = 0.3;
constexpr double kRecencyWeight = 0.2;
constexpr double kRecencyHalfLifeDays = 30;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// The kinds, by the index a block keeps for each memory.
constexpr std::array<std::string_view, 5> kKinds = {"fact", "preference", "event", "instruction",
                                                    "profile"};
constexpr uint8_t kUnknownKind = 255;

uint8_t kind_index(std::string_view kind) {
  for (size_t i = 0; i < kKinds.size(); ++i) {
    if (kKinds[i] == kind) return static_cast<uint8_t>(i);
  }
  return kUnknownKind;
}

uint32_t fnv1a(std::string_view word) {
  uint32_t h = 2166136261u;
  for (char c : word) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

// One bit of 64 per word: a memory whose signature shares no bit with the message's shares no
// word with it, and its words need not be compared.
uint64_t signature_of(const uint32_t* words, size_t count) {
  uint64_t s = 0;
  for (size_t i = 0; i < count; ++i) s |= uint64_t{1} << ((words[i] * 0x9E3779B1u) >> 26);
  return s;
}

// Bytes of a memory's packed 4-bit code: its dimension rounded up to whole blocks of the 4-bit
// dot product, two values a byte.
size_t code_bytes(int dimension) {
  const size_t blocks =
      (static_cast<size_t>(dimension) + knowledge::kNibbleBlock - 1) / knowledge::kNibbleBlock;
  return blocks * knowledge::kNibbleBlock / 2;
}

// A memory's code: each component scaled by the largest to -7..7, stored plus 8 (0..15) and
// packed as knowledge::NibbleDot reads them (the padding past `v` is 0, stored as 8); the
// code's own norm (0: a zero vector).
float quantize_memory(const std::vector<float>& v, uint8_t* out) {
  const size_t bytes = code_bytes(static_cast<int>(v.size()));
  std::fill(out, out + bytes, uint8_t{0x88});
  float largest = 0;
  for (float x : v) largest = std::max(largest, std::fabs(x));
  if (largest == 0 || !std::isfinite(largest)) return 0;
  constexpr size_t kHalf = knowledge::kNibbleBlock / 2;
  int64_t squares = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto code = static_cast<int>(std::lrint(v[i] / largest * 7.0f));
    squares += int64_t{code} * code;
    const size_t block = i / knowledge::kNibbleBlock;
    const size_t within = i % knowledge::kNibbleBlock;
    uint8_t& byte = out[block * kHalf + within % kHalf];
    const auto stored = static_cast<uint8_t>(code + 8);
    byte = within < kHalf ? static_cast<uint8_t>((byte & 0xF0) | stored)
                          : static_cast<uint8_t>((byte & 0x0F) | (stored << 4));
  }
  return static_cast<float>(std::sqrt(static_cast<double>(squares)));
}

// The message's code: 8 bits a component (-127..127), zeros past `v` to whole blocks; its norm
// (0: a zero vector), and the sum of its components (the 4-bit codes' offset of 8 is taken off
// with it).
struct QueryCode {
  std::vector<int8_t> values;
  float norm = 0;
  int32_t sum = 0;
};

QueryCode quantize_query(const std::vector<float>& v) {
  QueryCode q;
  q.values.assign(code_bytes(static_cast<int>(v.size())) * 2, 0);
  float largest = 0;
  for (float x : v) largest = std::max(largest, std::fabs(x));
  if (largest == 0 || !std::isfinite(largest)) return q;
  int64_t squares = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto code = static_cast<int8_t>(std::lrint(v[i] / largest * 127.0f));
    q.values[i] = code;
    q.sum += code;
    squares += int64_t{code} * code;
  }
  q.norm = static_cast<float>(std::sqrt(static_cast<double>(squares)));
  return q;
}

std::string block_key(std::string_view tenant_id, std::string_view user_id) {
  std::string key(tenant_id);
  key += '\0';
  key += user_id;
  return key;
}

}  // namespace

std::vector<uint32_t> word_ids(std::string_view text) {
  std::vector<uint32_t> out;
  std::string word;
  auto flush = [&] {
    if (word.size() >= 3 && !is_common_word(word)) out.push_back(fnv1a(word));
    word.clear();
  };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      word += static_cast<char>(std::tolower(u));
    } else {
      flush();
    }
  }
  flush();
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

size_t shared_words(const std::vector<uint32_t>& asked, const uint32_t* held, size_t held_count) {
  size_t shared = 0;
  size_t i = 0, j = 0;
  while (i < asked.size() && j < held_count) {
    if (asked[i] < held[j]) {
      ++i;
    } else if (held[j] < asked[i]) {
      ++j;
    } else {
      ++shared;
      ++i;
      ++j;
    }
  }
  return shared;
}

double recall_rank(double relevance, double importance, int64_t updated_at_ms, int64_t now_ms) {
  const double age_days =
      static_cast<double>(std::max<int64_t>(0, now_ms - updated_at_ms)) / 86'400'000.0;
  const double recency = std::exp2(-age_days / kRecencyHalfLifeDays);
  return std::max(0.0, relevance) + kImportanceWeight * importance + kRecencyWeight * recency;
}

bool is_standing_kind(std::string_view kind) { return kind == "profile" || kind == "instruction"; }

// A user's memories: what a search reads of each in one array, their codes in another
// (code_bytes(dimension) each), their labels and words apart.
struct RecallIndex::Block {
  // What a search reads of every memory, together: one stream of memory beside the codes.
  struct Entry {
    uint64_t signature = 0;
    int64_t expires_at = kNever;
    int64_t updated_at = 0;
    float norm = 0;  // of its code; 0: no vector
    float importance = 0;
    uint32_t assistant = 0;  // 0: every assistant; else names[assistant - 1]
    uint32_t session = 0;    // 0: every session; else names[session - 1]
    uint32_t word_begin = 0;
    uint32_t word_count = 0;
    uint8_t kind = kUnknownKind;
  };
  std::vector<int64_t> seqs;
  std::vector<Entry> entries;
  std::vector<uint8_t> codes;
  std::vector<std::string> names;  // a name no memory uses any more is reused
  std::vector<uint32_t> name_uses;
  std::vector<uint32_t> words;  // every memory's, at word_begin; some no longer used
  size_t unused_words = 0;
  size_t with_vectors = 0;

  size_t size() const { return seqs.size(); }

  // The id of a scope name, counted as used once more (0 for "": every assistant or session).
  uint32_t use_name(const std::string& name) {
    if (name.empty()) return 0;
    std::optional<size_t> free;
    for (size_t i = 0; i < names.size(); ++i) {
      if (name_uses[i] > 0 && names[i] == name) {
        ++name_uses[i];
        return static_cast<uint32_t>(i + 1);
      }
      if (name_uses[i] == 0 && !free) free = i;
    }
    if (!free) {
      names.emplace_back();
      name_uses.push_back(0);
      free = names.size() - 1;
    }
    names[*free] = name;
    name_uses[*free] = 1;
    return static_cast<uint32_t>(*free + 1);
  }
  void release_name(uint32_t id) {
    if (id != 0) --name_uses[id - 1];
  }

  void resize_codes(int dimension) {
    codes.resize(seqs.size() * code_bytes(dimension), uint8_t{0x88});
  }

  // Writes memory `m` at `i` (i == size(): a new one).
  void write(size_t i, const store::Memory& m, int dimension, const std::string& embedder) {
    if (i == seqs.size()) {
      seqs.push_back(m.seq);
      entries.emplace_back();
      resize_codes(dimension);
    } else {
      forget(entries[i]);
    }
    Entry& e = entries[i];
    const bool vector = dimension > 0 && m.embedder == embedder &&
                        m.vector.size() == static_cast<size_t>(dimension);
    e.norm = vector ? quantize_memory(m.vector, codes.data() + i * code_bytes(dimension)) : 0;
    if (e.norm > 0) ++with_vectors;
    e.importance = static_cast<float>(m.importance);
    e.updated_at = m.updated_at_ms;
    e.expires_at = m.expires_at_ms.value_or(kNever);
    e.kind = kind_index(m.kind);
    e.assistant = use_name(m.assistant);
    e.session = use_name(m.session_id);
    const std::vector<uint32_t> ids = word_ids(m.text);
    e.word_begin = static_cast<uint32_t>(words.size());
    e.word_count = static_cast<uint32_t>(ids.size());
    words.insert(words.end(), ids.begin(), ids.end());
    e.signature = signature_of(ids.data(), ids.size());
    if (unused_words > 1024 && unused_words > words.size() / 2) compact_words();
  }

  // What an entry held that others count: its words, its vector, its names.
  void forget(const Entry& e) {
    unused_words += e.word_count;
    if (e.norm > 0) --with_vectors;
    release_name(e.assistant);
    release_name(e.session);
  }

  // The last memory moves into the place of the one removed.
  void erase(size_t i, int dimension) {
    const size_t last = seqs.size() - 1;
    forget(entries[i]);
    if (i != last) {
      seqs[i] = seqs[last];
      entries[i] = entries[last];
      const size_t d = code_bytes(dimension);
      std::copy_n(codes.data() + last * d, d, codes.data() + i * d);
    }
    seqs.pop_back();
    entries.pop_back();
    resize_codes(dimension);
  }

  void compact_words() {
    std::vector<uint32_t> kept;
    kept.reserve(words.size() - unused_words);
    for (auto& e : entries) {
      const auto begin = words.begin() + e.word_begin;
      e.word_begin = static_cast<uint32_t>(kept.size());
      kept.insert(kept.end(), begin, begin + e.word_count);
    }
    words = std::move(kept);
    unused_words = 0;
  }

  std::optional<size_t> find(int64_t seq) const {
    auto it = std::find(seqs.begin(), seqs.end(), seq);
    if (it == seqs.end()) return std::nullopt;
    return static_cast<size_t>(it - seqs.begin());
  }
};

RecallIndex::RecallIndex(store::MemoryRepository& repository, RecallIndexOptions options)
    : repository_(repository), options_(std::move(options)) {}

RecallIndex::~RecallIndex() { stop(); }

Result<void> RecallIndex::start() {
  if (!options_.build_in_background) {
    if (auto built = build(); !built) return built;
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void RecallIndex::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RecallIndex::run() {
  // A build that failed (the database away) is tried again, less often each time.
  std::chrono::milliseconds retry = options_.sync_interval;
  constexpr std::chrono::milliseconds kLongestRetry{60'000};
  std::unique_lock lock(wake_mutex_);
  // Built by start() already: the first catch-up is an interval away.
  std::chrono::milliseconds wait = ready() ? options_.sync_interval : std::chrono::milliseconds(0);
  while (!wake_.wait_for(lock, wait, [this] { return stopping_; })) {
    lock.unlock();
    wait = options_.sync_interval;
    if (!ready()) {
      auto built = build();
      if (!built && !stopping()) {
        log::warn("memory recall index not built; recall reads the database meanwhile",
                  {{"error", built.error().message},
                   {"retry_seconds", static_cast<double>(retry.count()) / 1000.0}});
        wait = retry;
        retry = std::min(retry * 2, kLongestRetry);
      }
    } else if (auto synced = sync(); !synced) {
      log::warn("memory recall index not caught up", {{"error", synced.error().message}});
    }
    lock.lock();
  }
}

bool RecallIndex::stopping() {
  std::lock_guard lock(wake_mutex_);
  return stopping_;
}

Result<void> RecallIndex::build() {
  std::lock_guard apply(apply_mutex_);
  const auto started = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(blocks_mutex_);
    blocks_.clear();
    memories_ = 0;
  }
  auto mark = repository_.last_change();
  if (!mark) return mark.error();
  int64_t after = 0;
  applied_ = *mark;
  for (;;) {
    if (stopping()) return Error::unavailable("the server is stopping", "stopping");
    auto page = repository_.active_after(after, options_.batch);
    if (!page) return page.error();
    if (page->empty()) break;
    after = page->back().seq;
    put(*page, true);
    if (static_cast<int>(page->size()) < options_.batch) break;
  }
  // What changed while the memories were read is applied again from the log: re-reading a
  // memory or removing one is the same done twice.
  if (auto caught_up = apply_log_from(*mark); !caught_up) return caught_up;
  ready_ = true;
  log::info("memory recall index built",
            {{"memories", static_cast<int64_t>(memories())},
             {"users", static_cast<int64_t>(users())},
             {"seconds",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}});
  return {};
}

Result<void> RecallIndex::sync() {
  if (!ready()) return {};
  const uint64_t called = syncs_begun_.load();
  std::lock_guard apply(apply_mutex_);
  // A call that began reading the log after this one was made, and read all of it, finished
  // while this one waited: it applied everything this one would.
  if (last_complete_sync_ > called) return {};
  const uint64_t ticket = ++syncs_begun_;
  if (auto caught_up = apply_log_from(applied_.load()); !caught_up) return caught_up;
  last_complete_sync_ = ticket;
  return {};
}

Result<void> RecallIndex::apply_log_from(int64_t from) {
  for (;;) {
    auto to = apply_log(from);
    if (!to) return to.error();
    if (*to == from) return {};
    from = *to;
  }
}

Result<int64_t> RecallIndex::apply_log(int64_t after) {
  auto changes = repository_.changes_since(after, options_.batch);
  if (!changes) return changes.error();
  if (changes->empty()) return after;
  std::vector<int64_t> puts;
  for (const auto& c : *changes) {
    if (c.op == store::MemoryChange::Op::kPut) puts.push_back(c.memory_seq);
  }
  std::sort(puts.begin(), puts.end());
  puts.erase(std::unique(puts.begin(), puts.end()), puts.end());
  std::map<int64_t, store::Memory> current;
  if (!puts.empty()) {
    auto read = repository_.by_seq(puts);
    if (!read) return read.error();
    for (auto& m : *read) {
      const int64_t seq = m.seq;
      current.emplace(seq, std::move(m));
    }
  }
  // In log order, each put as the memory is now: a later removal or erasure in the same page
  // still applies after it. Searches wait for the page, and see all of it or none.
  std::unique_lock lock(blocks_mutex_);
  for (const auto& c : *changes) {
    switch (c.op) {
      case store::MemoryChange::Op::kPut: {
        auto it = current.find(c.memory_seq);
        if (it != current.end() && it->second.status == "active") {
          put_locked(it->second, false);
        } else {
          remove_locked(c.tenant_id, c.user_id, c.memory_seq);
        }
        break;
      }
      case store::MemoryChange::Op::kRemove:
        remove_locked(c.tenant_id, c.user_id, c.memory_seq);
        break;
      case store::MemoryChange::Op::kEraseUser: {
        auto it = blocks_.find(block_key(c.tenant_id, c.user_id));
        if (it != blocks_.end()) {
          memories_ -= it->second->size();
          blocks_.erase(it);
        }
        break;
      }
    }
  }
  applied_ = changes->back().seq;
  return changes->back().seq;
}

void RecallIndex::put(const std::vector<store::Memory>& memories, bool fresh) {
  std::unique_lock lock(blocks_mutex_);
  for (const auto& m : memories) put_locked(m, fresh);
}

void RecallIndex::put_locked(const store::Memory& m, bool fresh) {
  if (m.status != "active") return;
  int dimension = dimension_.load();
  if (m.embedder == options_.embedder && !m.vector.empty()) {
    if (dimension == 0) {
      dimension = static_cast<int>(m.vector.size());
      dimension_ = dimension;
      for (auto& [key, block] : blocks_) block->resize_codes(dimension);
    } else if (m.vector.size() != static_cast<size_t>(dimension) && !warned_dimension_) {
      warned_dimension_ = true;
      log::warn("memory vectors of another dimension are recalled by their words alone",
                {{"embedder", options_.embedder},
                 {"dimension", dimension},
                 {"found", static_cast<int64_t>(m.vector.size())},
                 {"memory_id", m.id}});
    }
  }
  auto& block = blocks_[block_key(m.tenant_id, m.user_id)];
  if (!block) block = std::make_unique<Block>();
  std::optional<size_t> at = fresh ? std::nullopt : block->find(m.seq);
  if (!at) ++memories_;
  block->write(at.value_or(block->size()), m, dimension, options_.embedder);
}

void RecallIndex::remove_locked(const std::string& tenant_id, const std::string& user_id,
                                int64_t seq) {
  auto it = blocks_.find(block_key(tenant_id, user_id));
  if (it == blocks_.end()) return;
  Block& block = *it->second;
  auto at = block.find(seq);
  if (!at) return;
  block.erase(*at, dimension_.load());
  --memories_;
  if (block.size() == 0) blocks_.erase(it);
}

std::vector<RecallHit> RecallIndex::search(const RecallSearch& search) const {
  std::shared_lock lock(blocks_mutex_);
  auto it = blocks_.find(block_key(search.tenant_id, search.user_id));
  if (it == blocks_.end() || search.limit == 0) return {};
  const Block& block = *it->second;
  const auto dimension = static_cast<size_t>(dimension_.load());

  QueryCode query;
  if (search.vector && dimension > 0 && search.vector->size() == dimension &&
      block.with_vectors > 0) {
    query = quantize_query(*search.vector);
  }
  const size_t stride = code_bytes(static_cast<int>(dimension));
  const std::vector<uint32_t> asked = word_ids(search.text);
  const uint64_t asked_signature = signature_of(asked.data(), asked.size());
  uint32_t kind_mask = search.kinds.empty() ? ~uint32_t{0} : 0;
  for (const auto& k : search.kinds) {
    const uint8_t i = kind_index(k);
    if (i != kUnknownKind) kind_mask |= uint32_t{1} << i;
  }
  // Which of the block's scope names this search is in.
  std::vector<char> assistant_ok(block.names.size() + 1, 0);
  std::vector<char> session_ok(block.names.size() + 1, 0);
  assistant_ok[0] = session_ok[0] = 1;
  for (size_t i = 0; i < block.names.size(); ++i) {
    if (block.name_uses[i] == 0) continue;
    assistant_ok[i + 1] = block.names[i] == search.assistant ? 1 : 0;
    session_ok[i + 1] = block.names[i] == search.session_id ? 1 : 0;
  }
  const uint8_t profile = kind_index("profile");
  const uint8_t instruction = kind_index("instruction");
  static const knowledge::NibbleDot dot = knowledge::nibble_dot();

  auto worse = [](const RecallHit& a, const RecallHit& b) { return a.rank > b.rank; };
  std::priority_queue<RecallHit, std::vector<RecallHit>, decltype(worse)> best(worse);
  for (size_t i = 0; i < block.size(); ++i) {
    const Block::Entry& e = block.entries[i];
    if (e.expires_at <= search.now_ms) continue;
    if (e.kind == kUnknownKind ? !search.kinds.empty() : !(kind_mask & (uint32_t{1} << e.kind))) {
      continue;
    }
    if (!assistant_ok[e.assistant] || !session_ok[e.session]) continue;
    // Whether it qualifies is decided before any division: most memories do not.
    const bool vector = query.norm > 0 && e.norm > 0;
    const int32_t product =
        vector
            ? dot(query.values.data(), block.codes.data() + i * stride, stride * 2) - 8 * query.sum
            : 0;
    const double scale = vector ? static_cast<double>(query.norm) * e.norm : 0;
    double lexical = 0;
    if (!asked.empty() && (e.signature & asked_signature) != 0) {
      lexical = static_cast<double>(
                    shared_words(asked, block.words.data() + e.word_begin, e.word_count)) /
                static_cast<double>(asked.size());
    }
    const bool standing = search.always_standing && (e.kind == profile || e.kind == instruction);
    if (!standing && lexical < search.min_similarity &&
        !(vector && product >= search.min_similarity * scale)) {
      continue;
    }
    const double similarity = vector ? product / scale : -1;
    const double relevance = std::max(similarity, lexical);
    const double rank = recall_rank(relevance, e.importance, e.updated_at, search.now_ms);
    if (best.size() < search.limit) {
      best.push({block.seqs[i], similarity, rank});
    } else if (rank > best.top().rank) {
      best.pop();
      best.push({block.seqs[i], similarity, rank});
    }
  }
  std::vector<RecallHit> out;
  out.reserve(best.size());
  while (!best.empty()) {
    out.push_back(best.top());
    best.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

bool RecallIndex::has_vectors(std::string_view tenant_id, std::string_view user_id) const {
  std::shared_lock lock(blocks_mutex_);
  auto it = blocks_.find(block_key(tenant_id, user_id));
  return it != blocks_.end() && it->second->with_vectors > 0;
}

size_t RecallIndex::memories() const {
  std::shared_lock lock(blocks_mutex_);
  return memories_;
}

size_t RecallIndex::users() const {
  std::shared_lock lock(blocks_mutex_);
  return blocks_.size();
}

}  // namespace parley::memory
