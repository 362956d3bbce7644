-- _hb_ensure_catchall: gives a managed table its catch-all partition,
-- <prefix>_default, unless it has a default partition (which then serves).
-- hb_create_ahead and maintenance call it, so a table managed before 0.2,
-- or whose catch-all was dropped, gets one.
CREATE FUNCTION @extschema@._hb_ensure_catchall(parent regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_ahead');
    facts record := @extschema@._hb_parent(parent);
    catchall text;
    stmts text[];
BEGIN
    IF facts.catchall IS NULL THEN
        catchall := format('%I.%I', facts.nsp, cfg.partition_prefix || '_default');
        PERFORM @extschema@._hb_require_create(cfg.parent);
        IF to_regclass(catchall) IS NOT NULL THEN
            RAISE EXCEPTION 'cannot create the catch-all partition %: the name is taken', catchall
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Pass another prefix (partition_prefix => ...), or attach that table as the default partition.';
        END IF;
        stmts := ARRAY[format('CREATE TABLE %s PARTITION OF %s DEFAULT', catchall, cfg.parent)];
        IF facts.owner_name <> current_user THEN
            stmts := stmts || format('ALTER TABLE %s OWNER TO %I', catchall, facts.owner_name);
        END IF;
        PERFORM @extschema@._hb_ddl(format('creating catch-all partition %s', catchall), stmts);
        PERFORM @extschema@._hb_partition_triggers(catchall::regclass);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_ensure_catchall(regclass) IS
    'Internal: creates a managed table''s catch-all partition if it has none.';
REVOKE ALL ON FUNCTION @extschema@._hb_ensure_catchall(regclass) FROM PUBLIC;
