-- 0.1 -> 0.2: the owners of the tables managed under 0.1 may run the
-- lifecycle, as hb_manage() lets the owners of tables it registers from
-- now on. (Their catch-all partitions and hb_partitions rows are made by
-- the first hb_create_ahead() or hb_run_maintenance(), not here: objects
-- an extension script creates would belong to the extension.)
DO $$
DECLARE
    owner_name text;
BEGIN
    FOR owner_name IN
        SELECT DISTINCT r.rolname
        FROM @extschema@.hb_config c
        JOIN pg_catalog.pg_class k ON k.oid = c.parent
        JOIN pg_catalog.pg_roles r ON r.oid = k.relowner
        WHERE NOT r.rolsuper
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I',
                       (SELECT string_agg(f::text, ', ') FROM @extschema@._hb_lifecycle_functions() f),
                       owner_name);
    END LOOP;
END
$$;
