-- _hb_children: the partitions directly under parent, by name (a set the
-- lifecycle joins to hb_partitions by hash, not one catalog probe per row).
CREATE FUNCTION @extschema@._hb_children(parent regclass, OUT relid regclass, OUT name text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.oid::regclass, k.relname::text
    FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = parent
$$;
COMMENT ON FUNCTION @extschema@._hb_children(regclass) IS
    'Internal: the partitions directly under a table, with their names.';
