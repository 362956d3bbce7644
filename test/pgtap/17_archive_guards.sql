-- Guards of the archive against writes it cannot see and tables it cannot
-- archive, without the worker (its steps are called as the superuser
-- would): the late-write triggers fire for writers in replica mode too; a
-- partition whose triggers were disabled is not dropped, and its next
-- archive does not reuse the old one; a partition made by hand under the
-- name of a partition that was archived and dropped is not adopted (its
-- archive would replace the only archive of the old rows), nor is a
-- partitioned one; archiving refuses a table that is not plain; a write
-- into a detached archived partition is seen; owners cannot record an
-- archive; a cancelled job does not leave its partition 'archiving'.
BEGIN;
SELECT plan(22);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
SELECT hb_manage('heartbeats', premake => 1, retention => '30 days', partition_prefix => 'gd');
SELECT count(*) FROM hb_create_partitions('heartbeats', now() - interval '20 days', now());
SELECT hb_configure('heartbeats', retention => '10 days');

CREATE FUNCTION pg_temp.day(d int) RETURNS text LANGUAGE sql AS
    $$ SELECT 'gd' || to_char((now() AT TIME ZONE 'UTC')::date + d, '_YYYY_MM_DD') $$;
CREATE FUNCTION pg_temp.state(p text) RETURNS text LANGUAGE sql AS
    $$ SELECT state FROM hb_partitions WHERE partition_name = p $$;
-- The worker's begin and done for a partition (as if exported and stored).
CREATE FUNCTION pg_temp.archive(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    j bigint;
BEGIN
    INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
    VALUES ('archive', p, 'heartbeats', (SELECT oid FROM pg_roles WHERE rolname = current_user))
    RETURNING id INTO j;
    PERFORM _hb_archive_begin(j);
    RETURN _hb_archive_done(j, 1, 10, 10, md5(p), 'file:///nowhere/' || p || '/manifest.json', true, 0.1);
END $$;
INSERT INTO heartbeats VALUES (1, (now() AT TIME ZONE 'UTC')::date - 15 + interval '1 hour', 'old');
INSERT INTO heartbeats VALUES (1, (now() AT TIME ZONE 'UTC')::date - 14 + interval '1 hour', 'old');
INSERT INTO heartbeats VALUES (1, (now() AT TIME ZONE 'UTC')::date - 13 + interval '1 hour', 'old');
INSERT INTO heartbeats VALUES (1, (now() AT TIME ZONE 'UTC')::date - 12 + interval '1 hour', 'old');
INSERT INTO heartbeats VALUES (1, (now() AT TIME ZONE 'UTC')::date - 11 + interval '1 hour', 'old');

-- 1. Replica mode.
SELECT is(pg_temp.archive(pg_temp.day(-15)), 'archived', 'a partition is archived');
SELECT is((SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
           WHERE tgrelid = pg_temp.day(-15)::regclass AND tgname LIKE 'hb_late%'),
          'hb_late_rows=A,hb_late_truncate=A', '... its late-write triggers fire ALWAYS');
SET session_replication_role = replica;
INSERT INTO heartbeats VALUES (2, (now() AT TIME ZONE 'UTC')::date - 15 + interval '2 hours', 'replicated');
RESET session_replication_role;
SELECT is(pg_temp.state(pg_temp.day(-15)), 'active',
          'a write in replica mode (logical replication, pg_restore) makes it active again');

-- 2. Disabled triggers.
SELECT is(pg_temp.archive(pg_temp.day(-14)), 'archived', 'another partition is archived');
SELECT lives_ok(format('ALTER TABLE %I DISABLE TRIGGER hb_late_rows', pg_temp.day(-14)),
                'its owner disables a late-write trigger');
SELECT throws_ok(format('SELECT hb_drop_partition(%L)', pg_temp.day(-14)), '55000',
    format('hb_drop_partition: the late-write triggers of partition %s are missing or disabled', pg_temp.day(-14)),
    'a partition whose late-write triggers are disabled is not dropped');
SELECT ok(to_regclass(pg_temp.day(-14)) IS NOT NULL AND pg_temp.state(pg_temp.day(-14)) = 'archived',
          '... nothing was dropped');
-- The next archive enables them again and forgets the recorded archive.
INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
VALUES ('archive', pg_temp.day(-14), 'heartbeats', (SELECT oid FROM pg_roles WHERE rolname = current_user));
SELECT lives_ok(format('SELECT _hb_archive_begin(%s)', (SELECT max(id) FROM _hb_jobs)),
                'the next archive starts');
SELECT ok((SELECT bool_and(tgenabled = 'A') FROM pg_trigger
           WHERE tgrelid = pg_temp.day(-14)::regclass AND tgname LIKE 'hb_late%')
          AND (SELECT sha256 IS NULL FROM hb_partitions WHERE partition_name = pg_temp.day(-14)),
          '... enables the triggers again and forgets the recorded archive (it is exported again)');

-- 3. Adoption of a name that was archived and dropped, or of a partitioned table.
SELECT is(pg_temp.archive(pg_temp.day(-13)), 'archived', 'a third partition is archived');
SELECT ok(hb_drop_partition(pg_temp.day(-13)), '... and dropped');
CREATE TABLE hand_made (LIKE heartbeats);
SELECT lives_ok(format($$ALTER TABLE hand_made RENAME TO %I; ALTER TABLE heartbeats ATTACH PARTITION %I
                         FOR VALUES FROM (%L) TO (%L)$$, pg_temp.day(-13), pg_temp.day(-13),
                       (now() AT TIME ZONE 'UTC')::date - 13, (now() AT TIME ZONE 'UTC')::date - 12),
                'a table is attached by hand under the dropped partition''s name');
SELECT ok((SELECT (r->'unmatched') ? pg_temp.day(-13) FROM hb_run_maintenance() r)
          AND pg_temp.state(pg_temp.day(-13)) = 'dropped',
          '... and not adopted: the archive of the dropped one stays the only one recorded');

-- A partitioned table attached by hand is not adopted (nor archived).
SELECT lives_ok(format($$CREATE TABLE %I PARTITION OF heartbeats FOR VALUES FROM (%L) TO (%L) PARTITION BY RANGE (ts)$$,
                       pg_temp.day(-22), (now() AT TIME ZONE 'UTC')::date - 22, (now() AT TIME ZONE 'UTC')::date - 21),
                'a partitioned table is attached by hand as a day');
SELECT ok((SELECT (r->'unmatched') ? pg_temp.day(-22) FROM hb_run_maintenance() r)
          AND pg_temp.state(pg_temp.day(-22)) IS NULL,
          '... and not adopted: an archive exports and counts plain tables only');

-- 4. A write while the partition is detached is seen too.
SELECT is(pg_temp.archive(pg_temp.day(-12)), 'archived', 'a fourth partition is archived');
SELECT lives_ok(format('ALTER TABLE heartbeats DETACH PARTITION %I', pg_temp.day(-12)),
                '... detached by hand');
SELECT lives_ok(format($$UPDATE %I SET status = 'changed while detached'$$, pg_temp.day(-12)),
                '... and written while detached');
SELECT is(pg_temp.state(pg_temp.day(-12)), 'active', '... is active again (to be archived again)');

-- 5. No one but the worker records an archive.
SELECT ok(NOT has_column_privilege('public', 'hb_partitions', 'checksum_manifest_url', 'INSERT')
          AND NOT has_column_privilege('public', 'hb_partitions', 'checksum_manifest_url', 'UPDATE')
          AND NOT has_column_privilege('public', 'hb_partitions', 'sha256', 'INSERT')
          AND NOT has_column_privilege('public', 'hb_partitions', 'sha256', 'UPDATE')
          AND NOT has_column_privilege('public', 'hb_partitions', 'archived_at', 'INSERT')
          AND NOT has_column_privilege('public', 'hb_partitions', 'archived_at', 'UPDATE'),
          'table owners may neither insert nor update what describes an archive');

-- 6. A job queued again after its worker stopped, then cancelled: the
-- partition gets its state back (else it would stay 'archiving' forever).
INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
VALUES ('archive', pg_temp.day(-11), 'heartbeats', (SELECT oid FROM pg_roles WHERE rolname = current_user));
SELECT _hb_archive_begin(max(id)) IS NOT NULL FROM _hb_jobs;
UPDATE _hb_jobs SET state = 'queued' WHERE id = (SELECT max(id) FROM _hb_jobs);
SELECT ok(hb_cancel_job((SELECT max(id) FROM _hb_jobs)), 'a job queued again after its worker stopped is cancelled');
SELECT is(pg_temp.state(pg_temp.day(-11)), 'active', '... and its partition is active again, not archiving');

SELECT * FROM finish();
ROLLBACK;
