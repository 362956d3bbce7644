-- hb_schedule: installs (or updates, when they exist) the pg_cron jobs
-- hb_lifecycle_maintenance (SELECT hb_run_maintenance(), nightly) and
-- hb_lifecycle_reconcile (SELECT hb_reconcile(), hourly; once this version
-- has hb_reconcile), in this database, run as the calling role: the jobs
-- maintain the managed tables that role owns (every one, for a superuser).
-- Idempotent. Returns the jobs as pg_cron lists them.
CREATE FUNCTION @extschema@.hb_schedule(nightly text DEFAULT '15 3 * * *', hourly text DEFAULT '7 * * * *')
RETURNS TABLE (jobname text, jobid bigint, schedule text, command text, username text)
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._hb_require_cron('hb_schedule');
    IF nightly IS NULL OR hourly IS NULL THEN
        RAISE EXCEPTION 'hb_schedule: the schedules must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass cron expressions, e.g. hb_schedule(''15 3 * * *'', ''7 * * * *''); hb_unschedule() removes the jobs.';
    END IF;
    PERFORM cron.schedule('hb_lifecycle_maintenance', nightly, 'SELECT @extschema@.hb_run_maintenance()');
    IF to_regprocedure('@extschema@.hb_reconcile(interval, integer)') IS NOT NULL THEN
        PERFORM cron.schedule('hb_lifecycle_reconcile', hourly, 'SELECT @extschema@.hb_reconcile()');
    ELSE
        RAISE NOTICE 'hb_reconcile() is not part of this version of hb_lifecycle; the hourly job is not installed';
    END IF;
    RETURN QUERY
        SELECT j.jobname::text, j.jobid, j.schedule, j.command, j.username::text
        FROM cron.job j
        WHERE j.jobname IN ('hb_lifecycle_maintenance', 'hb_lifecycle_reconcile')
          AND j.username = current_user
        ORDER BY j.jobname;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_schedule(text, text) IS
    'Installs the nightly maintenance (and hourly reconcile) pg_cron jobs, idempotently.';
REVOKE ALL ON FUNCTION @extschema@.hb_schedule(text, text) FROM PUBLIC;
