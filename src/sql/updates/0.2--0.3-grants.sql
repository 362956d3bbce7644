-- 0.2 -> 0.3: the owners of the tables managed under 0.2 may archive and
-- restore their partitions, as hb_manage() lets the owners of tables it
-- registers from now on.
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
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I',
                       (SELECT string_agg(f::text, ', ') FROM @extschema@._hb_lifecycle_functions() f),
                       owner_name);
    END LOOP;
END
$$;
