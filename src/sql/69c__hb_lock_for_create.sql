-- _hb_lock_for_create: takes the locks that creating partitions of parent
-- needs: SHARE UPDATE EXCLUSIVE on parent (what ATTACH PARTITION takes; the
-- application's inserts do not wait for it) and ACCESS EXCLUSIVE on its
-- catch-all partition (inserts of rows that have no partition wait for it),
-- in the order ATTACH takes them, under hb_lifecycle.ddl_lock_timeout with
-- retries (_hb_ddl), after checking that the current role may create
-- them (_hb_require_create). Returns true.
CREATE FUNCTION @extschema@._hb_lock_for_create(parent regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    catchall regclass := (@extschema@._hb_parent(parent)).catchall;
    -- ONLY: the partitions themselves are not locked (a VACUUM of one must
    -- not stand in the way).
    stmts text[] := ARRAY[format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', parent)];
BEGIN
    PERFORM @extschema@._hb_require_create(parent);
    IF catchall IS NOT NULL THEN
        stmts := stmts || format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', catchall);
    END IF;
    PERFORM @extschema@._hb_ddl(format('locking %s to create partitions', parent), stmts);
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_lock_for_create(regclass) IS
    'Internal: the locks creating partitions needs, under ddl_lock_timeout.';
REVOKE ALL ON FUNCTION @extschema@._hb_lock_for_create(regclass) FROM PUBLIC;
