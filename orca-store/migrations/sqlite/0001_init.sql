-- Orca schema, version 1 (SQLite).
-- Ids are 16-byte UUID blobs, times are integer microseconds since the Unix epoch (UTC),
-- lists and maps are JSON text.

-- Marks the file as an Orca database; `schema_version` is raised by every later migration.
CREATE TABLE orca_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO orca_meta (key, value) VALUES ('application', 'orca'), ('schema_version', '1');

CREATE TABLE systems (
    id                BLOB PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    hostname          TEXT NOT NULL,
    port              INTEGER NOT NULL,
    system_type       TEXT NOT NULL,
    username          TEXT NOT NULL,
    credential        TEXT,
    credential_key    TEXT,
    tags              TEXT NOT NULL,
    active            INTEGER NOT NULL,
    health_status     TEXT NOT NULL,
    health_checked_at INTEGER,
    health_latency_ms INTEGER,
    health_reason     TEXT,
    host_key_policy   TEXT NOT NULL,
    options           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    -- running executions on this system (all jobs), kept by the store for `per_system`
    running           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE host_keys (
    id          BLOB PRIMARY KEY NOT NULL,
    system_id   BLOB NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX host_keys_system ON host_keys (system_id);

CREATE TABLE jobs (
    id            BLOB PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    command       TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_by_id BLOB,
    targets       TEXT NOT NULL,
    options       TEXT NOT NULL,
    concurrency   INTEGER,
    requeue_lost  INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- executions per state, kept by the store so the status never needs a scan
    n_pending     INTEGER NOT NULL DEFAULT 0,
    n_running     INTEGER NOT NULL DEFAULT 0,
    n_completed   INTEGER NOT NULL DEFAULT 0,
    n_failed      INTEGER NOT NULL DEFAULT 0,
    n_timeout     INTEGER NOT NULL DEFAULT 0,
    n_cancelled   INTEGER NOT NULL DEFAULT 0,
    n_lost        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_created ON jobs (created_at, id);

-- No foreign key to systems: past executions keep the id of a deleted system.
CREATE TABLE executions (
    id               BLOB PRIMARY KEY NOT NULL,
    job_id           BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    system_id        BLOB NOT NULL,
    attempt          INTEGER NOT NULL,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    not_before       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER,
    exit_code        INTEGER,
    signal           TEXT,
    error            TEXT,
    lease_owner      TEXT,
    lease_token      BLOB,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    output_bytes     INTEGER NOT NULL DEFAULT 0,
    output_dropped   INTEGER NOT NULL DEFAULT 0,
    -- the seq the next output chunk must have
    next_seq         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_job ON executions (job_id, created_at, id);
CREATE INDEX executions_queue ON executions (created_at, id) WHERE status = 'pending';
CREATE INDEX executions_leases ON executions (lease_expires_at) WHERE status = 'running';
CREATE INDEX executions_unfinished_system ON executions (system_id)
    WHERE status IN ('pending', 'running');

CREATE TABLE output_chunks (
    execution_id BLOB NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    stream       TEXT NOT NULL,
    data         BLOB NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE audit (
    id            BLOB PRIMARY KEY NOT NULL,
    at            INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    actor         TEXT NOT NULL,
    actor_id      BLOB,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    details       TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at, id);

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT,
    active        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Kept in the order given (rowid).
CREATE TABLE grants (
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope_kind  TEXT NOT NULL,
    scope_value TEXT
);
CREATE INDEX grants_user ON grants (user_id);

CREATE TABLE tokens (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    family     BLOB,
    hash       TEXT NOT NULL UNIQUE,
    name       TEXT,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_family ON tokens (family) WHERE family IS NOT NULL;

CREATE TABLE rate_limits (
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) WITHOUT ROWID;
