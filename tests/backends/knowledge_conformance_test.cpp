// Knowledge storage conformance (store/knowledge.hpp), typed over SQLite and PostgreSQL:
// files stored once per content, knowledge bases with their counts, documents through their
// states (queued, processing, ready, failed), deduplication by content, replacement, the
// chunk commit (old chunks out, new in, one transaction), and the change log the search
// indexes catch up from: in order, complete, with removals for everything deleted.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "backends.hpp"
#include "store/settings.hpp"
#include "store/store.hpp"
#include "support/manual_clock.hpp"

namespace {

using parley::ErrorCode;
using parley::testing::BackendNames;
using parley::testing::FailsWith;
using parley::testing::PostgresBackend;
using parley::testing::SqliteBackend;
using namespace parley::store;

template <typename Backend>
class KnowledgeConformance : public ::testing::Test {
 public:
  void SetUp() override {
    store = parley::testing::open_test_store(backend.url(), clock);
    ASSERT_NE(store, nullptr);
  }
  void TearDown() override {
    if (store) store->close();
  }

  KnowledgeRepository& kb() { return store->knowledge(); }
  int64_t now() const { return clock.unix_ms(); }

  KnowledgeBase make_base(const std::string& tenant = "t1", const std::string& name = "Docs",
                          const std::string& owner = "") {
    NewKnowledgeBase n;
    n.tenant_id = tenant;
    n.owner_user_id = owner;
    n.name = name;
    n.embedder = "parley-hashed-v1";
    n.dimension = 4;
    auto r = kb().create_base(n, now());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : KnowledgeBase{};
  }

  StoredFile make_file(const std::string& content, const std::string& tenant = "t1",
                       const std::string& name = "a.md") {
    NewFile f;
    f.tenant_id = tenant;
    f.user_id = "alice";
    f.filename = name;
    f.purpose = "assistants";
    f.sha256 = "sha-" + content;  // any stable key will do here
    f.content = content;
    auto r = kb().put_file(f, now());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : StoredFile{};
  }

  AddedDocument add(const KnowledgeBase& base, const StoredFile& file,
                    const std::string& attributes = "{}") {
    NewDocument d;
    d.kb_id = base.id;
    d.tenant_id = base.tenant_id;
    d.file_id = file.id;
    d.name = file.filename;
    d.attributes_json = attributes;
    auto r = kb().add_document(d, now());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : AddedDocument{};
  }

  static ChunkCommit chunks_for(const KnowledgeDocument& doc, int n, const std::string& word) {
    ChunkCommit c;
    c.document_id = doc.id;
    c.file_id = doc.file_id;
    c.format = "markdown";
    c.pages = 0;
    for (int i = 0; i < n; ++i) {
      NewChunk chunk;
      chunk.ordinal = i;
      chunk.text = word + " " + std::to_string(i);
      chunk.section = "Intro";
      chunk.start_offset = i * 10;
      chunk.end_offset = i * 10 + 8;
      chunk.tokens = 2;
      chunk.vector = {0.5F, -0.25F, static_cast<float>(i), 1e-7F};
      c.chunks.push_back(chunk);
    }
    return c;
  }

  std::vector<ChunkChange> all_changes(int64_t after = 0) {
    auto r = kb().changes_since(after, 100000);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : std::vector<ChunkChange>{};
  }

  Backend backend;
  parley::ManualClock clock;
  std::unique_ptr<Storage> store;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(KnowledgeConformance, Backends, BackendNames);

TYPED_TEST(KnowledgeConformance, FilesKeepTheirBytesOnceAndListNewestFirst) {
  const std::string binary("\x00\x01\xff%PDF\x00", 8);
  auto a = this->make_file(binary);
  auto b = this->make_file(binary, "t1", "copy.pdf");
  auto other = this->make_file("text", "t2");
  ASSERT_NE(a.id, b.id);
  EXPECT_EQ(a.bytes, 8);
  EXPECT_EQ(a.created_at_ms, this->now());
  auto content = this->kb().file_content(b.id);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, binary);
  auto page = this->kb().list_files("t1", std::nullopt, 1, std::nullopt);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1U);
  EXPECT_EQ(page->items[0].id, b.id);
  ASSERT_TRUE(page->next_cursor.has_value());
  auto next = this->kb().list_files("t1", std::nullopt, 5, page->next_cursor);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->items.size(), 1U);
  EXPECT_EQ(next->items[0].id, a.id);
  EXPECT_FALSE(next->next_cursor.has_value());
  EXPECT_TRUE(this->kb().list_files("t1", std::string("batch"), 5, std::nullopt)->items.empty());

  // Deleting one copy keeps the bytes for the other; deleting both frees them.
  ASSERT_TRUE(this->kb().delete_file(a.id).ok());
  EXPECT_TRUE(FailsWith(this->kb().get_file(a.id), ErrorCode::kNotFound, "file_not_found"));
  EXPECT_EQ(*this->kb().file_content(b.id), binary);
  ASSERT_TRUE(this->kb().delete_file(b.id).ok());
  EXPECT_TRUE(FailsWith(this->kb().file_content(b.id), ErrorCode::kNotFound));
  EXPECT_TRUE(FailsWith(this->kb().delete_file(b.id), ErrorCode::kNotFound, "file_not_found"));
  EXPECT_TRUE(this->kb().get_file(other.id).ok());
}

TYPED_TEST(KnowledgeConformance, AUsersOwnBasesAreListedOnlyForThatUser) {
  auto shared = this->make_base("t1", "Handbook");
  auto alices = this->make_base("t1", "Alice's notes", "alice");
  EXPECT_EQ(alices.owner_user_id, "alice");
  EXPECT_EQ(shared.owner_user_id, "");
  auto bobs = this->make_base("t1", "Bob's notes", "bob");
  EXPECT_EQ(this->kb().get_base_brief(bobs.id)->owner_user_id, "bob");
  EXPECT_EQ(this->kb().get_base(bobs.id)->owner_user_id, "bob");

  const auto ids = [&](const KnowledgeBaseListQuery& q) {
    std::vector<std::string> out;
    auto page = this->kb().list_bases(q);
    EXPECT_TRUE(page.ok());
    if (page.ok()) {
      for (const auto& b : page->items) out.push_back(b.id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({std::string("t1"), std::string("alice"), 10, std::nullopt}),
            (V{alices.id, shared.id}));
  EXPECT_EQ(ids({std::string("t1"), std::string("bob"), 10, std::nullopt}),
            (V{bobs.id, shared.id}));
  EXPECT_EQ(ids({std::string("t1"), std::string("carol"), 10, std::nullopt}), (V{shared.id}));
  EXPECT_EQ(ids({std::string("t1"), std::nullopt, 10, std::nullopt}),
            (V{bobs.id, alices.id, shared.id}));
  // Pages of what one user sees skip the others' bases.
  auto first = this->kb().list_bases({std::string("t1"), std::string("alice"), 1, std::nullopt});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->items.size(), 1U);
  EXPECT_EQ(first->items[0].id, alices.id);
  ASSERT_TRUE(first->next_cursor.has_value());
  EXPECT_EQ(ids({std::string("t1"), std::string("alice"), 1, first->next_cursor}), (V{shared.id}));
}

TYPED_TEST(KnowledgeConformance, ErasingAUserDeletesTheirBasesAndFilesAndLogsItForTheIndexes) {
  // Alice's own base with a document from her file; her file also attached to a shared base
  // (a service key may attach any file of the tenant); Bob's file in the shared base too.
  auto alices = this->make_base("t1", "Alice's", "alice");
  // The same user id in another tenant.
  auto other_tenant = this->make_base("t2", "Alice's", "alice");
  auto shared = this->make_base("t1", "Shared");
  auto file = this->make_file("alice's words");  // user "alice"
  NewFile bobs_file{"t1", "bob", "b.md", "assistants", "sha-bob", "bob's words"};
  auto bob = this->kb().put_file(bobs_file, this->now());
  ASSERT_TRUE(bob.ok());
  auto in_own = this->add(alices, file).document;
  auto in_shared = this->add(shared, file).document;
  auto bobs_doc = this->add(shared, *bob).document;
  for (const auto& doc : {in_own, in_shared, bobs_doc}) {
    ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc, 2, "w"), this->now()).ok());
  }
  const int64_t before = this->kb().last_change().value();

  auto erased = this->store->user_data().erase_user(std::string("t1"), "alice", this->now());
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  EXPECT_EQ(erased->knowledge_bases, 1);
  EXPECT_EQ(erased->files, 1);
  EXPECT_TRUE(FailsWith(this->kb().get_base(alices.id), ErrorCode::kNotFound));
  EXPECT_TRUE(FailsWith(this->kb().get_file(file.id), ErrorCode::kNotFound));
  EXPECT_TRUE(FailsWith(this->kb().file_content(file.id), ErrorCode::kNotFound));
  EXPECT_TRUE(FailsWith(this->kb().get_document(in_shared.id), ErrorCode::kNotFound));
  // What is not Alice's in this tenant stays: the shared base, Bob's document, her base in t2.
  EXPECT_EQ(this->kb().get_base(shared.id)->documents, 1);
  EXPECT_TRUE(this->kb().get_document(bobs_doc.id).ok());
  EXPECT_EQ(*this->kb().file_content(bob->id), "bob's words");
  EXPECT_TRUE(this->kb().get_base(other_tenant.id).ok());

  // The indexes learn of it: her base dropped, her chunks in the shared base removed.
  std::vector<std::pair<ChunkChange::Op, std::string>> logged;
  for (const auto& c : this->all_changes(before)) logged.emplace_back(c.op, c.kb_id);
  using L = std::vector<std::pair<ChunkChange::Op, std::string>>;
  EXPECT_EQ(logged, (L{{ChunkChange::Op::kDropBase, alices.id},
                       {ChunkChange::Op::kRemove, shared.id},
                       {ChunkChange::Op::kRemove, shared.id}}));

  // With no tenant, every tenant's.
  auto everywhere = this->store->user_data().erase_user(std::nullopt, "alice", this->now());
  ASSERT_TRUE(everywhere.ok()) << everywhere.error().message;
  EXPECT_EQ(everywhere->knowledge_bases, 1);
  EXPECT_TRUE(FailsWith(this->kb().get_base(other_tenant.id), ErrorCode::kNotFound));
  EXPECT_TRUE(this->kb().get_base(shared.id).ok());
}

TYPED_TEST(KnowledgeConformance, BasesAreCreatedListedUpdatedAndCounted) {
  auto a = this->make_base("t1", "A");
  this->clock.advance(std::chrono::milliseconds(5));
  auto b = this->make_base("t1", "B");
  auto c = this->make_base("t2", "C");
  EXPECT_EQ(a.embedder, "parley-hashed-v1");
  EXPECT_EQ(a.dimension, 4);
  EXPECT_EQ(a.documents, 0);
  auto t1 = this->kb().list_bases({std::string("t1"), std::nullopt, 10, std::nullopt});
  ASSERT_TRUE(t1.ok());
  ASSERT_EQ(t1->items.size(), 2U);
  EXPECT_EQ(t1->items[0].id, b.id);
  EXPECT_EQ(t1->items[1].id, a.id);
  auto all = this->kb().list_bases({std::nullopt, std::nullopt, 2, std::nullopt});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 2U);
  ASSERT_TRUE(all->next_cursor.has_value());
  EXPECT_EQ(this->kb().list_bases({std::nullopt, std::nullopt, 2, all->next_cursor})->items[0].id,
            a.id);
  EXPECT_TRUE(FailsWith(this->kb().list_bases({std::nullopt, std::nullopt, 2, std::string("x")}),
                        ErrorCode::kInvalidArgument, "invalid_cursor"));

  this->clock.advance(std::chrono::milliseconds(7));
  KnowledgeBasePatch patch;
  patch.name = "A2";
  patch.settings_json = R"({"chunking":{"max_tokens":200}})";
  auto updated = this->kb().update_base(a.id, patch, this->now());
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "A2");
  EXPECT_EQ(updated->description, "");
  EXPECT_EQ(updated->settings_json, R"({"chunking":{"max_tokens":200}})");
  EXPECT_EQ(updated->updated_at_ms, this->now());
  EXPECT_TRUE(FailsWith(this->kb().update_base("kb_nope", patch, this->now()), ErrorCode::kNotFound,
                        "knowledge_base_not_found"));

  auto file = this->make_file("# Title");
  auto doc = this->add(a, file);
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc.document, 3, "w"), this->now()).ok());
  auto failing = this->add(a, this->make_file("bad"));
  ASSERT_TRUE(this->kb()
                  .fail_document(failing.document.id, "unsupported_type", "binary", this->now())
                  .ok());
  this->add(a, this->make_file("waiting"));
  auto counted = this->kb().get_base(a.id);
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(counted->documents, 3);
  EXPECT_EQ(counted->documents_ready, 1);
  EXPECT_EQ(counted->documents_failed, 1);
  EXPECT_EQ(counted->documents_processing, 1);
  EXPECT_EQ(counted->chunks, 3);
  EXPECT_EQ(counted->bytes, 7 + 3 + 7);
  // The brief read: the same base, without the counts that read every document.
  auto brief = this->kb().get_base_brief(a.id);
  ASSERT_TRUE(brief.ok());
  EXPECT_EQ(brief->tenant_id, "t1");
  EXPECT_EQ(brief->name, "A2");
  EXPECT_EQ(brief->embedder, counted->embedder);
  EXPECT_EQ(brief->dimension, counted->dimension);
  EXPECT_EQ(brief->settings_json, counted->settings_json);
  EXPECT_EQ(brief->documents, 0);
  EXPECT_EQ(brief->chunks, 0);
  EXPECT_TRUE(FailsWith(this->kb().get_base_brief("kb_nope"), ErrorCode::kNotFound,
                        "knowledge_base_not_found"));
  (void)c;
}

TYPED_TEST(KnowledgeConformance, DocumentsMoveThroughTheirStatesAndDeduplicateByContent) {
  auto base = this->make_base();
  auto file = this->make_file("same bytes");
  auto first = this->add(base, file, R"({"lang":"en"})");
  EXPECT_FALSE(first.duplicate);
  EXPECT_EQ(first.document.status, "queued");
  EXPECT_EQ(first.document.sha256, "sha-same bytes");
  EXPECT_EQ(first.document.bytes, 10);
  EXPECT_EQ(first.document.attributes_json, R"({"lang":"en"})");
  // The same content again, under another file and name: the first document comes back.
  auto again = this->add(base, this->make_file("same bytes", "t1", "other.md"));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.document.id, first.document.id);
  // Found by either file: the one it was made from, and the duplicate's.
  EXPECT_EQ(this->kb().document_for_file(base.id, file.id)->id, first.document.id);
  auto duplicate_file = this->kb().list_files("t1", std::nullopt, 1, std::nullopt)->items.at(0);
  EXPECT_EQ(this->kb().document_for_file(base.id, duplicate_file.id)->id, first.document.id);
  EXPECT_TRUE(FailsWith(this->kb().document_for_file(base.id, "file_nope"), ErrorCode::kNotFound,
                        "document_not_found"));
  // Another base takes it as a new document.
  auto elsewhere = this->add(this->make_base("t1", "Other"), file);
  EXPECT_FALSE(elsewhere.duplicate);

  this->clock.advance(std::chrono::milliseconds(3));
  ASSERT_TRUE(
      this->kb().set_progress(first.document.id, R"({"stage":"embedding"})", this->now()).ok());
  auto processing = this->kb().get_document(first.document.id);
  EXPECT_EQ(processing->status, "processing");
  EXPECT_EQ(processing->progress_json, R"({"stage":"embedding"})");
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(first.document, 2, "x"), this->now()).ok());
  auto ready = this->kb().get_document(first.document.id);
  EXPECT_EQ(ready->status, "ready");
  EXPECT_EQ(ready->format, "markdown");
  EXPECT_EQ(ready->chunks, 2);
  EXPECT_EQ(ready->tokens, 4);
  EXPECT_EQ(ready->progress_json, "{}");
  EXPECT_EQ(ready->ingested_at_ms, this->now());

  EXPECT_TRUE(
      FailsWith(this->kb().add_document({base.id, "t1", "file_nope", "x", "{}"}, this->now()),
                ErrorCode::kNotFound, "file_not_found"));
  EXPECT_TRUE(FailsWith(this->kb().add_document({"kb_nope", "t1", file.id, "x", "{}"}, this->now()),
                        ErrorCode::kNotFound, "knowledge_base_not_found"));
  // Another tenant's file cannot be added.
  auto foreign = this->make_file("theirs", "t2");
  EXPECT_TRUE(
      FailsWith(this->kb().add_document({base.id, "t1", foreign.id, "x", "{}"}, this->now()),
                ErrorCode::kNotFound, "file_not_found"));

  auto listed = this->kb().list_documents({base.id, std::nullopt, 10, std::nullopt});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1U);
  EXPECT_TRUE(
      this->kb().list_documents({base.id, std::string("failed"), 10, std::nullopt})->items.empty());
  EXPECT_TRUE(
      FailsWith(this->kb().get_document("doc_nope"), ErrorCode::kNotFound, "document_not_found"));
}

TYPED_TEST(KnowledgeConformance, CommitReplacesChunksAndLogsEveryChangeInOrder) {
  auto base = this->make_base();
  auto doc = this->add(base, this->make_file("v1")).document;
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc, 3, "old"), this->now()).ok());
  auto first = this->all_changes();
  ASSERT_EQ(first.size(), 3U);
  std::vector<int64_t> old_seqs;
  for (const auto& c : first) {
    EXPECT_EQ(c.op, ChunkChange::Op::kAdd);
    EXPECT_EQ(c.kb_id, base.id);
    EXPECT_EQ(c.document_id, doc.id);
    old_seqs.push_back(c.chunk_seq);
  }
  EXPECT_TRUE(std::is_sorted(old_seqs.begin(), old_seqs.end()));
  auto stored = this->kb().chunks_by_seq(old_seqs);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 3U);
  EXPECT_EQ((*stored)[1].text, "old 1");
  EXPECT_EQ((*stored)[1].section, "Intro");
  EXPECT_EQ((*stored)[1].start_offset, 10);
  EXPECT_EQ((*stored)[1].vector, (std::vector<float>{0.5F, -0.25F, 1.0F, 1e-7F}));

  // Replace: queued again; the old chunks stay until the new ones are committed.
  auto file2 = this->make_file("v2");
  auto replaced = this->kb().replace_document(doc.id, file2.id, "", this->now());
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->status, "queued");
  EXPECT_EQ(replaced->file_id, file2.id);
  EXPECT_EQ(replaced->name, "a.md");
  EXPECT_EQ(this->kb().chunks_by_seq(old_seqs)->size(), 3U);
  // An ingestion of the old file finishing late is refused.
  EXPECT_TRUE(FailsWith(this->kb().commit_chunks(this->chunks_for(doc, 1, "late"), this->now()),
                        ErrorCode::kConflict, "document_changed"));
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(*replaced, 2, "new"), this->now()).ok());
  EXPECT_TRUE(this->kb().chunks_by_seq(old_seqs)->empty());
  auto after = this->all_changes(first.back().seq);
  ASSERT_EQ(after.size(), 5U);
  std::multiset<int64_t> removed;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(after[static_cast<size_t>(i)].op, ChunkChange::Op::kRemove);
    removed.insert(after[static_cast<size_t>(i)].chunk_seq);
  }
  EXPECT_EQ(removed, std::multiset<int64_t>(old_seqs.begin(), old_seqs.end()));
  for (int i = 3; i < 5; ++i) {
    EXPECT_EQ(after[static_cast<size_t>(i)].op, ChunkChange::Op::kAdd);
    EXPECT_GT(after[static_cast<size_t>(i)].chunk_seq, old_seqs.back());  // labels never reused
  }
  for (size_t i = 1; i < after.size(); ++i) EXPECT_GT(after[i].seq, after[i - 1].seq);
  EXPECT_EQ(*this->kb().last_change(), after.back().seq);

  auto chunks = this->kb().base_chunks(base.id, 0, 10);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 2U);
  EXPECT_EQ((*chunks)[0].text, "new 0");
  EXPECT_EQ(this->kb().base_chunks(base.id, (*chunks)[0].seq, 10)->size(), 1U);
}

TYPED_TEST(KnowledgeConformance, DeletesRemoveChunksFromTheLogsPointOfView) {
  auto base = this->make_base();
  auto file = this->make_file("content");
  auto doc = this->add(base, file).document;
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc, 2, "a"), this->now()).ok());
  auto other = this->add(base, this->make_file("other")).document;
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(other, 1, "b"), this->now()).ok());
  const int64_t mark = *this->kb().last_change();

  // Attributes change: one "document" entry.
  auto updated =
      this->kb().update_document(other.id, "renamed.md", std::string(R"({"v":2})"), this->now());
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "renamed.md");
  EXPECT_EQ(updated->attributes_json, R"({"v":2})");
  // Deleting the file deletes the document made from it.
  ASSERT_TRUE(this->kb().delete_file(file.id).ok());
  EXPECT_TRUE(FailsWith(this->kb().get_document(doc.id), ErrorCode::kNotFound));
  ASSERT_TRUE(this->kb().delete_document(other.id).ok());
  EXPECT_TRUE(
      FailsWith(this->kb().delete_document(other.id), ErrorCode::kNotFound, "document_not_found"));
  auto changes = this->all_changes(mark);
  ASSERT_EQ(changes.size(), 4U);
  EXPECT_EQ(changes[0].op, ChunkChange::Op::kDocument);
  EXPECT_EQ(changes[0].document_id, other.id);
  EXPECT_EQ(changes[1].op, ChunkChange::Op::kRemove);
  EXPECT_EQ(changes[1].document_id, doc.id);
  EXPECT_EQ(changes[2].op, ChunkChange::Op::kRemove);
  EXPECT_EQ(changes[3].op, ChunkChange::Op::kRemove);
  EXPECT_EQ(changes[3].document_id, other.id);
  EXPECT_TRUE(this->kb().base_chunks(base.id, 0, 10)->empty());

  auto doc3 = this->add(base, this->make_file("third")).document;
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc3, 1, "c"), this->now()).ok());
  ASSERT_TRUE(this->kb().delete_base(base.id).ok());
  EXPECT_TRUE(
      FailsWith(this->kb().get_base(base.id), ErrorCode::kNotFound, "knowledge_base_not_found"));
  EXPECT_TRUE(FailsWith(this->kb().get_document(doc3.id), ErrorCode::kNotFound));
  EXPECT_EQ(this->all_changes().back().op, ChunkChange::Op::kDropBase);
  EXPECT_TRUE(this->kb().indexed_documents(base.id)->empty());
}

TYPED_TEST(KnowledgeConformance, ConcurrentCommitsLeaveALogInCommitOrder) {
  // Eight documents committed from eight threads: every chunk appears once as an add, in an
  // order a reader can follow without ever seeing a gap close behind it.
  auto base = this->make_base();
  std::vector<KnowledgeDocument> docs;
  for (int i = 0; i < 8; ++i)
    docs.push_back(this->add(base, this->make_file("doc" + std::to_string(i))).document);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 3; ++round) {
        auto r = this->kb().commit_chunks(this->chunks_for(docs[static_cast<size_t>(i)], 5, "t"),
                                          this->now());
        EXPECT_TRUE(r.ok()) << r.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> live;
  const auto changes = this->all_changes();
  for (const auto& c : changes) {
    if (c.op == ChunkChange::Op::kAdd) {
      EXPECT_TRUE(live.insert(c.chunk_seq).second);
    } else if (c.op == ChunkChange::Op::kRemove) {
      EXPECT_EQ(live.erase(c.chunk_seq), 1U);
    }
  }
  EXPECT_EQ(live.size(), 40U);
  std::set<int64_t> stored;
  auto chunks = this->kb().base_chunks(base.id, 0, 1000);
  ASSERT_TRUE(chunks.ok());
  for (const auto& c : *chunks) stored.insert(c.seq);
  EXPECT_EQ(live, stored);
  auto identity = this->kb().database_identity();
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->size(), 32U);
}

TYPED_TEST(KnowledgeConformance, AChunkCommitChecksTheEmbedderAndSetsAnUnknownDimension) {
  NewKnowledgeBase n;
  n.tenant_id = "t1";
  n.name = "Remote";
  n.embedder = "openai/text-embedding-3-small";
  n.dimension = 0;  // learnt from the first vectors
  auto base = this->kb().create_base(n, this->now());
  ASSERT_TRUE(base.ok());
  auto doc = this->add(*base, this->make_file("remote doc")).document;
  auto commit = this->chunks_for(doc, 2, "alpha");
  commit.embedder = "parley-hashed-v1";
  EXPECT_TRUE(FailsWith(this->kb().commit_chunks(commit, this->now()), ErrorCode::kConflict,
                        "embedder_changed"));
  commit.embedder = n.embedder;
  commit.chunks[1].vector.push_back(1.0F);  // vectors of two sizes
  EXPECT_TRUE(FailsWith(this->kb().commit_chunks(commit, this->now()), ErrorCode::kInvalidArgument,
                        "dimension_mismatch"));
  commit.chunks[1].vector.pop_back();
  ASSERT_TRUE(this->kb().commit_chunks(commit, this->now()).ok());
  EXPECT_EQ(this->kb().get_base(base->id)->dimension, 4);
  // From now on vectors of another size are refused.
  auto other = this->add(*base, this->make_file("remote doc 2")).document;
  auto wide = this->chunks_for(other, 1, "beta");
  wide.chunks[0].vector.push_back(0.0F);
  EXPECT_TRUE(FailsWith(this->kb().commit_chunks(wide, this->now()), ErrorCode::kInvalidArgument,
                        "dimension_mismatch"));
}

TYPED_TEST(KnowledgeConformance, ReembeddingSwapsEveryVectorAtOnceAndLogsIt) {
  auto base = this->make_base();
  auto doc = this->add(base, this->make_file("to re-embed")).document;
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc, 3, "gamma"), this->now()).ok());
  const int64_t mark = this->kb().last_change().value();

  auto begun = this->kb().begin_reembed(base.id, "remote-embed", this->now());
  ASSERT_TRUE(begun.ok());
  EXPECT_EQ(begun->embedder, "parley-hashed-v1");
  EXPECT_EQ(begun->next_embedder, "remote-embed");
  auto pending = this->kb().chunks_to_reembed(base.id, 0, 100);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 3U);
  EXPECT_TRUE(pending->front().vector.empty());
  EXPECT_EQ(pending->front().text, "gamma 0");

  // Vectors for a next embedder that is no longer the base's are refused.
  std::vector<std::pair<int64_t, std::vector<float>>> next;
  for (const auto& c : *pending) next.emplace_back(c.seq, std::vector<float>{1.0F, 0.0F});
  EXPECT_TRUE(FailsWith(this->kb().store_next_vectors(base.id, "other", next), ErrorCode::kConflict,
                        "embedder_changed"));
  // Two of three stored: the swap is refused, and the current vectors still serve.
  const std::vector<std::pair<int64_t, std::vector<float>>> first_two(next.begin(),
                                                                      next.begin() + 2);
  ASSERT_TRUE(this->kb().store_next_vectors(base.id, "remote-embed", first_two).ok());
  EXPECT_EQ(this->kb().chunks_to_reembed(base.id, 0, 100)->size(), 1U);
  EXPECT_TRUE(FailsWith(this->kb().finish_reembed(base.id, "remote-embed", 2, this->now()),
                        ErrorCode::kConflict, "reembed_incomplete"));
  EXPECT_EQ(this->kb().base_chunks(base.id, 0, 10)->front().vector.size(), 4U);

  // A document ingested meanwhile (with the current embedder) needs its vectors too.
  auto late = this->add(base, this->make_file("late doc")).document;
  auto late_commit = this->chunks_for(late, 1, "late");
  late_commit.embedder = "parley-hashed-v1";
  ASSERT_TRUE(this->kb().commit_chunks(late_commit, this->now()).ok());
  auto missing = this->kb().chunks_to_reembed(base.id, 0, 100);
  ASSERT_TRUE(missing.ok());
  ASSERT_EQ(missing->size(), 2U);
  std::vector<std::pair<int64_t, std::vector<float>>> rest;
  for (const auto& c : *missing) rest.emplace_back(c.seq, std::vector<float>{0.0F, 1.0F});
  ASSERT_TRUE(this->kb().store_next_vectors(base.id, "remote-embed", rest).ok());

  auto finished = this->kb().finish_reembed(base.id, "remote-embed", 2, this->now());
  ASSERT_TRUE(finished.ok()) << finished.error().message;
  EXPECT_EQ(finished->embedder, "remote-embed");
  EXPECT_EQ(finished->dimension, 2);
  EXPECT_EQ(finished->next_embedder, "");
  auto swapped = this->kb().base_chunks(base.id, 0, 10);
  ASSERT_TRUE(swapped.ok());
  ASSERT_EQ(swapped->size(), 4U);
  for (const auto& c : *swapped) EXPECT_EQ(c.vector.size(), 2U) << c.text;
  auto changes = this->all_changes(mark);
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes.back().op, ChunkChange::Op::kVectors);
  EXPECT_EQ(changes.back().kb_id, base.id);
  // Ingestion that embedded with the old embedder is refused now.
  auto stale = this->add(base, this->make_file("stale doc")).document;
  auto stale_commit = this->chunks_for(stale, 1, "stale");
  stale_commit.embedder = "parley-hashed-v1";
  EXPECT_TRUE(FailsWith(this->kb().commit_chunks(stale_commit, this->now()), ErrorCode::kConflict,
                        "embedder_changed"));
  EXPECT_TRUE(FailsWith(this->kb().finish_reembed(base.id, "remote-embed", 2, this->now()),
                        ErrorCode::kConflict, "embedder_changed"));
}

TYPED_TEST(KnowledgeConformance, NamingTheCurrentEmbedderCancelsAReembedding) {
  auto base = this->make_base();
  auto doc = this->add(base, this->make_file("cancel me")).document;
  ASSERT_TRUE(this->kb().commit_chunks(this->chunks_for(doc, 1, "delta"), this->now()).ok());
  ASSERT_TRUE(this->kb().begin_reembed(base.id, "remote-embed", this->now()).ok());
  auto pending = this->kb().chunks_to_reembed(base.id, 0, 10);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1U);
  const int64_t seq = pending->front().seq;
  ASSERT_TRUE(this->kb()
                  .store_next_vectors(base.id, "remote-embed", {{seq, std::vector<float>{1.0F}}})
                  .ok());
  auto cancelled = this->kb().begin_reembed(base.id, "parley-hashed-v1", this->now());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->next_embedder, "");
  // The half-made vectors are forgotten: a new re-embedding starts from nothing.
  ASSERT_TRUE(this->kb().begin_reembed(base.id, "remote-embed", this->now()).ok());
  EXPECT_EQ(this->kb().chunks_to_reembed(base.id, 0, 10)->size(), 1U);
  EXPECT_TRUE(FailsWith(this->kb().begin_reembed("kb_missing", "x", this->now()),
                        ErrorCode::kNotFound, "knowledge_base_not_found"));
}

}  // namespace
