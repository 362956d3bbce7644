-- hb_unmanage: the inverse of hb_manage; keeps every table and row.
CREATE FUNCTION @extschema@.hb_unmanage(parent regclass)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_unmanage';
COMMENT ON FUNCTION @extschema@.hb_unmanage(regclass) IS
    'Removes hb_lifecycle''s triggers and config row from a managed table; keeps the tables.';
REVOKE ALL ON FUNCTION @extschema@.hb_unmanage(regclass) FROM PUBLIC;
