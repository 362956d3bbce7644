-- Partitions created or attached after hb_manage get hb_lifecycle's
-- statement triggers from the event trigger, and are kept in sync.
BEGIN;
SELECT plan(36);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- The hb_lifecycle triggers of a relation: statement ones and row ones.
CREATE FUNCTION pg_temp.hb_triggers(rel regclass) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(tgname::text || CASE WHEN tgtype & 1 = 1 THEN '(row)' ELSE '(stmt)' END, ' '
                               ORDER BY tgname), '')
    FROM pg_trigger WHERE tgrelid = rel AND tgname LIKE '%hb_lifecycle%'
$$;
CREATE FUNCTION pg_temp.all_triggers() RETURNS text LANGUAGE sql AS $$
    SELECT 'hb_lifecycle_sync_delete(stmt) hb_lifecycle_sync_insert(stmt) hb_lifecycle_sync_row(row) '
           'hb_lifecycle_sync_update(stmt) zz_hb_lifecycle_dedupe(row) zz_hb_lifecycle_update(row)'
$$;

CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE hb_2001_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-01') TO ('2001-12-02');
SELECT hb_manage('heartbeats');
CREATE FUNCTION pg_temp.last(d bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM device_last_status WHERE device_id = d
$$;
SELECT is(pg_temp.hb_triggers('hb_2001_12_01'), pg_temp.all_triggers(), 'the partition that existed has all six triggers');

-- ------------------------------------------------------------ CREATE TABLE ... PARTITION OF
CREATE TABLE hb_2001_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-02') TO ('2001-12-03');
SELECT is(pg_temp.hb_triggers('hb_2001_12_02'), pg_temp.all_triggers(),
    'a partition created later has all six triggers');
INSERT INTO heartbeats VALUES (1, '2001-12-02 10:00+00', 'via parent');
SELECT is(pg_temp.last(1), 'via parent', 'a heartbeat routed to it through the parent is kept in sync');
INSERT INTO hb_2001_12_02 VALUES (2, '2001-12-02 10:00+00', 'direct');
SELECT is(pg_temp.last(2), 'direct', 'a heartbeat inserted straight into it is kept in sync');
DELETE FROM hb_2001_12_02 WHERE device_id = 2;
SELECT is(pg_temp.last(2), NULL, 'a DELETE straight from it is kept in sync');
INSERT INTO hb_2001_12_02 VALUES (1, '2001-12-02 10:00+00', 'retry');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 1), 1::bigint, 'retries into it are skipped');
SELECT is((SELECT count(*) FROM pg_index WHERE indrelid = 'hb_2001_12_02'::regclass AND indisunique), 1::bigint,
    'it has the unique (device, time) index');

CREATE SCHEMA archive;
CREATE TABLE archive.hb_2001_12_03 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-03') TO ('2001-12-04');
SELECT is(pg_temp.hb_triggers('archive.hb_2001_12_03'), pg_temp.all_triggers(),
    'a partition created later in another schema has all six triggers');
INSERT INTO archive.hb_2001_12_03 VALUES (3, '2001-12-03 10:00+00', 'other schema');
SELECT is(pg_temp.last(3), 'other schema', '... and is kept in sync');

-- ------------------------------------------------------------ ATTACH PARTITION
CREATE TABLE hb_2001_12_04 (LIKE heartbeats);
SELECT is(pg_temp.hb_triggers('hb_2001_12_04'), '', 'a standalone table has no trigger');
ALTER TABLE heartbeats ATTACH PARTITION hb_2001_12_04 FOR VALUES FROM ('2001-12-04') TO ('2001-12-05');
SELECT is(pg_temp.hb_triggers('hb_2001_12_04'), pg_temp.all_triggers(), 'an attached table gets all six triggers');
INSERT INTO hb_2001_12_04 VALUES (4, '2001-12-04 10:00+00', 'attached'), (4, '2001-12-04 09:00+00', 'older');
SELECT is(pg_temp.last(4), 'attached', 'inserts straight into an attached table are kept in sync');
INSERT INTO hb_2001_12_04 VALUES (4, '2001-12-04 10:00+00', 'retry');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 4), 2::bigint, 'retries into it are skipped');

-- A table whose columns are in another order.
CREATE TABLE hb_2001_12_05 (status text, ts timestamptz, device_id bigint);
ALTER TABLE heartbeats ATTACH PARTITION hb_2001_12_05 FOR VALUES FROM ('2001-12-05') TO ('2001-12-06');
INSERT INTO hb_2001_12_05 VALUES ('reordered', '2001-12-05 10:00+00', 5);
INSERT INTO heartbeats VALUES (5, '2001-12-05 09:00+00', 'older via parent');
SELECT results_eq($$SELECT * FROM device_last_status WHERE device_id = 5$$,
    $$VALUES (5::bigint, '2001-12-05 10:00+00'::timestamptz, 'reordered'::text)$$,
    'an attached table with another column order is kept in sync');
INSERT INTO hb_2001_12_05 VALUES ('retry', '2001-12-05 10:00+00', 5);
INSERT INTO heartbeats VALUES (5, '2001-12-05 10:00+00', 'retry via parent');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 5), 2::bigint,
    'retries into a table with another column order are skipped');

-- DETACH and ATTACH again: no trigger twice.
ALTER TABLE heartbeats DETACH PARTITION hb_2001_12_04;
ALTER TABLE heartbeats ATTACH PARTITION hb_2001_12_04 FOR VALUES FROM ('2001-12-04') TO ('2001-12-05');
SELECT is(pg_temp.hb_triggers('hb_2001_12_04'), pg_temp.all_triggers(), 'a re-attached table has each trigger once');
INSERT INTO hb_2001_12_04 VALUES (4, '2001-12-04 11:00+00', 're-attached');
SELECT is(pg_temp.last(4), 're-attached', '... and is kept in sync');

-- Other DDL on the managed table adds nothing.
ALTER TABLE heartbeats ALTER COLUMN status SET STATISTICS 200;
SELECT is(pg_temp.hb_triggers('heartbeats'), pg_temp.all_triggers(), 'other ALTER TABLE on the parent adds no trigger');

-- ------------------------------------------------------------ sub-partitions
CREATE TABLE hb_2001_12_w2 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-06') TO ('2001-12-13')
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2001_12_06 PARTITION OF hb_2001_12_w2 FOR VALUES FROM ('2001-12-06') TO ('2001-12-07');
SELECT is(pg_temp.hb_triggers('hb_2001_12_w2'), pg_temp.all_triggers(),
    'a partitioned partition created later has all six triggers');
SELECT is(pg_temp.hb_triggers('hb_2001_12_06'), pg_temp.all_triggers(), '... and so has its own partition');
INSERT INTO heartbeats VALUES (6, '2001-12-06 10:00+00', 'level 2 via root');
SELECT is(pg_temp.last(6), 'level 2 via root', 'a heartbeat routed two levels down is kept in sync');
INSERT INTO hb_2001_12_w2 VALUES (6, '2001-12-06 11:00+00', 'via level 1');
SELECT is(pg_temp.last(6), 'via level 1', 'a heartbeat inserted into the middle level is kept in sync');
INSERT INTO hb_2001_12_06 VALUES (6, '2001-12-06 12:00+00', 'leaf');
SELECT is(pg_temp.last(6), 'leaf', 'a heartbeat inserted straight into the leaf is kept in sync');
DELETE FROM hb_2001_12_06 WHERE status = 'leaf';
SELECT is(pg_temp.last(6), 'via level 1', 'a DELETE from the leaf is kept in sync');

-- ------------------------------------------------------------ DEFAULT partition
-- (in place of the catch-all partition hb_manage created)
DROP TABLE hb_default;
CREATE TABLE hb_default PARTITION OF heartbeats DEFAULT;
SELECT is(pg_temp.hb_triggers('hb_default'), pg_temp.all_triggers(), 'a DEFAULT partition created later has all six triggers');
INSERT INTO heartbeats VALUES (7, '2002-03-01 10:00+00', 'default partition');
SELECT is(pg_temp.last(7), 'default partition', 'a heartbeat routed to the DEFAULT partition is kept in sync');

-- ------------------------------------------------------------ unrelated tables
CREATE TABLE other_parent (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE other_child PARTITION OF other_parent FOR VALUES FROM ('2001-12-01') TO ('2001-12-02');
CREATE TABLE plain_table (x int);
SELECT is(pg_temp.hb_triggers('other_child') || pg_temp.hb_triggers('other_parent') || pg_temp.hb_triggers('plain_table'), '',
    'partitions of a table that is not managed, and plain tables, get no trigger');

-- ------------------------------------------------------------ event trigger disabled
ALTER EVENT TRIGGER hb_lifecycle_partition_triggers DISABLE;
CREATE TABLE hb_2001_12_20 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-20') TO ('2001-12-21');
ALTER EVENT TRIGGER hb_lifecycle_partition_triggers ENABLE;
SELECT is(pg_temp.hb_triggers('hb_2001_12_20'), 'hb_lifecycle_sync_row(row) zz_hb_lifecycle_dedupe(row) zz_hb_lifecycle_update(row)',
    'with the event trigger disabled a new partition has only the row triggers PostgreSQL clones');
INSERT INTO heartbeats VALUES (20, '2001-12-20 10:00+00', 'via parent');
SELECT is(pg_temp.last(20), 'via parent', 'a heartbeat routed to it through the parent is kept in sync');
-- A row inserted straight into it reaches device_last_status only at COMMIT
-- (the pre-commit callback), which this file, rolled back as a whole, never
-- reaches: 11_commit_paths.sql covers that path. Here: its dedupe probe.
INSERT INTO hb_2001_12_20 VALUES (21, '2001-12-20 10:00+00', 'direct');
SELECT lives_ok($$INSERT INTO hb_2001_12_20 VALUES (21, '2001-12-20 10:00+00', 'direct retry')$$,
    'a retry inserted straight into it is accepted');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 21), 1::bigint, '... and skipped');
SELECT throws_ok($$INSERT INTO hb_2001_12_20 VALUES (NULL, '2001-12-20 10:00+00', 'no device')$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device inserted straight into it is refused');

-- Maintenance creates the statement triggers the event trigger did not
-- (event triggers do not fire in single-user mode, nor under
-- session_replication_role = replica).
SELECT hb_configure('heartbeats', retention => '100 years');
SELECT ok(NOT (hb_run_maintenance() ? 'skipped'), 'set-up: maintenance runs');
SELECT is(pg_temp.hb_triggers('hb_2001_12_20'), pg_temp.all_triggers(),
    '... and gives that partition the statement triggers it lacked');
DELETE FROM hb_2001_12_20 WHERE device_id = 20;
SELECT is(pg_temp.last(20), NULL, '... after which a DELETE straight from it is kept in sync');
-- hb_lifecycle's own DDL does not wait for maintenance.
SET LOCAL session_replication_role = replica;
SELECT hb_create_partitions('heartbeats', '2001-12-25 12:00+00', '2001-12-25 12:00+00');
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.hb_triggers('hb_2001_12_25'), pg_temp.all_triggers(),
    'a partition hb_create_partitions makes while event triggers do not fire has all six triggers');

SELECT * FROM finish();
ROLLBACK;
