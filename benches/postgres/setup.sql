-- The pgbench ceiling runs on Orca's real tables (trigger and indexes included), in a schema of
-- its own: psql -v schema=orca_pgbench -f setup.sql
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
SET search_path = :"schema";
\ir ../../orca-store/migrations/postgres/0001_initial.sql
INSERT INTO systems (id, name, hostname, port, system_type, username, tags, active,
                     health_status, host_key_policy, options, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'bench', 'localhost', 0, 'local', '', '{}',
        true, 'unknown', 'strict', '{}', now(), now());
INSERT INTO jobs (id, name, command, created_by, targets, options, requeue_lost, status,
                  created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000002', 'bench', 'true', 'bench', '{}', '{}', false,
        'running', now(), now());
