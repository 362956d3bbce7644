-- The steps of an archive job, run by the worker (as the bootstrap
-- superuser) in short transactions of their own; the export and the upload
-- run between them, in C++ (archive.cpp):
--   _hb_archive_begin   checks the job again (the requester must still own
--                       the table), marks the partition 'archiving', makes
--                       sure late writes are seen (below), records
--                       archive.start, and says what to export;
--   _hb_archive_check   compares an archive's manifest with the partition;
--   _hb_archive_done    records the archive: 'archived', unless rows
--                       changed meanwhile;
--   _hb_archive_failed  records a failure (or a cancel) and says whether
--                       an alert is due.
-- Late writes: a row written into a partition after its export's snapshot
-- would be missing from the archive, and lost when the partition is
-- dropped. Before the export, the partition gets two triggers
-- (hb_late_rows, hb_late_truncate) that put it back to 'active' when
-- anything writes it while it is being archived or once it is archived.
-- Begin takes a SHARE lock on the partition, which waits for the writers
-- already in it, so every write the export does not see fires them while
-- the state is 'archiving'; hb_drop_partition reads the state only once it
-- holds the partition's lock.
CREATE FUNCTION @extschema@._hb_archive_begin(job bigint,
    OUT partition_oid oid, OUT partition_name text, OUT parent_path text, OUT owner oid,
    OUT range_start text, OUT range_end text,
    OUT prior_state text, OUT manifest_url text, OUT upload_key text, OUT upload_id text,
    OUT extension_version text, OUT table_bytes bigint)
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
    rel regclass;
    facts record;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job FOR UPDATE;
    SELECT * INTO part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition "%" is no longer in hb_partitions', j.partition_name
            USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = part.parent
                   AND (pg_has_role(j.requested_by, c.relowner, 'USAGE')
                        OR (SELECT rolsuper FROM pg_roles WHERE oid = j.requested_by))) THEN
        RAISE EXCEPTION 'the role that asked for job % does not own table %', job, part.parent
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    facts := @extschema@._hb_parent(part.parent);
    rel := to_regclass(format('%I.%I', facts.nsp, part.partition_name));
    IF part.state = 'dropped' OR rel IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = rel AND inhparent = part.parent) THEN
        RAISE EXCEPTION 'partition % is not attached to %', part.partition_name, part.parent
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF part.range_end > now() THEN
        RAISE EXCEPTION 'partition % is not closed yet', part.partition_name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) <> 'r' THEN
        RAISE EXCEPTION 'partition % is not a plain table (it is partitioned or foreign)', rel
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'hb_lifecycle archives plain tables only; archive and drop this one yourself.';
    END IF;
    -- SHARE waits for the writers already in the partition (whose rows the
    -- export's snapshot could miss, and whose triggers may have fired while
    -- the state was still 'active', doing nothing); every later write fires
    -- the triggers and sees 'archiving'.
    PERFORM @extschema@._hb_ddl(format('waiting for the writers of partition %s', rel), ARRAY[
        format('LOCK TABLE ONLY %s IN SHARE MODE', rel)]);
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'hb_late_rows')
       OR NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'hb_late_truncate') THEN
        UPDATE @extschema@.hb_partitions p SET sha256 = NULL WHERE p.partition_name = part.partition_name;
        PERFORM @extschema@._hb_ddl(format('watching partition %s for late rows', rel), ARRAY[
            format('DROP TRIGGER IF EXISTS hb_late_rows ON %s', rel),
            format('DROP TRIGGER IF EXISTS hb_late_truncate ON %s', rel),
            format('CREATE TRIGGER hb_late_rows AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION @extschema@.hb_partition_written()', rel),
            format('CREATE TRIGGER hb_late_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.hb_partition_written()', rel)]);
    END IF;
    -- ALWAYS: writes in replica mode (logical replication's apply,
    -- pg_restore --disable-triggers) fire them too; this also enables
    -- them again if someone disabled them.
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel
               AND t.tgname IN ('hb_late_rows', 'hb_late_truncate') AND t.tgenabled <> 'A') THEN
        -- Writes may have gone unseen meanwhile: the recorded archive is
        -- not to be trusted any more (this job exports the table again).
        UPDATE @extschema@.hb_partitions p SET sha256 = NULL WHERE p.partition_name = part.partition_name;
        PERFORM @extschema@._hb_ddl(format('enabling the late-row triggers of %s', rel), ARRAY[
            format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hb_late_rows', rel),
            format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hb_late_truncate', rel)]);
    END IF;
    UPDATE @extschema@._hb_jobs SET state = 'running', started_at = now(), attempts = attempts + 1,
        prior_state = coalesce(j.prior_state, CASE WHEN part.state = 'archiving' THEN 'active' ELSE part.state END)
    WHERE id = job
    RETURNING _hb_jobs.prior_state INTO prior_state;
    UPDATE @extschema@.hb_partitions p SET state = 'archiving', attempts = p.attempts + 1
    WHERE p.partition_name = part.partition_name;
    PERFORM @extschema@._hb_event(part.parent, 'archive.start', part.partition_name,
        jsonb_build_object('job', job, 'attempt', part.attempts + 1, 'verify', part.state = 'archived'));

    partition_oid := rel;
    partition_name := part.partition_name;
    parent_path := (SELECT n.nspname || '.' || c.relname FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = part.parent);
    owner := (SELECT relowner FROM pg_class WHERE oid = part.parent);
    range_start := to_char(part.range_start, 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
    range_end := to_char(part.range_end, 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
    manifest_url := part.checksum_manifest_url;
    upload_key := j.upload_key;
    upload_id := j.upload_id;
    extension_version := (SELECT extversion FROM pg_extension WHERE extname = 'hb_lifecycle');
    table_bytes := pg_relation_size(rel);
END
$$;
COMMENT ON FUNCTION @extschema@._hb_archive_begin(bigint) IS
    'Internal (the worker): starts an archive job.';
REVOKE ALL ON FUNCTION @extschema@._hb_archive_begin(bigint) FROM PUBLIC;

-- _hb_archive_check: whether an archive's manifest (its text) matches the
-- partition as it is now: same partition, bounds and columns, and as many
-- rows. Returns the files it lists (name, bytes, sha256), for the worker
-- to check that each object exists with that size.
CREATE FUNCTION @extschema@._hb_archive_check(job bigint, manifest text,
    OUT matches boolean, OUT reason text, OUT files jsonb, OUT row_count bigint, OUT csv_bytes bigint,
    OUT sha256 text)
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
    m jsonb;
    now_rows bigint;
    cols jsonb;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job;
    SELECT * INTO STRICT part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name;
    matches := false;
    BEGIN
        m := manifest::jsonb;
    EXCEPTION WHEN OTHERS THEN
        reason := 'the manifest is not valid JSON';
        RETURN;
    END;
    -- Only the archive hb_partitions records is reused: after a late write
    -- (which forgets the recorded SHA-256) the partition must be exported
    -- again, even where its row count did not change (an UPDATE).
    IF part.sha256 IS NULL OR m->'files'->0->>'sha256' IS DISTINCT FROM part.sha256 THEN
        reason := 'the manifest is not the archive hb_partitions records';
        RETURN;
    END IF;
    IF m->>'partition' IS DISTINCT FROM part.partition_name THEN
        reason := 'the manifest is of another partition';
        RETURN;
    END IF;
    IF (m->>'range_start')::timestamptz IS DISTINCT FROM part.range_start
       OR (m->>'range_end')::timestamptz IS DISTINCT FROM part.range_end THEN
        reason := 'the manifest has other bounds';
        RETURN;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('name', a.attname::text, 'type', format_type(a.atttypid, a.atttypmod))
                     ORDER BY a.attnum)
    INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = (SELECT k.oid FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
                        WHERE i.inhparent = part.parent AND k.relname = part.partition_name)
      AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
    IF m->'columns' IS DISTINCT FROM cols THEN
        reason := 'the manifest has other columns';
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM ONLY %s',
                   (SELECT k.oid::regclass FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
                    WHERE i.inhparent = part.parent AND k.relname = part.partition_name))
    INTO now_rows;
    IF now_rows IS DISTINCT FROM (m->>'row_count')::bigint THEN
        reason := format('the partition has %s rows, the manifest %s', now_rows, m->>'row_count');
        RETURN;
    END IF;
    IF jsonb_typeof(m->'files') IS DISTINCT FROM 'array' OR jsonb_array_length(m->'files') = 0 THEN
        reason := 'the manifest lists no files';
        RETURN;
    END IF;
    matches := true;
    files := m->'files';
    row_count := now_rows;
    csv_bytes := (m->>'bytes')::bigint;
    sha256 := m->'files'->0->>'sha256';
END
$$;
COMMENT ON FUNCTION @extschema@._hb_archive_check(bigint, text) IS
    'Internal (the worker): whether an archive''s manifest matches its partition.';
REVOKE ALL ON FUNCTION @extschema@._hb_archive_check(bigint, text) FROM PUBLIC;

CREATE FUNCTION @extschema@._hb_archive_done(job bigint, rows bigint, csv_bytes bigint,
    stored_bytes bigint, sha256 text, manifest_url text, uploaded boolean, seconds double precision)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
    final_state text;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job FOR UPDATE;
    -- A late write (hb_late_rows) may have put the partition back to
    -- 'active' meanwhile: then this archive is not the partition's.
    UPDATE @extschema@.hb_partitions p
    SET state = 'archived', row_count = rows, sha256 = _hb_archive_done.sha256,
        checksum_manifest_url = manifest_url,
        archived_at = CASE WHEN uploaded OR p.archived_at IS NULL THEN now() ELSE p.archived_at END,
        last_error = NULL,
        last_attempt_at = now()
    WHERE p.partition_name = j.partition_name AND p.state = 'archiving'
    RETURNING p.state INTO final_state;
    IF final_state IS NULL THEN
        SELECT * INTO STRICT part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name;
        final_state := part.state;
    END IF;
    UPDATE @extschema@._hb_jobs SET state = 'done', finished_at = now(), rows = _hb_archive_done.rows,
        bytes = stored_bytes, result = final_state, last_error = NULL,
        upload_key = NULL, upload_id = NULL
    WHERE id = job;
    PERFORM @extschema@._hb_event(j.parent, 'archive.end', j.partition_name,
        jsonb_build_object('job', job, 'rows', rows, 'csv_bytes', csv_bytes, 'bytes', stored_bytes,
                           'sha256', sha256, 'manifest', manifest_url, 'uploaded', uploaded,
                           'seconds', round(seconds::numeric, 3), 'state', final_state));
    RETURN final_state;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_archive_done(bigint, bigint, bigint, bigint, text, text, boolean, double precision) IS
    'Internal (the worker): records a finished archive.';
REVOKE ALL ON FUNCTION @extschema@._hb_archive_done(bigint, bigint, bigint, bigint, text, text, boolean, double precision) FROM PUBLIC;

-- _hb_archive_failed: the job failed (or was cancelled: the partition gets
-- its state back). Returns whether an alert about the partition is due:
-- none was sent in the last alert_interval (and it counts as sent).
CREATE FUNCTION @extschema@._hb_archive_failed(job bigint, message text, cancelled boolean,
                                               alert_interval interval)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job FOR UPDATE;
    IF cancelled THEN
        UPDATE @extschema@.hb_partitions p SET state = coalesce(j.prior_state, 'active')
        WHERE p.partition_name = j.partition_name AND p.state = 'archiving';
        UPDATE @extschema@._hb_jobs SET state = 'cancelled', finished_at = now(), last_error = message,
            result = (SELECT p.state FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name),
            upload_key = NULL, upload_id = NULL
        WHERE id = job;
        RETURN false;
    END IF;
    UPDATE @extschema@.hb_partitions p SET state = 'archive_failed', last_error = message, last_attempt_at = now()
    WHERE p.partition_name = j.partition_name AND p.state = 'archiving';
    SELECT * INTO part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name;
    UPDATE @extschema@._hb_jobs SET state = 'failed', finished_at = now(), last_error = message,
        result = part.state, upload_key = NULL, upload_id = NULL
    WHERE id = job;
    PERFORM @extschema@._hb_event(j.parent, 'archive.failed', j.partition_name,
        jsonb_build_object('job', job, 'attempt', part.attempts, 'error', message));
    IF alert_interval IS NULL OR (part.alerted_at IS NOT NULL AND part.alerted_at > now() - alert_interval) THEN
        RETURN false;
    END IF;
    UPDATE @extschema@.hb_partitions p SET alerted_at = now() WHERE p.partition_name = j.partition_name;
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_archive_failed(bigint, text, boolean, interval) IS
    'Internal (the worker): records a failed or cancelled archive job.';
REVOKE ALL ON FUNCTION @extschema@._hb_archive_failed(bigint, text, boolean, interval) FROM PUBLIC;

-- _hb_job_failed: a job that failed (or, cancelled, was cancelled) before
-- it changed its partition: a refused archive, any restore that did not end.
CREATE FUNCTION @extschema@._hb_job_failed(job bigint, message text, cancelled boolean DEFAULT false)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE @extschema@._hb_jobs j SET state = CASE WHEN cancelled THEN 'cancelled' ELSE 'failed' END,
        finished_at = now(), last_error = message,
        result = (SELECT p.state FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name)
    WHERE j.id = job
$$;
REVOKE ALL ON FUNCTION @extschema@._hb_job_failed(bigint, text, boolean) FROM PUBLIC;

-- The triggers' function: a write into an archived (or archiving)
-- partition makes it 'active' again, so that it is archived again before
-- it may be dropped. Runs the update as the extension's owner (neither the
-- writer nor the table's owner may write what describes an archive); once
-- per partition and subtransaction.
CREATE FUNCTION @extschema@.hb_partition_written()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'hb_partition_written';
COMMENT ON FUNCTION @extschema@.hb_partition_written() IS
    'Trigger: a write into an archived partition makes it active again (to be archived again).';

CREATE FUNCTION @extschema@._hb_late_write(rel regclass, op text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part @extschema@.hb_partitions;
BEGIN
    -- Locked whatever its state: a REPEATABLE READ writer whose snapshot is
    -- older than an archive's start would read 'active' and do nothing;
    -- locking a row changed since its snapshot fails it with a
    -- serialization error instead, and its retry sees 'archiving'.
    -- By name in the table's schema: also while it is detached (a write
    -- then is as unseen by the archive as any other).
    SELECT p.* INTO part FROM @extschema@.hb_partitions p
    JOIN pg_class pc ON pc.oid = p.parent
    JOIN pg_class k ON k.oid = rel
    WHERE p.partition_name = k.relname::text AND pc.relnamespace = k.relnamespace
    FOR UPDATE OF p;
    IF part.state IN ('archiving', 'archived') THEN
        UPDATE @extschema@.hb_partitions p
        SET state = 'active', attempts = 0, sha256 = NULL,
            last_error = format('%s after its archive of %s: it is archived again before it may be dropped',
                                op, coalesce(p.archived_at::text, 'now'))
        WHERE p.partition_name = part.partition_name;
        PERFORM @extschema@._hb_event(part.parent, 'archive.stale', part.partition_name,
            jsonb_build_object('operation', op, 'archived_at', part.archived_at));
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_late_write(regclass, text) IS
    'Internal: puts a partition written after its archive back to active.';
REVOKE ALL ON FUNCTION @extschema@._hb_late_write(regclass, text) FROM PUBLIC;
