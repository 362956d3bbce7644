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
BEGIN
    SELECT * INTO slot FROM @extschema@.hb_partition_slot(cfg.granularity, cfg.partition_prefix, range_from);
    WHILE slot.range_start <= range_to LOOP
        IF @extschema@._hb_create_missing(cfg.parent, slot.partition_name, slot.range_start,
                                          slot.range_end) IS NOT NULL THEN
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
