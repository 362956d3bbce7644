-- The rules of device_last_status: newest time wins (an equal time never
-- overwrites), retries are stored once, rolled-back inserts leave no trace,
-- NULL device or time is refused; and what hb_counters() counts.
--
-- hb_counters() is cluster-wide and not transactional: the counter deltas
-- below assume that nothing else runs on the test cluster meanwhile
-- (scripts/test.sh runs one suite at a time, pg_prove one file at a time).
BEGIN;
SELECT plan(59);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text, battery int)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2001_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-01') TO ('2001-12-02');
CREATE TABLE hb_2001_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-02') TO ('2001-12-03');
SELECT hb_manage('heartbeats');

CREATE FUNCTION pg_temp.last(d bigint) RETURNS SETOF device_last_status LANGUAGE sql AS $$
    SELECT * FROM device_last_status WHERE device_id = d
$$;
-- mark(n) records every counter; since(n, c) is how much counter c grew
-- since mark n; hits_since(n) is since(n, 'dedupe_hits').
CREATE TEMP TABLE mark (name text, counter text, value bigint, PRIMARY KEY (name, counter));
CREATE FUNCTION pg_temp.mark(n text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO mark SELECT n, counter, value FROM hb_counters()
    ON CONFLICT (name, counter) DO UPDATE SET value = EXCLUDED.value
$$;
CREATE FUNCTION pg_temp.since(n text, c text) RETURNS bigint LANGUAGE sql AS $$
    SELECT h.value - m.value FROM hb_counters() h JOIN mark m ON m.counter = h.counter
    WHERE m.name = n AND h.counter = c
$$;
CREATE FUNCTION pg_temp.hits_since(n text) RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_temp.since(n, 'dedupe_hits')
$$;

-- ------------------------------------------------------------ newest wins
INSERT INTO heartbeats VALUES (1, '2001-12-01 10:00+00', 'ten', 10);
INSERT INTO heartbeats VALUES (1, '2001-12-01 09:00+00', 'nine', 9);
SELECT results_eq($$SELECT * FROM pg_temp.last(1)$$,
    $$VALUES (1::bigint, '2001-12-01 10:00+00'::timestamptz, 'ten'::text, 10)$$,
    'an older heartbeat does not overwrite a newer one');
INSERT INTO heartbeats VALUES (1, '2001-12-01 10:00:00.000001+00', 'ten+1us', 11);
SELECT results_eq($$SELECT status FROM pg_temp.last(1)$$, $$VALUES ('ten+1us')$$,
    'a heartbeat one microsecond newer overwrites');
INSERT INTO heartbeats VALUES (1, '2001-12-01 13:00+02', 'same-instant', 12);
SELECT results_eq($$SELECT status FROM pg_temp.last(1)$$, $$VALUES ('same-instant')$$,
    'times are compared as instants: 13:00+02 is newer than 10:00:00.000001+00');
SET LOCAL TimeZone = 'Pacific/Kiritimati';
INSERT INTO heartbeats VALUES (1, '2001-12-01 23:00', 'local-time', 13);  -- 09:00 UTC
SET LOCAL TimeZone = 'UTC';
SELECT results_eq($$SELECT status FROM pg_temp.last(1)$$, $$VALUES ('same-instant')$$,
    'a heartbeat written in another session time zone is compared by its instant');

-- Several rows of a device in one statement: the newest, wherever it is.
INSERT INTO heartbeats VALUES (2, '2001-12-01 08:00+00', 'a', 1), (2, '2001-12-02 08:00+00', 'newest', 2),
                              (2, '2001-12-01 09:00+00', 'c', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(2)$$, $$VALUES ('newest')$$,
    'a batch leaves the newest row of a device (newest in the middle)');
INSERT INTO heartbeats VALUES (3, '2001-12-02 08:00+00', 'newest', 1), (3, '2001-12-01 08:00+00', 'b', 2),
                              (3, '2001-12-01 07:00+00', 'c', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(3)$$, $$VALUES ('newest')$$,
    'a batch leaves the newest row of a device (newest first)');
INSERT INTO heartbeats VALUES (3, '2001-12-01 06:00+00', 'old', 4), (3, '2001-12-02 09:00+00', 'newer', 5),
                              (3, '2001-12-01 05:00+00', 'old-2', 6);
SELECT results_eq($$SELECT status FROM pg_temp.last(3)$$, $$VALUES ('newer')$$,
    'a batch mixing older and newer rows than the stored one leaves the newest overall');
INSERT INTO heartbeats VALUES (3, '2001-12-01 04:00+00', 'old-3', 7), (3, '2001-12-01 03:00+00', 'old-4', 8);
SELECT results_eq($$SELECT status FROM pg_temp.last(3)$$, $$VALUES ('newer')$$,
    'a batch of only older rows changes nothing');

-- Extreme device ids and their order.
INSERT INTO heartbeats VALUES (-9223372036854775808, '2001-12-01 10:00+00', 'min', 1),
                              (9223372036854775807, '2001-12-01 10:00+00', 'max', 1),
                              (0, '2001-12-01 10:00+00', 'zero', 1), (-1, '2001-12-01 10:00+00', 'minus-one', 1),
                              (-1, '2001-12-01 11:00+00', 'minus-one-newer', 1);
SELECT results_eq(
    $$SELECT device_id, status FROM device_last_status WHERE device_id NOT BETWEEN 1 AND 1000 ORDER BY device_id$$,
    $$VALUES ((-9223372036854775808)::bigint, 'min'::text), (-1, 'minus-one-newer'), (0, 'zero'),
             (9223372036854775807, 'max')$$,
    'negative, zero and extreme bigint devices are kept apart and exact');

-- ------------------------------------------------------------ retries
SELECT pg_temp.mark('retry');
INSERT INTO heartbeats VALUES (10, '2001-12-01 10:00+00', 'original', 1);
SELECT is(pg_temp.hits_since('retry'), 0::bigint, 'a new heartbeat is not a dedupe hit');
SELECT lives_ok($$INSERT INTO heartbeats VALUES (10, '2001-12-01 10:00+00', 'retried', 2)$$,
    'a retried heartbeat (same device and time) raises no error');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 10), 1::bigint, 'a retried heartbeat is stored once');
SELECT results_eq($$SELECT status, battery FROM heartbeats WHERE device_id = 10$$, $$VALUES ('original', 1)$$,
    'the first copy of a retried heartbeat is kept');
SELECT results_eq($$SELECT status, battery FROM pg_temp.last(10)$$, $$VALUES ('original', 1)$$,
    'a skipped retry leaves device_last_status as it was');
SELECT is(pg_temp.hits_since('retry'), 1::bigint, 'a retried heartbeat counts one dedupe hit');

SELECT pg_temp.mark('retry-batch');
INSERT INTO heartbeats VALUES (11, '2001-12-01 10:00+00', 'one', 1), (11, '2001-12-01 10:00+00', 'two', 2),
                              (11, '2001-12-01 11:00+00', 'three', 3), (10, '2001-12-01 10:00+00', 'four', 4);
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 11), 2::bigint,
    'a heartbeat repeated inside one statement is stored once');
SELECT is(pg_temp.hits_since('retry-batch'), 2::bigint,
    '... and counted, as is the retry of an earlier statement''s heartbeat');
SELECT results_eq($$SELECT status FROM pg_temp.last(11)$$, $$VALUES ('three')$$,
    '... and device_last_status has the newest');

SELECT pg_temp.mark('retry-zone');
INSERT INTO heartbeats VALUES (10, '2001-12-01 11:00+01', 'same instant', 5);
SELECT is(pg_temp.hits_since('retry-zone'), 1::bigint,
    'a retry written with another UTC offset is the same heartbeat');

SELECT pg_temp.mark('retry-copy');
COPY heartbeats FROM STDIN;
12	2001-12-01 10:00:00+00	copy-1	1
12	2001-12-01 10:00:00+00	copy-2	2
12	2001-12-01 10:00:00+00	copy-3	3
10	2001-12-01 10:00:00+00	copy-4	4
\.
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id IN (10, 12)), 2::bigint,
    'COPY with retried heartbeats stores each once');
SELECT is(pg_temp.hits_since('retry-copy'), 3::bigint, '... and counts three dedupe hits');

SELECT pg_temp.mark('retry-partition');
INSERT INTO hb_2001_12_01 VALUES (10, '2001-12-01 10:00+00', 'direct', 6);
SELECT is(pg_temp.hits_since('retry-partition'), 1::bigint,
    'a retry inserted straight into the partition is recognised too');

-- skip_duplicate_heartbeats = off: the unique index decides.
SET LOCAL hb_lifecycle.skip_duplicate_heartbeats = off;
SELECT pg_temp.mark('no-skip');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (10, '2001-12-01 10:00+00', 'dup', 7)$$, '23505',
    'duplicate key value violates unique constraint "hb_2001_12_01_device_id_ts_idx"',
    'with skip_duplicate_heartbeats off a retried heartbeat raises unique_violation');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (13, '2001-12-01 10:00+00', 'x', 1), (13, '2001-12-01 10:00+00', 'y', 2)$$,
    '23505', 'duplicate key value violates unique constraint "hb_2001_12_01_device_id_ts_idx"',
    '... as does a heartbeat repeated inside one statement');
SELECT is(pg_temp.hits_since('no-skip'), 0::bigint, '... and nothing is counted as a dedupe hit');
SET LOCAL hb_lifecycle.skip_duplicate_heartbeats = on;
SELECT lives_ok($$INSERT INTO heartbeats VALUES (10, '2001-12-01 10:00+00', 'dup', 7)$$,
    'with the setting back on, the retry is skipped again');

-- ------------------------------------------------------------ NULLs
SELECT throws_ok($$INSERT INTO heartbeats VALUES (NULL, '2001-12-01 10:00+00', 'x', 1)$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device is refused');
-- (hb_manage gives every managed table a catch-all partition, so a NULL
-- time reaches the trigger instead of failing in tuple routing.)
SELECT throws_ok($$INSERT INTO heartbeats VALUES (20, NULL, 'x', 1)$$, '23502',
    'heartbeat without a time: column "ts" is NULL', 'a NULL time is refused');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (21, '2001-12-01 10:00+00', 'ok', 1), (21, '2001-12-01 11:00+00', 'ok', 2),
                                                 (NULL, '2001-12-01 12:00+00', 'bad', 3)$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device in the last row of a batch is refused');
SELECT throws_ok($$INSERT INTO heartbeats SELECT CASE WHEN i = 3 THEN NULL ELSE 22 END,
                  '2001-12-01 10:00+00'::timestamptz + i * interval '1 minute', 'sel', i FROM generate_series(1, 5) i$$,
    '23502', 'heartbeat without a device: column "device_id" is NULL', 'a NULL device in INSERT ... SELECT is refused');
SELECT throws_ok($$INSERT INTO hb_2001_12_01 VALUES (NULL, '2001-12-01 10:00+00', 'direct', 1)$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device inserted straight into a partition is refused');

INSERT INTO heartbeats VALUES (23, '2001-12-01 10:00+00', 'ok', 1), (23, '2002-06-01 10:00+00', 'nowhere', 2);
SELECT is((SELECT tableoid::regclass::text FROM heartbeats WHERE device_id = 23 AND status = 'nowhere'), 'hb_default',
    'a row outside every partition is kept, in the catch-all partition');

-- ------------------------------------------------------------ the writer's equal-time rule
-- A heartbeat with the same (device, time) as the device's row but another
-- payload can reach the writer only when the stored copy of that heartbeat
-- is gone (else the dedupe probe skips it): TRUNCATE of the partition that
-- holds it removes it without firing any trigger, and device_last_status
-- keeps the row. The equal time must not overwrite it.
CREATE TABLE hb_2001_12_05 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-05') TO ('2001-12-06');
INSERT INTO heartbeats VALUES (60, '2001-12-05 10:00+00', 'stored', 1);
TRUNCATE hb_2001_12_05;
SELECT pg_temp.mark('equal-time');
INSERT INTO heartbeats VALUES (60, '2001-12-05 10:00+00', 'same time, other payload', 2);
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 60), 1::bigint,
    'after TRUNCATE of its partition, a heartbeat with the same (device, time) is stored again');
SELECT results_eq($$SELECT * FROM pg_temp.last(60)$$,
    $$VALUES (60::bigint, '2001-12-05 10:00+00'::timestamptz, 'stored'::text, 1)$$,
    'a heartbeat with the same time as the device''s row does not overwrite it');
SELECT is(pg_temp.since('equal-time', 'last_status_stale_skips'), 1::bigint,
    '... and is counted as a stale skip');
-- (device_last_status now differs from the heartbeats for device 60: delete
-- its heartbeat, which removes the device, for the final check.)
DELETE FROM heartbeats WHERE device_id = 60;

-- ------------------------------------------------------------ rollbacks
INSERT INTO heartbeats VALUES (30, '2001-12-01 10:00+00', 'kept', 1);
SAVEPOINT s1;
INSERT INTO heartbeats VALUES (30, '2001-12-01 11:00+00', 'rolled back', 2), (31, '2001-12-01 11:00+00', 'new device', 1);
ROLLBACK TO SAVEPOINT s1;
SELECT results_eq($$SELECT * FROM pg_temp.last(30)$$,
    $$VALUES (30::bigint, '2001-12-01 10:00+00'::timestamptz, 'kept'::text, 1)$$,
    'ROLLBACK TO SAVEPOINT restores the previous row of a device');
SELECT is_empty($$SELECT * FROM pg_temp.last(31)$$, 'ROLLBACK TO SAVEPOINT removes a device first seen in it');
SELECT pg_temp.mark('after-rollback');
INSERT INTO heartbeats VALUES (30, '2001-12-01 11:00+00', 'sent again', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(30)$$, $$VALUES ('sent again')$$,
    'a heartbeat rolled back can be sent again and is stored');
SELECT is(pg_temp.hits_since('after-rollback'), 0::bigint, '... and is not taken for a retry');

-- Nested savepoints.
SAVEPOINT a;
INSERT INTO heartbeats VALUES (32, '2001-12-01 10:00+00', 'level-a', 1);
SAVEPOINT b;
INSERT INTO heartbeats VALUES (32, '2001-12-01 11:00+00', 'level-b', 2);
SAVEPOINT c;
INSERT INTO heartbeats VALUES (32, '2001-12-01 12:00+00', 'level-c', 3);
ROLLBACK TO SAVEPOINT c;
RELEASE SAVEPOINT b;
SELECT results_eq($$SELECT status FROM pg_temp.last(32)$$, $$VALUES ('level-b')$$,
    'nested savepoints: rolling back the inner one keeps what the released one wrote');
SAVEPOINT d;
INSERT INTO heartbeats VALUES (32, '2001-12-01 13:00+00', 'level-d', 4);
RELEASE SAVEPOINT d;
ROLLBACK TO SAVEPOINT a;
SELECT is_empty($$SELECT * FROM pg_temp.last(32)$$,
    'nested savepoints: rolling back the outer one undoes released inner ones');

-- An error caught by a PL/pgSQL EXCEPTION block.
INSERT INTO heartbeats VALUES (33, '2001-12-01 10:00+00', 'outer', 1);
DO $$
BEGIN
    INSERT INTO heartbeats VALUES (34, '2001-12-01 10:00+00', 'outer-in-do', 1);
    BEGIN
        INSERT INTO heartbeats VALUES (33, '2001-12-01 11:00+00', 'inner', 2), (35, '2001-12-01 11:00+00', 'inner', 2);
        RAISE EXCEPTION 'boom';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END $$;
SELECT results_eq($$SELECT device_id, status FROM device_last_status WHERE device_id BETWEEN 33 AND 35 ORDER BY 1$$,
    $$VALUES (33::bigint, 'outer'::text), (34, 'outer-in-do')$$,
    'an error caught by an EXCEPTION block leaves no trace; rows of the outer transaction stay');

-- A statement that fails after hb_lifecycle's AFTER ROW trigger has put
-- some of its rows in the buffer: an AFTER ROW trigger of the application,
-- fired after hb_lifecycle_sync_row (name order), raises on its third row.
-- (throws_ok runs it in a subtransaction: its abort must drop those rows,
-- so that the flush of the next statement does not write them.)
INSERT INTO heartbeats VALUES (36, '2001-12-01 10:00+00', 'before', 1);
CREATE FUNCTION pg_temp.fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'boom' THEN
        RAISE EXCEPTION 'boom';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER zz_fail_after AFTER INSERT ON heartbeats FOR EACH ROW EXECUTE FUNCTION pg_temp.fail_on_boom();
SELECT throws_ok($$INSERT INTO heartbeats VALUES (36, '2001-12-01 11:00+00', 'after', 2),
                                                 (37, '2001-12-01 11:00+00', 'after', 2),
                                                 (38, '2001-12-01 11:00+00', 'boom', 3)$$,
    'P0001', 'boom', 'a statement failing in a later AFTER ROW trigger is refused');
DROP TRIGGER zz_fail_after ON heartbeats;
INSERT INTO heartbeats VALUES (39, '2001-12-01 10:00+00', 'next', 1);
SELECT results_eq($$SELECT device_id, status FROM device_last_status WHERE device_id BETWEEN 36 AND 39 ORDER BY 1$$,
    $$VALUES (36::bigint, 'before'::text), (39, 'next')$$,
    '... and the next statement writes none of its buffered rows, only its own');

-- ------------------------------------------------------------ other BEFORE triggers
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'hb_lifecycle.skip_duplicate_heartbeats'), 'on',
    'hb_lifecycle.skip_duplicate_heartbeats is on by default');
-- hb_lifecycle's BEFORE trigger fires after the others (name order): it
-- sees the row they produced.
CREATE FUNCTION pg_temp.normalize() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.ts := date_trunc('minute', NEW.ts);
    IF NEW.status = 'drop me' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER normalize BEFORE INSERT ON heartbeats FOR EACH ROW EXECUTE FUNCTION pg_temp.normalize();
INSERT INTO heartbeats VALUES (40, '2001-12-01 10:00:10+00', 'first', 1);
SELECT pg_temp.mark('normalized');
INSERT INTO heartbeats VALUES (40, '2001-12-01 10:00:40+00', 'same minute', 2);
SELECT is(pg_temp.hits_since('normalized'), 1::bigint,
    'a row made a retry by another BEFORE trigger is recognised as one');
SELECT results_eq($$SELECT ts, status FROM pg_temp.last(40)$$,
    $$VALUES ('2001-12-01 10:00+00'::timestamptz, 'first'::text)$$,
    'device_last_status has the row as the other BEFORE trigger changed it');
INSERT INTO heartbeats VALUES (40, '2001-12-01 11:00+00', 'drop me', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(40)$$, $$VALUES ('first')$$,
    'a row another BEFORE trigger skips does not reach device_last_status');
DROP TRIGGER normalize ON heartbeats;

-- A device row removed from device_last_status by hand comes back with its next heartbeat.
DELETE FROM device_last_status WHERE device_id = 40;
INSERT INTO heartbeats VALUES (40, '2001-12-01 09:00+00', 'older, after manual delete', 4);
SELECT results_eq($$SELECT status FROM pg_temp.last(40)$$, $$VALUES ('older, after manual delete')$$,
    'after a manual DELETE from device_last_status the next heartbeat of the device is stored');
DELETE FROM heartbeats WHERE device_id = 40 AND ts = '2001-12-01 09:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(40)$$, $$VALUES ('first')$$,
    '... and a DELETE recomputes it from the heartbeats');

-- ------------------------------------------------------------ counters
SELECT bag_eq($$SELECT counter FROM hb_counters()$$,
    $$VALUES ('dedupe_hits'), ('last_status_writes'), ('last_status_stale_skips'), ('last_status_recomputes'),
             ('events_partition_create'), ('events_archive_start'), ('events_archive_end'),
             ('events_archive_failed'), ('events_drop'), ('events_restore'), ('events_reconcile'),
             ('events_quarantine'), ('events_archive_stale'), ('events_backfill')$$,
    'hb_counters() returns exactly its counters');
SELECT pg_temp.mark('c-new');
INSERT INTO heartbeats VALUES (70, '2001-12-01 10:00+00', 'c', 1), (71, '2001-12-01 09:00+00', 'c', 1),
                              (71, '2001-12-01 10:00+00', 'c', 1), (72, '2001-12-01 10:00+00', 'c', 1);
SELECT is(pg_temp.since('c-new', 'last_status_writes'), 3::bigint,
    'one statement of 4 heartbeats of 3 new devices counts 3 last_status_writes, one per device');
SELECT is(pg_temp.since('c-new', 'last_status_stale_skips'), 0::bigint,
    '... and no stale skip (the older row of device 71 never reaches the writer)');
SELECT pg_temp.mark('c-older');
INSERT INTO heartbeats VALUES (70, '2001-12-01 09:00+00', 'c-older', 1);
SELECT is(pg_temp.since('c-older', 'last_status_stale_skips'), 1::bigint,
    'a heartbeat older than its device''s row counts 1 last_status_stale_skips');
SELECT is(pg_temp.since('c-older', 'last_status_writes'), 0::bigint, '... and no write');
SELECT pg_temp.mark('c-newer');
INSERT INTO heartbeats VALUES (72, '2001-12-01 11:00+00', 'c-newer', 1);
SELECT is(pg_temp.since('c-newer', 'last_status_writes'), 1::bigint,
    'a newer heartbeat of a known device counts 1 last_status_writes');
SELECT pg_temp.mark('c-delete-newest');
DELETE FROM heartbeats WHERE device_id = 71 AND ts = '2001-12-01 10:00+00';
SELECT is(pg_temp.since('c-delete-newest', 'last_status_recomputes'), 1::bigint,
    'a DELETE of a device''s newest heartbeat counts 1 last_status_recomputes');
SELECT pg_temp.mark('c-delete-older');
DELETE FROM heartbeats WHERE device_id = 70 AND ts = '2001-12-01 09:00+00';
SELECT is(pg_temp.since('c-delete-older', 'last_status_recomputes'), 0::bigint,
    'a DELETE of an older heartbeat recomputes no device');

-- ------------------------------------------------------------ the whole table
SELECT results_eq($$SELECT * FROM device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC$$,
    'device_last_status is exactly the newest heartbeat of every device');

SELECT * FROM finish();
ROLLBACK;
