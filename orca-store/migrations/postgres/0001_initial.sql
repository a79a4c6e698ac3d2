-- Orca's PostgreSQL schema, version 1.
--
-- Every table lives in the schema the store was configured with (its `search_path`).
-- `orca_meta` marks the schema as Orca's and records the schema version; a node refuses to
-- start on a schema whose version is newer than the one it knows.

CREATE TABLE orca_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO orca_meta (key, value) VALUES ('marker', 'orca'), ('schema_version', '1');

CREATE TABLE systems (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    hostname          text NOT NULL,
    port              integer NOT NULL,
    system_type       text NOT NULL,
    username          text NOT NULL,
    credential        text,
    tags              text[] NOT NULL,
    active            boolean NOT NULL,
    health_status     text NOT NULL,
    health_checked_at timestamptz,
    health_latency_ms bigint,
    health_reason     text,
    host_key_policy   text NOT NULL,
    options           jsonb NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT systems_name_key UNIQUE (name)
);
CREATE INDEX systems_tags_idx ON systems USING gin (tags);

CREATE TABLE host_keys (
    id          uuid PRIMARY KEY,
    system_id   uuid NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    algorithm   text NOT NULL,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX host_keys_system_idx ON host_keys (system_id, created_at);

-- A job keeps the number of its executions in each state, updated in the same transaction as
-- every execution transition, so its status never needs a scan of its executions.
CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    command       text NOT NULL,
    created_by    text NOT NULL,
    created_by_id uuid,
    targets       jsonb NOT NULL,
    options       jsonb NOT NULL,
    concurrency   integer,
    requeue_lost  boolean NOT NULL,
    status        text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    n_pending     bigint NOT NULL DEFAULT 0,
    n_running     bigint NOT NULL DEFAULT 0,
    n_completed   bigint NOT NULL DEFAULT 0,
    n_failed      bigint NOT NULL DEFAULT 0,
    n_timeout     bigint NOT NULL DEFAULT 0,
    n_cancelled   bigint NOT NULL DEFAULT 0,
    n_lost        bigint NOT NULL DEFAULT 0
);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_idx ON jobs (status, created_at DESC, id DESC);

CREATE TABLE executions (
    id               uuid PRIMARY KEY,
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- No foreign key: past executions keep the id of a deleted system.
    system_id        uuid NOT NULL,
    attempt          integer NOT NULL,
    status           text NOT NULL CHECK (status IN
                         ('pending', 'running', 'completed', 'failed', 'timeout', 'cancelled', 'lost')),
    created_at       timestamptz NOT NULL,
    not_before       timestamptz NOT NULL,
    started_at       timestamptz,
    completed_at     timestamptz,
    exit_code        integer,
    signal           text,
    error            text,
    lease_owner      text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    output_bytes     bigint NOT NULL DEFAULT 0,
    output_dropped   bigint NOT NULL DEFAULT 0,
    -- The seq the next output chunk must have.
    next_seq         bigint NOT NULL DEFAULT 0
);
-- The queue: pending work, oldest first.
CREATE INDEX executions_pending_idx ON executions (created_at, id) WHERE status = 'pending';
-- The reaper: running work by lease expiry.
CREATE INDEX executions_lease_idx ON executions (lease_expires_at) WHERE status = 'running';
CREATE INDEX executions_job_idx ON executions (job_id, created_at, id);
-- Per-system limits and the "system still in use" check.
CREATE INDEX executions_system_active_idx ON executions (system_id, status)
    WHERE status IN ('pending', 'running');

-- Terminal states never change; every transition follows ExecutionStatus::can_become.
CREATE FUNCTION orca_execution_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ((OLD.status = 'pending' AND NEW.status IN ('running', 'cancelled'))
         OR (OLD.status = 'running' AND NEW.status IN
                ('completed', 'failed', 'timeout', 'cancelled', 'lost', 'pending'))) THEN
        RAISE EXCEPTION 'execution % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'OR001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER executions_transition
    BEFORE UPDATE OF status ON executions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION orca_execution_transition();

CREATE TABLE output_chunks (
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    stream       text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    data         bytea NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE audit (
    id            uuid PRIMARY KEY,
    at            timestamptz NOT NULL,
    event_type    text NOT NULL,
    actor         text NOT NULL,
    actor_id      uuid,
    resource_type text NOT NULL,
    resource_id   text,
    action        text NOT NULL,
    outcome       text NOT NULL,
    details       jsonb NOT NULL
);
CREATE INDEX audit_at_idx ON audit (at DESC, id DESC);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL,
    role          text NOT NULL,
    password_hash text,
    active        boolean NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE grants (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pos     integer NOT NULL,
    scope   jsonb NOT NULL,
    PRIMARY KEY (user_id, pos)
);

CREATE TABLE tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    family     uuid,
    hash       text NOT NULL,
    name       text,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    used_at    timestamptz,
    revoked_at timestamptz,
    CONSTRAINT tokens_hash_key UNIQUE (hash)
);
CREATE INDEX tokens_user_idx ON tokens (user_id, created_at);
CREATE INDEX tokens_family_idx ON tokens (family) WHERE family IS NOT NULL;

CREATE TABLE rate_limits (
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         bigint NOT NULL,
    PRIMARY KEY (key, window_start)
);
