// The schema history. Append new migrations at the end; never edit one that has shipped.
#include "store/sqlite/migrations.hpp"

namespace parley::store::sqlite {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations{
      {1, "create_sessions", R"sql(
        CREATE TABLE sessions (
          seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order, for cursors
          id          TEXT    NOT NULL UNIQUE,
          user_id     TEXT    NOT NULL,
          assistant   TEXT    NOT NULL,
          title       TEXT,
          metadata    TEXT    NOT NULL DEFAULT '{}',
          created_at  INTEGER NOT NULL,                   -- unix milliseconds
          updated_at  INTEGER NOT NULL
        );
        CREATE INDEX sessions_by_user ON sessions (user_id, seq);
      )sql"},
      {2, "create_messages_and_usage", R"sql(
        CREATE TABLE messages (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          id             TEXT    NOT NULL UNIQUE,
          session_id     TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
          role           TEXT    NOT NULL,
          content        TEXT    NOT NULL DEFAULT '',
          tool_calls     TEXT,                               -- JSON array
          status         TEXT    NOT NULL,                   -- complete | partial | pending
          model          TEXT,
          provider       TEXT,
          input_tokens   INTEGER NOT NULL DEFAULT 0,
          output_tokens  INTEGER NOT NULL DEFAULT 0,
          cost_usd       REAL    NOT NULL DEFAULT 0,
          latency_ms     INTEGER,
          ttft_ms        INTEGER,
          finish_reason  TEXT,
          request_id     TEXT,
          created_at     INTEGER NOT NULL,
          completed_at   INTEGER
        );
        CREATE INDEX messages_by_session ON messages (session_id, seq);
        CREATE INDEX messages_pending ON messages (status) WHERE status = 'pending';
        CREATE TABLE usage_records (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          at             INTEGER NOT NULL,                   -- unix milliseconds
          day            TEXT    NOT NULL,                   -- YYYY-MM-DD, UTC
          user_id        TEXT    NOT NULL,
          session_id     TEXT,
          source         TEXT    NOT NULL,                   -- chat | api
          provider       TEXT    NOT NULL,
          model          TEXT    NOT NULL,
          input_tokens   INTEGER NOT NULL,
          output_tokens  INTEGER NOT NULL,
          cost_usd       REAL    NOT NULL,
          status         TEXT    NOT NULL,
          request_id     TEXT,                               -- the first, when merged
          requests       INTEGER NOT NULL DEFAULT 1          -- calls this row stands for
        );
        CREATE INDEX usage_by_time ON usage_records (at);
        CREATE INDEX usage_by_user ON usage_records (user_id, at);
      )sql"},
      {3, "create_access_tables", R"sql(
        ALTER TABLE sessions ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default';
        CREATE INDEX sessions_by_tenant_user ON sessions (tenant_id, user_id, seq);
        ALTER TABLE usage_records ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE usage_records ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
        CREATE INDEX usage_by_tenant_user ON usage_records (tenant_id, user_id, at);
        CREATE INDEX usage_by_key ON usage_records (key_id, at);
        CREATE TABLE api_keys (
          seq          INTEGER PRIMARY KEY AUTOINCREMENT,
          id           TEXT    NOT NULL UNIQUE,
          name         TEXT    NOT NULL DEFAULT '',
          scope        TEXT    NOT NULL,                   -- admin | service | user
          tenant_id    TEXT    NOT NULL,
          user_id      TEXT    NOT NULL DEFAULT '',
          secret_hash  TEXT    NOT NULL,                   -- hex SHA-256 of the secret
          limits       TEXT    NOT NULL DEFAULT '{}',
          created_by   TEXT    NOT NULL DEFAULT '',
          created_at   INTEGER NOT NULL,
          expires_at   INTEGER,
          revoked_at   INTEGER
        );
        CREATE TABLE idempotency_keys (
          key           TEXT    PRIMARY KEY,
          fingerprint   TEXT    NOT NULL,
          status        INTEGER NOT NULL,
          content_type  TEXT    NOT NULL,
          body          BLOB    NOT NULL,
          created_at    INTEGER NOT NULL,
          expires_at    INTEGER NOT NULL,
          tenant_id     TEXT    NOT NULL,                  -- whose request it was (erasure)
          user_id       TEXT    NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX idempotency_by_expiry ON idempotency_keys (expires_at);
        CREATE INDEX idempotency_by_user ON idempotency_keys (tenant_id, user_id);
        CREATE TABLE moderation_log (
          seq          INTEGER PRIMARY KEY AUTOINCREMENT,
          id           TEXT    NOT NULL UNIQUE,
          at           INTEGER NOT NULL,
          tenant_id    TEXT    NOT NULL,
          user_id      TEXT    NOT NULL,
          session_id   TEXT,
          request_id   TEXT,
          stage        TEXT    NOT NULL,
          action       TEXT    NOT NULL,
          source       TEXT    NOT NULL,
          findings     TEXT    NOT NULL
        );
        CREATE INDEX moderation_by_user ON moderation_log (tenant_id, user_id, seq);
      )sql"},
      {4, "replica_liveness", R"sql(
        ALTER TABLE messages ADD COLUMN owner TEXT;                -- the replica running it
        CREATE INDEX messages_pending_by_owner ON messages (owner) WHERE status = 'pending';
        CREATE TABLE replicas (
          id          TEXT    PRIMARY KEY,
          host        TEXT    NOT NULL,
          pid         INTEGER NOT NULL,
          started_at  INTEGER NOT NULL,
          seen_at     INTEGER NOT NULL                            -- its last heartbeat
        ) WITHOUT ROWID;
      )sql"},
      {5, "create_jobs", R"sql(
        CREATE TABLE jobs (
          id            TEXT    PRIMARY KEY,
          kind          TEXT    NOT NULL,
          payload       TEXT    NOT NULL DEFAULT '{}',
          state         TEXT    NOT NULL,                 -- queued | running | done | dead
          attempts      INTEGER NOT NULL DEFAULT 0,
          max_attempts  INTEGER NOT NULL,
          run_at        INTEGER NOT NULL,                 -- not before
          locked_by     TEXT,
          locked_until  INTEGER,
          last_error    TEXT    NOT NULL DEFAULT '',
          created_at    INTEGER NOT NULL,
          updated_at    INTEGER NOT NULL,
          finished_at   INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX jobs_due ON jobs (state, run_at);
      )sql"},
      {6, "usage_rollups_and_job_results", R"sql(
        ALTER TABLE jobs ADD COLUMN result TEXT NOT NULL DEFAULT '{}';  -- what a job reports
        -- Daily totals of usage_records for whole UTC days before usage_rollup.rolled_until:
        -- usage reports read them instead of every record (the usage.rollup job).
        CREATE TABLE usage_daily (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          day            TEXT    NOT NULL,                   -- YYYY-MM-DD, UTC
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL,
          key_id         TEXT    NOT NULL,
          source         TEXT    NOT NULL,
          provider       TEXT    NOT NULL,
          model          TEXT    NOT NULL,
          requests       INTEGER NOT NULL,
          input_tokens   INTEGER NOT NULL,
          output_tokens  INTEGER NOT NULL,
          cost_usd       REAL    NOT NULL,
          UNIQUE (day, tenant_id, user_id, key_id, source, provider, model)
        );
        CREATE INDEX usage_daily_by_user ON usage_daily (tenant_id, user_id, day);
        CREATE TABLE usage_rollup (
          name           TEXT    PRIMARY KEY,                -- 'usage_daily'
          rolled_until   INTEGER NOT NULL                    -- a UTC midnight, unix ms
        ) WITHOUT ROWID;
      )sql"},
      {7, "knowledge_bases", R"sql(
        -- A random id per database: derived search indexes record it, so an index built from
        -- one database is never used with another (not moved by copy-data).
        CREATE TABLE database_identity (id TEXT NOT NULL);
        INSERT INTO database_identity (id) VALUES (lower(hex(randomblob(16))));
        -- Uploaded bytes, once per tenant and content hash.
        CREATE TABLE file_contents (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          tenant_id      TEXT    NOT NULL,
          sha256         TEXT    NOT NULL,
          content        BLOB    NOT NULL,
          created_at     INTEGER NOT NULL,
          UNIQUE (tenant_id, sha256)
        );
        CREATE TABLE files (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          id             TEXT    NOT NULL UNIQUE,
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL DEFAULT '',
          filename       TEXT    NOT NULL,
          purpose        TEXT    NOT NULL,
          bytes          INTEGER NOT NULL,
          sha256         TEXT    NOT NULL,
          created_at     INTEGER NOT NULL
        );
        CREATE INDEX files_by_tenant ON files (tenant_id, seq);
        CREATE INDEX files_by_content ON files (tenant_id, sha256);
        CREATE TABLE knowledge_bases (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          id             TEXT    NOT NULL UNIQUE,
          tenant_id      TEXT    NOT NULL,
          name           TEXT    NOT NULL,
          description    TEXT    NOT NULL DEFAULT '',
          embedder       TEXT    NOT NULL,
          dimension      INTEGER NOT NULL,
          settings       TEXT    NOT NULL DEFAULT '{}',
          metadata       TEXT    NOT NULL DEFAULT '{}',
          created_at     INTEGER NOT NULL,
          updated_at     INTEGER NOT NULL
        );
        CREATE INDEX knowledge_bases_by_tenant ON knowledge_bases (tenant_id, seq);
        CREATE TABLE kb_documents (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          id             TEXT    NOT NULL UNIQUE,
          kb_id          TEXT    NOT NULL,
          tenant_id      TEXT    NOT NULL,
          file_id        TEXT    NOT NULL,
          name           TEXT    NOT NULL,
          sha256         TEXT    NOT NULL,
          bytes          INTEGER NOT NULL,
          status         TEXT    NOT NULL,                   -- queued | processing | ready | failed
          format         TEXT    NOT NULL DEFAULT '',
          error_reason   TEXT    NOT NULL DEFAULT '',
          error_message  TEXT    NOT NULL DEFAULT '',
          progress       TEXT    NOT NULL DEFAULT '{}',
          chunks         INTEGER NOT NULL DEFAULT 0,
          tokens         INTEGER NOT NULL DEFAULT 0,
          pages          INTEGER NOT NULL DEFAULT 0,
          attributes     TEXT    NOT NULL DEFAULT '{}',
          created_at     INTEGER NOT NULL,
          updated_at     INTEGER NOT NULL,
          ingested_at    INTEGER
        );
        CREATE INDEX kb_documents_by_base ON kb_documents (kb_id, seq);
        CREATE INDEX kb_documents_by_content ON kb_documents (kb_id, sha256);
        CREATE INDEX kb_documents_by_file ON kb_documents (file_id);
        -- seq is the chunk's label in the search indexes: never reused (AUTOINCREMENT).
        CREATE TABLE kb_chunks (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          kb_id          TEXT    NOT NULL,
          document_id    TEXT    NOT NULL,
          ordinal        INTEGER NOT NULL,
          text           TEXT    NOT NULL,
          section        TEXT    NOT NULL DEFAULT '',
          page           INTEGER NOT NULL DEFAULT 0,
          page_end       INTEGER NOT NULL DEFAULT 0,
          start_offset   INTEGER NOT NULL,
          end_offset     INTEGER NOT NULL,
          tokens         INTEGER NOT NULL,
          vector         BLOB                                -- float32, little-endian
        );
        CREATE INDEX kb_chunks_by_document ON kb_chunks (document_id, ordinal);
        CREATE INDEX kb_chunks_by_base ON kb_chunks (kb_id, seq);
        -- What the search indexes catch up from (not moved by copy-data).
        CREATE TABLE kb_changes (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          kb_id          TEXT    NOT NULL,
          op             TEXT    NOT NULL,                   -- add | remove | drop | document
          chunk_seq      INTEGER NOT NULL DEFAULT 0,
          document_id    TEXT    NOT NULL DEFAULT ''
        );
      )sql"},
      {8, "message_citations", R"sql(
        -- The knowledge-base passages a reply cited: a JSON array, NULL when none.
        ALTER TABLE messages ADD COLUMN citations TEXT;
      )sql"},
      {9, "knowledge_reembedding", R"sql(
        -- A base's embedder while its chunks are re-embedded ('' when none), and each chunk's
        -- vector from it; the current vectors serve searches until all are made.
        ALTER TABLE knowledge_bases ADD COLUMN next_embedder TEXT NOT NULL DEFAULT '';
        ALTER TABLE kb_chunks ADD COLUMN next_vector BLOB;
      )sql"},
      {10, "job_unique_keys", R"sql(
        -- At most one live (queued or running) job per key: work planned again before the
        -- last plan ran (a session's summary, a reply's memories) is not queued twice.
        ALTER TABLE jobs ADD COLUMN unique_key TEXT;
        CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
          WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');
      )sql"},
      {11, "memories", R"sql(
        -- What the assistant remembers about each user (store/memory.hpp). `seq` is the
        -- memory's label in the recall index and is never reused.
        CREATE TABLE memories (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          id             TEXT    NOT NULL UNIQUE,                -- "mem_..."
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL,
          assistant      TEXT    NOT NULL DEFAULT '',            -- '' = every assistant
          session_id     TEXT    NOT NULL DEFAULT '',            -- '' = every session
          text           TEXT    NOT NULL,
          kind           TEXT    NOT NULL,
          slot           TEXT    NOT NULL DEFAULT '',
          importance     REAL    NOT NULL DEFAULT 0.5,
          retention      TEXT    NOT NULL,
          status         TEXT    NOT NULL DEFAULT 'active',      -- active | retired
          superseded_by  TEXT,
          hash           TEXT    NOT NULL,                       -- of the normalised text
          source         TEXT    NOT NULL DEFAULT '[]',          -- message ids
          metadata       TEXT    NOT NULL DEFAULT '{}',
          embedder       TEXT    NOT NULL DEFAULT '',
          vector         BLOB,                                   -- float32, little-endian
          created_at     INTEGER NOT NULL,
          updated_at     INTEGER NOT NULL,
          last_used_at   INTEGER,
          invalid_at     INTEGER,
          expires_at     INTEGER                                 -- NULL = never
        );
        CREATE INDEX memories_by_user ON memories (tenant_id, user_id, seq);
        -- One active memory per text and scope: the same fact said ten times is one memory.
        CREATE UNIQUE INDEX memories_one_active_text
          ON memories (tenant_id, user_id, assistant, session_id, hash) WHERE status = 'active';
        CREATE INDEX memories_by_slot ON memories (tenant_id, user_id, slot)
          WHERE slot <> '' AND status = 'active';
        CREATE INDEX memories_expiring ON memories (expires_at) WHERE expires_at IS NOT NULL;
        -- Every change to a memory; a deleted memory's entries keep their events, not texts.
        CREATE TABLE memory_history (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          id             TEXT    NOT NULL UNIQUE,                -- "mh_..."
          memory_id      TEXT    NOT NULL,
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL,
          event          TEXT    NOT NULL,                       -- ADD | UPDATE | RETIRE | ...
          old_text       TEXT,
          new_text       TEXT,
          actor          TEXT    NOT NULL,
          reason         TEXT    NOT NULL DEFAULT '',
          source         TEXT    NOT NULL DEFAULT '[]',
          job_id         TEXT    NOT NULL DEFAULT '',
          created_at     INTEGER NOT NULL
        );
        CREATE INDEX memory_history_by_memory ON memory_history (memory_id, seq);
        CREATE INDEX memory_history_by_user ON memory_history (tenant_id, user_id, seq);
        CREATE INDEX memory_history_by_job ON memory_history (job_id) WHERE job_id <> '';
        -- What the recall index catches up from (not moved by copy-data).
        CREATE TABLE memory_changes (
          seq            INTEGER PRIMARY KEY AUTOINCREMENT,
          tenant_id      TEXT    NOT NULL,
          op             TEXT    NOT NULL,                       -- put | remove | erase_user
          memory_seq     INTEGER NOT NULL DEFAULT 0,
          user_id        TEXT    NOT NULL DEFAULT ''
        );
        -- The memories a reply's prompt used: a JSON array, NULL when none.
        ALTER TABLE messages ADD COLUMN memories TEXT;
      )sql"},
      {12, "session_summaries", R"sql(
        -- Rolling summaries of long sessions (summary/): each covers the session's messages
        -- up to through_seq; the newest is the one prompts use.
        CREATE TABLE session_summaries (
          seq              INTEGER PRIMARY KEY AUTOINCREMENT,
          id               TEXT    NOT NULL UNIQUE,             -- "sum_..."
          session_id       TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
          text             TEXT    NOT NULL,
          first_message_id TEXT    NOT NULL,
          last_message_id  TEXT    NOT NULL,
          through_seq      INTEGER NOT NULL,
          messages         INTEGER NOT NULL,
          tokens           INTEGER NOT NULL,
          method           TEXT    NOT NULL,                    -- model | extractive
          model            TEXT    NOT NULL DEFAULT '',
          created_at       INTEGER NOT NULL
        );
        CREATE INDEX session_summaries_by_session ON session_summaries (session_id, seq);
      )sql"},
      {13, "message_intents", R"sql(
        -- What a user's message was classified as asking for (intent/), and how surely.
        ALTER TABLE messages ADD COLUMN intent TEXT;
        ALTER TABLE messages ADD COLUMN intent_confidence REAL;
      )sql"},
      {14, "knowledge_base_owners", R"sql(
        -- The end user whose own base it is ('' = the tenant's, shared by its users).
        ALTER TABLE knowledge_bases ADD COLUMN owner_user_id TEXT NOT NULL DEFAULT '';
        CREATE INDEX knowledge_bases_by_owner ON knowledge_bases (tenant_id, owner_user_id)
          WHERE owner_user_id <> '';
      )sql"},
  };
  return kMigrations;
}

int latest_schema_version() { return migrations().empty() ? 0 : migrations().back().version; }

Result<int> current_schema_version(Connection& db) {
  auto exists =
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
  if (!exists) return std::move(exists).error();
  int rc = exists->step();
  if (rc == SQLITE_DONE) return 0;  // no migration has ever run here
  if (rc != SQLITE_ROW) return db.last_error("read schema version");
  auto stmt = db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!stmt) return std::move(stmt).error();
  if (stmt->step() != SQLITE_ROW) return db.last_error("read schema version");
  return static_cast<int>(stmt->column_int(0));
}

Result<MigrationReport> migrate(Connection& db, int64_t now_ms) {
  if (auto r = db.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "  version INTEGER PRIMARY KEY,"
                       "  name TEXT NOT NULL,"
                       "  applied_at INTEGER NOT NULL)");
      !r)
    return std::move(r).error();

  MigrationReport report;
  auto before = current_schema_version(db);
  if (!before) return std::move(before).error();
  report.from_version = report.to_version = *before;
  if (*before > latest_schema_version()) {
    return Error::unavailable("database schema version " + std::to_string(*before) +
                                  " is newer than this build of Parley supports (" +
                                  std::to_string(latest_schema_version()) + "); upgrade Parley",
                              "schema_too_new");
  }

  for (const auto& m : migrations()) {
    if (m.version <= report.to_version) continue;
    if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return std::move(r).error();
    // Another process may have migrated while we waited for the lock.
    auto now_version = current_schema_version(db);
    if (!now_version) {
      (void)db.exec("ROLLBACK");
      return std::move(now_version).error();
    }
    if (*now_version >= m.version) {
      (void)db.exec("ROLLBACK");
      report.to_version = *now_version;
      continue;
    }
    auto applied = db.exec(m.sql);
    if (applied) {
      auto record =
          db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      if (!record) {
        applied = std::move(record).error();
      } else {
        record->bind(1, static_cast<int64_t>(m.version)).bind(2, m.name).bind(3, now_ms);
        if (record->step() != SQLITE_DONE) applied = db.last_error("record migration");
      }
    }
    if (applied) applied = db.exec("COMMIT");
    if (!applied) {
      (void)db.exec("ROLLBACK");
      Error e = std::move(applied).error();
      e.message =
          "migration " + std::to_string(m.version) + " (" + m.name + ") failed: " + e.message;
      return e;
    }
    report.to_version = m.version;
    report.applied.push_back(std::to_string(m.version) + " " + m.name);
  }
  return report;
}

}  // namespace parley::store::sqlite
