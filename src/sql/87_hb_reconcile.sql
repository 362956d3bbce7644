-- hb_reconcile: heals device_last_status from the heartbeats of the recent
-- past (window, 24 hours by default), for every managed table the current
-- role owns (every one, for a superuser). A device whose newest heartbeat
-- in the window is missing from its last-status table, or is newer than
-- the row there, or has the same time but other values (a manual edit),
-- gets that heartbeat as its row; a device never moves backwards (the
-- write keeps a newer row that a concurrent insert stored meanwhile).
-- ("window" is a reserved word: quote it to name it, hb_reconcile("window"
-- => '2 days').) Devices are examined in key order, and at most max_rows are repaired per
-- table and run: a capped run records where it stopped
-- (hb_config.reconcile_after), and the next run goes on from there, so
-- repeated runs converge (a run that is not capped starts over next time).
-- A healthy table repairs 0. Each table's run records a 'reconcile' event
-- with its counts. Returns the rows repaired.
CREATE FUNCTION @extschema@.hb_reconcile("window" interval DEFAULT '24 hours', max_rows integer DEFAULT 5000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
    cols text;
    lcols text;
    ncols text;
    sets text;
    key_type text;
    repaired bigint;
    wrong bigint;
    last_key text;
    total bigint := 0;
    t0 timestamptz;
BEGIN
    IF "window" IS NULL OR "window" <= interval '0' THEN
        RAISE EXCEPTION 'hb_reconcile: window must be a positive interval'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example hb_reconcile(''24 hours'').';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'hb_reconcile: max_rows must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'It caps the rows one run repairs per table; the default is 5000.';
    END IF;
    FOR cfg IN SELECT * FROM @extschema@.hb_config c WHERE @extschema@._hb_owns(c.parent)
               ORDER BY c.parent::text
    LOOP
        t0 := clock_timestamp();
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
               string_agg('l.' || quote_ident(a.attname), ', ' ORDER BY a.attnum),
               string_agg('n.' || quote_ident(a.attname), ', ' ORDER BY a.attnum),
               string_agg(format('%I = excluded.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> cfg.device_column)
        INTO cols, lcols, ncols, sets
        FROM pg_attribute a
        WHERE a.attrelid = cfg.parent AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        key_type := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                     WHERE a.attrelid = cfg.parent AND a.attname = cfg.device_column);
        EXECUTE format($q$
            WITH newest AS (
                SELECT DISTINCT ON (%1$I) %2$s FROM %3$s
                WHERE %4$I >= $1 AND ($2::text IS NULL OR %1$I > $2::%5$s)
                ORDER BY %1$I, %4$I DESC),
            wrong AS (
                SELECT n.* FROM newest n LEFT JOIN %6$s l ON l.%1$I = n.%1$I
                WHERE l.%1$I IS NULL OR l.%4$I < n.%4$I
                   OR (l.%4$I = n.%4$I AND (%7$s) IS DISTINCT FROM (%8$s))
                ORDER BY n.%1$I LIMIT $3),
            fixed AS (
                INSERT INTO %6$s AS l (%2$s) SELECT %2$s FROM wrong
                ON CONFLICT (%1$I) DO UPDATE SET %9$s WHERE l.%4$I <= excluded.%4$I
                RETURNING 1)
            SELECT (SELECT count(*) FROM fixed), (SELECT count(*) FROM wrong),
                   (SELECT max(%1$I)::text FROM wrong)
            $q$, cfg.device_column, cols, cfg.parent, cfg.time_column, key_type,
            cfg.last_status_table, lcols, ncols, sets)
        INTO repaired, wrong, last_key
        USING now() - "window", cfg.reconcile_after, max_rows;
        -- Capped: the next run goes on after the last device repaired.
        UPDATE @extschema@.hb_config c
        SET reconcile_after = CASE WHEN wrong >= max_rows THEN last_key END
        WHERE c.parent = cfg.parent AND c.reconcile_after IS DISTINCT FROM
              (CASE WHEN wrong >= max_rows THEN last_key END);
        PERFORM @extschema@._hb_event(cfg.parent, 'reconcile', NULL,
            jsonb_build_object('repaired', repaired, 'window', "window", 'max_rows', max_rows,
                               'capped', wrong >= max_rows, 'resumed_after', cfg.reconcile_after,
                               'ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1)));
        total := total + repaired;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_reconcile(interval, integer) IS
    'Heals device_last_status from the recent heartbeats (capped per run, resumes, never backwards).';
REVOKE ALL ON FUNCTION @extschema@.hb_reconcile(interval, integer) FROM PUBLIC;
