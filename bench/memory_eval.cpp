// A long-conversation evaluation of memory (issue: memory, summaries and intents). Each of 40
// users talks for 120 turns: six facts about themselves early on (name, city, employer,
// allergy, favourite colour, pet), small talk in between, two of the facts changed halfway
// (a move, a new job), then a question about each fact. Every turn goes through what the
// server does: the turn is stored, the `memory.extract` job runs on it (the built-in rules and
// embedder, as `make run` has them), and each question is recalled as the recall stage does
// (the default assistant's budget: 8 memories, 500 tokens, similarity 0.25).
//
// An answer counts as right when what the model would be given holds the current value and
// not an outdated one:
//   with memory   the recalled memories;
//   history only  the newest turns that fit a model's context (4,096 tokens less 1,024 for the
//                 reply), as build_prompt fits them, without memory.
// Prints a table (docs/benchmarks.md). Usage: parley_memory_eval [users] [filler turns]
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "knowledge/embed/hashed_embedder.hpp"
#include "memory/extract.hpp"
#include "memory/recall.hpp"
#include "obs/log.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace {

using namespace parley;

struct Fact {
  std::string category;
  std::string statement;  // {v} is the value
  std::string change;     // "" when the fact never changes; {v} is the new value
  std::string question;
  std::vector<std::string> values;   // per user, the first value
  std::vector<std::string> changed;  // per user, the new value
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool holds(const std::string& text, const std::string& value) {
  return lower(text).find(lower(value)) != std::string::npos;
}

std::string with(std::string text, const std::string& value) {
  const size_t at = text.find("{v}");
  if (at != std::string::npos) text.replace(at, 3, value);
  return text;
}

const std::string kReply =
    "Thanks for telling me. Here is a short answer with a little context, the way an assistant "
    "usually replies: a sentence on the point itself, one with a detail or two that may help, "
    "and a closing line that offers to go further if you would like more on any part of it. "
    "Let me know what else I can do for you today.";

int64_t tokens(const std::string& text) { return static_cast<int64_t>(text.size() + 3) / 4 + 4; }

}  // namespace

int main(int argc, char** argv) {
  log::set_level(log::Level::kWarn);
  const int users = argc > 1 ? std::atoi(argv[1]) : 40;
  const int fillers = argc > 2 ? std::atoi(argv[2]) : 100;
  const std::vector<std::string> names = {"Ana",   "Bruno", "Carla", "Diego", "Elena",
                                          "Farid", "Greta", "Hugo",  "Ines",  "Jonas"};
  const std::vector<std::string> cities = {"Lisbon", "Porto",  "Madrid", "Berlin", "Paris",
                                           "Vienna", "Prague", "Dublin", "Oslo",   "Rome"};
  const std::vector<std::string> companies = {"Acme",  "Globex",   "Initech", "Umbrella",
                                              "Hooli", "Vandelay", "Stark",   "Wayne",
                                              "Wonka", "Tyrell"};
  const std::vector<std::string> foods = {"peanuts", "shellfish", "gluten",  "eggs", "soy",
                                          "sesame",  "milk",      "walnuts", "kiwi", "mustard"};
  const std::vector<std::string> colours = {"green",  "blue", "red",   "yellow", "purple",
                                            "orange", "teal", "black", "white",  "pink"};
  const std::vector<std::string> pets = {"Rex",  "Luna",  "Milo", "Bella", "Max",
                                         "Nala", "Oscar", "Coco", "Toby",  "Kiki"};
  std::vector<Fact> facts = {
      {"name", "Hi, my name is {v}.", "", "Do you remember my name?", {}, {}},
      {"city",
       "I live in {v}.",
       "I moved last month, I live in {v} now.",
       "Which city do I live in?",
       {},
       {}},
      {"employer",
       "I work at {v}.",
       "I changed jobs: I work at {v} now.",
       "Where do I work these days?",
       {},
       {}},
      {"allergy", "I'm allergic to {v}.", "", "What am I allergic to?", {}, {}},
      {"colour", "My favourite colour is {v}.", "", "What is my favourite colour?", {}, {}},
      {"pet", "Remember that I have a dog called {v}.", "", "What is my dog called?", {}, {}},
  };
  const std::vector<std::string> small_talk = {
      "How is the weather where you are?",    "Tell me a joke about programmers.",
      "What should I cook tonight?",          "Can you recommend a good book?",
      "How do I make my coffee less bitter?", "What is a good stretch after running?",
      "Explain how rainbows form.",           "Any tips for sleeping better?",
      "What is the capital of Australia?",    "How many minutes should I boil an egg?"};
  for (int u = 0; u < users; ++u) {
    const auto pick = [u](const std::vector<std::string>& v, int shift) {
      return v[static_cast<size_t>(u + shift) % v.size()];
    };
    facts[0].values.push_back(pick(names, 0));
    facts[1].values.push_back(pick(cities, 0));
    facts[1].changed.push_back(pick(cities, 5));
    facts[2].values.push_back(pick(companies, 0));
    facts[2].changed.push_back(pick(companies, 3));
    facts[3].values.push_back(pick(foods, 0));
    facts[4].values.push_back(pick(colours, 0));
    facts[5].values.push_back(pick(pets, 0));
  }

  const auto dir =
      std::filesystem::temp_directory_path() / ("parley-memory-eval-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  store::sqlite::Options options;
  options.path = (dir / "eval.db").string();
  auto opened = store::sqlite::open(options);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    return 1;
  }
  auto storage = std::move(*opened);
  const knowledge::HashedEmbedder embedder;
  const auto vector_of = [&embedder](const std::string& text) {
    const auto v = embedder.embed_now({text});
    const auto row = v.row(0);
    return std::vector<float>(row.begin(), row.end());
  };
  memory::EmbedFn embed =
      [&](const std::string&,
          const std::vector<std::string>& texts) -> Result<std::vector<std::vector<float>>> {
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back(vector_of(t));
    return out;
  };
  const auto extract =
      memory::extract_handler({*storage, Clock::system(), {}, embedder.name(), embed, {}});
  memory::ChooseOptions recall;  // the default assistant's: 8, 500 tokens, 0.25

  struct Score {
    int asked = 0, with_memory = 0, history_only = 0;
  };
  std::vector<Score> by_category(facts.size());
  constexpr int64_t kHistoryBudget = 4096 - 1024;
  const auto started = std::chrono::steady_clock::now();
  for (int u = 0; u < users; ++u) {
    const std::string user = "user" + std::to_string(u);
    auto session = storage->sessions().create({"default", user, "default", std::nullopt, "{}"});
    if (!session) return 1;
    // The conversation: the facts, small talk, the changes, more small talk.
    std::vector<std::string> said;
    for (const auto& f : facts) said.push_back(with(f.statement, f.values[static_cast<size_t>(u)]));
    for (int i = 0; i < fillers / 2; ++i)
      said.push_back(small_talk[static_cast<size_t>(i) % small_talk.size()]);
    for (const auto& f : facts) {
      if (!f.change.empty()) said.push_back(with(f.change, f.changed[static_cast<size_t>(u)]));
    }
    for (int i = fillers / 2; i < fillers; ++i)
      said.push_back(small_talk[static_cast<size_t>(i) % small_talk.size()]);
    std::vector<std::pair<std::string, std::string>> transcript;  // (role, text)
    for (const auto& text : said) {
      auto turn = storage->messages().begin_turn({session->id, text, "r", "m", "", ""});
      if (!turn) return 1;
      store::FinishedTurn done;
      done.assistant_message_id = turn->assistant.id;
      // A reply of a usual length (about a hundred tokens), as a model would give.
      done.content = kReply;
      done.status = "complete";
      done.finish_reason = "stop";
      (void)storage->messages().finish_turn(done);
      transcript.emplace_back("user", text);
      transcript.emplace_back("assistant", done.content);
      memory::ExtractRequest r{"default",   user,          "default",
                               session->id, turn->user.id, turn->assistant.id};
      auto job = storage->jobs().enqueue(memory::extract_job(r, 5), 0);
      if (!job) return 1;
      (void)extract(*job);
    }
    // The questions.
    for (size_t f = 0; f < facts.size(); ++f) {
      const Fact& fact = facts[f];
      const std::string current = fact.change.empty() ? fact.values[static_cast<size_t>(u)]
                                                      : fact.changed[static_cast<size_t>(u)];
      const std::string stale = fact.change.empty() ? "" : fact.values[static_cast<size_t>(u)];
      Score& score = by_category[f];
      ++score.asked;
      const int64_t now = to_unix_ms(std::chrono::system_clock::now());
      auto memories = storage->memories().user_memories("default", user, 2000, now);
      if (!memories) return 1;
      const std::vector<float> asked = vector_of(fact.question);
      std::vector<memory::RecallCandidate> candidates;
      for (const auto& m : *memories) candidates.push_back({&m, memory::cosine(asked, m.vector)});
      bool right = false, wrong = false;
      for (const auto& m : memory::choose(candidates, fact.question, recall, now)) {
        right = right || holds(m.text, current);
        wrong = wrong || (!stale.empty() && holds(m.text, stale));
      }
      if (right && !wrong) ++score.with_memory;
      // History only: the newest turns that fit, newest first, as build_prompt keeps them.
      int64_t used = tokens(fact.question);
      bool seen_current = false;
      for (auto it = transcript.rbegin(); it != transcript.rend(); ++it) {
        used += tokens(it->second);
        if (used > kHistoryBudget) break;
        seen_current = seen_current || holds(it->second, current);
      }
      // A model reading the history can tell the current value when it sees its statement (an
      // older statement before it reads as history).
      if (seen_current) ++score.history_only;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  storage->close();
  std::filesystem::remove_all(dir);

  std::printf("| fact | changed halfway | asked | right with memory | right from history only |\n");
  std::printf("|---|---|---|---|---|\n");
  Score total;
  for (size_t f = 0; f < facts.size(); ++f) {
    const Score& s = by_category[f];
    std::printf("| %s | %s | %d | %d | %d |\n", facts[f].category.c_str(),
                facts[f].change.empty() ? "no" : "yes", s.asked, s.with_memory, s.history_only);
    total.asked += s.asked;
    total.with_memory += s.with_memory;
    total.history_only += s.history_only;
  }
  std::printf("| all | | %d | %d (%.0f%%) | %d (%.0f%%) |\n", total.asked, total.with_memory,
              100.0 * total.with_memory / std::max(total.asked, 1), total.history_only,
              100.0 * total.history_only / std::max(total.asked, 1));
  std::printf("\n%d users, %zu turns each, in %.1f s\n", users,
              facts.size() + 2 + static_cast<size_t>(fillers), seconds);
  return 0;
}
