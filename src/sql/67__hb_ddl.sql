-- _hb_ddl: runs statements (built by the lifecycle functions, every
-- identifier quoted) in one subtransaction under lock_timeout =
-- hb_lifecycle.ddl_lock_timeout. The application's inserts queue behind a
-- lock that DDL waits for, so they never wait longer than that. When a lock
-- is not granted in time, everything the statements did is undone and they
-- are tried again after a backoff (the timeout times 1, 2, 4, ... with
-- jitter), at most hb_lifecycle.ddl_lock_retries more times; then the error
-- says that nothing was changed. lock_wait and retries, when given,
-- replace the setting (maintenance's drops; see there). Returns the
-- attempts it took.
CREATE FUNCTION @extschema@._hb_ddl(what text, statements text[], lock_wait interval DEFAULT NULL,
                                    retries integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg record;
    attempt integer := 0;
    stmt text;
    saved text := current_setting('lock_timeout');
BEGIN
    SELECT * INTO cfg FROM @extschema@.hb_settings();
    cfg.ddl_lock_timeout := coalesce(lock_wait, cfg.ddl_lock_timeout);
    -- hb_run_maintenance() asks for one attempt everywhere (it may hold
    -- locks the application waits for while a retry would sleep).
    cfg.ddl_lock_retries := coalesce(retries, nullif(current_setting('hb_lifecycle_run.ddl_lock_retries', true), '')::integer,
                                     cfg.ddl_lock_retries);
    LOOP
        BEGIN
            PERFORM set_config('lock_timeout',
                               (extract(epoch FROM cfg.ddl_lock_timeout) * 1000)::bigint || 'ms', true);
            FOREACH stmt IN ARRAY statements LOOP
                EXECUTE stmt;
            END LOOP;
            PERFORM set_config('lock_timeout', saved, true);
            RETURN attempt + 1;
        EXCEPTION WHEN lock_not_available THEN
            IF attempt >= cfg.ddl_lock_retries THEN
                RAISE EXCEPTION '%: no lock within % ms (hb_lifecycle.ddl_lock_timeout) in % attempts; nothing was changed',
                    what, (extract(epoch FROM cfg.ddl_lock_timeout) * 1000)::bigint, attempt + 1
                    USING ERRCODE = 'lock_not_available',
                          HINT = 'A long transaction holds a lock on the table (see pg_locks and pg_stat_activity). '
                              'The next hb_run_maintenance() tries again. Raise hb_lifecycle.ddl_lock_timeout only if '
                              'the application''s inserts may wait that long.';
            END IF;
        END;
        attempt := attempt + 1;
        PERFORM pg_sleep(extract(epoch FROM cfg.ddl_lock_timeout) * (2 ^ (attempt - 1)) * (0.5 + random()));
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_ddl(text, text[], interval, integer) IS
    'Internal: runs DDL under hb_lifecycle.ddl_lock_timeout, retried with backoff.';
REVOKE ALL ON FUNCTION @extschema@._hb_ddl(text, text[], interval, integer) FROM PUBLIC;
