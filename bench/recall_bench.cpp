// Memory recall at scale (issue: memory, summaries and intents, "recall latency at 100k
// memories for one user and at 10M memories across 100k users"). Fills a real SQLite file with
// USERS × PER_USER memories, each with the built-in embedder's vector (384 dimensions), builds
// the recall index from it as a starting server does, then times the recall stage itself — the
// time it adds to a turn: the message embedded, the index caught up with the change log and
// searched, the candidates read back from the database, the best chosen within the budget —
// for QUERIES messages of random users, each about one of that user's memories.
//
// A memory is a short sentence of four words drawn from a vocabulary of 3,000 (so a word of
// the question is in about one memory in 200 of a user with many), and the question names two
// of its words: many memories qualify by their words, and the search must rank them all.
// With many users, the texts come from a pool of 20,000 (embedded once), each user's own 100
// distinct ones. The rows are written with SQL in large transactions (the write path is not
// what is measured), and the file is deleted at the end.
//
// Also measured: the index's search alone; "found", the share of messages whose memory was
// among those recalled; and "as exact", of the first 50 messages, how many recalled exactly
// what scoring every memory of the user with its full vector would have chosen.
//
// Prints one Markdown table row. Usage:
//   parley_recall_bench USERS PER_USER [QUERIES] [DIRECTORY] [--database]
// --database: time the recall without the index (the newest 2,000 of the user's memories read
// from the database each turn, as a server does while its index is built) instead.
#include <sqlite3.h>
#include <unistd.h>

#include <utility>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "chat/assistants.hpp"
#include "core/blocking_pool.hpp"
#include "core/clock.hpp"
#include "knowledge/embed/embedders.hpp"
#include "knowledge/embed/hashed_embedder.hpp"
#include "knowledge/settings.hpp"
#include "memory/recall.hpp"
#include "memory/recall_index.hpp"
#include "memory/text.hpp"
#include "obs/log.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include "measure.hpp"

namespace {

using namespace parley;
using parley::bench::percentile;
using parley::bench::resident_bytes;
using Steady = std::chrono::steady_clock;

// Pronounceable words of two or three syllables, all distinct.
std::vector<std::string> vocabulary(size_t count) {
  static const char* const kOnsets[] = {"b", "d", "f", "g", "k", "l", "m",  "n",
                                        "p", "r", "s", "t", "v", "z", "ch", "sh"};
  static const char* const kVowels[] = {"a", "e", "i", "o", "u", "ai", "ou"};
  std::vector<std::string> out;
  for (const char* a : kOnsets) {
    for (const char* v : kVowels) {
      for (const char* b : kOnsets) {
        for (const char* w : kVowels) {
          out.push_back(std::string(a) + v + b + w);
          if (out.size() == count) return out;
        }
      }
    }
  }
  return out;
}

struct Sentence {
  std::string text;
  std::string question;
};

Sentence sentence(const std::vector<std::string>& words, std::mt19937_64& random) {
  std::uniform_int_distribution<size_t> pick(0, words.size() - 1);
  const std::string& a = words[pick(random)];
  const std::string& b = words[pick(random)];
  const std::string& c = words[pick(random)];
  const std::string& d = words[pick(random)];
  return {"Mentioned " + a + " " + b + " with " + c + " and " + d,
          "What did I tell you about " + b + " and " + d + "?"};
}

std::string blob(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// The store on the file (its schema made when new); null, with the reason said, when it fails.
std::unique_ptr<store::Storage> open_store(const std::string& path) {
  store::sqlite::Options options;
  options.path = path;
  auto opened = store::sqlite::open(options);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    return nullptr;
  }
  return std::move(*opened);
}

bool exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", sql, error ? error : "?");
    sqlite3_free(error);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: parley_recall_bench USERS PER_USER [QUERIES] [DIRECTORY] [--database]\n");
    return 2;
  }
  log::set_level(log::Level::kWarn);
  const size_t users = std::stoul(argv[1]);
  const size_t per_user = std::stoul(argv[2]);
  const size_t queries = argc > 3 && argv[3][0] != '-' ? std::stoul(argv[3]) : 2'000;
  const std::string directory =
      argc > 4 && argv[4][0] != '-'
          ? argv[4]
          : (std::filesystem::temp_directory_path() / "parley-recall-bench");
  bool database_only = false;
  for (int i = 1; i < argc; ++i)
    database_only = database_only || std::strcmp(argv[i], "--database") == 0;
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  const std::string path = directory + "/parley.db";

  // The schema, by the store itself.
  {
    auto created = open_store(path);
    if (!created) return 1;
    created->close();
  }

  const std::vector<std::string> words = vocabulary(3'000);
  knowledge::HashedEmbedder embedder;
  std::mt19937_64 random(42);
  // With many users, a pool of texts; with few, each memory its own.
  const bool pooled = per_user <= 1'000;
  std::vector<Sentence> pool;
  std::vector<std::vector<float>> pool_vectors;
  if (pooled) {
    for (size_t i = 0; i < 20'000; ++i) pool.push_back(sentence(words, random));
    for (const auto& s : pool) {
      auto v = embedder.embed_now({s.text});
      const auto row = v.row(0);
      pool_vectors.emplace_back(row.begin(), row.end());
    }
  }
  // Each user's questions: about a sample of their memories spread over all of them, enough
  // that no question is asked twice (at least 8 a user).
  std::vector<std::vector<std::string>> questions(users);
  const size_t asked_per_user = std::max<size_t>(8, queries / users + 1);
  const size_t stride = std::max<size_t>(1, per_user / asked_per_user);

  const auto fill_started = Steady::now();
  {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
    exec(db, "PRAGMA synchronous = OFF");
    sqlite3_stmt* insert = nullptr;
    const char* sql =
        "INSERT INTO memories (id, tenant_id, user_id, text, kind, importance, retention, hash, "
        "embedder, vector, created_at, updated_at) VALUES (?, 'default', ?, ?, ?, ?, 'long', ?, "
        "?, ?, ?, ?)";
    if (sqlite3_prepare_v2(db, sql, -1, &insert, nullptr) != SQLITE_OK) {
      std::fprintf(stderr, "%s\n", sqlite3_errmsg(db));
      return 1;
    }
    const std::string name(knowledge::kBuiltinEmbedder);
    const int64_t now = to_unix_ms(parley::Clock::system().now());
    std::uniform_int_distribution<size_t> in_pool(0, pool.empty() ? 0 : pool.size() - 1);
    std::uniform_real_distribution<double> importance(0.3, 0.9);
    std::uniform_int_distribution<int64_t> age(0, 180LL * 86'400'000);
    static const char* const kKinds[] = {"fact", "preference", "event", "fact"};
    size_t written = 0;
    exec(db, "BEGIN");
    for (size_t u = 0; u < users; ++u) {
      const std::string user = "user" + std::to_string(u);
      std::vector<size_t> chosen;
      if (pooled) {
        while (chosen.size() < per_user) {
          const size_t i = in_pool(random);
          if (std::find(chosen.begin(), chosen.end(), i) == chosen.end()) chosen.push_back(i);
        }
      }
      for (size_t m = 0; m < per_user; ++m) {
        Sentence own;
        std::vector<float> own_vector;
        if (!pooled) {
          own = sentence(words, random);
          auto v = embedder.embed_now({own.text});
          const auto row = v.row(0);
          own_vector.assign(row.begin(), row.end());
        }
        const Sentence& s = pooled ? pool[chosen[m]] : own;
        const std::vector<float>& vector = pooled ? pool_vectors[chosen[m]] : own_vector;
        if (m % stride == 0 && questions[u].size() < asked_per_user) {
          questions[u].push_back(s.question);
        }
        const std::string id = "mem_" + std::to_string(written);
        const std::string hash = memory::text_hash(s.text);
        const std::string bytes = blob(vector);
        const int64_t at = now - age(random);
        sqlite3_bind_text(insert, 1, id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 2, user.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 3, s.text.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 4, kKinds[written % 4], -1, SQLITE_STATIC);
        sqlite3_bind_double(insert, 5, importance(random));
        sqlite3_bind_text(insert, 6, hash.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 7, name.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(insert, 8, bytes.data(), static_cast<int>(bytes.size()),
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(insert, 9, at);
        sqlite3_bind_int64(insert, 10, at);
        if (sqlite3_step(insert) != SQLITE_DONE) {
          std::fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
          return 1;
        }
        sqlite3_reset(insert);
        if (++written % 100'000 == 0) {
          exec(db, "COMMIT");
          exec(db, "BEGIN");
        }
      }
    }
    exec(db, "COMMIT");
    sqlite3_finalize(insert);
    sqlite3_close(db);
  }
  const double fill_s = std::chrono::duration<double>(Steady::now() - fill_started).count();

  auto storage = open_store(path);
  if (!storage) return 1;

  const int64_t rss_before = resident_bytes();
  const auto build_started = Steady::now();
  memory::RecallIndex index(storage->memories(),
                            {.embedder = std::string(knowledge::kBuiltinEmbedder),
                             .sync_interval = std::chrono::hours(1),
                             .build_in_background = false});
  if (!database_only) {
    if (auto started = index.start(); !started) {
      std::fprintf(stderr, "%s\n", started.error().message.c_str());
      return 1;
    }
  }
  const double build_s = std::chrono::duration<double>(Steady::now() - build_started).count();
  const int64_t index_bytes = resident_bytes() - rss_before;

  knowledge::Embedders embedders(knowledge::KnowledgeSettings{}, nullptr, nullptr);
  BlockingPool blocking(1);
  const auto stage = memory::recall_stage(
      {*storage, blocking, &embedders, std::string(knowledge::kBuiltinEmbedder),
       parley::Clock::system(), database_only ? nullptr : &index});
  chat::Assistant assistant;  // the default budget: 8 memories within 500 tokens
  assistant.name = "default";
  boost::asio::io_context io;
  std::uniform_int_distribution<size_t> any_user(0, users - 1);
  std::vector<double> ms;
  struct Check {
    std::string user;
    std::string question;
    std::set<std::string> recalled;
  };
  constexpr size_t kExactChecks = 50;
  std::vector<Check> checks;
  size_t answered = 0;
  for (size_t q = 0; q < queries; ++q) {
    const size_t u = any_user(random);
    const auto& asked = questions[u];
    chat::Turn turn;
    turn.assistant = &assistant;
    turn.stored = std::make_unique<chat::StoredTurn>();
    turn.stored->started.session.tenant_id = "default";
    turn.stored->started.session.user_id = "user" + std::to_string(u);
    turn.stored->started.session.id = "ses_bench";
    std::uniform_int_distribution<size_t> any_question(0, asked.size() - 1);
    turn.stored->content = users == 1 ? asked[q % asked.size()] : asked[any_question(random)];
    const auto started = Steady::now();
    auto run = [&]() -> Task<void> { (void)co_await stage->run(turn); };
    boost::asio::co_spawn(io, run(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
    io.restart();
    ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - started).count());
    // Right when the memory the question is about is among those recalled: "What did I tell
    // you about B and D?" asks about "Mentioned A B with C and D".
    const std::string about = turn.stored->content.substr(26);
    const std::string b = about.substr(0, about.find(' '));
    const std::string d = about.substr(about.rfind(' ') + 1, about.size() - about.rfind(' ') - 2);
    for (const auto& m : turn.stored->memories) {
      if (m.text.find(" " + b + " with ") != std::string::npos && m.text.size() > d.size() + 5 &&
          m.text.compare(m.text.size() - d.size() - 5, d.size() + 5, " and " + d) == 0) {
        ++answered;
        break;
      }
    }
    if (checks.size() < kExactChecks) {
      Check check{turn.stored->started.session.user_id, turn.stored->content, {}};
      for (const auto& m : turn.stored->memories) check.recalled.insert(m.id);
      checks.push_back(std::move(check));
    }
  }
  // The index's search alone (the message embedded beforehand), for the share of the stage's
  // time it takes.
  std::vector<double> search_ms;
  for (size_t q = 0; !database_only && q < 500; ++q) {
    const size_t u = any_user(random);
    const std::string& text = questions[u][q % questions[u].size()];
    const auto embedded = embedder.embed_now({text});
    const auto row = embedded.row(0);
    const std::vector<float> vector(row.begin(), row.end());
    memory::RecallSearch search;
    search.tenant_id = "default";
    search.user_id = "user" + std::to_string(u);
    search.vector = &vector;
    search.text = text;
    search.now_ms = to_unix_ms(parley::Clock::system().now());
    const auto started = Steady::now();
    const auto hits = index.search(search);
    search_ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - started).count());
    if (hits.empty()) return 1;  // every message is about a memory of the user's
  }
  // The first messages again, against every memory of the user with its full vector: how often
  // the index (8-bit codes, a few candidates read back) chose what an exact scan would.
  size_t same = 0;
  for (const auto& check : checks) {
    const int64_t now = to_unix_ms(parley::Clock::system().now());
    auto all = storage->memories().user_memories("default", check.user, 1'000'000'000, now);
    if (!all) return 1;
    const auto asked = embedder.embed_now({check.question});
    const auto row = asked.row(0);
    const std::vector<float> vector(row.begin(), row.end());
    std::vector<memory::RecallCandidate> candidates;
    for (const auto& m : *all) candidates.push_back({&m, memory::cosine(vector, m.vector)});
    std::set<std::string> exact;
    for (const auto& c :
         memory::choose(candidates, check.question, memory::recall_options(assistant), now)) {
      exact.insert(c.id);
    }
    same += exact == check.recalled ? 1 : 0;
  }
  index.stop();
  storage->close();
  std::filesystem::remove_all(directory);

  const std::string search_alone =
      search_ms.empty() ? std::string("–")
                        : std::to_string(percentile(search_ms, 0.5)).substr(0, 4) + " / " +
                              std::to_string(percentile(search_ms, 0.99)).substr(0, 4);
  std::printf(
      "| %zu × %zu | %s | %.0f s | %.1f s | %.0f MiB | %.2f | %.2f | %.2f | %.2f | %s | %.0f%% | "
      "%zu of %zu |\n",
      users, per_user, database_only ? "database (newest 2,000)" : "index", fill_s, build_s,
      static_cast<double>(index_bytes) / (1024.0 * 1024.0), percentile(ms, 0.5),
      percentile(ms, 0.9), percentile(ms, 0.99), percentile(ms, 1.0), search_alone.c_str(),
      100.0 * static_cast<double>(answered) / static_cast<double>(queries), same, checks.size());
  return 0;
}
