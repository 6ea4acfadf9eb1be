// The single-process Idempotency-Key store (idempotency/idempotency.hpp) over the real SQLite
// idempotency table in a temporary directory: the first claim runs the request, a repeat while
// it runs is in progress, a finished one replays its answer, another request under the same key
// is a mismatch, a released claim runs again, answers expire a ttl after they were stored; what
// flush() or stop() wrote survives a restart (indexed at start, the body read back with load()),
// expired and unfinished ones do not; forget_user in one tenant or in all of them, queued answers
// included; and a small memory budget sending replays to the store. Time is the now_ms argument.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/clock.hpp"
#include "idempotency/idempotency.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using parley::idempotency::Claim;
using parley::idempotency::LocalIdempotency;
using parley::idempotency::LocalOptions;
using parley::idempotency::StoredResponse;
using parley::store::Storage;

constexpr int64_t kTtl = 24LL * 3600 * 1000;

using parley::testing::TempDir;

StoredResponse answer(std::string body, int status = 201) {
  return StoredResponse{status, "application/json", std::move(body)};
}

class IdempotencyTest : public ::testing::Test {
 protected:
  IdempotencyTest() { open_storage(); }
  ~IdempotencyTest() override { storage_->close(); }

  void open_storage() {
    parley::store::sqlite::Options options;
    options.path = dir_.path() + "/parley.db";
    auto opened = parley::store::sqlite::open(options);
    if (!opened.ok()) throw std::runtime_error("open failed: " + opened.error().message);
    storage_ = std::move(opened).value();
  }
  // A process restart: the same database file, new connections.
  void reopen_storage() {
    storage_->close();
    open_storage();
  }

  static LocalOptions options(size_t memory_bytes = size_t{32} * 1024 * 1024) {
    LocalOptions o;
    o.ttl = std::chrono::milliseconds(kTtl);
    o.memory_bytes = memory_bytes;
    o.flush_interval_ms = 1;  // so that stop() does not wait on the writer's batching pause
    return o;
  }

  // Claims `key` and completes it with `response` for the user, at `now_ms`.
  static void run(LocalIdempotency& store, const std::string& key, const std::string& fingerprint,
                  StoredResponse response, int64_t now_ms, const std::string& tenant = "acme",
                  const std::string& user = "alice") {
    ASSERT_EQ(store.claim_now(key, fingerprint, now_ms).kind, Claim::Kind::kClaimed) << key;
    store.complete(key, fingerprint, std::move(response), tenant, user, now_ms);
  }

  // Simulated times start at the present: a started store's writer thread purges by the real
  // clock, and must find nothing of the test's expired before the test says so.
  const int64_t t0_ = parley::to_unix_ms(std::chrono::system_clock::now());
  TempDir dir_{"parley-idem"};
  std::unique_ptr<Storage> storage_;
};

// Stores that are never start()ed have no writer thread: the test's flush() is then the only
// writer, and what the table holds at each step is exact.

TEST_F(IdempotencyTest, FirstClaimRunsTheRequest) {
  LocalIdempotency store(storage_->idempotency(), options());
  EXPECT_EQ(store.claim_now("key:1", "fp-a", t0_).kind, Claim::Kind::kClaimed);
}

TEST_F(IdempotencyTest, RepeatWhileTheFirstRunsIsInProgress) {
  LocalIdempotency store(storage_->idempotency(), options());
  ASSERT_EQ(store.claim_now("key:1", "fp-a", t0_).kind, Claim::Kind::kClaimed);
  EXPECT_EQ(store.claim_now("key:1", "fp-a", t0_ + 100).kind, Claim::Kind::kInProgress);
}

TEST_F(IdempotencyTest, FinishedRequestIsReplayed) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "key:1", "fp-a", answer(R"({"id":"sess_1"})"), t0_);
  const Claim again = store.claim_now("key:1", "fp-a", t0_ + 100);
  ASSERT_EQ(again.kind, Claim::Kind::kReplay);
  EXPECT_EQ(again.response.status, 201);
  EXPECT_EQ(again.response.content_type, "application/json");
  EXPECT_EQ(again.response.body, R"({"id":"sess_1"})");
}

TEST_F(IdempotencyTest, AnotherRequestUnderTheSameKeyIsAMismatch) {
  LocalIdempotency store(storage_->idempotency(), options());
  ASSERT_EQ(store.claim_now("key:1", "fp-a", t0_).kind, Claim::Kind::kClaimed);
  EXPECT_EQ(store.claim_now("key:1", "fp-b", t0_ + 1).kind, Claim::Kind::kMismatch);
  store.complete("key:1", "fp-a", answer("{}"), "acme", "alice", t0_ + 2);
  EXPECT_EQ(store.claim_now("key:1", "fp-b", t0_ + 3).kind, Claim::Kind::kMismatch);
}

TEST_F(IdempotencyTest, KeysAreIndependent) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "key:1", "fp-a", answer("{}"), t0_);
  EXPECT_EQ(store.claim_now("key:2", "fp-a", t0_).kind, Claim::Kind::kClaimed);
}

TEST_F(IdempotencyTest, ReleasedClaimRunsAgain) {
  LocalIdempotency store(storage_->idempotency(), options());
  ASSERT_EQ(store.claim_now("key:1", "fp-a", t0_).kind, Claim::Kind::kClaimed);
  // The first attempt answered "try again" (a 5xx, a 429, a client that left).
  store.release("key:1");
  EXPECT_EQ(store.claim_now("key:1", "fp-a", t0_ + 1).kind, Claim::Kind::kClaimed);
  store.release("key:1");
  // Nothing was stored, so the key may even name another request now.
  EXPECT_EQ(store.claim_now("key:1", "fp-b", t0_ + 2).kind, Claim::Kind::kClaimed);
}

TEST_F(IdempotencyTest, AnswerExpiresTtlAfterItWasStored) {
  LocalIdempotency store(storage_->idempotency(), options());
  ASSERT_EQ(store.claim_now("key:1", "fp-a", t0_).kind, Claim::Kind::kClaimed);
  const int64_t done = t0_ + 5'000;
  store.complete("key:1", "fp-a", answer("first"), "acme", "alice", done);

  EXPECT_EQ(store.claim_now("key:1", "fp-a", done + kTtl - 1).kind, Claim::Kind::kReplay);
  EXPECT_EQ(store.claim_now("key:1", "fp-a", done + kTtl).kind, Claim::Kind::kClaimed);
  store.complete("key:1", "fp-a", answer("second"), "acme", "alice", done + kTtl);
  const Claim replay = store.claim_now("key:1", "fp-a", done + kTtl + 1);
  ASSERT_EQ(replay.kind, Claim::Kind::kReplay);
  EXPECT_EQ(replay.response.body, "second");
}

TEST_F(IdempotencyTest, ExpiredKeyMayNameAnotherRequest) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "key:1", "fp-a", answer("{}"), t0_);
  EXPECT_EQ(store.claim_now("key:1", "fp-b", t0_ + kTtl).kind, Claim::Kind::kClaimed);
}

TEST_F(IdempotencyTest, FlushWritesTheAnswerToTheStore) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "key:1", "fp-a", answer(R"({"ok":true})", 200), t0_);
  store.flush();

  auto record = storage_->idempotency().get("key:1");
  ASSERT_TRUE(record.ok()) << record.error().message;
  ASSERT_TRUE(record->has_value());
  const auto& r = **record;
  EXPECT_EQ(r.fingerprint, "fp-a");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_EQ(r.created_at_ms, t0_);
  EXPECT_EQ(r.expires_at_ms, t0_ + kTtl);
}

TEST_F(IdempotencyTest, LoadFindsAnAnswerStillQueuedOrAlreadyWritten) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "key:1", "fp-a", answer("queued"), t0_);
  for (const char* stage : {"queued", "written"}) {
    auto loaded = store.load("key:1");
    ASSERT_TRUE(loaded.ok()) << stage << ": " << loaded.error().message;
    ASSERT_TRUE(loaded->has_value()) << stage;
    EXPECT_EQ((*loaded)->body, "queued") << stage;
    EXPECT_EQ((*loaded)->status, 201) << stage;
    store.flush();
  }
}

TEST_F(IdempotencyTest, LoadOfAKeyNeverStoredIsNothing) {
  LocalIdempotency store(storage_->idempotency(), options());
  auto loaded = store.load("key:unknown");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_FALSE(loaded->has_value());
}

TEST_F(IdempotencyTest, FlushedAnswerIsReplayedAfterARestart) {
  {
    LocalIdempotency before(storage_->idempotency(), options());
    run(before, "key:1", "fp-a", answer(R"({"id":"sess_1"})"), t0_);
    before.flush();
  }
  reopen_storage();
  LocalIdempotency after(storage_->idempotency(), options());
  ASSERT_TRUE(after.start(t0_ + 1'000).ok());

  // The index is loaded at start; the body stays in the store until asked for.
  EXPECT_EQ(after.claim_now("key:1", "fp-a", t0_ + 2'000).kind, Claim::Kind::kReplayLoad);
  auto loaded = after.load("key:1");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->body, R"({"id":"sess_1"})");
  EXPECT_EQ((*loaded)->status, 201);
  EXPECT_EQ(after.claim_now("key:1", "fp-b", t0_ + 2'000).kind, Claim::Kind::kMismatch);
}

TEST_F(IdempotencyTest, StopWritesWhatTheWriterHasNotYet) {
  {
    LocalIdempotency before(storage_->idempotency(), options());
    ASSERT_TRUE(before.start(t0_).ok());
    run(before, "key:1", "fp-a", answer("kept"), t0_);
    before.stop();
  }
  reopen_storage();
  LocalIdempotency after(storage_->idempotency(), options());
  ASSERT_TRUE(after.start(t0_ + 1'000).ok());
  ASSERT_EQ(after.claim_now("key:1", "fp-a", t0_ + 1'000).kind, Claim::Kind::kReplayLoad);
  auto loaded = after.load("key:1");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->body, "kept");
}

TEST_F(IdempotencyTest, ExpiredAnswersAreNotLoadedAtStart) {
  {
    LocalIdempotency before(storage_->idempotency(), options());
    run(before, "key:1", "fp-a", answer("old"), t0_);
    before.flush();
  }
  LocalIdempotency after(storage_->idempotency(), options());
  ASSERT_TRUE(after.start(t0_ + kTtl).ok());
  EXPECT_EQ(after.claim_now("key:1", "fp-b", t0_ + kTtl).kind, Claim::Kind::kClaimed);
}

TEST_F(IdempotencyTest, UnfinishedRequestIsNotRememberedAcrossARestart) {
  {
    LocalIdempotency before(storage_->idempotency(), options());
    ASSERT_EQ(before.claim_now("key:1", "fp-a", t0_).kind, Claim::Kind::kClaimed);
    before.flush();
  }
  LocalIdempotency after(storage_->idempotency(), options());
  ASSERT_TRUE(after.start(t0_ + 1'000).ok());
  // The process died mid-request: the retry runs it again.
  EXPECT_EQ(after.claim_now("key:1", "fp-a", t0_ + 1'000).kind, Claim::Kind::kClaimed);
}

TEST_F(IdempotencyTest, ForgetUserInOneTenant) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "acme-alice", "fp", answer("a"), t0_, "acme", "alice");
  run(store, "globex-alice", "fp", answer("b"), t0_, "globex", "alice");
  run(store, "acme-bob", "fp", answer("c"), t0_, "acme", "bob");

  store.forget_user(std::string("acme"), "alice");

  EXPECT_EQ(store.claim_now("acme-alice", "fp", t0_ + 1).kind, Claim::Kind::kClaimed);
  EXPECT_EQ(store.claim_now("globex-alice", "fp", t0_ + 1).kind, Claim::Kind::kReplay);
  EXPECT_EQ(store.claim_now("acme-bob", "fp", t0_ + 1).kind, Claim::Kind::kReplay);
}

TEST_F(IdempotencyTest, ForgetUserInEveryTenant) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "acme-alice", "fp", answer("a"), t0_, "acme", "alice");
  run(store, "globex-alice", "fp", answer("b"), t0_, "globex", "alice");
  run(store, "acme-bob", "fp", answer("c"), t0_, "acme", "bob");

  store.forget_user(std::nullopt, "alice");

  EXPECT_EQ(store.claim_now("acme-alice", "fp", t0_ + 1).kind, Claim::Kind::kClaimed);
  EXPECT_EQ(store.claim_now("globex-alice", "fp", t0_ + 1).kind, Claim::Kind::kClaimed);
  EXPECT_EQ(store.claim_now("acme-bob", "fp", t0_ + 1).kind, Claim::Kind::kReplay);
}

TEST_F(IdempotencyTest, ForgottenAnswersStillQueuedAreNeverWritten) {
  LocalIdempotency store(storage_->idempotency(), options());
  run(store, "acme-alice", "fp", answer("a"), t0_, "acme", "alice");
  run(store, "acme-bob", "fp", answer("c"), t0_, "acme", "bob");
  // The erasure deletes the user's rows first; an answer written after it would outlive it.
  store.forget_user(std::string("acme"), "alice");
  store.flush();

  auto alice = storage_->idempotency().get("acme-alice");
  ASSERT_TRUE(alice.ok()) << alice.error().message;
  EXPECT_FALSE(alice->has_value());
  auto bob = storage_->idempotency().get("acme-bob");
  ASSERT_TRUE(bob.ok()) << bob.error().message;
  EXPECT_TRUE(bob->has_value());
}

TEST_F(IdempotencyTest, OldestBodiesLeaveMemoryPastTheBudget) {
  LocalIdempotency store(storage_->idempotency(), options(/*memory_bytes=*/16));
  run(store, "key:1", "fp", answer("0123456789"), t0_);
  EXPECT_EQ(store.claim_now("key:1", "fp", t0_ + 1).kind, Claim::Kind::kReplay);

  run(store, "key:2", "fp", answer("abcdefghij"), t0_ + 2);
  // 20 bytes over a budget of 16: the older body goes, the key stays indexed.
  EXPECT_EQ(store.claim_now("key:1", "fp", t0_ + 3).kind, Claim::Kind::kReplayLoad);
  EXPECT_EQ(store.claim_now("key:2", "fp", t0_ + 3).kind, Claim::Kind::kReplay);
  EXPECT_EQ(store.claim_now("key:1", "fp-other", t0_ + 3).kind, Claim::Kind::kMismatch);

  for (const char* stage : {"queued", "written"}) {
    auto loaded = store.load("key:1");
    ASSERT_TRUE(loaded.ok()) << stage << ": " << loaded.error().message;
    ASSERT_TRUE(loaded->has_value()) << stage;
    EXPECT_EQ((*loaded)->body, "0123456789") << stage;
    store.flush();
  }
}

TEST_F(IdempotencyTest, BodyLargerThanTheWholeBudgetIsReadFromTheStore) {
  LocalIdempotency store(storage_->idempotency(), options(/*memory_bytes=*/4));
  run(store, "key:1", "fp", answer("0123456789"), t0_);
  store.flush();
  ASSERT_EQ(store.claim_now("key:1", "fp", t0_ + 1).kind, Claim::Kind::kReplayLoad);
  auto loaded = store.load("key:1");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->body, "0123456789");
}

// Claiming an expired key again gives its body's memory back: were the 60 bytes of key:1 still
// counted, key:2's 60 bytes would "exceed" the budget of 100 and be dropped at once, and the
// budget would shrink by every expired body whose key is reused.
TEST_F(IdempotencyTest, ReclaimingAnExpiredKeyFreesItsBodysMemory) {
  LocalIdempotency store(storage_->idempotency(), options(/*memory_bytes=*/100));
  run(store, "key:1", "fp", answer(std::string(60, 'a')), t0_);
  ASSERT_EQ(store.claim_now("key:1", "fp", t0_ + kTtl).kind, Claim::Kind::kClaimed);
  store.release("key:1");

  run(store, "key:2", "fp", answer(std::string(60, 'b')), t0_ + kTtl);
  EXPECT_EQ(store.claim_now("key:2", "fp", t0_ + kTtl + 1).kind, Claim::Kind::kReplay);
}

// Keys indexed at startup know whose they are: after a restart, erasure still finds the
// user's answers (else their keys would stay indexed: kReplayLoad, and kMismatch for a new
// request under the same key, although the erasure deleted the rows).
TEST_F(IdempotencyTest, ForgetUserAfterARestart) {
  {
    LocalIdempotency before(storage_->idempotency(), options());
    run(before, "acme-alice", "fp", answer("a"), t0_, "acme", "alice");
    before.flush();
  }
  LocalIdempotency after(storage_->idempotency(), options());
  ASSERT_TRUE(after.start(t0_ + 1'000).ok());
  after.forget_user(std::string("acme"), "alice");
  EXPECT_EQ(after.claim_now("acme-alice", "fp-new", t0_ + 2'000).kind, Claim::Kind::kClaimed);
}

}  // namespace
