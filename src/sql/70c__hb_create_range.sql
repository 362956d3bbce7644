-- _hb_create_range: creates the missing partitions of parent from the slot
-- holding range_from to the one holding range_to (see _hb_create_missing
-- for what it skips); returns the names it created. Callers check the
-- arguments and bring hb_partitions up to date first.
CREATE FUNCTION @extschema@._hb_create_range(parent regclass, range_from timestamptz, range_to timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_partitions');
    slot record;
    locked boolean := false;
    -- Partitions made by hand (not recorded) are the only ones a slot can
    -- overlap; most tables have none, and then no slot needs the check.
    handmade boolean := EXISTS (
        SELECT 1 FROM @extschema@._hb_children(cfg.parent) kid
        CROSS JOIN LATERAL @extschema@.hb_partition_bounds(kid.relid) b
        WHERE NOT b.is_default
          AND kid.name NOT IN (SELECT p.partition_name FROM @extschema@.hb_partitions p
                               WHERE p.parent = cfg.parent AND p.state <> 'dropped'));
BEGIN
    SELECT * INTO slot FROM @extschema@.hb_partition_slot(cfg.granularity, cfg.partition_prefix, range_from);
    WHILE slot.range_start <= range_to LOOP
        -- Before the first partition it will create, the range takes the
        -- locks every creation needs, once (under ddl_lock_timeout, with
        -- retries): they are held until commit anyway, and the partitions
        -- then need no lock wait and no subtransaction each.
        IF NOT locked AND NOT EXISTS (SELECT 1 FROM @extschema@.hb_partitions p
                                      WHERE p.parent = cfg.parent AND p.range_start = slot.range_start
                                        AND p.state <> 'dropped') THEN
            locked := @extschema@._hb_lock_for_create(cfg.parent);
        END IF;
        IF @extschema@._hb_create_missing(cfg.parent, slot.partition_name, slot.range_start,
                                          slot.range_end, handmade, locked) IS NOT NULL THEN
            RETURN NEXT slot.partition_name;
        END IF;
        SELECT * INTO slot
        FROM @extschema@.hb_partition_slot(cfg.granularity, cfg.partition_prefix, slot.range_end);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_create_range(regclass, timestamptz, timestamptz) IS
    'Internal: creates the missing partitions between two instants.';
REVOKE ALL ON FUNCTION @extschema@._hb_create_range(regclass, timestamptz, timestamptz) FROM PUBLIC;
