-- _hb_parent: what the lifecycle needs to know of a managed table from the
-- catalog: its schema, its owner, and its catch-all (default) partition, or
-- NULL when it has none.
CREATE FUNCTION @extschema@._hb_parent(parent regclass,
    OUT nsp text, OUT owner_name text, OUT catchall regclass)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nspname::text, pg_get_userbyid(c.relowner)::text, nullif(pt.partdefid, 0)::regclass
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
    WHERE c.oid = parent
$$;
COMMENT ON FUNCTION @extschema@._hb_parent(regclass) IS
    'Internal: schema, owner and catch-all partition of a partitioned table.';
