-- _hb_owns: whether the current role owns (is a member of the owner of) a
-- table, PostgreSQL's own ownership rule. The row-level security policies
-- of the metadata tables use it: a table's owner may record the lifecycle
-- of that table's partitions, and no one else's.
CREATE FUNCTION @extschema@._hb_owns(rel regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT pg_has_role(c.relowner, 'USAGE')
                     FROM pg_class c WHERE c.oid = rel), false)
$$;
COMMENT ON FUNCTION @extschema@._hb_owns(regclass) IS
    'Internal: true when the current role owns the table (row-level security of hb_lifecycle''s metadata).';
