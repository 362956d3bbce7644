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

-- _hb_others_name: whether name is a partition name of the scheme of a
-- managed table other than parent (<its prefix>_yyyy_mm_dd or _yyyy_mm):
-- such a name is that table's to take, never another's.
CREATE FUNCTION @extschema@._hb_others_name(parent regclass, name text) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    -- Prefixes are lower-case letters, digits and '_' (hb_manage checks):
    -- nothing in them is special to a regular expression.
    SELECT EXISTS (SELECT 1 FROM @extschema@.hb_config o
                   WHERE o.parent <> _hb_others_name.parent
                     AND name ~ ('^' || o.partition_prefix || '_[0-9]{4}_[0-9]{2}(_[0-9]{2})?$'))
$$;
COMMENT ON FUNCTION @extschema@._hb_others_name(regclass, text) IS
    'Internal: true when a name belongs to the partition scheme of another managed table.';
