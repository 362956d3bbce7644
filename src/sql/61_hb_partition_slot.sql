-- hb_partition_slot: the name and UTC bounds of the partition of the scheme
-- (granularity, prefix) that holds an instant. Pure arithmetic in C++
-- (src/core/partition_scheme), the same in every session and time zone.
CREATE FUNCTION @extschema@.hb_partition_slot(
    granularity text, prefix text, at timestamptz,
    OUT partition_name text, OUT range_start timestamptz, OUT range_end timestamptz)
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'hb_partition_slot';
COMMENT ON FUNCTION @extschema@.hb_partition_slot(text, text, timestamptz) IS
    'Name and UTC bounds of the day or month partition that holds an instant.';
