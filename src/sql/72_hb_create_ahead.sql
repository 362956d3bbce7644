-- hb_create_ahead: creates the missing partitions from today to today +
-- premake (each parent's own premake when NULL), for one managed table or
-- for every one the current role owns, after giving it its catch-all
-- partition if it has none and adopting the partitions made by hand that
-- fit the scheme. Idempotent: a second call creates nothing. Emits a
-- partition.create event per partition.
CREATE FUNCTION @extschema@.hb_create_ahead(parent regclass DEFAULT NULL, premake integer DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config;
    ahead integer;
BEGIN
    IF premake IS NOT NULL AND (premake < 0 OR premake > 1000) THEN
        RAISE EXCEPTION 'hb_create_ahead: premake must be between 0 and 1000, not %', premake
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'premake is how many partitions to create ahead of today.';
    END IF;
    IF parent IS NOT NULL THEN
        PERFORM @extschema@._hb_managed(parent, 'hb_create_ahead');
    END IF;
    FOR cfg IN
        SELECT * FROM @extschema@.hb_config c
        WHERE (hb_create_ahead.parent IS NULL OR c.parent = hb_create_ahead.parent)
          AND @extschema@._hb_owns(c.parent)
        ORDER BY c.parent::text
    LOOP
        ahead := coalesce(premake, cfg.premake);
        PERFORM @extschema@._hb_ensure_catchall(cfg.parent);
        PERFORM @extschema@._hb_sync_partitions(cfg.parent);
        RETURN QUERY SELECT @extschema@._hb_create_range(
            cfg.parent, now(),
            now() + ahead * CASE cfg.granularity WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_create_ahead(regclass, integer) IS
    'Creates the missing partitions from today to today + premake; idempotent.';
REVOKE ALL ON FUNCTION @extschema@.hb_create_ahead(regclass, integer) FROM PUBLIC;
