-- What only COMMIT, ROLLBACK and two-phase commit can show: top-level
-- rollback, and the pre-commit safety net for rows inserted straight into a
-- partition that lacks the statement triggers.
--
-- Not wrapped in one transaction, unlike the other files: it creates its
-- objects in schema hb_tap_commit and removes them at the end. Statements
-- whose COMMIT may fail run with ON_ERROR_STOP off, so that a failure shows
-- up as a failed test rather than an aborted file.
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET lock_timeout = '10s';

-- Leftovers of an interrupted run.
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE gid LIKE 'hb_tap_commit%' \gexec
SELECT hb_unmanage(parent) FROM hb_config WHERE parent::text LIKE 'hb_tap_commit.%';
DROP SCHEMA IF EXISTS hb_tap_commit CASCADE;

SELECT plan(19);

CREATE SCHEMA hb_tap_commit;
CREATE TABLE hb_tap_commit.heartbeats (device_id bigint, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE hb_tap_commit.p_2026_12_01 PARTITION OF hb_tap_commit.heartbeats
    FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
SELECT hb_manage('hb_tap_commit.heartbeats', partition_prefix => 'hb_tap_commit');
SELECT 'hb_tap_commit.heartbeats'::regclass::oid AS hb_tap_parent_oid,
       'hb_tap_commit.device_last_status'::regclass::oid AS hb_tap_ls_oid \gset
-- A partition without the statement triggers: created while the event
-- trigger is disabled (re-enabled before this transaction commits).
BEGIN;
ALTER EVENT TRIGGER hb_lifecycle_partition_triggers DISABLE;
CREATE TABLE hb_tap_commit.bare_2026_12_02 PARTITION OF hb_tap_commit.heartbeats
    FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
ALTER EVENT TRIGGER hb_lifecycle_partition_triggers ENABLE;
COMMIT;

CREATE FUNCTION hb_tap_commit.last(d bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM hb_tap_commit.device_last_status WHERE device_id = d
$$;

SELECT is((SELECT string_agg(tgname, ' ' ORDER BY tgname) FROM pg_trigger
           WHERE tgrelid = 'hb_tap_commit.bare_2026_12_02'::regclass),
    'hb_lifecycle_sync_row zz_hb_lifecycle_dedupe zz_hb_lifecycle_update', 'the bare partition has only the cloned row triggers');
SELECT ok((SELECT evtenabled <> 'D' FROM pg_event_trigger WHERE evtname = 'hb_lifecycle_partition_triggers'),
    'the event trigger is enabled again');

-- ------------------------------------------------------------ COMMIT and ROLLBACK
INSERT INTO hb_tap_commit.heartbeats VALUES (1, '2026-12-01 10:00+00', 'committed'), (2, '2026-12-01 10:00+00', 'committed');
SELECT is(hb_tap_commit.last(1), 'committed', 'a committed insert is in device_last_status');

BEGIN;
INSERT INTO hb_tap_commit.heartbeats VALUES (1, '2026-12-01 11:00+00', 'rolled back'), (3, '2026-12-01 11:00+00', 'rolled back');
ROLLBACK;
SELECT is(hb_tap_commit.last(1), 'committed', 'ROLLBACK restores the previous row of a device');
SELECT is(hb_tap_commit.last(3), NULL, 'ROLLBACK leaves no trace of a new device');

-- A procedure that commits and rolls back.
CREATE PROCEDURE hb_tap_commit.commit_then_rollback() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hb_tap_commit.heartbeats VALUES (4, '2026-12-01 10:00+00', 'proc committed');
    COMMIT;
    INSERT INTO hb_tap_commit.heartbeats VALUES (4, '2026-12-01 11:00+00', 'proc rolled back'),
                                                (5, '2026-12-01 11:00+00', 'proc rolled back');
    ROLLBACK;
END $$;
CALL hb_tap_commit.commit_then_rollback();
SELECT is(hb_tap_commit.last(4), 'proc committed', 'COMMIT inside a procedure keeps its heartbeat');
SELECT is(hb_tap_commit.last(5), NULL, 'ROLLBACK inside a procedure drops its heartbeats');

-- ------------------------------------------------------------ the pre-commit safety net
\set ON_ERROR_STOP 0
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (1, '2026-12-02 10:00+00', 'bare, known device');
BEGIN;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (2, '2026-12-02 10:00+00', 'bare, in a transaction');
SELECT 1 AS another_statement \g /dev/null
COMMIT;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (10, '2026-12-02 10:00+00', 'bare, new device');
\set ON_ERROR_STOP 1
SELECT is(hb_tap_commit.last(1), 'bare, known device',
    'a row inserted straight into the bare partition (autocommit) is applied at COMMIT');
SELECT is(hb_tap_commit.last(2), 'bare, in a transaction',
    'a row inserted straight into the bare partition in a transaction is applied at COMMIT');
SELECT is((SELECT count(*) FROM hb_tap_commit.heartbeats WHERE device_id = 10), 1::bigint,
    'a heartbeat of a new device inserted straight into the bare partition is stored');
SELECT is(hb_tap_commit.last(10), 'bare, new device', '... and applied at COMMIT');

\set ON_ERROR_STOP 0
BEGIN;
INSERT INTO hb_tap_commit.heartbeats VALUES (1, '2026-12-02 11:00+00', 'outer');
SAVEPOINT kept;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (2, '2026-12-02 11:00+00', 'released savepoint');
RELEASE SAVEPOINT kept;
SAVEPOINT undone;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (1, '2026-12-02 12:00+00', 'rolled-back savepoint');
ROLLBACK TO SAVEPOINT undone;
COMMIT;
\set ON_ERROR_STOP 1
SELECT is(hb_tap_commit.last(2), 'released savepoint', 'a bare-partition row of a released savepoint is applied at COMMIT');
SELECT is(hb_tap_commit.last(1), 'outer', 'a bare-partition row of a rolled-back savepoint is not');

-- A row of the bare partition changed again before COMMIT.
\set ON_ERROR_STOP 0
BEGIN;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (2, '2026-12-02 23:00+00', 'deleted before commit');
DELETE FROM hb_tap_commit.heartbeats WHERE device_id = 2 AND ts = '2026-12-02 23:00+00';
COMMIT;
BEGIN;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (1, '2026-12-02 23:00+00', 'before update');
UPDATE hb_tap_commit.heartbeats SET ts = '2026-12-02 22:00+00', status = 'updated before commit'
    WHERE device_id = 1 AND ts = '2026-12-02 23:00+00';
COMMIT;
\set ON_ERROR_STOP 1
SELECT is(hb_tap_commit.last(2), 'released savepoint',
    'a bare-partition row deleted before COMMIT is not applied at COMMIT');
SELECT results_eq($$SELECT ts, status FROM hb_tap_commit.device_last_status WHERE device_id = 1$$,
    $$VALUES ('2026-12-02 22:00+00'::timestamptz, 'updated before commit'::text)$$,
    'a bare-partition row updated before COMMIT is applied as updated');

-- ------------------------------------------------------------ two-phase commit
SELECT current_setting('max_prepared_transactions')::int > 0 AS hb_tap_2pc \gset
\if :hb_tap_2pc
\set ON_ERROR_STOP 0
INSERT INTO hb_tap_commit.heartbeats VALUES (20, '2026-12-01 10:00+00', 'before prepare');
BEGIN;
INSERT INTO hb_tap_commit.bare_2026_12_02 VALUES (20, '2026-12-02 10:00+00', 'prepared');
PREPARE TRANSACTION 'hb_tap_commit_1';
COMMIT PREPARED 'hb_tap_commit_1';
BEGIN;
INSERT INTO hb_tap_commit.heartbeats VALUES (21, '2026-12-01 10:00+00', 'prepared then rolled back');
PREPARE TRANSACTION 'hb_tap_commit_2';
ROLLBACK PREPARED 'hb_tap_commit_2';
\set ON_ERROR_STOP 1
SELECT is(hb_tap_commit.last(20), 'prepared',
    'COMMIT PREPARED applies the bare-partition row (flushed at PREPARE)');
SELECT is(hb_tap_commit.last(21), NULL, 'ROLLBACK PREPARED leaves no trace');
\else
SELECT skip('max_prepared_transactions is 0', 2);
\endif

-- ------------------------------------------------------------ end state, cleanup
SELECT results_eq($$SELECT * FROM hb_tap_commit.device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM hb_tap_commit.heartbeats ORDER BY device_id, ts DESC$$,
    'device_last_status is exactly the newest heartbeat of every device');

SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE gid LIKE 'hb_tap_commit%' \gexec
SELECT hb_unmanage('hb_tap_commit.heartbeats');
DROP SCHEMA hb_tap_commit CASCADE;
SELECT is((SELECT count(*) FROM hb_config WHERE parent::oid = :hb_tap_parent_oid OR last_status_table::oid = :hb_tap_ls_oid),
    0::bigint, 'cleanup: nothing of this file is left registered in hb_config');

SELECT * FROM finish();
