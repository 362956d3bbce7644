-- An UPDATE that moves a heartbeat to another partition (PostgreSQL turns it
-- into a DELETE and an INSERT: the INSERT fires the row triggers of the
-- destination, but no INSERT statement trigger) is kept in sync, and the
-- session goes on normally afterwards. This file runs last: when row
-- movement leaves hb_lifecycle's state behind, the next statement of the
-- session can fail or take the backend (and with it the cluster's other
-- sessions) down, and no other file should pay for that.
BEGIN;
SELECT plan(11);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

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
SELECT lives_ok($$INSERT INTO heartbeats VALUES (4, '2026-12-01 10:00+00', 'retry after moves')$$,
    'a retry after the moves is skipped without error');

SELECT * FROM finish();
ROLLBACK;
