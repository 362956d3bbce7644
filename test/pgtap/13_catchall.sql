-- Rows that have no partition: never rejected, kept in the catch-all
-- partition, moved into their partition when it is created, quarantined
-- with a reason when no partition may hold them.
BEGIN;
SELECT plan(30);
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET hb_lifecycle.max_future = '30d';

CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
SELECT hb_manage('heartbeats', premake => 2, retention => '90 days');

CREATE FUNCTION pg_temp.slot(t timestamptz) RETURNS text LANGUAGE sql AS
    $$ SELECT partition_name FROM hb_partition_slot('day', 'hb', t) $$;
CREATE FUNCTION pg_temp.home(dev bigint, st text) RETURNS text LANGUAGE sql AS
    $$ SELECT tableoid::regclass::text FROM heartbeats WHERE device_id = dev AND status = st $$;
CREATE FUNCTION pg_temp.last(dev bigint) RETURNS text LANGUAGE sql AS
    $$ SELECT status FROM device_last_status WHERE device_id = dev $$;

-- ------------------------------------------------------------ rows land in the catch-all
SELECT lives_ok($$INSERT INTO heartbeats VALUES
    (1, now(), 'now'),
    (1, now() + interval '10 days', 'ahead of the partitions'),
    (2, now() + interval '400 days', 'wrong clock'),
    (3, now() - interval '200 days', 'older than retention'),
    (4, now() - interval '5 days', 'no partition yet')$$,
    'an insert of rows that have no partition does not fail');
SELECT is((SELECT count(*)::int FROM ONLY hb_default), 4, 'the rows without a partition are in the catch-all');
SELECT is(pg_temp.last(1), 'ahead of the partitions', 'and count for the last status like any row');
SELECT is(pg_temp.last(2), 'wrong clock', '(a wrong clock too, until maintenance)');

-- ------------------------------------------------------------ maintenance empties it
CREATE TEMP TABLE run AS SELECT hb_run_maintenance() AS r;
SELECT is((SELECT (r->>'catchall_rows')::int FROM run), 4, 'maintenance counts the catch-all''s rows');
SELECT is((SELECT (r->>'moved')::int FROM run), 2, 'moves the plausible ones');
SELECT is((SELECT (r->>'quarantined')::int FROM run), 2, 'quarantines the implausible ones');
SELECT is((SELECT count(*)::int FROM ONLY hb_default), 0, 'and leaves the catch-all empty');
SELECT is(pg_temp.home(1, 'ahead of the partitions'), pg_temp.slot(now() + interval '10 days'),
    'a row ahead of the partitions is moved into its partition, created for it');
SELECT is(pg_temp.home(4, 'no partition yet'), pg_temp.slot(now() - interval '5 days'),
    'a row of a past day within the retention is moved into its partition');
SELECT ok((SELECT r->'created' FROM run) @> to_jsonb(ARRAY[pg_temp.slot(now() + interval '10 days'),
                                                           pg_temp.slot(now() - interval '5 days')]),
    'the summary lists the partitions created for them');
SELECT is((SELECT state FROM hb_partitions WHERE partition_name = pg_temp.slot(now() - interval '5 days')),
    'active', 'and hb_partitions records them');
SELECT results_eq($$SELECT reason, heartbeat->>'status' FROM hb_quarantine ORDER BY id$$,
    $$VALUES ('older than the retention of public.heartbeats (90 days)', 'older than retention'),
             ('more than hb_lifecycle.max_future (30 days) in the future', 'wrong clock')$$,
    'quarantined rows are kept in hb_quarantine with their reason');
SELECT is((SELECT (jsonb_populate_record(NULL::heartbeats, heartbeat)).ts FROM hb_quarantine
           WHERE heartbeat->>'status' = 'wrong clock'),
    (SELECT now() + interval '400 days'), 'jsonb_populate_record gives a quarantined row back whole');
SELECT is((SELECT count(*)::int FROM heartbeats WHERE device_id IN (2, 3)), 0,
    'quarantined rows are no longer heartbeats');
SELECT is(pg_temp.last(1), 'ahead of the partitions', 'a move leaves the device''s last status as it was');
SELECT is(pg_temp.last(4), 'no partition yet', '(also when the moved row is the device''s only one)');
SELECT is(pg_temp.last(2), NULL, 'a wrong clock no longer pins the device''s last status in the future');
SELECT is(pg_temp.last(3), 'older than retention', 'an old quarantined row leaves the last status, as a drop does');
SELECT is((SELECT (detail->>'rows')::int FROM hb_events WHERE event = 'quarantine' AND parent = 'heartbeats'::regclass), 2,
    'the quarantine is recorded as an event');

-- ------------------------------------------------------------ creating a partition moves rows
INSERT INTO heartbeats VALUES (5, now() + interval '4 days', 'waiting in the catch-all');
SELECT lives_ok($$SELECT hb_create_ahead('heartbeats', 4)$$,
    'creating a partition does not fail on a catch-all holding its rows');
SELECT is(pg_temp.home(5, 'waiting in the catch-all'), pg_temp.slot(now() + interval '4 days'),
    'the row is moved into the partition created for it');
SELECT is((SELECT (detail->>'rows_moved')::int FROM hb_events
           WHERE event = 'partition.create' AND partition_name = pg_temp.slot(now() + interval '4 days')), 1,
    'the partition.create event counts the rows it moved');

-- ------------------------------------------------------------ a partition that was dropped
-- (archived: as the archive issue will record it)
UPDATE hb_partitions SET state = 'archived', archived_at = now()
 WHERE partition_name = pg_temp.slot(now() - interval '5 days');
SELECT hb_configure('heartbeats', retention => '3 days');
SELECT hb_drop_partition(pg_temp.slot(now() - interval '5 days'));
SELECT hb_configure('heartbeats', retention => '90 days');
INSERT INTO heartbeats VALUES (6, now() - interval '5 days', 'late for a dropped partition');
SELECT is((SELECT hb_run_maintenance()->>'quarantined')::int, 1,
    'a late row for a partition that was dropped is quarantined');
SELECT is((SELECT reason FROM hb_quarantine WHERE heartbeat->>'status' = 'late for a dropped partition'),
    format('partition %s was archived and dropped', pg_temp.slot(now() - interval '5 days')),
    'with the reason');
SELECT is((SELECT state FROM hb_partitions WHERE partition_name = pg_temp.slot(now() - interval '5 days')),
    'dropped', 'and the archived, dropped partition is not created again');
-- Dropped without an archive (archiving off): nothing to split, so it is made again.
SELECT hb_create_partitions('heartbeats', now() - interval '8 days', now() - interval '8 days');
SELECT hb_configure('heartbeats', retention => '3 days', archive => false);
SELECT hb_drop_partition(pg_temp.slot(now() - interval '8 days'));
SELECT hb_configure('heartbeats', retention => '90 days', archive => true);
INSERT INTO heartbeats VALUES (8, now() - interval '8 days', 'late, no archive');
SELECT hb_run_maintenance();
SELECT results_eq($$SELECT pg_temp.home(8, 'late, no archive'), (SELECT state FROM hb_partitions
                    WHERE partition_name = pg_temp.slot(now() - interval '8 days'))$$,
    $$VALUES (pg_temp.slot(now() - interval '8 days'), 'active'::text)$$,
    'a late row for a partition dropped without an archive gets the partition created again');

-- ------------------------------------------------------------ any column names
CREATE TABLE odd (m int, hb__moved text, device_id bigint NOT NULL, ts timestamptz NOT NULL)
    PARTITION BY RANGE (ts);
SELECT hb_manage('odd', last_status_table => 'odd_last', partition_prefix => 'odd');
INSERT INTO odd VALUES (7, 'x', 1, now() + interval '400 days'), (8, 'y', 2, now() + interval '10 days');
SELECT hb_run_maintenance();
SELECT is((SELECT heartbeat FROM hb_quarantine WHERE parent = 'odd'::regclass),
    jsonb_build_object('m', 7, 'hb__moved', 'x', 'device_id', 1, 'ts', now() + interval '400 days'),
    'whatever its columns are called, a quarantined row is kept whole');
SELECT is((SELECT (m, hb__moved) FROM odd WHERE device_id = 2)::text, '(8,y)',
    'and a moved row keeps every column');

-- ------------------------------------------------------------ only the owner
CREATE ROLE hb_catchall_stranger;
GRANT EXECUTE ON FUNCTION hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text)
    TO hb_catchall_stranger;
SET ROLE hb_catchall_stranger;
SELECT throws_ok($$SELECT hb_take_catchall_rows('hb_default', 'heartbeats', 'ts', NULL, NULL, NULL, 'x')$$,
    '42501', NULL, 'only the catch-all''s owner can move its rows');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
