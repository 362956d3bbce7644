-- The archive and restore API without the worker: what hb_archive_partition,
-- hb_restore_partition and hb_cancel_job refuse (and the clear error when
-- the worker serves another database), who may run them and write the job
-- queue, the late-write protocol of the worker's steps (_hb_archive_begin,
-- _hb_archive_done, _hb_archive_failed) called by hand, what maintenance
-- says about archives, and the archive settings. The cluster preloads
-- hb_lifecycle but its worker serves hb_lifecycle.database, not this
-- database: real archives are tested by the TAP tests.
BEGIN;
SELECT plan(105);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE ROLE hb_arch_owner;
CREATE ROLE hb_arch_app;
CREATE ROLE hb_arch_other;
CREATE ROLE hb_arch_nobody;
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
ALTER TABLE heartbeats OWNER TO hb_arch_owner;
GRANT INSERT, SELECT ON heartbeats TO hb_arch_app;
SELECT hb_manage('heartbeats', premake => 1, retention => '30 days', partition_prefix => 'ar');
SELECT count(*) FROM hb_create_partitions('heartbeats', now() - interval '20 days', now());
SELECT hb_configure('heartbeats', retention => '10 days');
-- Another owner's managed table: hb_manage grants that role the lifecycle
-- functions, so its refusals below are the ownership checks.
CREATE TABLE other_fleet (device_id bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE other_fleet OWNER TO hb_arch_other;
SELECT hb_manage('other_fleet', premake => 0, partition_prefix => 'ot', last_status_table => 'other_fleet_last');
CREATE TABLE unmanaged (ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE unmanaged_p PARTITION OF unmanaged FOR VALUES FROM ('2000-01-01') TO ('2000-01-02');

-- The partition d days from today (UTC).
CREATE FUNCTION pg_temp.day(d int) RETURNS text LANGUAGE sql AS
    $$ SELECT 'ar' || to_char((now() AT TIME ZONE 'UTC')::date + d, '_YYYY_MM_DD') $$;
CREATE FUNCTION pg_temp.state(p text) RETURNS text LANGUAGE sql AS
    $$ SELECT state FROM hb_partitions WHERE partition_name = p $$;
-- A queued archive job, written as the superuser would (or as role who).
CREATE TEMP TABLE jobs (k text PRIMARY KEY, id bigint);
GRANT SELECT ON jobs TO PUBLIC;
CREATE FUNCTION pg_temp.job(k text, p text, who name DEFAULT current_user) RETURNS bigint LANGUAGE sql AS $$
    WITH x AS (INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
               VALUES ('archive', p, coalesce((SELECT parent FROM hb_partitions WHERE partition_name = p), 'heartbeats'),
                       (SELECT oid FROM pg_roles WHERE rolname = who))
               RETURNING id)
    INSERT INTO jobs SELECT k, id FROM x RETURNING id $$;
CREATE FUNCTION pg_temp.jid(k text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM jobs WHERE jobs.k = jid.k $$;
-- How many rows a statement changed.
CREATE FUNCTION pg_temp.changed(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
    EXECUTE q;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
-- What the worker does for a job that exports and stores the partition:
-- begin, then done. Returns the partition's state after it.
CREATE FUNCTION pg_temp.archive(k text, p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE j bigint := pg_temp.job(k, p);
BEGIN
    PERFORM _hb_archive_begin(j);
    RETURN _hb_archive_done(j, 3, 120, 90, repeat('c', 64), 'file:///archive/public.heartbeats/' || p || '/manifest.json',
                            true, 0.1);
END $$;

-- Three rows in each closed partition, one in the current one.
INSERT INTO heartbeats
SELECT dev, date_trunc('day', now()) - i * interval '1 day' + interval '12 hours', 'day -' || i
FROM generate_series(1, 20) i, generate_series(1, 3) dev;
INSERT INTO heartbeats VALUES (1, now(), 'now');

-- Dropped without an archive (archiving off for a moment) ...
SELECT hb_configure('heartbeats', archive => false);
SELECT hb_drop_partition(pg_temp.day(-18));
SELECT hb_configure('heartbeats', archive => true);
-- ... and dropped after an archive.
UPDATE hb_partitions SET state = 'archived', archived_at = now(), row_count = 3, sha256 = repeat('a', 64),
    checksum_manifest_url = 'file:///archive/public.heartbeats/' || partition_name || '/manifest.json'
WHERE partition_name = pg_temp.day(-19);
-- (with the late-write triggers an archive job gives its partition)
DO $$ BEGIN
    EXECUTE format('CREATE TRIGGER hb_late_rows AFTER INSERT OR UPDATE OR DELETE ON %I '
                   'FOR EACH ROW EXECUTE FUNCTION hb_partition_written()', pg_temp.day(-19));
    EXECUTE format('CREATE TRIGGER hb_late_truncate AFTER TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION hb_partition_written()', pg_temp.day(-19));
    EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER hb_late_rows, ENABLE ALWAYS TRIGGER hb_late_truncate',
                   pg_temp.day(-19));
END $$;
SELECT hb_drop_partition(pg_temp.day(-19));

CREATE TEMP TABLE expected AS
SELECT format('hb_lifecycle''s background worker serves database "%s", not this one',
              current_setting('hb_lifecycle.database')) AS elsewhere;
GRANT SELECT ON expected TO PUBLIC;
SELECT ok(current_database() <> current_setting('hb_lifecycle.database'),
    'set-up: the worker serves another database than this one');

-- ------------------------------------------------------------ hb_archive_partition refusals
SET LOCAL ROLE hb_arch_owner;
SELECT throws_ok($$SELECT hb_archive_partition(NULL)$$, '22004',
    'hb_archive_partition: partition must not be NULL', 'hb_archive_partition: NULL is refused');
SELECT throws_ok($$SELECT hb_archive_partition('ar_1999_01_01')$$, '42P01',
    'hb_archive_partition: partition "ar_1999_01_01" does not exist', 'a name hb_partitions does not list is refused');
SELECT throws_ok(format($$SELECT hb_archive_partition(%L)$$, 'public.' || pg_temp.day(-1)), '42P01', NULL,
    'a schema-qualified name is refused');
SELECT throws_ok($$SELECT hb_archive_partition('unmanaged_p')$$, '55000',
    'hb_archive_partition: "unmanaged_p" is not a partition managed by hb_lifecycle',
    'a table that is not a managed partition is refused');
SELECT throws_ok(format($$SELECT hb_archive_partition(%L)$$, pg_temp.day(0)), '55000',
    format('hb_archive_partition: partition %s is the current one or in the future', pg_temp.day(0)),
    'the current partition is refused');
SELECT throws_ok(format($$SELECT hb_archive_partition(%L, wait => false)$$, pg_temp.day(1)), '55000',
    format('hb_archive_partition: partition %s is the current one or in the future', pg_temp.day(1)),
    'a future partition is refused, also with wait => false');
SELECT throws_ok(format($$SELECT hb_archive_partition(%L)$$, pg_temp.day(-18)), '55000',
    format('hb_archive_partition: partition %s was dropped', pg_temp.day(-18)),
    'a dropped partition is refused');
RESET ROLE;
SET LOCAL ROLE hb_arch_app;
SELECT throws_ok(format($$SELECT hb_archive_partition(%L)$$, pg_temp.day(-1)), '42501',
    'permission denied for function hb_archive_partition',
    'an application role that inserts heartbeats cannot archive partitions');
RESET ROLE;
SET LOCAL ROLE hb_arch_other;
SELECT throws_ok(format($$SELECT hb_archive_partition(%L)$$, pg_temp.day(-1)), '42501',
    'hb_archive_partition: must be owner of table public.heartbeats',
    'the owner of another managed table cannot archive this table''s partitions');
SELECT throws_ok(format($$SELECT hb_archive_partition(%L, wait => false)$$, pg_temp.day(-1)), '42501',
    'hb_archive_partition: must be owner of table public.heartbeats', '... nor queue their archive');
RESET ROLE;
SET LOCAL ROLE hb_arch_owner;
SELECT throws_ok(format($$SELECT hb_archive_partition(%L)$$, pg_temp.day(-1)), '55000',
    (SELECT elsewhere FROM expected),
    'a closed partition: the error says the worker serves another database (wait => true)');
SELECT throws_ok(format($$SELECT hb_archive_partition(%L, wait => false)$$, pg_temp.day(-1)), '55000',
    (SELECT elsewhere FROM expected), '... and the same with wait => false');
RESET ROLE;
SELECT ok(pg_temp.state(pg_temp.day(-1)) = 'active'
          AND NOT EXISTS (SELECT 1 FROM _hb_jobs WHERE partition_name = pg_temp.day(-1)),
    '... and nothing was queued or changed');

-- ------------------------------------------------------------ hb_restore_partition refusals
SET LOCAL ROLE hb_arch_owner;
SELECT throws_ok($$SELECT hb_restore_partition(NULL)$$, '22004',
    'hb_restore_partition: partition must not be NULL', 'hb_restore_partition: NULL is refused');
SELECT throws_ok($$SELECT hb_restore_partition('ar_1999_01_01')$$, '42P01',
    'hb_restore_partition: partition "ar_1999_01_01" does not exist', 'a name hb_partitions does not list is refused');
SELECT throws_ok(format($$SELECT hb_restore_partition(%L)$$, pg_temp.day(-1)), '55000',
    format('hb_restore_partition: partition %s is not dropped', pg_temp.day(-1)),
    'a partition that is not dropped is refused');
SELECT throws_ok(format($$SELECT hb_restore_partition(%L)$$, pg_temp.day(-18)), '55000',
    format('hb_restore_partition: partition %s was dropped without an archive', pg_temp.day(-18)),
    'a partition dropped without an archive is refused');
SELECT throws_ok(format($$SELECT hb_restore_partition(%L)$$, pg_temp.day(-19)), '55000',
    (SELECT elsewhere FROM expected),
    'an archived, dropped partition: the error says the worker serves another database');
RESET ROLE;
SET LOCAL ROLE hb_arch_other;
SELECT throws_ok(format($$SELECT hb_restore_partition(%L)$$, pg_temp.day(-19)), '42501',
    'hb_restore_partition: must be owner of table public.heartbeats',
    'the owner of another managed table cannot restore this table''s partitions');
RESET ROLE;
SET LOCAL ROLE hb_arch_app;
SELECT throws_ok(format($$SELECT hb_restore_partition(%L)$$, pg_temp.day(-19)), '42501',
    'permission denied for function hb_restore_partition', 'nor can an application role');
RESET ROLE;
SELECT ok(pg_temp.state(pg_temp.day(-19)) = 'dropped' AND to_regclass(pg_temp.day(-19)) IS NULL
          AND NOT EXISTS (SELECT 1 FROM _hb_jobs WHERE partition_name = pg_temp.day(-19)),
    '... and nothing was restored or queued');

-- ------------------------------------------------------------ function privileges
SELECT ok(NOT has_function_privilege('public', 'hb_archive_partition(text, boolean)', 'EXECUTE'),
    'PUBLIC cannot execute hb_archive_partition');
SELECT ok(NOT has_function_privilege('public', 'hb_restore_partition(text)', 'EXECUTE'),
    'PUBLIC cannot execute hb_restore_partition');
SELECT ok(NOT has_function_privilege('public', 'hb_cancel_job(bigint)', 'EXECUTE'),
    'PUBLIC cannot execute hb_cancel_job');
SELECT is(ARRAY(SELECT f::text FROM unnest(ARRAY[
        '_hb_submit_job(text, text, boolean)', '_hb_queue_job(text, text)', '_hb_job_accept(text, text, oid)',
        '_hb_wake_worker_at_commit()', '_hb_cancel_running(bigint)', '_hb_jobs_recover(interval)',
        '_hb_job_failed(bigint, text, boolean)', '_hb_archive_begin(bigint)', '_hb_archive_check(bigint, text)',
        '_hb_archive_done(bigint, bigint, bigint, bigint, text, text, boolean, double precision)',
        '_hb_archive_failed(bigint, text, boolean, interval)', '_hb_late_write(regclass, text)',
        '_hb_restore_begin(bigint)', '_hb_restore_plan(bigint, text)', '_hb_restore_prepare(bigint)',
        '_hb_restore_finish(bigint, bigint)']::regprocedure[]) f
        WHERE has_function_privilege('public', f, 'EXECUTE') ORDER BY 1), '{}'::text[],
    'PUBLIC can execute none of the internal functions of the job queue and the worker''s steps');
SELECT is(ARRAY(SELECT f::text FROM unnest(ARRAY[
        'hb_archive_partition(text, boolean)', 'hb_restore_partition(text)', 'hb_cancel_job(bigint)',
        '_hb_submit_job(text, text, boolean)', '_hb_queue_job(text, text)']::regprocedure[]) f
        WHERE NOT has_function_privilege('hb_arch_owner', f, 'EXECUTE') ORDER BY 1), '{}'::text[],
    'hb_manage lets the table''s owner archive, restore and cancel (and run what those call)');
SELECT is(ARRAY(SELECT f::text FROM unnest(ARRAY[
        '_hb_job_accept(text, text, oid)', '_hb_jobs_recover(interval)', '_hb_job_failed(bigint, text, boolean)',
        '_hb_archive_begin(bigint)', '_hb_archive_check(bigint, text)',
        '_hb_archive_done(bigint, bigint, bigint, bigint, text, text, boolean, double precision)',
        '_hb_archive_failed(bigint, text, boolean, interval)', '_hb_late_write(regclass, text)',
        '_hb_restore_begin(bigint)', '_hb_restore_plan(bigint, text)', '_hb_restore_prepare(bigint)',
        '_hb_restore_finish(bigint, bigint)']::regprocedure[]) f
        WHERE has_function_privilege('hb_arch_owner', f, 'EXECUTE') ORDER BY 1), '{}'::text[],
    'but not the worker''s own steps (an owner cannot record an archive that was not made)');

-- ------------------------------------------------------------ the job queue
SELECT ok(has_table_privilege('public', 'hb_jobs', 'SELECT'), 'PUBLIC can read hb_jobs');
SET LOCAL ROLE hb_arch_nobody;
SELECT lives_ok($$SELECT count(*) FROM hb_jobs$$, 'a role with no privilege at all reads hb_jobs');
RESET ROLE;
SET LOCAL ROLE hb_arch_other;
SELECT throws_ok(format($$INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
                          VALUES ('archive', %L, 'heartbeats', 'hb_arch_other'::regrole)$$, pg_temp.day(-8)),
    '42501', 'new row violates row-level security policy for table "_hb_jobs"',
    'a role cannot queue a job for a table it does not own');
RESET ROLE;
SET LOCAL ROLE hb_arch_owner;
SELECT throws_ok(format($$INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
                          VALUES ('archive', %L, 'heartbeats', 'hb_arch_other'::regrole)$$, pg_temp.day(-8)),
    '42501', 'new row violates row-level security policy for table "_hb_jobs"',
    'the owner cannot queue a job in the name of another role');
SELECT throws_ok(format($$INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by, state)
                          VALUES ('archive', %L, 'heartbeats', 'hb_arch_owner'::regrole, 'running')$$, pg_temp.day(-8)),
    '42501', 'permission denied for table _hb_jobs', 'nor write a job in another state than queued');
SELECT lives_ok(format($$INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by)
                         VALUES ('archive', %L, 'heartbeats', 'hb_arch_owner'::regrole)$$, pg_temp.day(-8)),
    'the owner may queue a job for its own table in its own name');
RESET ROLE;
INSERT INTO jobs SELECT 'owners', id FROM _hb_jobs WHERE partition_name = pg_temp.day(-8);
SET LOCAL ROLE hb_arch_nobody;
SELECT results_eq($$SELECT kind, state, requested_by::text FROM hb_jobs WHERE id = pg_temp.jid('owners')$$,
    $$VALUES ('archive', 'queued', 'hb_arch_owner')$$, 'hb_jobs shows it to anyone, with the role that asked');
RESET ROLE;

-- ------------------------------------------------------------ hb_cancel_job
SELECT pg_temp.job('to cancel', pg_temp.day(-9));
SET LOCAL ROLE hb_arch_owner;
SELECT throws_ok($$SELECT hb_cancel_job(-1)$$, '42704', 'hb_cancel_job: there is no job -1',
    'hb_cancel_job on a job that does not exist is refused');
SELECT is(hb_cancel_job(pg_temp.jid('to cancel')), true,
    'the table''s owner cancels a queued job of its table (queued by another role)');
RESET ROLE;
SELECT results_eq($$SELECT state, finished_at IS NOT NULL, last_error FROM _hb_jobs WHERE id = pg_temp.jid('to cancel')$$,
    $$VALUES ('cancelled', true, 'cancelled by hb_arch_owner')$$, '... which is then cancelled, saying by whom');
SET LOCAL ROLE hb_arch_owner;
SELECT is(hb_cancel_job(pg_temp.jid('to cancel')), false, 'cancelling a job that has ended returns false');
RESET ROLE;
SET LOCAL ROLE hb_arch_other;
SELECT throws_ok(format('SELECT hb_cancel_job(%s)', pg_temp.jid('owners')), '42501',
    format('hb_cancel_job: must be owner of table public.heartbeats or the role that asked for job %s',
           pg_temp.jid('owners')),
    'another table''s owner cannot cancel this table''s job');
SELECT is(pg_temp.changed(format('UPDATE _hb_jobs SET state = %L WHERE id = %s', 'cancelled', pg_temp.jid('owners'))), 0,
    '... nor by writing _hb_jobs (row-level security hides the row from the update)');
RESET ROLE;
SELECT is((SELECT state FROM _hb_jobs WHERE id = pg_temp.jid('owners')), 'queued', '... and the job stays queued');

-- ------------------------------------------------------------ the worker's steps, by hand
-- hb_partition_written acts once per partition and (sub)transaction (it
-- remembers the last partition it acted on), and this whole file is one
-- transaction: each late write below goes to another partition than the
-- one before it.
-- A write while the partition is archived puts it back to active.
CREATE TEMP TABLE begun AS SELECT * FROM _hb_archive_begin(pg_temp.job('late insert', pg_temp.day(-2)));
SELECT results_eq($$SELECT partition_name, parent_path, prior_state, range_start FROM begun$$,
    format($$VALUES (%L, 'public.heartbeats', 'active', %L)$$, pg_temp.day(-2),
           to_char(date_trunc('day', now()) - interval '2 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
    '_hb_archive_begin says what to export');
SELECT is(pg_temp.state(pg_temp.day(-2)), 'archiving', '... marks the partition archiving');
SELECT is(ARRAY(SELECT tgname::text FROM pg_trigger WHERE tgrelid = pg_temp.day(-2)::regclass
                AND tgname IN ('hb_late_rows', 'hb_late_truncate') ORDER BY 1),
    ARRAY['hb_late_rows', 'hb_late_truncate'], '... gives it the late-write triggers');
SELECT results_eq($$SELECT j.state, j.attempts, (SELECT count(*)::int FROM hb_events e WHERE e.event = 'archive.start'
                                                  AND e.partition_name = j.partition_name)
                    FROM _hb_jobs j WHERE j.id = pg_temp.jid('late insert')$$,
    $$VALUES ('running', 1, 1)$$, '... and records the job running and an archive.start event');
SET LOCAL ROLE hb_arch_app;
SELECT lives_ok(format($$INSERT INTO heartbeats VALUES (9, %L, 'late')$$,
                       date_trunc('day', now()) - interval '2 days' + interval '13 hours'),
    'the application inserts a row into a partition being archived');
RESET ROLE;
SELECT results_eq($$SELECT state, last_error ~ '^rows inserted after its archive' FROM hb_partitions
                    WHERE partition_name = pg_temp.day(-2)$$, $$VALUES ('active', true)$$,
    '... which puts the partition back to active, saying why (the writer cannot write hb_partitions)');
SELECT is((SELECT detail->>'operation' FROM hb_events WHERE event = 'archive.stale' AND partition_name = pg_temp.day(-2)),
    'rows inserted', '... and records an archive.stale event');
SELECT is(_hb_archive_done(pg_temp.jid('late insert'), 3, 120, 90, repeat('b', 64), 'file:///x/manifest.json', true, 0.2),
    'active', 'the archive that ends then leaves it active, not archived');
SELECT results_eq($$SELECT p.state, p.checksum_manifest_url, j.state, j.result FROM hb_partitions p, _hb_jobs j
                    WHERE p.partition_name = pg_temp.day(-2) AND j.id = pg_temp.jid('late insert')$$,
    $$VALUES ('active', NULL::text, 'done', 'active')$$, '... nor records it as the partition''s archive');

-- An archive with no write meanwhile.
SELECT pg_temp.job('clean', pg_temp.day(-3));
SELECT lives_ok(format('SELECT _hb_archive_begin(%s)', pg_temp.jid('clean')), 'another partition''s archive begins');
SELECT is(_hb_archive_done(pg_temp.jid('clean'), 3, 120, 90, repeat('d', 64),
                           'file:///archive/public.heartbeats/' || pg_temp.day(-3) || '/manifest.json', true, 0.2),
    'archived', 'with no write meanwhile it ends archived');
SELECT results_eq($$SELECT state, row_count, sha256, checksum_manifest_url, archived_at IS NOT NULL, last_error
                    FROM hb_partitions WHERE partition_name = pg_temp.day(-3)$$,
    format($$VALUES ('archived', 3::bigint, %L, %L, true, NULL::text)$$, repeat('d', 64),
           'file:///archive/public.heartbeats/' || pg_temp.day(-3) || '/manifest.json'),
    '... recording its rows, SHA-256 and manifest');
SELECT results_eq($$SELECT detail->>'state', detail->>'sha256', (detail->>'rows')::int FROM hb_events
                    WHERE event = 'archive.end' AND partition_name = pg_temp.day(-3)$$,
    format($$VALUES ('archived', %L, 3)$$, repeat('d', 64)), '... and an archive.end event');
UPDATE heartbeats SET status = 'fixed' WHERE device_id = 1
    AND ts >= date_trunc('day', now()) - interval '3 days' AND ts < date_trunc('day', now()) - interval '2 days';
SELECT results_eq($$SELECT state, last_error ~ '^rows updated after its archive' FROM hb_partitions
                    WHERE partition_name = pg_temp.day(-3)$$, $$VALUES ('active', true)$$,
    'an UPDATE of an archived partition puts it back to active');
SELECT is(pg_temp.archive('for delete', pg_temp.day(-4)), 'archived', 'set-up: a third partition is archived');
DELETE FROM heartbeats WHERE device_id = 2
    AND ts >= date_trunc('day', now()) - interval '4 days' AND ts < date_trunc('day', now()) - interval '3 days';
SELECT results_eq($$SELECT state, last_error ~ '^rows deleted after its archive' FROM hb_partitions
                    WHERE partition_name = pg_temp.day(-4)$$, $$VALUES ('active', true)$$,
    'a DELETE from an archived partition puts it back to active');
SELECT is(pg_temp.archive('for truncate', pg_temp.day(-5)), 'archived', 'set-up: a fourth partition is archived');
SELECT format('TRUNCATE %I', pg_temp.day(-5)) \gexec
SELECT results_eq($$SELECT state, last_error ~ '^truncated after its archive' FROM hb_partitions
                    WHERE partition_name = pg_temp.day(-5)$$, $$VALUES ('active', true)$$,
    'a TRUNCATE of an archived partition puts it back to active');

-- A failure, and the alert's rate limit.
SELECT _hb_archive_begin(pg_temp.job('fail 1', pg_temp.day(-6)));
SELECT is(_hb_archive_failed(pg_temp.jid('fail 1'), 'upload failed: HTTP 503', false, '1 hour'), true,
    'a failed archive asks for an alert');
SELECT results_eq($$SELECT state, last_error, last_attempt_at IS NOT NULL FROM hb_partitions
                    WHERE partition_name = pg_temp.day(-6)$$,
    $$VALUES ('archive_failed', 'upload failed: HTTP 503', true)$$, '... marks the partition archive_failed, saying why');
SELECT results_eq($$SELECT (SELECT state FROM _hb_jobs WHERE id = pg_temp.jid('fail 1')),
                           (SELECT detail->>'error' FROM hb_events WHERE event = 'archive.failed'
                            AND partition_name = pg_temp.day(-6))$$,
    $$VALUES ('failed', 'upload failed: HTTP 503')$$, '... and records the job failed and an archive.failed event');
SELECT _hb_archive_begin(pg_temp.job('fail 2', pg_temp.day(-6)));
SELECT is(_hb_archive_failed(pg_temp.jid('fail 2'), 'upload failed: HTTP 503', false, '1 hour'), false,
    'a second failure within the alert interval asks for no alert');
SELECT is(pg_temp.state(pg_temp.day(-6)), 'archive_failed', '... and leaves it archive_failed');
UPDATE hb_partitions SET alerted_at = now() - interval '2 hours' WHERE partition_name = pg_temp.day(-6);
SELECT _hb_archive_begin(pg_temp.job('fail 3', pg_temp.day(-6)));
SELECT is(_hb_archive_failed(pg_temp.jid('fail 3'), 'upload failed: HTTP 503', false, '1 hour'), true,
    'one once the interval has passed asks for an alert again');

-- A cancel puts the partition's state back.
SELECT is(pg_temp.archive('first', pg_temp.day(-7)), 'archived', 'set-up: a partition is archived');
SELECT _hb_archive_begin(pg_temp.job('verify', pg_temp.day(-7)));
SELECT is(pg_temp.state(pg_temp.day(-7)), 'archiving', 'archiving it again (to verify it) marks it archiving');
SELECT is(_hb_archive_failed(pg_temp.jid('verify'), 'cancelled by hb_cancel_job', true, '1 hour'), false,
    'a cancelled job asks for no alert');
SELECT results_eq($$SELECT p.state, p.checksum_manifest_url IS NOT NULL, j.state, j.result,
                           (SELECT count(*)::int FROM hb_events e WHERE e.event = 'archive.failed'
                            AND e.partition_name = p.partition_name)
                    FROM hb_partitions p, _hb_jobs j
                    WHERE p.partition_name = pg_temp.day(-7) AND j.id = pg_temp.jid('verify')$$,
    $$VALUES ('archived', true, 'cancelled', 'archived', 0)$$,
    '... the partition gets its prior state back and the job is cancelled, with no archive.failed event');

-- The worker's checks at begin.
SELECT pg_temp.job('not the owner''s', pg_temp.day(-10), 'hb_arch_other');
SELECT throws_ok(format('SELECT _hb_archive_begin(%s)', pg_temp.jid('not the owner''s')), '42501',
    format('the role that asked for job %s does not own table public.heartbeats', pg_temp.jid('not the owner''s')),
    '_hb_archive_begin refuses a job asked by a role that does not own the table');
SELECT pg_temp.job('current', pg_temp.day(0));
SELECT throws_ok(format('SELECT _hb_archive_begin(%s)', pg_temp.jid('current')), '55000',
    format('partition %s is not closed yet', pg_temp.day(0)), '... and a job for a partition that is not closed');
SELECT ok(pg_temp.state(pg_temp.day(-10)) = 'active' AND pg_temp.state(pg_temp.day(0)) = 'active',
    '... changing nothing');
SELECT _hb_job_failed(pg_temp.jid('not the owner''s'), 'refused'), _hb_job_failed(pg_temp.jid('current'), 'refused');

-- ------------------------------------------------------------ jobs a dead worker was running
-- The worker, when it starts, queues them again; one that three workers
-- died running fails, its partition becomes archive_failed and it alerts,
-- within the same rate limit as any failed archive.
SELECT _hb_archive_begin(pg_temp.job('crashed once', pg_temp.day(-12)));
SELECT _hb_archive_begin(pg_temp.job('crashed thrice', pg_temp.day(-13)));
UPDATE _hb_jobs SET attempts = 3 WHERE id = pg_temp.jid('crashed thrice');
CREATE TEMP TABLE recovered AS SELECT * FROM _hb_jobs_recover('1 hour');
SELECT results_eq($$SELECT job, requeued, partition_name, alert FROM recovered ORDER BY job$$,
    $$VALUES (pg_temp.jid('crashed once'), true, pg_temp.day(-12), false),
             (pg_temp.jid('crashed thrice'), false, pg_temp.day(-13), true)$$,
    '_hb_jobs_recover queues a dead worker''s job again, and fails one three workers died running, asking for an alert');
SELECT results_eq($$SELECT (SELECT state FROM _hb_jobs WHERE id = pg_temp.jid('crashed thrice')),
                           pg_temp.state(pg_temp.day(-13)),
                           (SELECT alerted_at IS NOT NULL FROM hb_partitions WHERE partition_name = pg_temp.day(-13)),
                           (SELECT count(*)::int FROM hb_events WHERE event = 'archive.failed'
                            AND partition_name = pg_temp.day(-13))$$,
    $$VALUES ('failed', 'archive_failed', true, 1)$$,
    '... that job is failed, its partition archive_failed and marked alerted, with an archive.failed event');
SELECT _hb_archive_begin(pg_temp.job('crashed thrice again', pg_temp.day(-13)));
UPDATE _hb_jobs SET attempts = 3 WHERE id = pg_temp.jid('crashed thrice again');
SELECT is((SELECT alert FROM _hb_jobs_recover('1 hour') WHERE job = pg_temp.jid('crashed thrice again')), false,
    'another such failure within the alert interval asks for no alert');
SELECT _hb_archive_begin(pg_temp.job('no webhook', pg_temp.day(-14)));
UPDATE _hb_jobs SET attempts = 3 WHERE id = pg_temp.jid('no webhook');
SELECT is((SELECT alert FROM _hb_jobs_recover(NULL) WHERE job = pg_temp.jid('no webhook')), false,
    'with no webhook (a NULL interval), none either');
SELECT is((SELECT alerted_at FROM hb_partitions WHERE partition_name = pg_temp.day(-14)), NULL::timestamptz,
    '... and none is recorded as sent');
-- The job queued again ends here (a cancel gives its partition its state back).
SELECT _hb_archive_failed(pg_temp.jid('crashed once'), 'cancelled', true, NULL);

-- ------------------------------------------------------------ no drop after a late write
SELECT is(pg_temp.archive('old', pg_temp.day(-15)), 'archived', 'set-up: a partition past the retention is archived');
SET LOCAL ROLE hb_arch_app;
INSERT INTO heartbeats VALUES (9, date_trunc('day', now()) - interval '15 days' + interval '1 hour', 'late');
RESET ROLE;
SET LOCAL ROLE hb_arch_owner;
SELECT throws_ok(format('SELECT hb_drop_partition(%L)', pg_temp.day(-15)), '55000',
    format('hb_drop_partition: partition %s is not archived', pg_temp.day(-15)),
    'a partition past the retention written after its archive is not dropped');
RESET ROLE;
SELECT ok(to_regclass(pg_temp.day(-15)) IS NOT NULL AND pg_temp.state(pg_temp.day(-15)) = 'active'
          AND (SELECT count(*) FROM heartbeats
               WHERE ts >= date_trunc('day', now()) - interval '15 days'
                 AND ts < date_trunc('day', now()) - interval '14 days') = 4,
    '... and nothing was dropped');

-- ------------------------------------------------------------ maintenance
-- A restored partition past the retention, and an archived one.
UPDATE hb_partitions SET state = 'archived', archived_at = now(), restored_at = now(),
    checksum_manifest_url = 'file:///archive/public.heartbeats/' || partition_name || '/manifest.json'
WHERE partition_name IN (pg_temp.day(-16), pg_temp.day(-17));
UPDATE hb_partitions SET restored_at = NULL WHERE partition_name = pg_temp.day(-17);
-- (with the late-write triggers an archive job, or a restore, gives them)
DO $$
DECLARE d int;
BEGIN
    FOREACH d IN ARRAY ARRAY[-16, -17] LOOP
        EXECUTE format('CREATE TRIGGER hb_late_rows AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION hb_partition_written()', pg_temp.day(d));
        EXECUTE format('CREATE TRIGGER hb_late_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION hb_partition_written()', pg_temp.day(d));
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER hb_late_rows, ENABLE ALWAYS TRIGGER hb_late_truncate',
                       pg_temp.day(d));
    END LOOP;
END $$;
-- The failed one, within its backoff.
UPDATE hb_partitions SET attempts = 1,
    last_attempt_at = now() - (SELECT archive_retry_interval FROM hb_settings()) / 2
WHERE partition_name = pg_temp.day(-6);
CREATE TEMP TABLE queued AS SELECT id FROM _hb_jobs WHERE state = 'queued';
CREATE TEMP TABLE run1 AS SELECT hb_run_maintenance() AS r;
SELECT ok((SELECT r FROM run1) ?& ARRAY['archive_due', 'archive_queued', 'archive_not_queued', 'kept_restored',
                                        'jobs_pruned'],
    'the summary has the archive keys');
SELECT is((SELECT r->'errors' FROM run1), '[]'::jsonb, 'the run has no errors');
SELECT ok((SELECT r->'archive_due' FROM run1) @> jsonb_build_array(pg_temp.day(-1), pg_temp.day(-2),
                                                                  pg_temp.day(-3), pg_temp.day(-10)),
    'archive_due lists the closed partitions not archived, also those written after their archive');
SELECT ok(NOT (SELECT r->'archive_due' FROM run1) ?| ARRAY[pg_temp.day(0), pg_temp.day(1), pg_temp.day(-7),
                                                          pg_temp.day(-18)],
    '... not the current, a future, an archived or a dropped one');
SELECT is((SELECT r->>'archive_not_queued' FROM run1),
    format('the background worker serves database %s, not this one', current_setting('hb_lifecycle.database')),
    'archive_not_queued says the worker serves another database');
SELECT ok((SELECT r->'archive_queued' FROM run1) = '[]'
          AND NOT EXISTS (SELECT 1 FROM _hb_jobs WHERE id NOT IN (SELECT id FROM queued) AND state = 'queued'),
    '... and nothing was queued');
SELECT ok(NOT (SELECT r->'archive_due' FROM run1) ? pg_temp.day(-8),
    'a partition with a queued job is not due');
SELECT ok(NOT (SELECT r->'archive_due' FROM run1) ? pg_temp.day(-6),
    'a failed archive is not due within hb_lifecycle.archive_retry_interval');
SELECT is((SELECT r->'kept_restored' FROM run1), jsonb_build_array(pg_temp.day(-16)),
    'a restored partition past the retention is kept and listed in kept_restored');
SELECT ok(to_regclass(pg_temp.day(-16)) IS NOT NULL AND pg_temp.state(pg_temp.day(-16)) = 'archived',
    '... still there, archived');
SELECT is((SELECT r->'dropped' FROM run1), jsonb_build_array(pg_temp.day(-17)),
    'while an archived one that was not restored is dropped');
SELECT ok((SELECT r->'waiting_for_archive' FROM run1) ? pg_temp.day(-15),
    'the one written after its archive waits for its archive');

UPDATE hb_partitions SET last_attempt_at = now() - (SELECT archive_retry_interval FROM hb_settings()) - interval '1 minute'
WHERE partition_name = pg_temp.day(-6);
SELECT ok((SELECT hb_run_maintenance()->'archive_due') ? pg_temp.day(-6),
    'a failed archive is due again once hb_lifecycle.archive_retry_interval has passed');
UPDATE hb_partitions SET attempts = 3,
    last_attempt_at = now() - 3 * (SELECT archive_retry_interval FROM hb_settings())
WHERE partition_name = pg_temp.day(-6);
SELECT ok(NOT (SELECT hb_run_maintenance()->'archive_due') ? pg_temp.day(-6),
    'the backoff doubles with each attempt (the third waits four intervals)');
UPDATE hb_partitions SET last_attempt_at = now() - 5 * (SELECT archive_retry_interval FROM hb_settings())
WHERE partition_name = pg_temp.day(-6);
SELECT ok((SELECT hb_run_maintenance()->'archive_due') ? pg_temp.day(-6), '... and no more');
UPDATE hb_partitions SET attempts = 30, last_attempt_at = now() - interval '25 hours'
WHERE partition_name = pg_temp.day(-6);
SELECT ok((SELECT hb_run_maintenance()->'archive_due') ? pg_temp.day(-6), 'the backoff is at most a day');
SET LOCAL ROLE hb_arch_owner;
SELECT ok(hb_drop_partition(pg_temp.day(-16)), 'the owner drops the restored partition when done with it');
RESET ROLE;

-- ------------------------------------------------------------ settings
SELECT results_eq($$SELECT pg_typeof(archive_retry_interval)::text, pg_typeof(worker_available)::text FROM hb_settings()$$,
    $$VALUES ('interval', 'boolean')$$, 'hb_settings() has archive_retry_interval and worker_available');
SELECT is((SELECT archive_retry_interval FROM hb_settings()),
    current_setting('hb_lifecycle.archive_retry_interval')::interval,
    'archive_retry_interval is hb_lifecycle.archive_retry_interval');
SELECT is((SELECT worker_available FROM hb_settings()), true, 'worker_available: the library is preloaded');
SELECT is(current_setting('hb_lifecycle.alert_webhook_url'), '', 'no alert webhook is set by default');
SET LOCAL ROLE hb_arch_nobody;
SELECT throws_ok($$SELECT current_setting('hb_lifecycle.s3_credentials_file')$$, '42501', NULL,
    'a role that is not a superuser cannot see hb_lifecycle.s3_credentials_file');
SELECT throws_ok($$SELECT current_setting('hb_lifecycle.alert_webhook_url')$$, '42501', NULL,
    '... nor hb_lifecycle.alert_webhook_url');
SELECT is((SELECT count(*)::int FROM pg_settings WHERE name IN ('hb_lifecycle.s3_credentials_file',
              'hb_lifecycle.alert_webhook_url', 'hb_lifecycle.archive_url', 'hb_lifecycle.s3_endpoint')), 0,
    '... nor find them in pg_settings');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
