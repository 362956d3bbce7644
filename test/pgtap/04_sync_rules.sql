-- The rules of device_last_status: newest time wins, retries are stored
-- once, rolled-back inserts leave no trace, NULL device or time is refused.
BEGIN;
SELECT plan(54);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text, battery int)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
SELECT hb_manage('heartbeats');

CREATE FUNCTION pg_temp.last(d bigint) RETURNS SETOF device_last_status LANGUAGE sql AS $$
    SELECT * FROM device_last_status WHERE device_id = d
$$;
CREATE FUNCTION pg_temp.dedupe_hits() RETURNS bigint LANGUAGE sql AS $$
    SELECT value FROM hb_counters() WHERE counter = 'dedupe_hits'
$$;
CREATE TEMP TABLE mark (name text PRIMARY KEY, hits bigint);
CREATE FUNCTION pg_temp.mark(n text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO mark VALUES (n, pg_temp.dedupe_hits())
    ON CONFLICT (name) DO UPDATE SET hits = EXCLUDED.hits
$$;
CREATE FUNCTION pg_temp.hits_since(n text) RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_temp.dedupe_hits() - hits FROM mark WHERE name = n
$$;

-- ------------------------------------------------------------ newest wins
INSERT INTO heartbeats VALUES (1, '2026-12-01 10:00+00', 'ten', 10);
INSERT INTO heartbeats VALUES (1, '2026-12-01 09:00+00', 'nine', 9);
SELECT results_eq($$SELECT * FROM pg_temp.last(1)$$,
    $$VALUES (1::bigint, '2026-12-01 10:00+00'::timestamptz, 'ten'::text, 10)$$,
    'an older heartbeat does not overwrite a newer one');
INSERT INTO heartbeats VALUES (1, '2026-12-01 10:00:00.000001+00', 'ten+1us', 11);
SELECT results_eq($$SELECT status FROM pg_temp.last(1)$$, $$VALUES ('ten+1us')$$,
    'a heartbeat one microsecond newer overwrites');
INSERT INTO heartbeats VALUES (1, '2026-12-01 13:00+02', 'same-instant', 12);
SELECT results_eq($$SELECT status FROM pg_temp.last(1)$$, $$VALUES ('same-instant')$$,
    'times are compared as instants: 13:00+02 is newer than 10:00:00.000001+00');
SET LOCAL TimeZone = 'Pacific/Kiritimati';
INSERT INTO heartbeats VALUES (1, '2026-12-01 23:00', 'local-time', 13);  -- 09:00 UTC
SET LOCAL TimeZone = 'UTC';
SELECT results_eq($$SELECT status FROM pg_temp.last(1)$$, $$VALUES ('same-instant')$$,
    'a heartbeat written in another session time zone is compared by its instant');

-- Several rows of a device in one statement: the newest, wherever it is.
INSERT INTO heartbeats VALUES (2, '2026-12-01 08:00+00', 'a', 1), (2, '2026-12-02 08:00+00', 'newest', 2),
                              (2, '2026-12-01 09:00+00', 'c', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(2)$$, $$VALUES ('newest')$$,
    'a batch leaves the newest row of a device (newest in the middle)');
INSERT INTO heartbeats VALUES (3, '2026-12-02 08:00+00', 'newest', 1), (3, '2026-12-01 08:00+00', 'b', 2),
                              (3, '2026-12-01 07:00+00', 'c', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(3)$$, $$VALUES ('newest')$$,
    'a batch leaves the newest row of a device (newest first)');
INSERT INTO heartbeats VALUES (3, '2026-12-01 06:00+00', 'old', 4), (3, '2026-12-02 09:00+00', 'newer', 5),
                              (3, '2026-12-01 05:00+00', 'old-2', 6);
SELECT results_eq($$SELECT status FROM pg_temp.last(3)$$, $$VALUES ('newer')$$,
    'a batch mixing older and newer rows than the stored one leaves the newest overall');
INSERT INTO heartbeats VALUES (3, '2026-12-01 04:00+00', 'old-3', 7), (3, '2026-12-01 03:00+00', 'old-4', 8);
SELECT results_eq($$SELECT status FROM pg_temp.last(3)$$, $$VALUES ('newer')$$,
    'a batch of only older rows changes nothing');

-- Extreme device ids and their order.
INSERT INTO heartbeats VALUES (-9223372036854775808, '2026-12-01 10:00+00', 'min', 1),
                              (9223372036854775807, '2026-12-01 10:00+00', 'max', 1),
                              (0, '2026-12-01 10:00+00', 'zero', 1), (-1, '2026-12-01 10:00+00', 'minus-one', 1),
                              (-1, '2026-12-01 11:00+00', 'minus-one-newer', 1);
SELECT results_eq(
    $$SELECT device_id, status FROM device_last_status WHERE device_id NOT BETWEEN 1 AND 1000 ORDER BY device_id$$,
    $$VALUES ((-9223372036854775808)::bigint, 'min'::text), (-1, 'minus-one-newer'), (0, 'zero'),
             (9223372036854775807, 'max')$$,
    'negative, zero and extreme bigint devices are kept apart and exact');

-- ------------------------------------------------------------ retries
SELECT pg_temp.mark('retry');
INSERT INTO heartbeats VALUES (10, '2026-12-01 10:00+00', 'original', 1);
SELECT is(pg_temp.hits_since('retry'), 0::bigint, 'a new heartbeat is not a dedupe hit');
SELECT lives_ok($$INSERT INTO heartbeats VALUES (10, '2026-12-01 10:00+00', 'retried', 2)$$,
    'a retried heartbeat (same device and time) raises no error');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 10), 1::bigint, 'a retried heartbeat is stored once');
SELECT results_eq($$SELECT status, battery FROM heartbeats WHERE device_id = 10$$, $$VALUES ('original', 1)$$,
    'the first copy of a retried heartbeat is kept');
SELECT results_eq($$SELECT status, battery FROM pg_temp.last(10)$$, $$VALUES ('original', 1)$$,
    'a retry with the same time does not overwrite device_last_status');
SELECT is(pg_temp.hits_since('retry'), 1::bigint, 'a retried heartbeat counts one dedupe hit');

SELECT pg_temp.mark('retry-batch');
INSERT INTO heartbeats VALUES (11, '2026-12-01 10:00+00', 'one', 1), (11, '2026-12-01 10:00+00', 'two', 2),
                              (11, '2026-12-01 11:00+00', 'three', 3), (10, '2026-12-01 10:00+00', 'four', 4);
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id = 11), 2::bigint,
    'a heartbeat repeated inside one statement is stored once');
SELECT is(pg_temp.hits_since('retry-batch'), 2::bigint,
    '... and counted, as is the retry of an earlier statement''s heartbeat');
SELECT results_eq($$SELECT status FROM pg_temp.last(11)$$, $$VALUES ('three')$$,
    '... and device_last_status has the newest');

SELECT pg_temp.mark('retry-zone');
INSERT INTO heartbeats VALUES (10, '2026-12-01 11:00+01', 'same instant', 5);
SELECT is(pg_temp.hits_since('retry-zone'), 1::bigint,
    'a retry written with another UTC offset is the same heartbeat');

SELECT pg_temp.mark('retry-copy');
COPY heartbeats FROM STDIN;
12	2026-12-01 10:00:00+00	copy-1	1
12	2026-12-01 10:00:00+00	copy-2	2
12	2026-12-01 10:00:00+00	copy-3	3
10	2026-12-01 10:00:00+00	copy-4	4
\.
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id IN (10, 12)), 2::bigint,
    'COPY with retried heartbeats stores each once');
SELECT is(pg_temp.hits_since('retry-copy'), 3::bigint, '... and counts three dedupe hits');

SELECT pg_temp.mark('retry-partition');
INSERT INTO hb_2026_12_01 VALUES (10, '2026-12-01 10:00+00', 'direct', 6);
SELECT is(pg_temp.hits_since('retry-partition'), 1::bigint,
    'a retry inserted straight into the partition is recognised too');

-- skip_duplicate_heartbeats = off: the unique index decides.
SET LOCAL hb_lifecycle.skip_duplicate_heartbeats = off;
SELECT pg_temp.mark('no-skip');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (10, '2026-12-01 10:00+00', 'dup', 7)$$, '23505',
    'duplicate key value violates unique constraint "hb_2026_12_01_device_id_ts_idx"',
    'with skip_duplicate_heartbeats off a retried heartbeat raises unique_violation');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (13, '2026-12-01 10:00+00', 'x', 1), (13, '2026-12-01 10:00+00', 'y', 2)$$,
    '23505', 'duplicate key value violates unique constraint "hb_2026_12_01_device_id_ts_idx"',
    '... as does a heartbeat repeated inside one statement');
SELECT is(pg_temp.hits_since('no-skip'), 0::bigint, '... and nothing is counted as a dedupe hit');
SELECT is_empty($$SELECT * FROM pg_temp.last(13)$$, '... and the failed statement wrote nothing');
SET LOCAL hb_lifecycle.skip_duplicate_heartbeats = on;
SELECT lives_ok($$INSERT INTO heartbeats VALUES (10, '2026-12-01 10:00+00', 'dup', 7)$$,
    'with the setting back on, the retry is skipped again');

-- ------------------------------------------------------------ NULLs
SELECT throws_ok($$INSERT INTO heartbeats VALUES (NULL, '2026-12-01 10:00+00', 'x', 1)$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device is refused');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (20, NULL, 'x', 1)$$, '23514',
    NULL, 'a NULL time finds no partition (there is no default partition)');
CREATE TABLE hb_default PARTITION OF heartbeats DEFAULT;
SELECT throws_ok($$INSERT INTO heartbeats VALUES (20, NULL, 'x', 1)$$, '23502',
    'heartbeat without a time: column "ts" is NULL', 'a NULL time is refused');
SELECT throws_ok($$INSERT INTO heartbeats VALUES (21, '2026-12-01 10:00+00', 'ok', 1), (21, '2026-12-01 11:00+00', 'ok', 2),
                                                 (NULL, '2026-12-01 12:00+00', 'bad', 3)$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device in the last row of a batch is refused');
SELECT is_empty($$SELECT * FROM heartbeats WHERE device_id = 21$$, '... and no row of that statement is stored');
SELECT is_empty($$SELECT * FROM pg_temp.last(21)$$, '... and device_last_status is untouched');
SELECT throws_ok($$INSERT INTO heartbeats SELECT CASE WHEN i = 3 THEN NULL ELSE 22 END,
                  '2026-12-01 10:00+00'::timestamptz + i * interval '1 minute', 'sel', i FROM generate_series(1, 5) i$$,
    '23502', 'heartbeat without a device: column "device_id" is NULL', 'a NULL device in INSERT ... SELECT is refused');
SELECT throws_ok($$INSERT INTO hb_2026_12_01 VALUES (NULL, '2026-12-01 10:00+00', 'direct', 1)$$, '23502',
    'heartbeat without a device: column "device_id" is NULL', 'a NULL device inserted straight into a partition is refused');
SELECT is((SELECT count(*) FROM heartbeats WHERE device_id IS NULL OR ts IS NULL), 0::bigint,
    'no heartbeat without device or time was stored');
DROP TABLE hb_default;

-- A row that finds no partition fails its statement; nothing of it remains.
SELECT throws_ok($$INSERT INTO heartbeats VALUES (23, '2026-12-01 10:00+00', 'ok', 1), (23, '2027-06-01 10:00+00', 'nowhere', 2)$$,
    '23514', 'no partition of relation "heartbeats" found for row', 'a row outside every partition fails the statement');
SELECT is_empty($$SELECT * FROM pg_temp.last(23)$$, '... and device_last_status is untouched');

-- ------------------------------------------------------------ rollbacks
INSERT INTO heartbeats VALUES (30, '2026-12-01 10:00+00', 'kept', 1);
SAVEPOINT s1;
INSERT INTO heartbeats VALUES (30, '2026-12-01 11:00+00', 'rolled back', 2), (31, '2026-12-01 11:00+00', 'new device', 1);
ROLLBACK TO SAVEPOINT s1;
SELECT results_eq($$SELECT * FROM pg_temp.last(30)$$,
    $$VALUES (30::bigint, '2026-12-01 10:00+00'::timestamptz, 'kept'::text, 1)$$,
    'ROLLBACK TO SAVEPOINT restores the previous row of a device');
SELECT is_empty($$SELECT * FROM pg_temp.last(31)$$, 'ROLLBACK TO SAVEPOINT removes a device first seen in it');
SELECT pg_temp.mark('after-rollback');
INSERT INTO heartbeats VALUES (30, '2026-12-01 11:00+00', 'sent again', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(30)$$, $$VALUES ('sent again')$$,
    'a heartbeat rolled back can be sent again and is stored');
SELECT is(pg_temp.hits_since('after-rollback'), 0::bigint, '... and is not taken for a retry');

-- Nested savepoints.
SAVEPOINT a;
INSERT INTO heartbeats VALUES (32, '2026-12-01 10:00+00', 'level-a', 1);
SAVEPOINT b;
INSERT INTO heartbeats VALUES (32, '2026-12-01 11:00+00', 'level-b', 2);
SAVEPOINT c;
INSERT INTO heartbeats VALUES (32, '2026-12-01 12:00+00', 'level-c', 3);
ROLLBACK TO SAVEPOINT c;
RELEASE SAVEPOINT b;
SELECT results_eq($$SELECT status FROM pg_temp.last(32)$$, $$VALUES ('level-b')$$,
    'nested savepoints: rolling back the inner one keeps what the released one wrote');
SAVEPOINT d;
INSERT INTO heartbeats VALUES (32, '2026-12-01 13:00+00', 'level-d', 4);
RELEASE SAVEPOINT d;
ROLLBACK TO SAVEPOINT a;
SELECT is_empty($$SELECT * FROM pg_temp.last(32)$$,
    'nested savepoints: rolling back the outer one undoes released inner ones');

-- An error caught by a PL/pgSQL EXCEPTION block.
INSERT INTO heartbeats VALUES (33, '2026-12-01 10:00+00', 'outer', 1);
DO $$
BEGIN
    INSERT INTO heartbeats VALUES (34, '2026-12-01 10:00+00', 'outer-in-do', 1);
    BEGIN
        INSERT INTO heartbeats VALUES (33, '2026-12-01 11:00+00', 'inner', 2), (35, '2026-12-01 11:00+00', 'inner', 2);
        RAISE EXCEPTION 'boom';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END $$;
SELECT results_eq($$SELECT device_id, status FROM device_last_status WHERE device_id BETWEEN 33 AND 35 ORDER BY 1$$,
    $$VALUES (33::bigint, 'outer'::text), (34, 'outer-in-do')$$,
    'an error caught by an EXCEPTION block leaves no trace; rows of the outer transaction stay');

-- A failing statement after a successful one in the same subtransaction.
INSERT INTO heartbeats VALUES (36, '2026-12-01 10:00+00', 'before', 1);
SELECT throws_ok($$INSERT INTO heartbeats VALUES (36, '2026-12-01 11:00+00', 'after', 2), (36, '2027-01-01', 'nowhere', 3)$$,
    '23514', NULL, 'a failing statement ...');
SELECT results_eq($$SELECT status FROM pg_temp.last(36)$$, $$VALUES ('before')$$,
    '... leaves the row of the statement before it');

-- ------------------------------------------------------------ other BEFORE triggers
SELECT is(current_setting('hb_lifecycle.skip_duplicate_heartbeats'), 'on',
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
INSERT INTO heartbeats VALUES (40, '2026-12-01 10:00:10+00', 'first', 1);
SELECT pg_temp.mark('normalized');
INSERT INTO heartbeats VALUES (40, '2026-12-01 10:00:40+00', 'same minute', 2);
SELECT is(pg_temp.hits_since('normalized'), 1::bigint,
    'a row made a retry by another BEFORE trigger is recognised as one');
SELECT results_eq($$SELECT ts, status FROM pg_temp.last(40)$$,
    $$VALUES ('2026-12-01 10:00+00'::timestamptz, 'first'::text)$$,
    'device_last_status has the row as the other BEFORE trigger changed it');
INSERT INTO heartbeats VALUES (40, '2026-12-01 11:00+00', 'drop me', 3);
SELECT results_eq($$SELECT status FROM pg_temp.last(40)$$, $$VALUES ('first')$$,
    'a row another BEFORE trigger skips does not reach device_last_status');
DROP TRIGGER normalize ON heartbeats;

-- A device row removed from device_last_status by hand comes back with its next heartbeat.
DELETE FROM device_last_status WHERE device_id = 40;
INSERT INTO heartbeats VALUES (40, '2026-12-01 09:00+00', 'older, after manual delete', 4);
SELECT results_eq($$SELECT status FROM pg_temp.last(40)$$, $$VALUES ('older, after manual delete')$$,
    'after a manual DELETE from device_last_status the next heartbeat of the device is stored');
DELETE FROM heartbeats WHERE device_id = 40 AND ts = '2026-12-01 09:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(40)$$, $$VALUES ('first')$$,
    '... and a DELETE recomputes it from the heartbeats');

-- ------------------------------------------------------------ the whole table
SELECT results_eq($$SELECT * FROM device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC$$,
    'device_last_status is exactly the newest heartbeat of every device');

SELECT * FROM finish();
ROLLBACK;
