-- hb_configure: changes premake, retention or archive of a managed table
-- (NULL keeps the current value) and returns its hb_config row. Shortening
-- the retention drops nothing by itself: the next hb_run_maintenance() drops
-- what is then past it, and only once archived (when archive is on).
CREATE FUNCTION @extschema@.hb_configure(
    parent regclass, premake integer DEFAULT NULL, retention interval DEFAULT NULL,
    archive boolean DEFAULT NULL)
RETURNS @extschema@.hb_config
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_configure');
    due bigint;
BEGIN
    IF premake IS NOT NULL AND (premake < 0 OR premake > 1000) THEN
        RAISE EXCEPTION 'hb_configure: premake must be between 0 and 1000, not %', premake
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention IS NOT NULL AND retention <= interval '0' THEN
        RAISE EXCEPTION 'hb_configure: retention must be a positive interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example retention => ''90 days''.';
    END IF;
    UPDATE @extschema@.hb_config c
    SET premake = coalesce(hb_configure.premake, c.premake),
        retention = coalesce(hb_configure.retention, c.retention),
        archive = coalesce(hb_configure.archive, c.archive)
    WHERE c.parent = cfg.parent
    RETURNING * INTO cfg;
    SELECT count(*) INTO due FROM @extschema@.hb_partitions p
    WHERE p.parent = cfg.parent AND p.state <> 'dropped' AND p.range_end <= now() - cfg.retention;
    IF due > 0 THEN
        RAISE NOTICE '% partition(s) of % are now past the retention of %', due, cfg.parent, cfg.retention
            USING DETAIL = CASE WHEN cfg.archive
                                THEN 'hb_run_maintenance() drops each of them once it is archived.'
                                ELSE 'Archiving is off: the next hb_run_maintenance() drops them.' END;
    END IF;
    RETURN cfg;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_configure(regclass, integer, interval, boolean) IS
    'Changes premake, retention or archive of a managed table.';
REVOKE ALL ON FUNCTION @extschema@.hb_configure(regclass, integer, interval, boolean) FROM PUBLIC;
