-- An UPDATE that moves a heartbeat to another partition (PostgreSQL turns it
-- into a DELETE and an INSERT: the INSERT fires the row triggers of the
-- destination, but no INSERT statement trigger) is kept in sync, and the
-- session goes on normally afterwards: the statements after the moves are
-- the checks that row movement leaves no hb_lifecycle state behind (a
-- failure or a crashed backend fails them). Nothing depends on the order of
-- the files: pg_prove runs each on a connection of its own.
--
-- The dedupe counter delta assumes nothing else runs on the test cluster
-- meanwhile (hb_counters() is cluster-wide; pg_prove runs one file at a
-- time).
BEGIN;
SELECT plan(13);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

CREATE FUNCTION pg_temp.dedupe_hits() RETURNS bigint LANGUAGE sql AS $$
    SELECT value FROM hb_counters() WHERE counter = 'dedupe_hits'
$$;

CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
SELECT hb_manage('heartbeats');

INSERT INTO heartbeats VALUES (1, '2026-12-01 08:00+00', 'a'), (1, '2026-12-01 09:00+00', 'b'),
                              (2, '2026-12-02 08:00+00', 'c'), (2, '2026-12-02 09:00+00', 'd');

SELECT lives_ok($$UPDATE heartbeats SET ts = '2026-12-02 10:00+00' WHERE device_id = 1 AND status = 'b'$$,
    'an UPDATE moving the newest heartbeat forward into the next partition succeeds');
SELECT results_eq($$SELECT ts, status FROM device_last_status WHERE device_id = 1$$,
    $$VALUES ('2026-12-02 10:00+00'::timestamptz, 'b'::text)$$, '... and device_last_status follows it');
SELECT lives_ok($$INSERT INTO heartbeats VALUES (3, '2026-12-01 10:00+00', 'next insert')$$,
    'the next INSERT of the transaction succeeds');
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 3$$, $$VALUES ('next insert')$$,
    '... and is kept in sync');

SELECT lives_ok($$UPDATE heartbeats SET ts = '2026-12-01 23:00+00' WHERE device_id = 2 AND status = 'd'$$,
    'an UPDATE moving the newest heartbeat back into the previous partition succeeds');
SELECT results_eq($$SELECT ts, status FROM device_last_status WHERE device_id = 2$$,
    $$VALUES ('2026-12-02 08:00+00'::timestamptz, 'c'::text)$$, '... and device_last_status falls back to the newest remaining');

SELECT lives_ok($$UPDATE heartbeats SET ts = ts + interval '1 day' WHERE ts < '2026-12-02'$$,
    'an UPDATE moving many rows of several devices across partitions succeeds');
SELECT lives_ok($$DELETE FROM heartbeats WHERE device_id = 1 AND status = 'b'$$,
    'deleting a moved heartbeat succeeds');
SELECT lives_ok($$INSERT INTO heartbeats VALUES (4, '2026-12-01 10:00+00', 'after moves')$$,
    'an INSERT after the moves succeeds');
SELECT results_eq($$SELECT * FROM device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC$$,
    'device_last_status is exactly the newest heartbeat of every device');
SELECT pg_temp.dedupe_hits() AS hits_before_retry \gset
SELECT lives_ok($$INSERT INTO heartbeats VALUES (4, '2026-12-01 10:00+00', 'retry after moves')$$,
    'a retry after the moves raises no error');
SELECT results_eq($$SELECT status FROM heartbeats WHERE device_id = 4$$, $$VALUES ('after moves')$$,
    '... and is stored once, the first copy kept');
SELECT is(pg_temp.dedupe_hits() - :hits_before_retry, 1::bigint, '... and counts one dedupe hit');

SELECT * FROM finish();
ROLLBACK;
