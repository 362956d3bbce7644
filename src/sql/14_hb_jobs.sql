-- _hb_jobs: the background worker's queue and its history (one row per
-- archive or restore job). A table's owner may queue a job for its
-- partitions (hb_archive_partition(..., wait => false), maintenance) and
-- cancel it (hb_cancel_job); everything else is written by the worker. Nothing here is secret: last_error never holds a key.
-- Finished jobs older than hb_lifecycle.events_retention are deleted by
-- hb_run_maintenance(). Read it through the view hb_jobs, which adds the
-- live progress of the running job.
CREATE TABLE @extschema@._hb_jobs (
    id             bigserial   PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('archive', 'restore')),
    partition_name text        NOT NULL,
    parent         regclass    NOT NULL,
    requested_by   oid         NOT NULL,
    state          text        NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    rows           bigint,
    bytes          bigint,
    result         text,            -- the partition's state after the job
    last_error     text,
    upload_key     text,            -- an S3 multipart upload in flight (aborted after a crash)
    upload_id      text,
    prior_state    text             -- the partition's state before the job (put back on cancel)
);
CREATE INDEX _hb_jobs_open ON @extschema@._hb_jobs (id) WHERE state IN ('queued', 'running');
COMMENT ON TABLE @extschema@._hb_jobs IS
    'Internal: hb_lifecycle''s background worker jobs; read hb_jobs.';
REVOKE ALL ON @extschema@._hb_jobs FROM PUBLIC;
GRANT SELECT ON @extschema@._hb_jobs TO PUBLIC;
GRANT INSERT (kind, partition_name, parent, requested_by) ON @extschema@._hb_jobs TO PUBLIC;
GRANT USAGE ON SEQUENCE @extschema@._hb_jobs_id_seq TO PUBLIC;
GRANT UPDATE (state, finished_at, last_error) ON @extschema@._hb_jobs TO PUBLIC;
GRANT DELETE ON @extschema@._hb_jobs TO PUBLIC;
ALTER TABLE @extschema@._hb_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY _hb_jobs_read ON @extschema@._hb_jobs FOR SELECT USING (true);
CREATE POLICY _hb_jobs_queue ON @extschema@._hb_jobs FOR INSERT
    WITH CHECK (@extschema@._hb_owns(parent) AND state = 'queued'
                AND requested_by OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles
                                                         WHERE rolname OPERATOR(pg_catalog.=) current_user));
CREATE POLICY _hb_jobs_prune ON @extschema@._hb_jobs FOR DELETE
    USING (@extschema@._hb_owns(parent) AND state IN ('done', 'failed', 'cancelled'));
CREATE POLICY _hb_jobs_cancel ON @extschema@._hb_jobs FOR UPDATE
    USING (@extschema@._hb_owns(parent) OR pg_catalog.pg_has_role(requested_by, 'USAGE'))
    WITH CHECK (state = 'cancelled');

-- _hb_job_progress: the running job's live progress, from shared memory
-- (a job's rows in _hb_jobs are written only when a step ends).
CREATE FUNCTION @extschema@._hb_job_progress(
    OUT job_id bigint, OUT phase text, OUT rows bigint, OUT bytes bigint, OUT pid integer)
RETURNS SETOF record
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'hb_job_progress';
COMMENT ON FUNCTION @extschema@._hb_job_progress() IS
    'Internal: the progress of the job the worker runs now.';

CREATE VIEW @extschema@.hb_jobs AS
SELECT j.id, j.kind, j.partition_name, j.parent, j.requested_by::pg_catalog.regrole AS requested_by,
       j.state, p.phase,
       coalesce(p.rows, j.rows) AS rows, coalesce(p.bytes, j.bytes) AS bytes,
       j.attempts, j.result, j.last_error, j.requested_at, j.started_at, j.finished_at,
       p.pid AS worker_pid
FROM @extschema@._hb_jobs j
LEFT JOIN @extschema@._hb_job_progress() p ON p.job_id OPERATOR(pg_catalog.=) j.id;
COMMENT ON VIEW @extschema@.hb_jobs IS
    'hb_lifecycle''s worker jobs (archive, restore), with the live progress of the running one.';
REVOKE ALL ON @extschema@.hb_jobs FROM PUBLIC;
GRANT SELECT ON @extschema@.hb_jobs TO PUBLIC;
