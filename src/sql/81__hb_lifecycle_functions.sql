-- _hb_lifecycle_functions: the functions a managed table's owner may run
-- (the lifecycle and the internal functions it calls as its caller), none
-- of them executable by PUBLIC. hb_manage() grants EXECUTE on them to the
-- owner of the table it registers.
CREATE FUNCTION @extschema@._hb_lifecycle_functions()
RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f::regprocedure FROM unnest(ARRAY[
        '@extschema@.hb_create_ahead(regclass, integer)',
        '@extschema@.hb_create_partitions(regclass, timestamptz, timestamptz)',
        '@extschema@.hb_drop_partition(text)',
        '@extschema@._hb_drop_partition(text, interval, integer)',
        '@extschema@.hb_run_maintenance()',
        '@extschema@.hb_configure(regclass, integer, interval, boolean)',
        '@extschema@._hb_event(regclass, text, text, jsonb)',
        '@extschema@._hb_ddl(text, text[], interval, integer)',
        '@extschema@._hb_sync_partitions(regclass)',
        '@extschema@._hb_partition_triggers(regclass)',
        '@extschema@._hb_create_slot(regclass, text, timestamptz, timestamptz, boolean)',
        '@extschema@._hb_create_missing(regclass, text, timestamptz, timestamptz, boolean, boolean)',
        '@extschema@._hb_lock_for_create(regclass)',
        '@extschema@._hb_create_range(regclass, timestamptz, timestamptz)',
        '@extschema@._hb_triage_catchall(regclass)',
        '@extschema@._hb_refresh_stats(regclass)',
        '@extschema@._hb_ensure_catchall(regclass)',
        '@extschema@.hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text)',
        '@extschema@.hb_vacuum_later(regclass[])',
        '@extschema@.hb_count_event(text)',
        '@extschema@.hb_archive_partition(text, boolean)',
        '@extschema@.hb_restore_partition(text)',
        '@extschema@.hb_cancel_job(bigint)',
        '@extschema@._hb_submit_job(text, text, boolean)',
        '@extschema@._hb_queue_job(text, text)',
        '@extschema@._hb_require_worker()',
        '@extschema@._hb_job_record(text, text, oid)',
        '@extschema@._hb_wake_worker_at_commit()',
        '@extschema@._hb_cancel_running(bigint)',
        '@extschema@.hb_reconcile(interval, integer)',
        '@extschema@._hb_has_rows(regclass)',
        '@extschema@._hb_ls_columns(regclass)',
        '@extschema@._hb_lock_device_changes(regclass)',
        '@extschema@.hb_backfill_last_status(interval, regclass, integer, bigint)',
        '@extschema@._hb_backfill_begin(interval, regclass, integer)',
        '@extschema@._hb_backfill_next(regclass, jsonb)',
        '@extschema@._hb_backfill_step(regclass, integer)',
        '@extschema@._hb_require_nonatomic(text)',
        '@extschema@.hb_compare_read_paths(integer, regclass)'
    ]) AS f
$$;
COMMENT ON FUNCTION @extschema@._hb_lifecycle_functions() IS
    'Internal: the functions hb_manage() lets a managed table''s owner run.';
REVOKE ALL ON FUNCTION @extschema@._hb_lifecycle_functions() FROM PUBLIC;
