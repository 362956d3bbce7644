-- _hb_create_missing: creates partition name = [lo, hi) of parent unless it
-- exists, was archived and dropped (one dropped without an archive is
-- created again), is past the retention, or a partition
-- made by hand overlaps it (each skip says so in a NOTICE; check_overlap =
-- false when the caller knows the table has no partition made by hand;
-- locked, see _hb_create_slot).
-- Returns the rows moved out of the catch-all, or NULL when it created
-- nothing.
CREATE FUNCTION @extschema@._hb_create_missing(parent regclass, name text, lo timestamptz, hi timestamptz,
                                               check_overlap boolean DEFAULT true,
                                               locked boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_partitions');
    state text;
    archived boolean;
    other text;
BEGIN
    -- The slot is known by its range: a partition adopted under another
    -- name holds it as well as one of ours.
    SELECT p.state, p.archived_at IS NOT NULL INTO state, archived
    FROM @extschema@.hb_partitions p
    WHERE p.parent = cfg.parent AND p.range_start = lo
    ORDER BY p.state = 'dropped' LIMIT 1;
    IF state IS NOT NULL AND state <> 'dropped' THEN
        RETURN NULL;
    END IF;
    -- Its rows are in an archive: a new partition would split them.
    IF state = 'dropped' AND archived THEN
        RAISE NOTICE 'partition % was archived and dropped; not created again', name
            USING HINT = 'Restore it from its archive (hb_partitions.checksum_manifest_url) to bring its rows back.';
        RETURN NULL;
    END IF;
    IF hi <= now() - cfg.retention THEN
        RAISE NOTICE 'partition % is past the retention of % (%); not created', name, cfg.parent, cfg.retention
            USING HINT = format('Lengthen the retention first: SELECT hb_configure(%L, retention => ...).',
                                cfg.parent::text);
        RETURN NULL;
    END IF;
    -- Recorded partitions are slots, and slots do not overlap: only the
    -- others can be in the way.
    IF check_overlap THEN
    SELECT u.name INTO other
    FROM (SELECT kid.relid, kid.name FROM @extschema@._hb_children(cfg.parent) kid
          WHERE kid.name NOT IN (SELECT p.partition_name FROM @extschema@.hb_partitions p
                                 WHERE p.parent = cfg.parent AND p.state <> 'dropped')
          OFFSET 0) u
    CROSS JOIN LATERAL @extschema@.hb_partition_bounds(u.relid) b
    WHERE NOT b.is_default
      AND coalesce(b.range_start, '-infinity') < hi AND coalesce(b.range_end, 'infinity') > lo
    LIMIT 1;
    END IF;
    IF other IS NOT NULL THEN
        RAISE NOTICE 'partition % of % not created: partition % covers part of its range', name, cfg.parent, other
            USING HINT = 'A partition made by hand whose bounds are not one UTC day or month is left '
                         'alone; its rows are kept. hb_run_maintenance() reports it as unmatched.';
        RETURN NULL;
    END IF;
    RETURN @extschema@._hb_create_slot(cfg.parent, name, lo, hi, locked);
END
$$;
COMMENT ON FUNCTION @extschema@._hb_create_missing(regclass, text, timestamptz, timestamptz, boolean, boolean) IS
    'Internal: creates one partition unless it exists, was dropped, is past retention or overlaps.';
REVOKE ALL ON FUNCTION @extschema@._hb_create_missing(regclass, text, timestamptz, timestamptz, boolean, boolean) FROM PUBLIC;
