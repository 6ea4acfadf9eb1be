// The PostgreSQL schema history. Append new migrations at the end, with the same version and
// name as SQLite's; never edit one that has shipped.
#include "store/postgres/migrations.hpp"

namespace parley::store::postgres {
namespace {

// pg_advisory_lock's key for "Parley schema migrations"; any fixed number unlikely to be
// used by another application sharing the database.
constexpr const char* kMigrationLock = "SELECT pg_advisory_lock(7261001120001)";
constexpr const char* kMigrationUnlock = "SELECT pg_advisory_unlock(7261001120001)";

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations{
      {1, "create_sessions", R"sql(
        CREATE TABLE sessions (
          seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- order, for cursors
          id          TEXT   NOT NULL UNIQUE,
          user_id     TEXT   NOT NULL,
          assistant   TEXT   NOT NULL,
          title       TEXT,
          metadata    TEXT   NOT NULL DEFAULT '{}',
          created_at  BIGINT NOT NULL,                                  -- unix milliseconds
          updated_at  BIGINT NOT NULL
        );
        CREATE INDEX sessions_by_user ON sessions (user_id, seq);
      )sql"},
      {2, "create_messages_and_usage", R"sql(
        CREATE TABLE messages (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id             TEXT    NOT NULL UNIQUE,
          session_id     TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
          role           TEXT    NOT NULL,
          content        TEXT    NOT NULL DEFAULT '',
          tool_calls     TEXT,
          status         TEXT    NOT NULL,
          model          TEXT,
          provider       TEXT,
          input_tokens   BIGINT  NOT NULL DEFAULT 0,
          output_tokens  BIGINT  NOT NULL DEFAULT 0,
          cost_usd       DOUBLE PRECISION NOT NULL DEFAULT 0,
          latency_ms     BIGINT,
          ttft_ms        BIGINT,
          finish_reason  TEXT,
          request_id     TEXT,
          created_at     BIGINT  NOT NULL,
          completed_at   BIGINT
        );
        CREATE INDEX messages_by_session ON messages (session_id, seq);
        CREATE INDEX messages_pending ON messages (status) WHERE status = 'pending';
        CREATE TABLE usage_records (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          at             BIGINT  NOT NULL,
          day            TEXT    NOT NULL,
          user_id        TEXT    NOT NULL,
          session_id     TEXT,
          source         TEXT    NOT NULL,
          provider       TEXT    NOT NULL,
          model          TEXT    NOT NULL,
          input_tokens   BIGINT  NOT NULL,
          output_tokens  BIGINT  NOT NULL,
          cost_usd       DOUBLE PRECISION NOT NULL,
          status         TEXT    NOT NULL,
          request_id     TEXT,
          requests       BIGINT  NOT NULL DEFAULT 1
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
          seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id           TEXT   NOT NULL UNIQUE,
          name         TEXT   NOT NULL DEFAULT '',
          scope        TEXT   NOT NULL,
          tenant_id    TEXT   NOT NULL,
          user_id      TEXT   NOT NULL DEFAULT '',
          secret_hash  TEXT   NOT NULL,
          limits       TEXT   NOT NULL DEFAULT '{}',
          created_by   TEXT   NOT NULL DEFAULT '',
          created_at   BIGINT NOT NULL,
          expires_at   BIGINT,
          revoked_at   BIGINT
        );
        CREATE TABLE idempotency_keys (
          key           TEXT    PRIMARY KEY,
          fingerprint   TEXT    NOT NULL,
          status        INTEGER NOT NULL,
          content_type  TEXT    NOT NULL,
          body          BYTEA   NOT NULL,
          created_at    BIGINT  NOT NULL,
          expires_at    BIGINT  NOT NULL,
          tenant_id     TEXT    NOT NULL,
          user_id       TEXT    NOT NULL
        );
        CREATE INDEX idempotency_by_expiry ON idempotency_keys (expires_at);
        CREATE INDEX idempotency_by_user ON idempotency_keys (tenant_id, user_id);
        CREATE TABLE moderation_log (
          seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id           TEXT   NOT NULL UNIQUE,
          at           BIGINT NOT NULL,
          tenant_id    TEXT   NOT NULL,
          user_id      TEXT   NOT NULL,
          session_id   TEXT,
          request_id   TEXT,
          stage        TEXT   NOT NULL,
          action       TEXT   NOT NULL,
          source       TEXT   NOT NULL,
          findings     TEXT   NOT NULL
        );
        CREATE INDEX moderation_by_user ON moderation_log (tenant_id, user_id, seq);
      )sql"},
      {4, "replica_liveness", R"sql(
        ALTER TABLE messages ADD COLUMN owner TEXT;
        CREATE INDEX messages_pending_by_owner ON messages (owner) WHERE status = 'pending';
        CREATE TABLE replicas (
          id          TEXT   PRIMARY KEY,
          host        TEXT   NOT NULL,
          pid         BIGINT NOT NULL,
          started_at  BIGINT NOT NULL,
          seen_at     BIGINT NOT NULL
        );
      )sql"},
      {5, "create_jobs", R"sql(
        CREATE TABLE jobs (
          id            TEXT    PRIMARY KEY,
          kind          TEXT    NOT NULL,
          payload       TEXT    NOT NULL DEFAULT '{}',
          state         TEXT    NOT NULL,
          attempts      BIGINT  NOT NULL DEFAULT 0,
          max_attempts  BIGINT  NOT NULL,
          run_at        BIGINT  NOT NULL,
          locked_by     TEXT,
          locked_until  BIGINT,
          last_error    TEXT    NOT NULL DEFAULT '',
          created_at    BIGINT  NOT NULL,
          updated_at    BIGINT  NOT NULL,
          finished_at   BIGINT
        );
        CREATE INDEX jobs_due ON jobs (state, run_at);
      )sql"},
      {6, "usage_rollups_and_job_results", R"sql(
        ALTER TABLE jobs ADD COLUMN result TEXT NOT NULL DEFAULT '{}';  -- what a job reports
        -- Daily totals of usage_records for whole UTC days before usage_rollup.rolled_until:
        -- usage reports read them instead of every record (the usage.rollup job).
        CREATE TABLE usage_daily (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          day            TEXT    NOT NULL,                   -- YYYY-MM-DD, UTC
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL,
          key_id         TEXT    NOT NULL,
          source         TEXT    NOT NULL,
          provider       TEXT    NOT NULL,
          model          TEXT    NOT NULL,
          requests       BIGINT  NOT NULL,
          input_tokens   BIGINT  NOT NULL,
          output_tokens  BIGINT  NOT NULL,
          cost_usd       DOUBLE PRECISION NOT NULL,
          UNIQUE (day, tenant_id, user_id, key_id, source, provider, model)
        );
        CREATE INDEX usage_daily_by_user ON usage_daily (tenant_id, user_id, day);
        CREATE TABLE usage_rollup (
          name           TEXT    PRIMARY KEY,                -- 'usage_daily'
          rolled_until   BIGINT  NOT NULL                    -- a UTC midnight, unix ms
        );
      )sql"},
      {7, "knowledge_bases", R"sql(
        -- A random id per database: derived search indexes record it, so an index built from
        -- one database is never used with another (not moved by copy-data).
        CREATE TABLE database_identity (id TEXT NOT NULL);
        INSERT INTO database_identity (id) VALUES (md5(random()::text || clock_timestamp()::text));
        -- Uploaded bytes, once per tenant and content hash.
        CREATE TABLE file_contents (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          tenant_id      TEXT    NOT NULL,
          sha256         TEXT    NOT NULL,
          content        BYTEA   NOT NULL,
          created_at     BIGINT  NOT NULL,
          UNIQUE (tenant_id, sha256)
        );
        CREATE TABLE files (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id             TEXT    NOT NULL UNIQUE,
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL DEFAULT '',
          filename       TEXT    NOT NULL,
          purpose        TEXT    NOT NULL,
          bytes          BIGINT  NOT NULL,
          sha256         TEXT    NOT NULL,
          created_at     BIGINT  NOT NULL
        );
        CREATE INDEX files_by_tenant ON files (tenant_id, seq);
        CREATE INDEX files_by_content ON files (tenant_id, sha256);
        CREATE TABLE knowledge_bases (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id             TEXT    NOT NULL UNIQUE,
          tenant_id      TEXT    NOT NULL,
          name           TEXT    NOT NULL,
          description    TEXT    NOT NULL DEFAULT '',
          embedder       TEXT    NOT NULL,
          dimension      BIGINT  NOT NULL,
          settings       TEXT    NOT NULL DEFAULT '{}',
          metadata       TEXT    NOT NULL DEFAULT '{}',
          created_at     BIGINT  NOT NULL,
          updated_at     BIGINT  NOT NULL
        );
        CREATE INDEX knowledge_bases_by_tenant ON knowledge_bases (tenant_id, seq);
        CREATE TABLE kb_documents (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id             TEXT    NOT NULL UNIQUE,
          kb_id          TEXT    NOT NULL,
          tenant_id      TEXT    NOT NULL,
          file_id        TEXT    NOT NULL,
          name           TEXT    NOT NULL,
          sha256         TEXT    NOT NULL,
          bytes          BIGINT  NOT NULL,
          status         TEXT    NOT NULL,                   -- queued | processing | ready | failed
          format         TEXT    NOT NULL DEFAULT '',
          error_reason   TEXT    NOT NULL DEFAULT '',
          error_message  TEXT    NOT NULL DEFAULT '',
          progress       TEXT    NOT NULL DEFAULT '{}',
          chunks         BIGINT  NOT NULL DEFAULT 0,
          tokens         BIGINT  NOT NULL DEFAULT 0,
          pages          BIGINT  NOT NULL DEFAULT 0,
          attributes     TEXT    NOT NULL DEFAULT '{}',
          created_at     BIGINT  NOT NULL,
          updated_at     BIGINT  NOT NULL,
          ingested_at    BIGINT
        );
        CREATE INDEX kb_documents_by_base ON kb_documents (kb_id, seq);
        CREATE INDEX kb_documents_by_content ON kb_documents (kb_id, sha256);
        CREATE INDEX kb_documents_by_file ON kb_documents (file_id);
        -- seq is the chunk's label in the search indexes: never reused (an identity).
        CREATE TABLE kb_chunks (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          kb_id          TEXT    NOT NULL,
          document_id    TEXT    NOT NULL,
          ordinal        BIGINT  NOT NULL,
          text           TEXT    NOT NULL,
          section        TEXT    NOT NULL DEFAULT '',
          page           BIGINT  NOT NULL DEFAULT 0,
          page_end       BIGINT  NOT NULL DEFAULT 0,
          start_offset   BIGINT  NOT NULL,
          end_offset     BIGINT  NOT NULL,
          tokens         BIGINT  NOT NULL,
          vector         BYTEA                               -- float32, little-endian
        );
        CREATE INDEX kb_chunks_by_document ON kb_chunks (document_id, ordinal);
        CREATE INDEX kb_chunks_by_base ON kb_chunks (kb_id, seq);
        -- What the search indexes catch up from (not moved by copy-data).
        CREATE TABLE kb_changes (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          kb_id          TEXT    NOT NULL,
          op             TEXT    NOT NULL,                   -- add | remove | drop | document
          chunk_seq      BIGINT  NOT NULL DEFAULT 0,
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
        ALTER TABLE kb_chunks ADD COLUMN next_vector BYTEA;
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
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id             TEXT    NOT NULL UNIQUE,                -- "mem_..."
          tenant_id      TEXT    NOT NULL,
          user_id        TEXT    NOT NULL,
          assistant      TEXT    NOT NULL DEFAULT '',            -- '' = every assistant
          session_id     TEXT    NOT NULL DEFAULT '',            -- '' = every session
          text           TEXT    NOT NULL,
          kind           TEXT    NOT NULL,
          slot           TEXT    NOT NULL DEFAULT '',
          importance     DOUBLE PRECISION NOT NULL DEFAULT 0.5,
          retention      TEXT    NOT NULL,
          status         TEXT    NOT NULL DEFAULT 'active',      -- active | retired
          superseded_by  TEXT,
          hash           TEXT    NOT NULL,                       -- of the normalised text
          source         TEXT    NOT NULL DEFAULT '[]',          -- message ids
          metadata       TEXT    NOT NULL DEFAULT '{}',
          embedder       TEXT    NOT NULL DEFAULT '',
          vector         BYTEA,                                  -- float32, little-endian
          created_at     BIGINT  NOT NULL,
          updated_at     BIGINT  NOT NULL,
          last_used_at   BIGINT,
          invalid_at     BIGINT,
          expires_at     BIGINT                                  -- NULL = never
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
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
          created_at     BIGINT  NOT NULL
        );
        CREATE INDEX memory_history_by_memory ON memory_history (memory_id, seq);
        CREATE INDEX memory_history_by_user ON memory_history (tenant_id, user_id, seq);
        CREATE INDEX memory_history_by_job ON memory_history (job_id) WHERE job_id <> '';
        -- What the recall index catches up from (not moved by copy-data).
        CREATE TABLE memory_changes (
          seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          tenant_id      TEXT    NOT NULL,
          op             TEXT    NOT NULL,                       -- put | remove | erase_user
          memory_seq     BIGINT  NOT NULL DEFAULT 0,
          user_id        TEXT    NOT NULL DEFAULT ''
        );
        -- The memories a reply's prompt used: a JSON array, NULL when none.
        ALTER TABLE messages ADD COLUMN memories TEXT;
      )sql"},
      {12, "session_summaries", R"sql(
        -- Rolling summaries of long sessions (summary/): each covers the session's messages
        -- up to through_seq; the newest is the one prompts use.
        CREATE TABLE session_summaries (
          seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id               TEXT    NOT NULL UNIQUE,             -- "sum_..."
          session_id       TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
          text             TEXT    NOT NULL,
          first_message_id TEXT    NOT NULL,
          last_message_id  TEXT    NOT NULL,
          through_seq      BIGINT  NOT NULL,
          messages         BIGINT  NOT NULL,
          tokens           BIGINT  NOT NULL,
          method           TEXT    NOT NULL,                    -- model | extractive
          model            TEXT    NOT NULL DEFAULT '',
          created_at       BIGINT  NOT NULL
        );
        CREATE INDEX session_summaries_by_session ON session_summaries (session_id, seq);
      )sql"},
      {13, "message_intents", R"sql(
        -- What a user's message was classified as asking for (intent/), and how surely.
        ALTER TABLE messages ADD COLUMN intent TEXT;
        ALTER TABLE messages ADD COLUMN intent_confidence DOUBLE PRECISION;
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

Result<int> current_schema_version(Connection& conn) {
  auto exists = conn.query("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists) return std::move(exists).error();
  if (!exists->boolean(0, 0)) return 0;
  auto version = conn.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!version) return std::move(version).error();
  return static_cast<int>(version->integer(0, 0));
}

Result<MigrationReport> migrate(Connection& conn, int64_t now_ms) {
  // Held for the whole run, released however it ends (a session lock also ends with the
  // connection, so a replica killed mid-migration does not block the others forever).
  if (auto r = conn.exec(kMigrationLock); !r) return std::move(r).error();
  struct Unlock {
    Connection& c;
    ~Unlock() { (void)c.exec(kMigrationUnlock); }
  } unlock{conn};

  if (auto r = conn.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      !r)
    return std::move(r).error();
  MigrationReport report;
  auto before = current_schema_version(conn);
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
    Transaction tx(conn);
    if (!tx.begun()) return tx.begun().error();
    auto applied = conn.exec(m.sql);
    if (applied) {
      auto recorded = conn.query(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
          Params().integer(m.version).text(m.name).integer(now_ms));
      if (!recorded) applied = std::move(recorded).error();
    }
    if (applied) applied = tx.commit();
    if (!applied) {
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

}  // namespace parley::store::postgres
