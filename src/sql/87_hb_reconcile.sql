-- hb_reconcile: heals device_last_status from the heartbeats of the recent
-- past (window, 24 hours by default), for every managed table the current
-- role owns (every one, for a superuser). A device whose newest heartbeat
-- in the window is missing from its last-status table, or is newer than
-- the row there, or has the same time but other values (a manual edit),
-- gets that heartbeat as its row; a device never moves backwards (the
-- write keeps a newer row that a concurrent insert stored meanwhile).
-- ("window" is a reserved word: quote it to name it, hb_reconcile("window"
-- => '2 days').) At most max_rows are repaired per table and run: a capped
-- run records where it stopped (hb_config.reconcile_after), and the next
-- run goes on from there, and from the first device again once it reaches
-- the last, so drift of N rows heals in ceil(N / max_rows) runs. A healthy
-- table repairs 0. The window is read partition by partition (those that
-- hold rows), with a skip scan of the (device, time) index: two index
-- descents per device and partition, whatever the number of heartbeats.
-- Each table's run records a 'reconcile' event with its counts; a table
-- that fails is said in a WARNING and in its event, and the others are
-- still reconciled. Returns the rows repaired.
CREATE FUNCTION @extschema@.hb_reconcile("window" interval DEFAULT '24 hours', max_rows integer DEFAULT 5000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
    cut timestamptz := now() - "window";
    cols text;
    lcols text;
    ncols text;
    sets text;
    key_type text;
    write_order text;
    part regclass;
    nparts integer;
    skips text;
    cands text;
    repaired bigint;
    wrong bigint;
    last_key text;
    next_key text;
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
        -- Each table on its own: one that fails (says why, in a WARNING
        -- and its event) stops neither the others nor the run.
        BEGIN
            -- Locks in the order the backfill takes them: the table's row
            -- of hb_config, the change locks of its devices (so that no
            -- UPDATE or DELETE of a heartbeat is in flight while the
            -- heartbeats are read below, with a snapshot taken after
            -- them), then the rows repaired, in the triggers' key order.
            SELECT * INTO cfg FROM @extschema@.hb_config c WHERE c.parent = cfg.parent FOR UPDATE;
            PERFORM @extschema@._hb_lock_device_changes(cfg.parent);
            SELECT * INTO cols, lcols, ncols, sets, key_type, write_order
            FROM @extschema@._hb_ls_columns(cfg.parent);
            -- The devices of the window, partition by partition (only
            -- those that overlap it and hold rows: partitions created
            -- ahead are empty), each with a skip scan of the (device,
            -- time) index: one descent per device to find it, one for its
            -- newest heartbeat.
            nparts := 0;
            skips := '';
            cands := '';
            FOR part IN
                SELECT k.relid FROM @extschema@._hb_children(cfg.parent) k
                CROSS JOIN LATERAL @extschema@.hb_partition_bounds(k.relid) b
                WHERE b.is_default OR b.range_end IS NULL OR b.range_end > cut
                ORDER BY b.is_default, b.range_end DESC NULLS FIRST
            LOOP
                CONTINUE WHEN NOT @extschema@._hb_has_rows(part);
                nparts := nparts + 1;
                skips := skips || CASE WHEN nparts > 1 THEN ',' ELSE '' END || format($q$
                    d%1$s(k) AS (
                        (SELECT h.%2$I FROM %3$s h WHERE h.%4$I >= $1 ORDER BY h.%2$I LIMIT 1)
                        UNION ALL
                        SELECT (SELECT h.%2$I FROM %3$s h WHERE h.%4$I >= $1 AND h.%2$I > d.k
                                ORDER BY h.%2$I LIMIT 1)
                        FROM d%1$s d WHERE d.k IS NOT NULL)$q$,
                    nparts, cfg.device_column, part, cfg.time_column);
                cands := cands || CASE WHEN nparts > 1 THEN ' UNION ALL ' ELSE '' END || format($q$
                    SELECT n.* FROM d%1$s d CROSS JOIN LATERAL (
                        SELECT %2$s FROM %3$s h WHERE h.%4$I = d.k AND h.%5$I >= $1
                        ORDER BY h.%5$I DESC LIMIT 1) n$q$,
                    nparts, cols, part, cfg.device_column, cfg.time_column);
            END LOOP;
            repaired := 0;
            wrong := 0;
            last_key := NULL;
            IF nparts > 0 THEN
                -- The wrong devices from where the last capped run stopped
                -- to the last one, then from the first (wrapping around),
                -- at most max_rows of them, repaired in one statement in
                -- key order. (Values are compared as text: json and the
                -- like have no equality.)
                EXECUTE format($q$
                    WITH RECURSIVE %1$s,
                    newest AS (
                        SELECT DISTINCT ON (%2$I) %3$s FROM (%4$s) c ORDER BY %2$I, %5$I DESC),
                    wrong AS (
                        SELECT n.* FROM newest n LEFT JOIN %6$s l ON l.%2$I = n.%2$I
                        WHERE l.%2$I IS NULL OR l.%5$I < n.%5$I
                           OR (l.%5$I = n.%5$I AND ROW(%7$s)::text IS DISTINCT FROM ROW(%8$s)::text)
                        ORDER BY coalesce(n.%2$I > $2::%11$s, false) DESC, n.%2$I LIMIT $3),
                    fixed AS (
                        INSERT INTO %6$s AS l (%3$s) SELECT %3$s FROM wrong ORDER BY %2$I%9$s
                        ON CONFLICT (%2$I) DO UPDATE SET %10$s WHERE l.%5$I <= excluded.%5$I
                        RETURNING 1)
                    SELECT (SELECT count(*) FROM fixed), (SELECT count(*) FROM wrong),
                           (SELECT w.%2$I::text FROM wrong w
                            ORDER BY coalesce(w.%2$I > $2::%11$s, false), w.%2$I DESC LIMIT 1)
                    $q$, skips, cfg.device_column, cols, cands, cfg.time_column,
                    cfg.last_status_table, lcols, ncols, write_order, sets, key_type)
                INTO repaired, wrong, last_key
                USING cut, cfg.reconcile_after, max_rows;
            END IF;
            -- Capped: the next run goes on after the last device repaired.
            next_key := CASE WHEN wrong >= max_rows THEN last_key END;
            UPDATE @extschema@.hb_config c SET reconcile_after = next_key
            WHERE c.parent = cfg.parent AND c.reconcile_after IS DISTINCT FROM next_key;
            PERFORM @extschema@._hb_event(cfg.parent, 'reconcile', NULL,
                jsonb_build_object('repaired', repaired, 'window', "window", 'max_rows', max_rows,
                                   'capped', wrong >= max_rows, 'resumed_after', cfg.reconcile_after,
                                   'partitions', nparts,
                                   'ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1)));
            total := total + repaired;
        EXCEPTION WHEN OTHERS THEN
            DECLARE
                msg text;
                state text;
            BEGIN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                RAISE WARNING 'hb_reconcile: % was not reconciled: %', cfg.parent, msg
                    USING ERRCODE = state, HINT = 'The other tables were; the event records it too.';
                PERFORM @extschema@._hb_event(cfg.parent, 'reconcile', NULL,
                    jsonb_build_object('repaired', 0, 'window', "window", 'max_rows', max_rows,
                                       'error', msg, 'sqlstate', state));
            END;
        END;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_reconcile(interval, integer) IS
    'Heals device_last_status from the recent heartbeats (capped per run, resumes, never backwards).';
REVOKE ALL ON FUNCTION @extschema@.hb_reconcile(interval, integer) FROM PUBLIC;

-- _hb_has_rows: whether a table holds a row (a partition created ahead
-- holds none, and a scan of it is work for nothing).
CREATE FUNCTION @extschema@._hb_has_rows(rel regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', rel) INTO found;
    RETURN found;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_has_rows(regclass) IS
    'Internal: whether a table holds any row.';
REVOKE ALL ON FUNCTION @extschema@._hb_has_rows(regclass) FROM PUBLIC;
