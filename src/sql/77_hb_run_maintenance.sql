-- hb_run_maintenance: the nightly job, for every managed table the current
-- role owns (every one, for a superuser):
--   1. give the table its catch-all partition if it has none; adopt
--      partitions made by hand that fit the scheme, report the others;
--   2. create partitions ahead (premake);
--   3. empty the catch-all partition (move rows into their partitions,
--      quarantine the implausible ones);
--   4. count the rows and bytes of partitions that closed;
--   5. queue archive jobs for the closed partitions that are not archived
--      (and the failed ones whose backoff has passed) for the worker;
--   6. drop the partitions past retention that are archived (or all of them
--      where archiving is off), last, so that the ACCESS EXCLUSIVE lock each
--      drop takes on its parent is held for as short a time as possible;
--      and no longer than half of ddl_lock_timeout, with each drop waiting
--      at most the other half for its lock, once (a drop that cannot get it
--      ends this run's drops): the application's inserts never wait much
--      longer than ddl_lock_timeout. What does not fit is in
--      "drops_deferred", for the next run;
--   7. delete hb_events and finished jobs older than
--      hb_lifecycle.events_retention;
--   8. VACUUM (ANALYZE) the hot partitions (the current and the one that
--      closed last) from a background worker, since VACUUM cannot run in a
--      function; ANALYZE them here when no worker slot is free.
-- One table that fails does not stop the others: each failure is in the
-- summary's "errors". Reentrant: under a transaction-level advisory lock
-- (one per role), a second call by the same role while one runs returns
-- {"skipped": "already running"} at once; a cancelled or failing run
-- releases the lock with its transaction.
CREATE FUNCTION @extschema@.hb_run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    settings record;
    cfg @extschema@.hb_config;
    part record;
    r jsonb;
    t0 timestamptz := clock_timestamp();
    parents integer := 0;
    created text[] := '{}';
    dropped text[] := '{}';
    adopted text[] := '{}';
    unmatched text[] := '{}';
    detached text[] := '{}';
    archive_due text[] := '{}';
    waiting text[] := '{}';
    archive_queued text[] := '{}';
    archive_note text;
    kept_restored text[] := '{}';
    jobs_pruned bigint := 0;
    deferred text[] := '{}';
    first_drop timestamptz;
    drops_stopped boolean := false;
    saved_timeout text := current_setting('lock_timeout');
    hot regclass[] := '{}';
    catchall_rows bigint := 0;
    moved bigint := 0;
    quarantined bigint := 0;
    counted integer := 0;
    pruned bigint := 0;
    vacuum_queued integer := 0;
    analyzed integer := 0;
    errors jsonb := '[]';
    rel regclass;
    msg text;
    code text;
BEGIN
    -- A key of our own in the database's advisory lock space ('hb_l'), one
    -- per role: a run covers the tables its role owns, and two owners'
    -- nightly jobs must not skip each other.
    IF NOT pg_try_advisory_xact_lock(1751326572, (current_user::regrole::oid::bigint % 2147483647)::int) THEN
        RETURN jsonb_build_object('skipped', 'already running');
    END IF;
    SELECT * INTO settings FROM @extschema@.hb_settings();
    -- Every lock the run waits for, it waits for no longer than
    -- ddl_lock_timeout: it may hold locks the application's inserts need
    -- (a catch-all, a drop's) while it waits.
    PERFORM set_config('lock_timeout', (extract(epoch FROM settings.ddl_lock_timeout) * 1000)::bigint || 'ms', true);
    -- And it tries each lock once: a table it cannot lock in time is an
    -- error of that table's, retried by the next run, while the locks this
    -- run already holds (a catch-all, a drop's) would make a retry's
    -- backoff sleep an insert's wait.
    PERFORM set_config('hb_lifecycle_run.ddl_lock_retries', '0', true);

    FOR cfg IN SELECT * FROM @extschema@.hb_config c WHERE @extschema@._hb_owns(c.parent)
               ORDER BY c.parent::text
    LOOP
        parents := parents + 1;
        BEGIN
            PERFORM @extschema@._hb_ensure_catchall(cfg.parent);
            r := @extschema@._hb_sync_partitions(cfg.parent);
            adopted := adopted || ARRAY(SELECT jsonb_array_elements_text(r->'adopted'));
            unmatched := unmatched || ARRAY(SELECT jsonb_array_elements_text(r->'unmatched'));
            detached := detached || ARRAY(SELECT jsonb_array_elements_text(r->'detached'));
            created := created || ARRAY(SELECT @extschema@._hb_create_range(cfg.parent, now(),
                now() + cfg.premake * (CASE cfg.granularity WHEN 'day' THEN interval '1 day'
                                                            ELSE interval '1 month' END)));
            r := @extschema@._hb_triage_catchall(cfg.parent);
            catchall_rows := catchall_rows + (r->>'catchall_rows')::bigint;
            moved := moved + coalesce((r->>'moved')::bigint, 0);
            quarantined := quarantined + coalesce((r->>'quarantined')::bigint, 0);
            created := created || ARRAY(SELECT jsonb_array_elements_text(coalesce(r->'created', '[]')));
            counted := counted + @extschema@._hb_refresh_stats(cfg.parent);
            IF cfg.archive THEN
                -- Closed and not archived (or left 'archiving' by a job that
                -- ended without an end); a failed one once its backoff
                -- (archive_retry_interval, doubled per attempt, at most a
                -- day) has passed; none that a job is on already.
                archive_due := archive_due || ARRAY(
                    SELECT p.partition_name FROM @extschema@.hb_partitions p
                    WHERE p.parent = cfg.parent AND p.range_end <= now()
                      AND (p.state IN ('active', 'archiving')
                           OR (p.state = 'archive_failed'
                               AND coalesce(p.last_attempt_at, '-infinity') + least(interval '1 day',
                                   settings.archive_retry_interval * power(2, least(greatest(p.attempts - 1, 0), 20)))
                                   <= now()))
                      AND NOT EXISTS (SELECT 1 FROM @extschema@._hb_jobs j
                                      WHERE j.partition_name = p.partition_name AND j.kind = 'archive'
                                        AND j.state IN ('queued', 'running'))
                    ORDER BY p.range_start);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
            errors := errors || jsonb_build_object('parent', cfg.parent::text, 'step', 'prepare',
                                                   'sqlstate', code, 'error', msg);
        END;
    END LOOP;

    -- The archives due go to the worker, as jobs that run once this run
    -- commits (they are the worker's to retry; a failed one comes back
    -- here after its backoff).
    IF cardinality(archive_due) > 0 THEN
        IF NOT settings.worker_available THEN
            archive_note := 'the background worker is not running (hb_lifecycle is not in shared_preload_libraries)';
        ELSIF current_database() <> current_setting('hb_lifecycle.database') THEN
            archive_note := format('the background worker serves database %s, not this one',
                                   current_setting('hb_lifecycle.database'));
        ELSE
            FOREACH msg IN ARRAY archive_due LOOP
                BEGIN
                    PERFORM @extschema@._hb_queue_job('archive', msg);
                    archive_queued := archive_queued || msg;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS archive_note = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
                    errors := errors || jsonb_build_object('step', 'archive', 'partition', msg,
                                                           'sqlstate', code, 'error', archive_note);
                    archive_note := NULL;
                END;
            END LOOP;
        END IF;
    END IF;

    FOR part IN
        SELECT p.partition_name, p.state, p.restored_at, c.archive, c.parent
        FROM @extschema@.hb_partitions p
        JOIN @extschema@.hb_config c ON c.parent = p.parent
        WHERE p.state <> 'dropped' AND p.range_end <= now() - c.retention
          AND @extschema@._hb_owns(c.parent)
        ORDER BY p.range_start, p.partition_name
    LOOP
        IF part.archive AND part.state <> 'archived' THEN
            waiting := waiting || part.partition_name;
            CONTINUE;
        END IF;
        -- Someone restored it to look at it: it is theirs to drop.
        IF part.restored_at IS NOT NULL THEN
            kept_restored := kept_restored || part.partition_name;
            CONTINUE;
        END IF;
        -- Each drop's ACCESS EXCLUSIVE lock on its table stays until this
        -- run commits: once the first has been held for half of
        -- ddl_lock_timeout (each drop waits at most the other half for its
        -- lock), or hb_lifecycle.max_drops_per_run drops are done, the rest
        -- waits for the next run.
        IF drops_stopped OR cardinality(dropped) >= settings.max_drops_per_run
           OR clock_timestamp() - first_drop > settings.ddl_lock_timeout / 2 THEN
            deferred := deferred || part.partition_name;
            CONTINUE;
        END IF;
        BEGIN
            -- One attempt, no retries: a run may hold locks inserts wait for
            -- (this run's drops, a catch-all), so it does not sleep and try
            -- again; a drop that cannot get its lock in time stops the drops
            -- of this run, and the next run does them.
            IF @extschema@._hb_drop_partition(part.partition_name, settings.ddl_lock_timeout / 2, 0) THEN
                dropped := dropped || part.partition_name;
                first_drop := coalesce(first_drop, clock_timestamp());
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
            IF code = '55P03' THEN
                drops_stopped := true;
                deferred := deferred || part.partition_name;
                errors := errors || jsonb_build_object('parent', part.parent::text, 'step', 'drop',
                                                       'partition', part.partition_name,
                                                       'sqlstate', code, 'error', msg);
            ELSE
                errors := errors || jsonb_build_object('parent', part.parent::text, 'step', 'drop',
                                                       'partition', part.partition_name,
                                                       'sqlstate', code, 'error', msg);
            END IF;
        END;
    END LOOP;

    -- The hot partitions, once the drops are done (a dropped one is not
    -- handed to the vacuum worker).
    hot := ARRAY(
        SELECT h.relid
        FROM @extschema@.hb_config c
        CROSS JOIN LATERAL (
            SELECT kid.relid
            FROM @extschema@.hb_partitions p
            JOIN @extschema@._hb_children(c.parent) kid ON kid.name = p.partition_name
            WHERE p.parent = c.parent AND p.state = 'active' AND p.range_start <= now()
            ORDER BY p.range_start DESC LIMIT 2) h
        WHERE @extschema@._hb_owns(c.parent));

    -- The last steps fail on their own: a lock they cannot get in time
    -- (another pruner, a VACUUM) must not undo the run's work.
    BEGIN
        DELETE FROM @extschema@.hb_events e WHERE e.at < now() - settings.events_retention;
        GET DIAGNOSTICS pruned = ROW_COUNT;
        DELETE FROM @extschema@._hb_jobs j
        WHERE j.finished_at < now() - settings.events_retention AND @extschema@._hb_owns(j.parent);
        GET DIAGNOSTICS jobs_pruned = ROW_COUNT;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
        errors := errors || jsonb_build_object('step', 'prune events', 'sqlstate', code, 'error', msg);
    END;

    IF cardinality(hot) > 0 THEN
        vacuum_queued := @extschema@.hb_vacuum_later(hot);
        IF vacuum_queued = 0 THEN
            FOREACH rel IN ARRAY hot LOOP
                CONTINUE WHEN NOT @extschema@._hb_owns(rel);  -- as VACUUM would skip it
                BEGIN
                    EXECUTE format('ANALYZE %s', rel);
                    analyzed := analyzed + 1;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
                    errors := errors || jsonb_build_object('step', 'analyze', 'relation', rel::text,
                                                           'sqlstate', code, 'error', msg);
                END;
            END LOOP;
        END IF;
    END IF;

    PERFORM set_config('lock_timeout', saved_timeout, true);
    PERFORM set_config('hb_lifecycle_run.ddl_lock_retries', '', true);
    RETURN jsonb_build_object(
        'parents', parents,
        'created', to_jsonb(created),
        'dropped', to_jsonb(dropped),
        'adopted', to_jsonb(adopted),
        'unmatched', to_jsonb(unmatched),
        'detached', to_jsonb(detached),
        'archive_due', to_jsonb(archive_due),
        'archive_queued', to_jsonb(archive_queued),
        'archive_not_queued', archive_note,
        'waiting_for_archive', to_jsonb(waiting),
        'kept_restored', to_jsonb(kept_restored),
        'drops_deferred', to_jsonb(deferred),
        'catchall_rows', catchall_rows,
        'moved', moved,
        'quarantined', quarantined,
        'counted', counted,
        'events_pruned', pruned,
        'jobs_pruned', jobs_pruned,
        'vacuum_queued', vacuum_queued,
        'analyzed', analyzed,
        'errors', errors,
        'ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1));
END
$$;
COMMENT ON FUNCTION @extschema@.hb_run_maintenance() IS
    'The nightly job: create ahead, empty the catch-all, drop what is archived and past retention, vacuum.';
REVOKE ALL ON FUNCTION @extschema@.hb_run_maintenance() FROM PUBLIC;
