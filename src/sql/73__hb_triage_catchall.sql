-- _hb_triage_catchall: empties a managed table's catch-all partition, the
-- default partition where rows whose partition does not exist land (so the
-- application's insert never fails on a device with a wrong clock):
--   * rows older than the retention, or further ahead of now() than
--     hb_lifecycle.max_future, go to hb_quarantine with the reason;
--   * rows whose partition was archived and dropped go there too (restore
--     the partition, then re-insert them from hb_quarantine); a partition
--     dropped without an archive is simply created again;
--   * every other row gets its partition created, and is moved into it.
-- Rows under a partition made by hand that overlaps their slot stay.
-- Returns {"catchall_rows", "moved", "quarantined", "created": [...]}.
CREATE FUNCTION @extschema@._hb_triage_catchall(parent regclass)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_run_maintenance');
    settings record;
    catchall regclass;
    found_rows bigint := 0;
    moved bigint := 0;
    quarantined bigint := 0;
    created text[] := '{}';
    slot record;
    n bigint;
BEGIN
    catchall := (@extschema@._hb_parent(cfg.parent)).catchall;
    IF catchall IS NULL THEN
        RETURN jsonb_build_object('catchall_rows', 0);
    END IF;
    -- Locks in the order every creation takes them: the parent (SHARE
    -- UPDATE EXCLUSIVE; inserts do not wait for it) before the catch-all is
    -- touched at all, then, when there is work, the catch-all (ACCESS
    -- EXCLUSIVE) for the whole triage, so that no row arrives between the
    -- quarantine and the creation of partitions.
    PERFORM @extschema@._hb_ddl(format('locking %s to empty its catch-all', cfg.parent),
                                ARRAY[format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', cfg.parent)]);
    EXECUTE format('SELECT count(*) FROM ONLY %s', catchall) INTO found_rows;
    IF found_rows = 0 THEN
        RETURN jsonb_build_object('catchall_rows', 0);
    END IF;
    PERFORM @extschema@._hb_lock_for_create(cfg.parent);
    EXECUTE format('SELECT count(*) FROM ONLY %s', catchall) INTO found_rows;
    SELECT * INTO settings FROM @extschema@.hb_settings();
    quarantined := @extschema@.hb_take_catchall_rows(catchall, cfg.parent, cfg.time_column,
                       NULL, now() - cfg.retention, NULL,
                       format('older than the retention of %s (%s)', cfg.parent, cfg.retention))
                 + @extschema@.hb_take_catchall_rows(catchall, cfg.parent, cfg.time_column,
                       now() + settings.max_future, NULL, NULL,
                       format('more than hb_lifecycle.max_future (%s) in the future', justify_hours(settings.max_future)));
    FOR slot IN EXECUTE format(
        'SELECT DISTINCT s.partition_name, s.range_start, s.range_end '
        'FROM ONLY %s h, @extschema@.hb_partition_slot(%L, %L, h.%I) s '
        'WHERE h.%I >= $1 AND h.%I < $2 ORDER BY s.range_start',
        catchall, cfg.granularity, cfg.partition_prefix, cfg.time_column, cfg.time_column, cfg.time_column)
        USING now() - cfg.retention, now() + settings.max_future
    LOOP
        IF (SELECT p.state = 'dropped' AND p.archived_at IS NOT NULL FROM @extschema@.hb_partitions p
            WHERE p.parent = cfg.parent AND p.range_start = slot.range_start
            ORDER BY p.state = 'dropped' LIMIT 1) THEN
            quarantined := quarantined + @extschema@.hb_take_catchall_rows(catchall, cfg.parent,
                cfg.time_column, slot.range_start, slot.range_end, NULL,
                format('partition %s was archived and dropped', slot.partition_name));
        ELSE
            n := @extschema@._hb_create_missing(cfg.parent, slot.partition_name,
                                                slot.range_start, slot.range_end, true, true);
            IF n IS NOT NULL THEN
                moved := moved + n;
                created := created || slot.partition_name;
            END IF;
        END IF;
    END LOOP;
    IF quarantined > 0 THEN
        PERFORM @extschema@._hb_event(cfg.parent, 'quarantine', NULL,
            jsonb_build_object('rows', quarantined));
    END IF;
    RETURN jsonb_build_object('catchall_rows', found_rows, 'moved', moved,
                              'quarantined', quarantined, 'created', to_jsonb(created));
END
$$;
COMMENT ON FUNCTION @extschema@._hb_triage_catchall(regclass) IS
    'Internal: moves catch-all rows into their partitions, quarantines the implausible ones.';
REVOKE ALL ON FUNCTION @extschema@._hb_triage_catchall(regclass) FROM PUBLIC;
