-- hb_vacuum_later: internal to maintenance. VACUUM cannot run inside a
-- function, so a background worker runs VACUUM (ANALYZE) on the relations at
-- top level, as the calling role; returns how many were handed over.
CREATE FUNCTION @extschema@.hb_vacuum_later(relations regclass[])
RETURNS integer
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_vacuum_later';
COMMENT ON FUNCTION @extschema@.hb_vacuum_later(regclass[]) IS
    'Internal: VACUUM (ANALYZE) the relations from a background worker.';
REVOKE ALL ON FUNCTION @extschema@.hb_vacuum_later(regclass[]) FROM PUBLIC;
