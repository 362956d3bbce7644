-- hb_take_catchall_rows: internal to maintenance. Moves the rows of a
-- catch-all partition with lo <= time < hi into target (a table about to be
-- attached as their partition), or with target NULL into hb_quarantine with
-- reason; as the catch-all's owner, in a security-restricted operation.
CREATE FUNCTION @extschema@.hb_take_catchall_rows(
    catchall regclass, parent regclass, time_column name,
    lo timestamptz, hi timestamptz, target regclass, reason text)
RETURNS bigint
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'hb_take_catchall_rows';
COMMENT ON FUNCTION @extschema@.hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text) IS
    'Internal: moves or quarantines rows of a catch-all partition.';
REVOKE ALL ON FUNCTION @extschema@.hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text) FROM PUBLIC;
