-- The worker's job queue, seen from SQL.
--   _hb_submit_job  hands a job to the worker through shared memory and
--                   waits for its end (hb_archive_partition(..., wait =>
--                   true), hb_restore_partition): the worker records it in
--                   _hb_jobs itself, since it could not see a row this
--                   transaction has not committed.
--   _hb_queue_job   queues a job as a row of _hb_jobs in the caller's
--                   transaction (wait => false, maintenance): it runs once
--                   that commits, and not at all if it rolls back.
--   _hb_job_accept  (the worker) records a submitted job, or finds the one
--                   already queued or running for that partition.
CREATE FUNCTION @extschema@._hb_submit_job(kind text, partition text, wait boolean,
    OUT job_id bigint, OUT state text, OUT sqlstate text, OUT message text, OUT rows bigint)
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'hb_submit_job';
COMMENT ON FUNCTION @extschema@._hb_submit_job(text, text, boolean) IS
    'Internal: hands a job to hb_lifecycle''s worker and waits for it.';
REVOKE ALL ON FUNCTION @extschema@._hb_submit_job(text, text, boolean) FROM PUBLIC;

CREATE FUNCTION @extschema@._hb_wake_worker_at_commit()
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'hb_wake_worker_at_commit';
COMMENT ON FUNCTION @extschema@._hb_wake_worker_at_commit() IS
    'Internal: sets the worker''s latch when the current transaction commits.';
REVOKE ALL ON FUNCTION @extschema@._hb_wake_worker_at_commit() FROM PUBLIC;

CREATE FUNCTION @extschema@._hb_cancel_running(job bigint)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'hb_cancel_running';
COMMENT ON FUNCTION @extschema@._hb_cancel_running(bigint) IS
    'Internal: asks the worker to stop the job it runs, if it is that one.';
REVOKE ALL ON FUNCTION @extschema@._hb_cancel_running(bigint) FROM PUBLIC;

CREATE FUNCTION @extschema@._hb_require_worker()
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'hb_require_worker';
COMMENT ON FUNCTION @extschema@._hb_require_worker() IS
    'Internal: an error unless hb_lifecycle''s worker serves this database.';
REVOKE ALL ON FUNCTION @extschema@._hb_require_worker() FROM PUBLIC;

-- _hb_job_record: the queued or running job of that kind for the
-- partition, or a new one asked for by role (one job per partition and
-- kind at a time, under an advisory lock).
CREATE FUNCTION @extschema@._hb_job_record(kind text, partition text, role oid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part @extschema@.hb_partitions;
    job bigint;
BEGIN
    SELECT * INTO part FROM @extschema@.hb_partitions p WHERE p.partition_name = partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition "%" does not exist', partition USING ERRCODE = 'undefined_table';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('hb_lifecycle job ' || partition));
    SELECT j.id INTO job FROM @extschema@._hb_jobs j
    WHERE j.partition_name = partition AND j.kind = _hb_job_record.kind AND j.state IN ('queued', 'running')
    ORDER BY j.id LIMIT 1;
    IF job IS NULL THEN
        INSERT INTO @extschema@._hb_jobs (kind, partition_name, parent, requested_by)
        VALUES (kind, partition, part.parent, role)
        RETURNING id INTO job;
    END IF;
    RETURN job;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_job_record(text, text, oid) IS
    'Internal: finds the open job of a partition, or records a new one.';
REVOKE ALL ON FUNCTION @extschema@._hb_job_record(text, text, oid) FROM PUBLIC;

CREATE FUNCTION @extschema@._hb_queue_job(kind text, partition text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM @extschema@._hb_require_worker();
    job := @extschema@._hb_job_record(kind, partition,
                                      (SELECT oid FROM pg_roles WHERE rolname = current_user));
    PERFORM @extschema@._hb_wake_worker_at_commit();
    RETURN job;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_queue_job(text, text) IS
    'Internal: queues a worker job in the caller''s transaction (or finds the one queued).';
REVOKE ALL ON FUNCTION @extschema@._hb_queue_job(text, text) FROM PUBLIC;

-- _hb_job_accept (the worker): records a job a backend handed over.
CREATE FUNCTION @extschema@._hb_job_accept(kind text, partition text, role oid)
RETURNS bigint
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._hb_job_record(kind, partition, role)
$$;
COMMENT ON FUNCTION @extschema@._hb_job_accept(text, text, oid) IS
    'Internal (the worker): records a submitted job, or finds the one already queued.';
REVOKE ALL ON FUNCTION @extschema@._hb_job_accept(text, text, oid) FROM PUBLIC;

-- _hb_jobs_recover (the worker, when it starts): jobs a worker was running
-- when it died are queued again, unless three workers died running one
-- (a job that crashes the worker must not crash it forever): that one
-- fails, and an archive's partition becomes archive_failed, which alerts
-- as any failed archive does (alert: one is due under alert_interval, and
-- it then counts as sent, alerted_at = now(); a NULL alert_interval, when
-- no webhook is set, records nothing).
-- Returns the unfinished S3 uploads they left, which the worker aborts.
CREATE FUNCTION @extschema@._hb_jobs_recover(alert_interval interval,
                                              OUT job bigint, OUT upload_key text, OUT upload_id text,
                                              OUT requeued boolean, OUT partition_name text, OUT alert boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
BEGIN
    FOR j IN SELECT * FROM @extschema@._hb_jobs WHERE state = 'running' ORDER BY id FOR UPDATE LOOP
        alert := false;
        IF j.attempts >= 3 THEN
            UPDATE @extschema@._hb_jobs SET state = 'failed', finished_at = now(),
                last_error = format('the worker stopped %s times while it ran this job; see the server log', j.attempts)
            WHERE id = j.id;
            UPDATE @extschema@.hb_partitions p SET state = 'archive_failed', last_attempt_at = now(),
                last_error = format('the worker stopped %s times while it archived this partition; see the server log', j.attempts)
            WHERE p.partition_name = j.partition_name AND p.state = 'archiving'
            RETURNING * INTO part;
            IF FOUND THEN
                PERFORM @extschema@._hb_event(j.parent, 'archive.failed', j.partition_name,
                    jsonb_build_object('job', j.id, 'attempt', j.attempts,
                                       'error', 'the worker stopped while it ran this job'));
                IF alert_interval IS NOT NULL
                   AND (part.alerted_at IS NULL OR part.alerted_at <= now() - alert_interval) THEN
                    UPDATE @extschema@.hb_partitions p SET alerted_at = now()
                    WHERE p.partition_name = j.partition_name;
                    alert := true;
                END IF;
            END IF;
            requeued := false;
        ELSE
            UPDATE @extschema@._hb_jobs SET state = 'queued' WHERE id = j.id;
            requeued := true;
        END IF;
        job := j.id;
        upload_key := j.upload_key;
        upload_id := j.upload_id;
        partition_name := j.partition_name;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_jobs_recover(interval) IS
    'Internal (the worker): queues again the jobs a dead worker was running.';
REVOKE ALL ON FUNCTION @extschema@._hb_jobs_recover(interval) FROM PUBLIC;

-- hb_cancel_job: cancels a queued job, or asks the worker to stop the one
-- it runs (it stops at its next step: the partition goes back to the state
-- it had, and a half-written archive is removed). Returns false when the
-- job had already ended.
CREATE FUNCTION @extschema@.hb_cancel_job(job bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
BEGIN
    SELECT * INTO j FROM @extschema@._hb_jobs WHERE id = job;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hb_cancel_job: there is no job %', job
            USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM hb_jobs lists them.';
    END IF;
    IF NOT (@extschema@._hb_owns(j.parent) OR pg_has_role(j.requested_by, 'USAGE')) THEN
        RAISE EXCEPTION 'hb_cancel_job: must be owner of table % or the role that asked for job %', j.parent, job
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF j.state = 'queued' THEN
        UPDATE @extschema@._hb_jobs SET state = 'cancelled', finished_at = now(),
            last_error = format('cancelled by %s', current_user)
        WHERE id = job AND state = 'queued';
        IF FOUND THEN
            -- A job queued again after its worker stopped had begun: its
            -- partition gets back the state it had.
            IF j.kind = 'archive' THEN
                UPDATE @extschema@.hb_partitions p SET state = coalesce(j.prior_state, 'active')
                WHERE p.partition_name = j.partition_name AND p.state = 'archiving';
            END IF;
            RETURN true;
        END IF;
    END IF;
    RETURN @extschema@._hb_cancel_running(job);
END
$$;
COMMENT ON FUNCTION @extschema@.hb_cancel_job(bigint) IS
    'Cancels a queued worker job, or stops the running one at its next step.';
REVOKE ALL ON FUNCTION @extschema@.hb_cancel_job(bigint) FROM PUBLIC;
