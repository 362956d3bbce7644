-- hb_drop_partition: drops one partition that hb_partitions lists, only
-- when that is safe: it is closed, past its parent's retention, and
-- archived (unless archiving is off for the parent). DROP needs ACCESS
-- EXCLUSIVE on the parent: it runs under hb_lifecycle.ddl_lock_timeout and
-- is retried with backoff; a drop that cannot get the lock changes nothing
-- and says so. device_last_status is not touched. Returns true when it
-- dropped the partition, false when it was already dropped.
-- (_hb_drop_partition is the same with the lock wait and retries as
-- arguments, for maintenance.)
CREATE FUNCTION @extschema@._hb_drop_partition(partition text, lock_wait interval,
                                               retries integer DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    part @extschema@.hb_partitions;
    cfg @extschema@.hb_config;
    rel regclass;
BEGIN
    IF partition IS NULL THEN
        RAISE EXCEPTION 'hb_drop_partition: partition must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a name that hb_partitions lists, e.g. hb_drop_partition(''hb_2026_11_02'').';
    END IF;
    SELECT * INTO part FROM @extschema@.hb_partitions p WHERE p.partition_name = partition;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM pg_class WHERE relname = partition AND relkind IN ('r', 'p', 'f')) THEN
            RAISE EXCEPTION 'hb_drop_partition: "%" is not a partition managed by hb_lifecycle', partition
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Only partitions listed in hb_partitions are dropped here; others are yours to DROP.';
        END IF;
        RAISE EXCEPTION 'hb_drop_partition: partition "%" does not exist', partition
            USING ERRCODE = 'undefined_table',
                  HINT = 'Give the name as hb_partitions.partition_name lists it, without schema or quotes.';
    END IF;
    cfg := @extschema@._hb_managed(part.parent, 'hb_drop_partition');
    IF part.state = 'dropped' THEN
        RAISE NOTICE 'partition % was already dropped at %', partition, part.dropped_at;
        RETURN false;
    END IF;
    -- The partition is the parent's child of that name in the parent's
    -- schema (where hb_lifecycle creates them), bounds as recorded.
    SELECT k.oid::regclass INTO rel
    FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    JOIN pg_class pc ON pc.oid = i.inhparent
    WHERE i.inhparent = cfg.parent AND k.relname = partition AND k.relnamespace = pc.relnamespace;
    IF rel IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM @extschema@.hb_partition_bounds(rel) b
            WHERE b.range_start = part.range_start AND b.range_end = part.range_end) THEN
        RAISE EXCEPTION 'hb_drop_partition: the bounds of partition % are not the ones hb_partitions records', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Recorded: %s to %s.', part.range_start, part.range_end),
                  HINT = 'It was detached and attached again with other bounds: drop it yourself if that is safe.';
    END IF;
    IF rel IS NULL AND to_regclass(format('%I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n
                                                    ON n.oid = c.relnamespace WHERE c.oid = cfg.parent),
                                          partition)) IS NOT NULL THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is no longer attached to %', partition, cfg.parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'It was detached by hand: attach it again, or drop the table yourself.';
    END IF;
    IF part.range_end > now() THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is the current one or in the future', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It holds heartbeats up to %s.', part.range_end),
                  HINT = 'Only closed partitions past the retention are dropped.';
    END IF;
    IF part.range_end > now() - cfg.retention THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is not past the retention of %', partition, cfg.parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The retention is %s: it may be dropped from %s.', cfg.retention,
                                  part.range_end + cfg.retention),
                  HINT = format('Wait, or shorten the retention: SELECT hb_configure(%L, retention => ...).',
                                cfg.parent::text);
    END IF;
    IF cfg.archive AND part.state <> 'archived' THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is not archived', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its state is %s; %s keeps its partitions until they are archived.',
                                  part.state, cfg.parent),
                  HINT = format('Run SELECT hb_archive_partition(%L) first, or turn archiving off for its '
                                'table: SELECT hb_configure(%L, archive => false).', partition, cfg.parent::text);
    END IF;
    -- The locks first (the parent's, then the partition's, the order DROP
    -- takes them in), then the state again: a write that came after the
    -- archive (hb_late_rows) has committed its 'active' by the time the
    -- partition's lock is granted, and then nothing is dropped.
    IF rel IS NOT NULL THEN
        PERFORM @extschema@._hb_ddl(format('dropping partition %s', rel), ARRAY[
            format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', cfg.parent),
            format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', rel)], lock_wait, retries);
    END IF;
    -- Writes are seen only while the late-write triggers fire for every
    -- writer: if someone dropped or disabled them, a write may have gone
    -- unseen, and only a new archive (which enables them again) can tell.
    IF cfg.archive AND rel IS NOT NULL AND part.checksum_manifest_url IS NOT NULL
       AND (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgenabled = 'A'
            AND t.tgname IN ('hb_late_rows', 'hb_late_truncate')
            AND t.tgfoid = '@extschema@.hb_partition_written()'::regprocedure) <> 2 THEN
        RAISE EXCEPTION 'hb_drop_partition: the late-write triggers of partition % are missing or disabled', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A write since its archive may not have been seen; nothing was dropped.',
                  HINT = format('Archive it again first: SELECT hb_archive_partition(%L) (that enables them again).',
                                partition);
    END IF;
    IF cfg.archive AND (SELECT p.state FROM @extschema@.hb_partitions p
                        WHERE p.partition_name = partition) IS DISTINCT FROM 'archived' THEN
        RAISE EXCEPTION 'hb_drop_partition: rows were written into partition % after its archive', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Nothing was dropped; the partition is active again.',
                  HINT = format('It is archived again by the next hb_run_maintenance(), or now: SELECT hb_archive_partition(%L).',
                                partition);
    END IF;
    UPDATE @extschema@.hb_partitions p SET state = 'dropped', dropped_at = now()
    WHERE p.partition_name = partition;
    IF rel IS NOT NULL THEN
        EXECUTE format('DROP TABLE %s', rel);
    END IF;
    PERFORM @extschema@._hb_event(cfg.parent, 'drop', partition,
        jsonb_build_object('rows', part.row_count, 'bytes', part.bytes, 'archived', part.state = 'archived',
                           'range_start', part.range_start, 'range_end', part.range_end,
                           'table_found', rel IS NOT NULL));
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_drop_partition(text, interval, integer) IS
    'Internal: hb_drop_partition with a lock wait of its own.';
REVOKE ALL ON FUNCTION @extschema@._hb_drop_partition(text, interval, integer) FROM PUBLIC;

CREATE FUNCTION @extschema@.hb_drop_partition(partition text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Ownership first: a role granted this function alone gets that error,
    -- not one about the internal function.
    PERFORM @extschema@._hb_managed(p.parent, 'hb_drop_partition')
    FROM @extschema@.hb_partitions p WHERE p.partition_name = partition;
    RETURN @extschema@._hb_drop_partition(partition, NULL);
END
$$;
COMMENT ON FUNCTION @extschema@.hb_drop_partition(text) IS
    'Drops a closed partition past retention, only once it is archived (unless archiving is off).';
REVOKE ALL ON FUNCTION @extschema@.hb_drop_partition(text) FROM PUBLIC;
