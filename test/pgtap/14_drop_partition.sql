-- hb_drop_partition: refuses whatever is not safe to drop, with a clear
-- error that changes nothing; drops what is, recording it, without touching
-- device_last_status. Only the table's owner (or a superuser) may.
BEGIN;
SELECT plan(39);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE ROLE hb_drop_owner;
CREATE ROLE hb_drop_app;
CREATE ROLE hb_drop_stranger;
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
ALTER TABLE heartbeats OWNER TO hb_drop_owner;
GRANT INSERT, SELECT ON heartbeats TO hb_drop_app;
SELECT hb_manage('heartbeats', premake => 1, retention => '30 days');
SELECT hb_create_partitions('heartbeats', now() - interval '20 days', now());
SELECT hb_configure('heartbeats', retention => '10 days');

CREATE FUNCTION pg_temp.slot(t timestamptz) RETURNS text LANGUAGE sql AS
    $$ SELECT partition_name FROM hb_partition_slot('day', 'hb', t) $$;
-- A partition is untouched: still attached and still in its state.
CREATE FUNCTION pg_temp.untouched(p text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(p) AND inhparent = 'heartbeats'::regclass)
       AND (SELECT state FROM hb_partitions WHERE partition_name = p) = 'active' $$;

INSERT INTO heartbeats VALUES (1, now() - interval '15 days', 'old'), (1, now(), 'new'),
                              (2, now() - interval '15 days', 'only old');
CREATE TEMP TABLE before AS SELECT * FROM device_last_status;
CREATE TEMP TABLE old AS SELECT pg_temp.slot(now() - interval '15 days') AS p;
GRANT SELECT ON old TO PUBLIC;
SELECT ok(pg_temp.untouched((SELECT p FROM old)), 'set-up: the old partition is attached and active');

-- ------------------------------------------------------------ bad names
SELECT throws_ok($$SELECT hb_drop_partition(NULL)$$, '22004',
    'hb_drop_partition: partition must not be NULL', 'NULL is refused');
SELECT throws_ok($$SELECT hb_drop_partition('hb_1999_01_01')$$, '42P01',
    'hb_drop_partition: partition "hb_1999_01_01" does not exist', 'a name that does not exist is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, (SELECT p FROM old) || '; DROP TABLE heartbeats; --'),
    '42P01', NULL, 'a name with a semicolon and SQL after it is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, (SELECT p FROM old) || ''' OR ''1''=''1'),
    '42P01', NULL, 'a name with quotes is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, 'public.' || (SELECT p FROM old)),
    '42P01', NULL, 'a schema-qualified name is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, '"' || (SELECT p FROM old) || '"'),
    '42P01', NULL, 'a double-quoted name is refused');
SELECT ok(to_regclass('heartbeats') IS NOT NULL AND pg_temp.untouched((SELECT p FROM old)),
    '... and none of them changed anything');
SELECT throws_ok($$SELECT hb_drop_partition('device_last_status')$$, '55000',
    'hb_drop_partition: "device_last_status" is not a partition managed by hb_lifecycle',
    'a table that is not a managed partition is refused');
CREATE TABLE unmanaged (ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE unmanaged_p PARTITION OF unmanaged FOR VALUES FROM ('2000-01-01') TO ('2000-01-02');
SELECT throws_ok($$SELECT hb_drop_partition('unmanaged_p')$$, '55000', NULL,
    'a partition of an unmanaged table is refused');
SELECT ok(to_regclass('unmanaged_p') IS NOT NULL, '... and kept');

-- ------------------------------------------------------------ not safe yet
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, pg_temp.slot(now())), '55000',
    format('hb_drop_partition: partition %s is the current one or in the future', pg_temp.slot(now())),
    'the current partition is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, pg_temp.slot(now() + interval '1 day')), '55000',
    NULL, 'a future partition is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, pg_temp.slot(now() - interval '5 days')), '55000',
    format('hb_drop_partition: partition %s is not past the retention of public.heartbeats',
           pg_temp.slot(now() - interval '5 days')),
    'a partition within the retention is refused');
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, (SELECT p FROM old)), '55000',
    format('hb_drop_partition: partition %s is not archived', (SELECT p FROM old)),
    'a partition past the retention that is not archived is refused while archiving is on');
SELECT ok(pg_temp.untouched(pg_temp.slot(now())) AND pg_temp.untouched(pg_temp.slot(now() - interval '5 days'))
          AND pg_temp.untouched((SELECT p FROM old)), '... and nothing was changed');
CREATE FUNCTION pg_temp.hint_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN h;
END $$;
SELECT matches(pg_temp.hint_of(format('SELECT hb_drop_partition(%L)', (SELECT p FROM old))),
    'hb_archive_partition\(.*hb_configure\(''public.heartbeats'', archive => false\)',
    'the hint says how to archive it or turn archiving off');

-- ------------------------------------------------------------ privileges
SET ROLE hb_drop_app;
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, (SELECT p FROM old)), '42501', NULL,
    'an application role that inserts heartbeats cannot drop partitions');
SELECT throws_ok($$SELECT hb_run_maintenance()$$, '42501', NULL, '... nor run maintenance');
RESET ROLE;
GRANT EXECUTE ON FUNCTION hb_drop_partition(text) TO hb_drop_stranger;
SET ROLE hb_drop_stranger;
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, (SELECT p FROM old)), '42501',
    'hb_drop_partition: must be owner of table public.heartbeats',
    'a role granted EXECUTE that does not own the table is still refused');
RESET ROLE;
SELECT ok(pg_temp.untouched((SELECT p FROM old)), '... and nothing was changed');

-- ------------------------------------------------------------ a safe drop
SELECT hb_configure('heartbeats', archive => false);
SET ROLE hb_drop_owner;
SELECT ok(hb_drop_partition((SELECT p FROM old)), 'the owner drops a partition past the retention once archiving is off');
RESET ROLE;
SELECT ok(to_regclass((SELECT p FROM old)) IS NULL, 'the table is gone');
SELECT results_eq($$SELECT state, dropped_at IS NOT NULL FROM hb_partitions WHERE partition_name = (SELECT p FROM old)$$,
    $$VALUES ('dropped', true)$$, 'hb_partitions records the drop');
SELECT is((SELECT count(*)::int FROM hb_events WHERE event = 'drop' AND partition_name = (SELECT p FROM old)), 1,
    'a drop event is recorded');
SELECT set_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM before$$,
    'device_last_status is untouched, even for a device whose only rows were dropped');
SELECT is(hb_drop_partition((SELECT p FROM old)), false, 'dropping it again does nothing and says so');

-- With archiving on, an archived partition past the retention may go.
SELECT hb_configure('heartbeats', archive => true);
UPDATE hb_partitions SET state = 'archived' WHERE partition_name = pg_temp.slot(now() - interval '16 days');
SELECT ok(hb_drop_partition(pg_temp.slot(now() - interval '16 days')), 'an archived partition past the retention is dropped');

-- ------------------------------------------------------------ metadata cannot be forged
SET ROLE hb_drop_app;
CREATE TEMP TABLE squat ();
SELECT throws_ok($$INSERT INTO hb_partitions (partition_name, parent, range_start, range_end)
                   VALUES ('hb_2099_01_01', 'pg_temp.squat', '2099-01-01', '2099-01-02')$$, '42501', NULL,
    'a role cannot record a partition for a table that is not managed (a name another table will need)');
RESET ROLE;
SET ROLE hb_drop_owner;
SELECT throws_ok($$INSERT INTO hb_partitions (partition_name, parent, range_start, range_end)
                   VALUES ('hb_2099_01_01', 'heartbeats', '2099-01-01', '2099-01-02')$$, '42501', NULL,
    'nor its owner a partition that does not exist');
RESET ROLE;

SET ROLE hb_drop_owner;
SELECT throws_ok($$UPDATE hb_partitions SET partition_name = 'hb_2099_01_02' WHERE parent = 'heartbeats'::regclass$$,
    '42501', NULL, 'a recorded partition cannot be renamed (onto a name another table will need)');
RESET ROLE;
-- Another owner's table cannot take a name of this table's scheme.
CREATE TABLE other_fleet (device_id bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE other_fleet OWNER TO hb_drop_stranger;
SELECT hb_manage('other_fleet', premake => 0, partition_prefix => 'ot', last_status_table => 'other_fleet_last');
CREATE TABLE hb_2099_02_01 PARTITION OF other_fleet FOR VALUES FROM ('2099-02-01') TO ('2099-02-02');
ALTER TABLE hb_2099_02_01 OWNER TO hb_drop_stranger;
SET ROLE hb_drop_stranger;
SELECT throws_ok($$INSERT INTO hb_partitions (partition_name, parent, range_start, range_end)
                   VALUES ('hb_2099_02_01', 'other_fleet', '2099-02-01', '2099-02-02')$$, '42501', NULL,
    'an owner cannot record a partition under a name of another managed table''s scheme');
RESET ROLE;
SELECT ok((SELECT hb_run_maintenance()->'unmatched') ? 'hb_2099_02_01'
          AND NOT EXISTS (SELECT 1 FROM hb_partitions WHERE partition_name = 'hb_2099_02_01'),
    '... nor does adoption record it: it is reported');
DROP TABLE hb_2099_02_01;

-- ------------------------------------------------------------ bounds changed by hand
SELECT format('ALTER TABLE heartbeats DETACH PARTITION %I', pg_temp.slot(now() - interval '19 days')) \gexec
SELECT format('ALTER TABLE heartbeats ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
              pg_temp.slot(now() - interval '19 days'), date_trunc('day', now() - interval '19 days'),
              date_trunc('day', now() - interval '19 days') + interval '12 hours') \gexec
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, pg_temp.slot(now() - interval '19 days')), '55000',
    format('hb_drop_partition: the bounds of partition %s are not the ones hb_partitions records',
           pg_temp.slot(now() - interval '19 days')),
    'a partition attached again with other bounds is not dropped on the strength of the recorded ones');

-- ------------------------------------------------------------ detached by hand
SELECT format('ALTER TABLE heartbeats DETACH PARTITION %I', pg_temp.slot(now() - interval '18 days')) \gexec
SELECT throws_ok(format($$SELECT hb_drop_partition(%L)$$, pg_temp.slot(now() - interval '18 days')), '55000',
    format('hb_drop_partition: partition %s is no longer attached to public.heartbeats', pg_temp.slot(now() - interval '18 days')),
    'a partition detached by hand is not dropped');
SELECT ok((SELECT hb_run_maintenance()->'detached') ? pg_temp.slot(now() - interval '18 days'),
    'maintenance reports it as detached');

-- ------------------------------------------------------------ dropped by hand
SELECT format('DROP TABLE %I', pg_temp.slot(now() - interval '17 days')) \gexec
SELECT results_eq($$SELECT state, last_error FROM hb_partitions WHERE partition_name = pg_temp.slot(now() - interval '17 days')$$,
    $$VALUES ('dropped', 'dropped outside hb_lifecycle')$$,
    'a partition dropped by hand is marked dropped in hb_partitions');
DROP TABLE unmanaged;
SELECT is((SELECT count(*)::int FROM hb_partitions WHERE partition_name = 'unmanaged_p'), 0,
    'dropping an unmanaged partition leaves hb_partitions alone');
DROP TABLE heartbeats;
SELECT is((SELECT count(*)::int FROM hb_partitions WHERE parent <> 'other_fleet'::regclass), 0,
    'dropping a managed table removes its partitions from hb_partitions');

SELECT * FROM finish();
ROLLBACK;
