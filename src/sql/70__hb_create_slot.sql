-- _hb_create_slot: creates the partition [lo, hi) named name of a managed
-- parent and records it, in the caller's transaction:
--   1. lock the parent (SHARE UPDATE EXCLUSIVE, which the application's
--      inserts do not wait for) and the catch-all partition (ATTACH needs it;
--      inserts of rows that have no partition wait for it),
--   2. create a plain table shaped like the parent, owned by its owner,
--   3. move the catch-all's rows of [lo, hi) into it,
--   4. attach it, which takes only SHARE UPDATE EXCLUSIVE on the parent, so
--      the application's inserts into other partitions never wait.
-- Creating a partition therefore never fails on a non-empty catch-all.
-- locked: the caller holds the locks of _hb_lock_for_create already (SHARE
-- UPDATE EXCLUSIVE on the parent, then ACCESS EXCLUSIVE on the catch-all);
-- otherwise this takes them, in that order, under ddl_lock_timeout with
-- retries.
-- Returns the rows moved out of the catch-all.
CREATE FUNCTION @extschema@._hb_create_slot(parent regclass, name text, lo timestamptz, hi timestamptz,
                                            locked boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    -- (Ownership is the DDL's own check: ATTACH needs the parent's.)
    cfg @extschema@.hb_config := (SELECT c FROM @extschema@.hb_config c WHERE c.parent = _hb_create_slot.parent);
    facts record := @extschema@._hb_parent(parent);
    qualified text := format('%I.%I', facts.nsp, name);
    moved bigint := 0;
    saved_timeout text := current_setting('lock_timeout');
BEGIN
    IF NOT locked THEN
        PERFORM @extschema@._hb_lock_for_create(cfg.parent);
    END IF;
    -- The locks on the parent and the catch-all are held; anything else the
    -- DDL must lock (the table a foreign key references, for one) is waited
    -- for no longer than ddl_lock_timeout.
    PERFORM set_config('lock_timeout',
                       (extract(epoch FROM (SELECT ddl_lock_timeout FROM @extschema@.hb_settings())) * 1000)::bigint
                       || 'ms', true);
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED '
                   'INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)', qualified, cfg.parent);
    IF facts.owner_name <> current_user THEN
        EXECUTE format('ALTER TABLE %s OWNER TO %I', qualified, facts.owner_name);
    END IF;
    IF facts.catchall IS NOT NULL THEN
        moved := @extschema@.hb_take_catchall_rows(facts.catchall, cfg.parent, cfg.time_column, lo, hi,
                                                   qualified::regclass, NULL);
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   cfg.parent, qualified, lo, hi);
    PERFORM @extschema@._hb_partition_triggers(qualified::regclass);
    PERFORM set_config('lock_timeout', saved_timeout, true);
    INSERT INTO @extschema@.hb_partitions (partition_name, parent, range_start, range_end, state)
    VALUES (name, cfg.parent, lo, hi, 'active')
    ON CONFLICT (partition_name) DO UPDATE
        SET state = 'active', range_start = excluded.range_start, range_end = excluded.range_end,
            adopted = false, dropped_at = NULL, last_error = NULL, created_at = now(),
            row_count = NULL, bytes = NULL, stats_at = NULL
        WHERE hb_partitions.parent = excluded.parent AND hb_partitions.state = 'dropped';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition name "%" is already recorded for another table', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Two managed tables cannot share a partition prefix; see hb_config.partition_prefix.';
    END IF;
    PERFORM @extschema@._hb_event(cfg.parent, 'partition.create', name,
        jsonb_build_object('range_start', lo, 'range_end', hi, 'rows_moved', moved));
    RETURN moved;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_create_slot(regclass, text, timestamptz, timestamptz, boolean) IS
    'Internal: creates, fills from the catch-all, attaches and records one partition.';
REVOKE ALL ON FUNCTION @extschema@._hb_create_slot(regclass, text, timestamptz, timestamptz, boolean) FROM PUBLIC;
