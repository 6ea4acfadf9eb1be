// Crash consistency: "201 means durable". Four client threads create sessions as fast as they
// can; the server is SIGKILLed in the middle of the burst; a new server on the same data directory
// must return every session that was acknowledged with 201, and SQLite's integrity check of
// <data_dir>/parley.db must say "ok".
#include <atomic>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace parley_it {
namespace {

struct Acked {
  std::string id;
  std::string user_id;
  std::string title;
};

TEST(Crash, AcknowledgedWritesSurviveSigkill) {
  auto first = std::make_unique<ParleyProcess>();
  const int port = first->port();

  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop && i < 100000; ++i) {
        const nlohmann::json req = {{"user_id", "crash-" + std::to_string(t)},
                                    {"title", std::to_string(t) + "-" + std::to_string(i)}};
        attempts++;
        auto r = http("POST", port, "/api/v1/sessions", req.dump(), {}, Millis{3000});
        if (r.status == 201) {
          auto j = r.json_or_discarded();
          std::lock_guard<std::mutex> lock(mu);
          acked.push_back({j.value("id", ""), req["user_id"], req["title"]});
        } else if (!r.error.empty()) {
          return;  // the server is gone
        }
      }
    });
  }

  // Let the burst run until a fair number of writes were acknowledged, then kill mid-stream.
  const bool enough = eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return acked.size() >= 150;
      },
      Millis{10000}, Millis{5});
  first->kill9();
  stop = true;
  for (auto& c : clients) c.join();
  ASSERT_TRUE(enough) << "only " << acked.size() << " of " << attempts.load()
                      << " creates acknowledged within 10 s";
  const size_t acked_count = acked.size();
  RecordProperty("acknowledged", static_cast<int>(acked_count));
  RecordProperty("attempted", attempts.load());

  // Same data directory, fresh process: SQLite recovers its WAL and every 201 must be there.
  auto second = first->restart();
  size_t missing = 0;
  for (const auto& a : acked) {
    ASSERT_FALSE(a.id.empty());
    auto r = http("GET", second->port(), "/api/v1/sessions/" + a.id);
    if (r.status != 200) {
      ++missing;
      ADD_FAILURE() << "acknowledged session " << a.id << " lost after SIGKILL: " << r.describe();
      continue;
    }
    auto j = r.json_or_discarded();
    EXPECT_EQ(j.value("user_id", ""), a.user_id);
    EXPECT_EQ(j.value("title", ""), a.title);
  }
  EXPECT_EQ(missing, 0u) << missing << " of " << acked_count << " acknowledged writes lost";

  // The recovered server still takes writes.
  EXPECT_EQ(http("POST", second->port(), "/api/v1/sessions", "{}").status, 201);

  // Stop it cleanly, then check the file itself.
  ASSERT_TRUE(second->send_signal(SIGTERM));
  ASSERT_TRUE(second->wait_exit(Millis{10000}).has_value());
  const std::string db = second->data_dir() + "/parley.db";
  ASSERT_TRUE(file_exists(db)) << db;
  std::string error;
  auto rows = sqlite_query(db, "PRAGMA integrity_check", &error);
  ASSERT_TRUE(rows.has_value()) << error;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->at(0).at(0), "ok");
}

}  // namespace
}  // namespace parley_it
