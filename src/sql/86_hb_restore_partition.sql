-- hb_restore_partition: brings an archived and dropped partition back from
-- its archive (hb_partitions.checksum_manifest_url), through the worker:
-- every file's size and SHA-256 and the row count are checked against the
-- manifest (any difference: an error, and nothing is restored), then the
-- table is created, filled and attached in one transaction. Its state is
-- 'archived' again (its archive is still there), and maintenance does not
-- drop it again: drop it with hb_drop_partition when done with it.
-- device_last_status is not touched (restored rows are old; a device's
-- status never moves backwards). Returns the rows restored.
CREATE FUNCTION @extschema@.hb_restore_partition(partition text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part @extschema@.hb_partitions;
    r record;
BEGIN
    part := @extschema@._hb_archivable(partition, 'hb_restore_partition');
    IF part.state <> 'dropped' THEN
        RAISE EXCEPTION 'hb_restore_partition: partition % is not dropped', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its state is %s: its rows are in the table.', part.state),
                  HINT = 'Only a dropped partition that was archived can be restored.';
    END IF;
    IF part.checksum_manifest_url IS NULL OR part.archived_at IS NULL THEN
        RAISE EXCEPTION 'hb_restore_partition: partition % was dropped without an archive', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'There is nothing to restore it from.';
    END IF;
    r := @extschema@._hb_submit_job('restore', partition, true);
    IF r.state IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'hb_restore_partition: %', r.message
            USING ERRCODE = coalesce(r.sqlstate, 'XX000'),
                  HINT = 'Nothing was restored; hb_jobs keeps the job.';
    END IF;
    RETURN r.rows;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_restore_partition(text) IS
    'Restores an archived, dropped partition from its archive (checked) and returns its rows.';
REVOKE ALL ON FUNCTION @extschema@.hb_restore_partition(text) FROM PUBLIC;

-- The steps of a restore job (the worker).
CREATE FUNCTION @extschema@._hb_restore_begin(job bigint,
    OUT partition_name text, OUT owner oid, OUT manifest_url text)
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job FOR UPDATE;
    SELECT * INTO STRICT part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = part.parent
                   AND (pg_has_role(j.requested_by, c.relowner, 'USAGE')
                        OR (SELECT rolsuper FROM pg_roles WHERE oid = j.requested_by))) THEN
        RAISE EXCEPTION 'the role that asked for job % does not own table %', job, part.parent
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF part.state <> 'dropped' OR part.checksum_manifest_url IS NULL THEN
        RAISE EXCEPTION 'partition % is not an archived, dropped partition (its state is %)',
                        part.partition_name, part.state
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE @extschema@._hb_jobs SET state = 'running', started_at = now(), attempts = attempts + 1,
        prior_state = part.state
    WHERE id = job;
    partition_name := part.partition_name;
    owner := (SELECT relowner FROM pg_class WHERE oid = part.parent);
    manifest_url := part.checksum_manifest_url;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._hb_restore_begin(bigint) FROM PUBLIC;

-- _hb_restore_plan: the manifest (its text) checked against hb_partitions.
CREATE FUNCTION @extschema@._hb_restore_plan(job bigint, manifest text,
    OUT row_count bigint, OUT compression text, OUT files jsonb, OUT columns jsonb)
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
    m jsonb;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job;
    SELECT * INTO STRICT part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name;
    BEGIN
        m := manifest::jsonb;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'the manifest % is not valid JSON', part.checksum_manifest_url
            USING ERRCODE = 'data_corrupted';
    END;
    IF m->>'partition' IS DISTINCT FROM part.partition_name
       OR (m->>'range_start')::timestamptz IS DISTINCT FROM part.range_start
       OR (m->>'range_end')::timestamptz IS DISTINCT FROM part.range_end THEN
        RAISE EXCEPTION 'the manifest % is not the one of partition % (%, % to %)', part.checksum_manifest_url,
                        part.partition_name, m->>'partition', m->>'range_start', m->>'range_end'
            USING ERRCODE = 'data_corrupted';
    END IF;
    IF part.row_count IS NOT NULL AND (m->>'row_count')::bigint IS DISTINCT FROM part.row_count THEN
        RAISE EXCEPTION 'the manifest of partition % counts % rows, hb_partitions % ', part.partition_name,
                        m->>'row_count', part.row_count
            USING ERRCODE = 'data_corrupted';
    END IF;
    IF part.sha256 IS NOT NULL AND m->'files'->0->>'sha256' IS DISTINCT FROM part.sha256 THEN
        RAISE EXCEPTION 'the manifest of partition % does not have the SHA-256 that hb_partitions records',
                        part.partition_name
            USING ERRCODE = 'data_corrupted',
                  DETAIL = format('Manifest: %s; hb_partitions: %s.', m->'files'->0->>'sha256', part.sha256);
    END IF;
    row_count := (m->>'row_count')::bigint;
    compression := m->>'compression';
    files := m->'files';
    columns := m->'columns';
END
$$;
REVOKE ALL ON FUNCTION @extschema@._hb_restore_plan(bigint, text) FROM PUBLIC;

-- _hb_restore_prepare: the table the rows are copied into, shaped like the
-- parent and owned by its owner, not attached yet.
CREATE FUNCTION @extschema@._hb_restore_prepare(job bigint)
RETURNS oid
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@._hb_jobs;
    facts record;
    qualified text;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job;
    facts := @extschema@._hb_parent(j.parent);
    qualified := format('%I.%I', facts.nsp, j.partition_name);
    IF to_regclass(qualified) IS NOT NULL THEN
        RAISE EXCEPTION 'a table % exists already', qualified
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Rename or drop it, then restore again.';
    END IF;
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED '
                   'INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)', qualified, j.parent);
    EXECUTE format('ALTER TABLE %s OWNER TO %I', qualified, facts.owner_name);
    RETURN qualified::regclass::oid;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._hb_restore_prepare(bigint) FROM PUBLIC;

-- _hb_restore_finish: the late-write triggers, the catch-all's rows of the
-- range (which make the partition differ from its archive: then it is
-- 'active', to be archived again), the attach, the record.
CREATE FUNCTION @extschema@._hb_restore_finish(job bigint, rows bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    j @extschema@._hb_jobs;
    part @extschema@.hb_partitions;
    cfg @extschema@.hb_config;
    facts record;
    rel regclass;
    moved bigint := 0;
    final_state text;
BEGIN
    SELECT * INTO STRICT j FROM @extschema@._hb_jobs WHERE id = job;
    SELECT * INTO STRICT part FROM @extschema@.hb_partitions p WHERE p.partition_name = j.partition_name FOR UPDATE;
    SELECT * INTO STRICT cfg FROM @extschema@.hb_config c WHERE c.parent = j.parent;
    facts := @extschema@._hb_parent(j.parent);
    rel := format('%I.%I', facts.nsp, j.partition_name)::regclass;
    EXECUTE format('CREATE TRIGGER hb_late_rows AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION @extschema@.hb_partition_written()', rel);
    EXECUTE format('CREATE TRIGGER hb_late_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.hb_partition_written()', rel);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hb_late_rows', rel);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hb_late_truncate', rel);
    PERFORM @extschema@._hb_lock_for_create(cfg.parent);
    IF facts.catchall IS NOT NULL THEN
        moved := @extschema@.hb_take_catchall_rows(facts.catchall, cfg.parent, cfg.time_column,
                                                   part.range_start, part.range_end, rel, NULL);
    END IF;
    PERFORM @extschema@._hb_ddl(format('attaching restored partition %s', rel), ARRAY[
        format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
               cfg.parent, rel, part.range_start, part.range_end)]);
    PERFORM @extschema@._hb_partition_triggers(rel);
    final_state := CASE WHEN moved > 0 THEN 'active' ELSE 'archived' END;
    UPDATE @extschema@.hb_partitions p
    SET state = final_state, dropped_at = NULL, restored_at = now(), row_count = rows + moved,
        last_error = CASE WHEN moved > 0
                          THEN format('%s rows of its range were in the catch-all; it is archived again', moved)
                     END
    WHERE p.partition_name = j.partition_name;
    UPDATE @extschema@._hb_jobs SET state = 'done', finished_at = now(), rows = _hb_restore_finish.rows + moved,
        result = final_state
    WHERE id = job;
    PERFORM @extschema@._hb_event(j.parent, 'restore', j.partition_name,
        jsonb_build_object('job', job, 'rows', rows, 'rows_from_catchall', moved,
                           'manifest', part.checksum_manifest_url));
    RETURN final_state;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._hb_restore_finish(bigint, bigint) FROM PUBLIC;
