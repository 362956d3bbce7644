-- _hb_managed: the hb_config row of a parent the current role may run the
-- lifecycle on; a clear error for a NULL, unmanaged or not-owned parent.
CREATE FUNCTION @extschema@._hb_managed(parent regclass, caller text)
RETURNS @extschema@.hb_config
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
BEGIN
    IF parent IS NULL THEN
        RAISE EXCEPTION '%: parent must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a table that hb_manage() registered; hb_config lists them.';
    END IF;
    SELECT * INTO cfg FROM @extschema@.hb_config c WHERE c.parent = _hb_managed.parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: "%" is not managed by hb_lifecycle', caller, parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Register it first: SELECT hb_manage(%L).', parent::text);
    END IF;
    IF NOT @extschema@._hb_owns(parent) THEN
        RAISE EXCEPTION '%: must be owner of table %', caller, parent
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The lifecycle of a table''s partitions is its owner''s (or a superuser''s) to run.';
    END IF;
    RETURN cfg;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_managed(regclass, text) IS
    'Internal: the hb_config row of a managed table the current role owns, or an error.';
-- Executable by anyone: it tells only what hb_config shows anyone, and a
-- role granted one lifecycle function gets its ownership error from here.
