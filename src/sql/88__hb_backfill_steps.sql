-- The steps of hb_backfill_last_status() (the procedure, next file, runs
-- them and commits after each): _hb_backfill_begin checks the request and
-- records, per table, the backfill to run (or finds the one that stopped,
-- to resume it); _hb_backfill_step runs one batch of one table.
--
-- A backfill reads the table's partitions newest first (the catch-all
-- first: it may hold the newest rows), and in each partition its devices
-- in key order, batch_size at a time, found with a skip scan of the
-- (device, time) index: one index descent per device and partition, and
-- one more for the device's newest heartbeat there when its row in the
-- last-status table is older than what the partition could hold. Each
-- batch writes what it found with INSERT ... ON CONFLICT DO UPDATE ...
-- WHERE the stored time is older, in the triggers' lock order (key order,
-- COLLATE "C" for text): a device never moves backwards, and a heartbeat
-- inserted meanwhile (which the triggers write) is never overwritten.
-- Where the backfill is, is kept in hb_config.backfill_cursor:
-- {"from": the oldest time it reads (null: all), "todo": [the partitions
-- left, as OIDs, newest first], "after": the last device done in the
-- first of them, "rows", "batches", "started_at"}.

-- _hb_backfill_begin: the tables to backfill (parent, or every managed
-- table the caller owns), each with its backfill recorded: a new one, or
-- the one that stopped before its end, resumed (reading from the older of
-- the two "from"s).
CREATE FUNCTION @extschema@._hb_backfill_begin(since interval, parent regclass, batch_size integer)
RETURNS regclass[]
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
    from_ts timestamptz;
    todo jsonb;
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
        IF cfg.backfill_cursor IS NOT NULL THEN
            RAISE NOTICE 'hb_backfill_last_status: % resumes the backfill started at % (% partitions left, % rows written so far)',
                cfg.parent, cfg.backfill_cursor->>'started_at',
                jsonb_array_length(cfg.backfill_cursor->'todo'), cfg.backfill_cursor->>'rows';
            -- From the older of the two (null, all of the history, is the oldest).
            IF (cfg.backfill_cursor->>'from') IS NOT NULL
               AND (from_ts IS NULL OR from_ts < (cfg.backfill_cursor->>'from')::timestamptz) THEN
                UPDATE @extschema@.hb_config c
                SET backfill_cursor = c.backfill_cursor || jsonb_build_object('from', from_ts)
                WHERE c.parent = cfg.parent;
            END IF;
        ELSE
            -- Every partition that may hold a heartbeat at or after from:
            -- the catch-all first, then by upper bound, newest first.
            SELECT coalesce(jsonb_agg(k.relid::oid ORDER BY b.is_default DESC,
                                      b.range_end DESC NULLS FIRST, b.range_start DESC NULLS LAST), '[]')
            INTO todo
            FROM @extschema@._hb_children(cfg.parent) k
            CROSS JOIN LATERAL @extschema@.hb_partition_bounds(k.relid) b
            WHERE from_ts IS NULL OR b.is_default OR b.range_end IS NULL OR b.range_end > from_ts;
            UPDATE @extschema@.hb_config c
            SET backfill_cursor = jsonb_build_object('from', from_ts, 'todo', todo, 'after', NULL,
                                                     'rows', 0, 'batches', 0, 'started_at', now())
            WHERE c.parent = cfg.parent;
        END IF;
        tables := tables || cfg.parent;
    END LOOP;
    RETURN tables;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_backfill_begin(interval, regclass, integer) IS
    'Internal: records the backfills hb_backfill_last_status() runs (or resumes).';
REVOKE ALL ON FUNCTION @extschema@._hb_backfill_begin(interval, regclass, integer) FROM PUBLIC;

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
    from_ts timestamptz;
    after_key text;
    part regclass;
    key_type text;
    cols text;
    sets text;
    write_order text;
    last_key text;
    left_count integer;
BEGIN
    written := 0;
    devices := 0;
    done := false;
    -- One batch at a time per table (two sessions backfilling one table
    -- share its cursor).
    SELECT * INTO cfg FROM @extschema@.hb_config c WHERE c.parent = _hb_backfill_step.parent FOR UPDATE;
    IF NOT FOUND OR cfg.backfill_cursor IS NULL THEN
        done := true;  -- unmanaged meanwhile, or completed by another session
        RETURN;
    END IF;
    cur := cfg.backfill_cursor;
    from_ts := (cur->>'from')::timestamptz;
    -- The first partition left that still exists (one dropped meanwhile
    -- holds nothing to read any more).
    LOOP
        EXIT WHEN jsonb_array_length(cur->'todo') = 0;
        part := (cur->'todo'->>0)::oid::regclass;
        EXIT WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = part AND i.inhparent = cfg.parent);
        cur := jsonb_set(cur, '{todo}', (cur->'todo') - 0) || '{"after": null}';
        part := NULL;
    END LOOP;

    IF part IS NOT NULL THEN
        after_key := cur->>'after';
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
                    WHERE h.%1$I = b.k AND ($3::timestamptz IS NULL OR h.%6$I >= $3)
                      AND (l.%1$I IS NULL OR h.%6$I > l.%6$I)
                    ORDER BY h.%6$I DESC LIMIT 1) n),
            w AS (
                INSERT INTO %4$s AS l (%5$s) SELECT %5$s FROM newest ORDER BY %1$I%7$s
                ON CONFLICT (%1$I) DO UPDATE SET %8$s WHERE l.%6$I < excluded.%6$I
                RETURNING 1)
            SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM batch)::integer,
                   (SELECT b.k::text FROM batch b ORDER BY b.k DESC LIMIT 1)
            $q$, cfg.device_column, part,
            CASE WHEN after_key IS NULL THEN '' ELSE format('WHERE h.%I > $1::%s', cfg.device_column, key_type) END,
            cfg.last_status_table, cols, cfg.time_column, write_order, sets)
        INTO written, devices, last_key
        USING after_key, batch_size, from_ts;
        IF devices < batch_size THEN
            cur := jsonb_set(cur, '{todo}', (cur->'todo') - 0) || '{"after": null}';
            left_count := jsonb_array_length(cur->'todo');
            RAISE NOTICE 'hb_backfill_last_status: %: partition % done (% left), % rows written so far',
                cfg.parent, part, left_count,
                (cur->>'rows')::bigint + written;
        ELSE
            cur := cur || jsonb_build_object('after', last_key);
        END IF;
        cur := cur || jsonb_build_object('rows', (cur->>'rows')::bigint + written,
                                         'batches', (cur->>'batches')::bigint + 1);
    END IF;

    IF jsonb_array_length(cur->'todo') = 0 THEN
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
    ELSE
        UPDATE @extschema@.hb_config c SET backfill_cursor = cur WHERE c.parent = cfg.parent;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_backfill_step(regclass, integer) IS
    'Internal: one batch of hb_backfill_last_status() for one table.';
REVOKE ALL ON FUNCTION @extschema@._hb_backfill_step(regclass, integer) FROM PUBLIC;
