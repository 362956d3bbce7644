-- _hb_require_cron: a clear error unless pg_cron is installed in this
-- database (the one cron.database_name names), where hb_schedule() puts
-- its jobs.
CREATE FUNCTION @extschema@._hb_require_cron(caller text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NOT NULL AND cron_db <> current_database() THEN
        RAISE EXCEPTION '%: pg_cron runs its jobs from database "%", not from "%"', caller, cron_db, current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Connect to %I and run: SELECT cron.schedule_in_database(''hb_lifecycle_maintenance'', '
                                '''15 3 * * *'', ''SELECT @extschema@.hb_run_maintenance()'', %L);',
                                cron_db, current_database());
    END IF;
    RAISE EXCEPTION '%: pg_cron is not installed in database "%"', caller, current_database()
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = format('Install postgresql-15-cron, set shared_preload_libraries = ''pg_cron,hb_lifecycle'' and '
                            'cron.database_name = %L, restart the server, then run CREATE EXTENSION pg_cron.',
                            current_database());
END
$$;
COMMENT ON FUNCTION @extschema@._hb_require_cron(text) IS
    'Internal: an error unless pg_cron is installed in this database.';
REVOKE ALL ON FUNCTION @extschema@._hb_require_cron(text) FROM PUBLIC;
