-- hb_partition_bounds: a partition's range bounds as timestamptz, read from
-- the catalog (NULL for MINVALUE / MAXVALUE); no row for a table that is not
-- a range partition on one timestamptz column.
CREATE FUNCTION @extschema@.hb_partition_bounds(
    partition regclass,
    OUT range_start timestamptz, OUT range_end timestamptz, OUT is_default boolean)
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'hb_partition_bounds';
COMMENT ON FUNCTION @extschema@.hb_partition_bounds(regclass) IS
    'Bounds of a partition of a table partitioned by range of a timestamptz column.';
