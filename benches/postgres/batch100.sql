-- The same life in batches of 100 executions per statement.
BEGIN;
INSERT INTO executions (id, job_id, system_id, attempt, status, created_at, not_before)
SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 1, 'pending', now(), now()
  FROM generate_series(1, 100);
UPDATE jobs SET n_pending = n_pending + 100 WHERE id = '00000000-0000-7000-8000-000000000002';
COMMIT;
BEGIN;
UPDATE executions SET status = 'running', started_at = now(),
       lease_owner = 'pgbench-' || :client_id, lease_token = gen_random_uuid(),
       lease_expires_at = now() + interval '30 seconds'
 WHERE id IN (SELECT id FROM executions WHERE status = 'pending' AND not_before <= now()
               ORDER BY created_at, id LIMIT 100 FOR NO KEY UPDATE SKIP LOCKED);
UPDATE jobs SET n_pending = n_pending - 100, n_running = n_running + 100 WHERE id = '00000000-0000-7000-8000-000000000002';
COMMIT;
BEGIN;
UPDATE executions SET status = 'completed', completed_at = now(), exit_code = 0,
       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
 WHERE status = 'running' AND lease_owner = 'pgbench-' || :client_id;
UPDATE jobs SET n_running = n_running - 100, n_completed = n_completed + 100 WHERE id = '00000000-0000-7000-8000-000000000002';
COMMIT;
