-- hb_archive_partition: archives one closed partition (see docs/archive.md)
-- through the worker. wait => true (the default) waits for the job and
-- returns the partition's state after it: 'archived', 'archive_failed'
-- (with a WARNING that says why; hb_partitions.last_error keeps it), or
-- 'active' when rows changed in the partition while it was archived (it
-- is then archived again by the next maintenance). wait => false queues
-- the job when this transaction commits and returns 'queued'. On an
-- archived partition it checks the archive against its manifest and
-- uploads nothing when it matches. Only the table's owner (or a superuser)
-- may archive its partitions.
CREATE FUNCTION @extschema@.hb_archive_partition(partition text, wait boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part @extschema@.hb_partitions;
    r record;
BEGIN
    part := @extschema@._hb_archivable(partition, 'hb_archive_partition');
    IF part.state = 'dropped' THEN
        RAISE EXCEPTION 'hb_archive_partition: partition % was dropped', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN part.checksum_manifest_url IS NOT NULL
                                THEN format('Its archive is %s.', part.checksum_manifest_url)
                                ELSE 'It was dropped without an archive.' END,
                  HINT = 'Restore it first with SELECT hb_restore_partition(...) if it was archived.';
    END IF;
    IF part.range_end > now() THEN
        RAISE EXCEPTION 'hb_archive_partition: partition % is the current one or in the future', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It takes heartbeats until %s.', part.range_end),
                  HINT = 'Only closed partitions are archived; hb_run_maintenance() archives each once it closes.';
    END IF;
    IF wait IS NOT TRUE THEN
        PERFORM @extschema@._hb_queue_job('archive', partition);
        RETURN 'queued';
    END IF;
    r := @extschema@._hb_submit_job('archive', partition, true);
    IF r.state = 'failed' THEN
        RAISE EXCEPTION 'hb_archive_partition: %', r.message
            USING ERRCODE = coalesce(r.sqlstate, 'XX000');
    END IF;
    IF r.state = 'archive_failed' THEN
        RAISE WARNING 'archive of partition % failed: %', partition, r.message
            USING HINT = 'hb_partitions.last_error keeps the reason; hb_run_maintenance() tries again with backoff.';
    ELSIF r.state = 'cancelled' THEN
        RAISE WARNING 'archive of partition % was cancelled', partition;
    ELSIF r.state = 'queued' THEN
        RAISE WARNING 'the worker stopped while it archived partition %', partition
            USING DETAIL = 'The job is queued again and runs once the worker is back (hb_jobs shows it).';
    END IF;
    RETURN r.state;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_archive_partition(text, boolean) IS
    'Archives one closed partition (CSV, gzip, SHA-256, manifest) and returns its state.';
REVOKE ALL ON FUNCTION @extschema@.hb_archive_partition(text, boolean) FROM PUBLIC;
