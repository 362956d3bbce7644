-- _hb_require_create: a clear error unless the current role may create the
-- partitions of parent (they go in the parent's schema, and the lifecycle
-- runs with its caller's rights).
CREATE FUNCTION @extschema@._hb_require_create(parent regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.oid = parent);
BEGIN
    IF NOT has_schema_privilege(nsp, 'CREATE') THEN
        RAISE EXCEPTION 'cannot create partitions of %: role "%" may not create tables in schema "%"',
            parent, current_user, nsp
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('GRANT CREATE ON SCHEMA %I TO %I; or run the lifecycle as a superuser '
                                '(hb_schedule() called by a superuser runs it as one).', nsp, current_user);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_require_create(regclass) IS
    'Internal: an error unless the current role may create partitions of a table.';
