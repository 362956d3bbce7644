-- _hb_may_record: whether the current role may write lifecycle rows about
-- a table: one that is managed (in hb_config) and that it owns.
CREATE FUNCTION @extschema@._hb_may_record(rel regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.hb_config c WHERE c.parent = rel)
           AND @extschema@._hb_owns(rel)
$$;
COMMENT ON FUNCTION @extschema@._hb_may_record(regclass) IS
    'Internal: true when the current role owns a managed table (row-level security of hb_lifecycle''s metadata).';
