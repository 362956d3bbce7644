-- hb_create_partitions: creates every missing partition of a managed table
-- from the one holding range_from to the one holding range_to (both
-- included), e.g. before loading history. Skips, with a NOTICE, a slot that
-- is past the retention, one that was archived and dropped (restore it
-- instead), and one that a partition made by hand overlaps. Returns the
-- names of the partitions it created.
CREATE FUNCTION @extschema@.hb_create_partitions(parent regclass, range_from timestamptz, range_to timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_partitions');
BEGIN
    IF range_from IS NULL OR range_to IS NULL THEN
        RAISE EXCEPTION 'hb_create_partitions: range_from and range_to must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF range_from > range_to THEN
        RAISE EXCEPTION 'hb_create_partitions: range_from (%) is after range_to (%)', range_from, range_to
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(range_from) OR NOT isfinite(range_to) THEN
        RAISE EXCEPTION 'hb_create_partitions: the range must be finite'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF range_to > range_from + 1001 * (CASE cfg.granularity WHEN 'day' THEN interval '1 day'
                                                           ELSE interval '1 month' END) THEN
        RAISE EXCEPTION 'hb_create_partitions: % to % spans more than 1001 partitions', range_from, range_to
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Create a long range in several calls.';
    END IF;
    PERFORM @extschema@._hb_sync_partitions(cfg.parent);
    RETURN QUERY SELECT @extschema@._hb_create_range(cfg.parent, range_from, range_to);
END
$$;
COMMENT ON FUNCTION @extschema@.hb_create_partitions(regclass, timestamptz, timestamptz) IS
    'Creates the missing partitions of a managed table between two instants.';
REVOKE ALL ON FUNCTION @extschema@.hb_create_partitions(regclass, timestamptz, timestamptz) FROM PUBLIC;
