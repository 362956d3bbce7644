-- The steps of hb_backfill_last_status() (the procedure, next file, runs
-- them and commits after each): _hb_backfill_begin checks the request and
-- records, per table, the backfill to run (or finds the one that stopped,
-- to resume it); _hb_backfill_next says which partition comes next;
-- _hb_backfill_step runs one batch of one table.
--
-- A backfill reads the table's partitions newest first (the catch-all
-- first: it may hold the newest rows), and in each partition its devices
-- in key order, batch_size at a time, found with a skip scan of the
-- (device, time) index: one index descent per device and partition, and
-- one more for the device's newest heartbeat there when its row in the
-- last-status table is older than what the partition could hold. Each
-- batch takes the change locks of the table's devices (no UPDATE or DELETE
-- of a heartbeat is in flight while it reads), then writes what it found
-- with INSERT ... ON CONFLICT DO UPDATE ... WHERE the stored time is older,
-- in the triggers' lock order (key order, COLLATE "C" for text): a device
-- never moves backwards, and a heartbeat inserted meanwhile (which the
-- triggers write) is never overwritten.
--
-- Where the backfill is, is kept in hb_config.backfill_cursor, by bounds
-- (it survives a dump and restore, and partitions attached meanwhile are
-- read when their turn comes): {"from": the oldest time it reads (null:
-- all of the history), "catchall": whether the catch-all is done, "upper":
-- every partition whose upper bound is at most this is still to read,
-- "in": the partition the next batch goes on in ("catchall", or its upper
-- bound), "after": the last device done there, "rows", "batches",
-- "started_at"}.

-- _hb_backfill_begin: the tables to backfill (parent, or every managed
-- table the caller owns), each with its backfill recorded: a new one, or
-- the one that stopped before its end, resumed (from the start again when
-- since reaches further back than the horizon it read from).
CREATE FUNCTION @extschema@._hb_backfill_begin(since interval, parent regclass, batch_size integer)
RETURNS regclass[]
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
    from_ts timestamptz;
    cur jsonb;
    tables regclass[] := '{}';
BEGIN
    IF since IS NOT NULL AND since <= interval '0' THEN
        RAISE EXCEPTION 'hb_backfill_last_status: since must be a positive interval, or NULL for all of the history'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example CALL hb_backfill_last_status(''30 days'').';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 1000000 THEN
        RAISE EXCEPTION 'hb_backfill_last_status: batch_size must be between 1 and 1000000'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'It is how many devices one transaction writes; the default is 5000.';
    END IF;
    IF parent IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.hb_config c WHERE c.parent = _hb_backfill_begin.parent) THEN
            RAISE EXCEPTION 'hb_backfill_last_status: table % is not managed by hb_lifecycle', parent
                USING ERRCODE = 'undefined_object', HINT = 'Run SELECT hb_manage(...) first.';
        END IF;
        IF NOT @extschema@._hb_owns(parent) THEN
            RAISE EXCEPTION 'hb_backfill_last_status: must be owner of table %', parent
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM @extschema@.hb_config c WHERE @extschema@._hb_owns(c.parent)) THEN
        RAISE EXCEPTION 'hb_backfill_last_status: the current role owns no table managed by hb_lifecycle'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run it as the owner of the heartbeats table, or name the table: parent => ''heartbeats''.';
    END IF;
    from_ts := now() - since;
    FOR cfg IN SELECT * FROM @extschema@.hb_config c
               WHERE (_hb_backfill_begin.parent IS NULL OR c.parent = _hb_backfill_begin.parent)
                 AND @extschema@._hb_owns(c.parent)
               ORDER BY c.parent::text FOR UPDATE
    LOOP
        cur := cfg.backfill_cursor;
        IF cur IS NOT NULL THEN
            -- A horizon older than the one it read from (null, all of the
            -- history, is the oldest): what was read is read again from the
            -- new one, from the start (rows already newest are not written
            -- again); the same or a newer one: it goes on where it stopped.
            IF (cur->>'from') IS NOT NULL
               AND (from_ts IS NULL OR from_ts < (cur->>'from')::timestamptz) THEN
                cur := cur || jsonb_build_object('from', from_ts, 'catchall', false,
                                                 'upper', 'infinity'::timestamptz, 'in', NULL, 'after', NULL);
            END IF;
            RAISE NOTICE 'hb_backfill_last_status: % resumes the backfill started at % (% partitions left, % rows written so far)',
                cfg.parent, cur->>'started_at',
                coalesce((SELECT n.partitions_left FROM @extschema@._hb_backfill_next(cfg.parent, cur) n), 0),
                cur->>'rows';
        ELSE
            cur := jsonb_build_object('from', from_ts, 'catchall', false, 'upper', 'infinity'::timestamptz,
                                      'in', NULL, 'after', NULL, 'rows', 0, 'batches', 0,
                                      'started_at', now());
        END IF;
        UPDATE @extschema@.hb_config c SET backfill_cursor = cur WHERE c.parent = cfg.parent;
        tables := tables || cfg.parent;
    END LOOP;
    RETURN tables;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_backfill_begin(interval, regclass, integer) IS
    'Internal: records the backfills hb_backfill_last_status() runs (or resumes).';
REVOKE ALL ON FUNCTION @extschema@._hb_backfill_begin(interval, regclass, integer) FROM PUBLIC;

-- _hb_backfill_next: the partition a backfill at cursor cur reads next
-- (the catch-all until it is done, then the partition with the greatest
-- upper bound at most cur.upper that may hold a heartbeat at or after
-- cur.from), its bounds (MINVALUE and MAXVALUE as -infinity and infinity),
-- and how many partitions are left, that one included. No row when none is.
CREATE FUNCTION @extschema@._hb_backfill_next(parent regclass, cur jsonb,
    OUT part regclass, OUT is_catchall boolean, OUT range_start timestamptz,
    OUT range_end timestamptz, OUT partitions_left integer)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.relid, p.is_default, p.range_start, p.range_end, (count(*) OVER ())::integer
    FROM (SELECT k.relid, b.is_default,
                 coalesce(b.range_start, '-infinity') AS range_start,
                 coalesce(b.range_end, 'infinity') AS range_end
          FROM @extschema@._hb_children(parent) k
          CROSS JOIN LATERAL @extschema@.hb_partition_bounds(k.relid) b) p
    WHERE CASE WHEN p.is_default THEN NOT (cur->>'catchall')::boolean
               ELSE p.range_end <= (cur->>'upper')::timestamptz
                    AND ((cur->>'from') IS NULL OR p.range_end > (cur->>'from')::timestamptz) END
    ORDER BY p.is_default DESC, p.range_end DESC
    LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@._hb_backfill_next(regclass, jsonb) IS
    'Internal: the partition a backfill reads next, and how many are left.';
REVOKE ALL ON FUNCTION @extschema@._hb_backfill_next(regclass, jsonb) FROM PUBLIC;

-- _hb_backfill_step: one batch (at most batch_size devices of one
-- partition) of the backfill recorded for parent; done once no partition
-- is left, when the backfill is recorded as complete (backfill_done_at,
-- backfill_from) with a 'backfill' event. Says (NOTICE) when a partition
-- is done. Runs as the caller, who owns the table.
CREATE FUNCTION @extschema@._hb_backfill_step(parent regclass, batch_size integer,
    OUT written bigint, OUT devices integer, OUT done boolean)
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
    cur jsonb;
    nxt record;
    from_ts timestamptz;
    in_here boolean;
    after_key text;
    cols text;
    sets text;
    key_type text;
    write_order text;
    last_key text;
BEGIN
    written := 0;
    devices := 0;
    done := false;
    -- Locks in the order hb_reconcile() takes them: the table's row of
    -- hb_config (one batch at a time per table: two sessions backfilling
    -- one table share its cursor), the change locks of its devices, then
    -- the rows written, in the triggers' key order.
    SELECT * INTO cfg FROM @extschema@.hb_config c WHERE c.parent = _hb_backfill_step.parent FOR UPDATE;
    IF NOT FOUND OR cfg.backfill_cursor IS NULL THEN
        done := true;  -- unmanaged meanwhile, or completed by another session
        RETURN;
    END IF;
    cur := cfg.backfill_cursor;
    from_ts := (cur->>'from')::timestamptz;
    SELECT * INTO nxt FROM @extschema@._hb_backfill_next(cfg.parent, cur);

    IF nxt.part IS NOT NULL THEN
        PERFORM @extschema@._hb_lock_device_changes(cfg.parent);
        in_here := CASE WHEN nxt.is_catchall THEN cur->>'in' = 'catchall'
                        WHEN cur->>'in' = 'catchall' THEN false
                        ELSE (cur->>'in')::timestamptz = nxt.range_end END;
        after_key := CASE WHEN in_here THEN cur->>'after' END;
        SELECT c.cols, c.sets, c.key_type, c.write_order INTO cols, sets, key_type, write_order
        FROM @extschema@._hb_ls_columns(cfg.parent) c;
        -- The next devices of the partition (a skip scan), the newest
        -- heartbeat of each that is newer than its row (the partition's
        -- index, backwards), written newest-wins in the triggers' order.
        EXECUTE format($q$
            WITH RECURSIVE d(k) AS (
                (SELECT h.%1$I FROM %2$s h %3$s ORDER BY h.%1$I LIMIT 1)
                UNION ALL
                SELECT (SELECT h.%1$I FROM %2$s h WHERE h.%1$I > d.k ORDER BY h.%1$I LIMIT 1)
                FROM d WHERE d.k IS NOT NULL),
            batch AS MATERIALIZED (SELECT d.k FROM d WHERE d.k IS NOT NULL LIMIT $2),
            newest AS (
                SELECT n.* FROM batch b
                LEFT JOIN %4$s l ON l.%1$I = b.k
                CROSS JOIN LATERAL (
                    SELECT %5$s FROM %2$s h
                    WHERE h.%1$I = b.k AND h.%6$I IS NOT NULL
                      AND ($3::timestamptz IS NULL OR h.%6$I >= $3)
                      AND (l.%1$I IS NULL OR h.%6$I > l.%6$I)
                    ORDER BY h.%6$I DESC LIMIT 1) n),
            w AS (
                INSERT INTO %4$s AS l (%5$s) SELECT %5$s FROM newest ORDER BY %1$I%7$s
                ON CONFLICT (%1$I) DO UPDATE SET %8$s WHERE l.%6$I < excluded.%6$I
                RETURNING 1)
            SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM batch)::integer,
                   (SELECT b.k::text FROM batch b ORDER BY b.k DESC LIMIT 1)
            $q$, cfg.device_column, nxt.part,
            CASE WHEN after_key IS NULL THEN '' ELSE format('WHERE h.%I > $1::%s', cfg.device_column, key_type) END,
            cfg.last_status_table, cols, cfg.time_column, write_order, sets)
        INTO written, devices, last_key
        USING after_key, batch_size, from_ts;
        cur := cur || jsonb_build_object('rows', (cur->>'rows')::bigint + written,
                                         'batches', (cur->>'batches')::bigint + 1);
        IF devices < batch_size THEN
            -- The partition is done: the next one is older.
            IF nxt.is_catchall THEN
                cur := cur || jsonb_build_object('catchall', true);
            ELSE
                cur := cur || jsonb_build_object('upper', nxt.range_start);
            END IF;
            cur := cur || jsonb_build_object('in', NULL, 'after', NULL);
            RAISE NOTICE 'hb_backfill_last_status: %: partition % done (% left), % rows written so far',
                cfg.parent, nxt.part, nxt.partitions_left - 1, cur->>'rows';
        ELSE
            cur := cur || jsonb_build_object(
                'in', CASE WHEN nxt.is_catchall THEN to_jsonb('catchall'::text) ELSE to_jsonb(nxt.range_end) END,
                'after', last_key);
        END IF;
        UPDATE @extschema@.hb_config c SET backfill_cursor = cur WHERE c.parent = cfg.parent;
        RETURN;
    END IF;

    -- No partition left: complete.
    UPDATE @extschema@.hb_config c
    SET backfill_cursor = NULL, backfill_done_at = now(), backfill_from = from_ts
    WHERE c.parent = cfg.parent;
    PERFORM @extschema@._hb_event(cfg.parent, 'backfill', NULL,
        jsonb_build_object('rows', (cur->>'rows')::bigint, 'batches', (cur->>'batches')::bigint,
                           'from', from_ts, 'started_at', cur->'started_at',
                           's', round(extract(epoch FROM clock_timestamp() - (cur->>'started_at')::timestamptz)::numeric, 1)));
    RAISE NOTICE 'hb_backfill_last_status: % is complete: % rows written in % batches; reads may now use %',
        cfg.parent, cur->>'rows', cur->>'batches', cfg.last_status_table;
    done := true;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_backfill_step(regclass, integer) IS
    'Internal: one batch of hb_backfill_last_status() for one table.';
REVOKE ALL ON FUNCTION @extschema@._hb_backfill_step(regclass, integer) FROM PUBLIC;
