-- hb_unschedule: removes the calling role's hb_lifecycle pg_cron jobs;
-- returns how many it removed (0 the second time).
CREATE FUNCTION @extschema@.hb_unschedule()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed integer;
BEGIN
    PERFORM @extschema@._hb_require_cron('hb_unschedule');
    SELECT count(cron.unschedule(j.jobid)) INTO removed
    FROM cron.job j
    WHERE j.jobname IN ('hb_lifecycle_maintenance', 'hb_lifecycle_reconcile')
      AND j.username = current_user;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_unschedule() IS
    'Removes the pg_cron jobs hb_schedule() installed.';
REVOKE ALL ON FUNCTION @extschema@.hb_unschedule() FROM PUBLIC;
