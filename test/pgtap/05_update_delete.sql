-- UPDATE and DELETE of heartbeats: device_last_status stays equal to the
-- newest remaining heartbeat of each device (and loses a device with none).
BEGIN;
SELECT plan(30);
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
CREATE FUNCTION pg_temp.newest(d bigint) RETURNS SETOF heartbeats LANGUAGE sql AS $$
    SELECT * FROM heartbeats WHERE device_id = d ORDER BY ts DESC LIMIT 1
$$;

-- Devices 1..9 each have heartbeats at 08:00 (12-01), 09:00 (12-01) and 10:00 (12-02).
INSERT INTO heartbeats
SELECT d, t, 'd' || d || '@' || to_char(t, 'HH24'), d * 10 + extract(hour FROM t)::int
FROM generate_series(1, 9) d,
     unnest(ARRAY['2026-12-01 08:00+00', '2026-12-01 09:00+00', '2026-12-02 10:00+00']::timestamptz[]) t;

-- ------------------------------------------------------------ UPDATE
UPDATE heartbeats SET status = 'changed', battery = 0 WHERE device_id = 1 AND ts = '2026-12-02 10:00+00';
SELECT results_eq($$SELECT * FROM pg_temp.last(1)$$,
    $$VALUES (1::bigint, '2026-12-02 10:00+00'::timestamptz, 'changed'::text, 0)$$,
    'UPDATE of the newest heartbeat is reflected');

UPDATE heartbeats SET status = 'old-changed' WHERE device_id = 2 AND ts = '2026-12-01 08:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(2)$$, $$VALUES ('d2@10')$$,
    'UPDATE of an older heartbeat changes nothing');

UPDATE heartbeats SET ts = '2026-12-02 07:00+00' WHERE device_id = 3 AND ts = '2026-12-02 10:00+00';
UPDATE heartbeats SET ts = '2026-12-01 07:00+00' WHERE device_id = 3 AND ts = '2026-12-01 09:00+00';
SELECT results_eq($$SELECT * FROM pg_temp.last(3)$$, $$SELECT * FROM pg_temp.newest(3)$$,
    'UPDATE moving the newest heartbeat back in time (same partition) keeps it the newest when it still is');
UPDATE heartbeats SET ts = '2026-12-02 06:00+00' WHERE device_id = 3 AND ts = '2026-12-02 07:00+00';
UPDATE heartbeats SET ts = '2026-12-01 23:00+00' WHERE device_id = 3 AND ts = '2026-12-01 08:00+00';
SELECT results_eq($$SELECT ts, status FROM pg_temp.last(3)$$,
    $$VALUES ('2026-12-02 06:00+00'::timestamptz, 'd3@10'::text)$$,
    'UPDATE moving heartbeats in time within their partitions: the newest remaining wins');

UPDATE heartbeats SET ts = '2026-12-01 07:30+00' WHERE device_id = 4 AND ts = '2026-12-01 09:00+00';
SELECT results_eq($$SELECT * FROM pg_temp.last(4)$$,
    $$VALUES (4::bigint, '2026-12-02 10:00+00'::timestamptz, 'd4@10'::text, 50)$$,
    'UPDATE moving an older heartbeat further back in time changes nothing');
UPDATE heartbeats SET ts = '2026-12-01 12:00+00' WHERE device_id = 5 AND ts = '2026-12-01 08:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(5)$$, $$VALUES ('d5@10')$$,
    'UPDATE making an older heartbeat less old does not make it the newest');
UPDATE heartbeats SET ts = '2026-12-02 11:00+00', status = 'promoted' WHERE device_id = 5 AND ts = '2026-12-02 10:00+00';
SELECT results_eq($$SELECT ts, status FROM pg_temp.last(5)$$,
    $$VALUES ('2026-12-02 11:00+00'::timestamptz, 'promoted'::text)$$,
    'UPDATE making the newest heartbeat newer is reflected');

UPDATE heartbeats SET device_id = 60 WHERE device_id = 6 AND ts = '2026-12-02 10:00+00';
SELECT results_eq($$SELECT * FROM pg_temp.last(6)$$, $$SELECT * FROM pg_temp.newest(6)$$,
    'UPDATE moving the newest heartbeat to another device recomputes the old device');
SELECT results_eq($$SELECT status FROM pg_temp.last(60)$$, $$VALUES ('d6@10')$$,
    '... and gives the new device that heartbeat');
UPDATE heartbeats SET device_id = 61 WHERE device_id = 60;
SELECT is_empty($$SELECT * FROM pg_temp.last(60)$$,
    'UPDATE moving a device''s only heartbeat away removes the device');
SELECT results_eq($$SELECT status FROM pg_temp.last(61)$$, $$VALUES ('d6@10')$$, '... and adds the other');

UPDATE heartbeats SET battery = battery + 1000 WHERE device_id IN (7, 8);
SELECT results_eq($$SELECT device_id, battery FROM device_last_status WHERE device_id IN (7, 8) ORDER BY 1$$,
    $$VALUES (7::bigint, 1080), (8, 1090)$$, 'an UPDATE of every row of several devices is reflected');

CREATE TEMP TABLE before_no_row AS SELECT * FROM device_last_status;
UPDATE heartbeats SET status = 'nothing' WHERE device_id = 424242;
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM before_no_row$$,
    'an UPDATE of no row changes nothing');

UPDATE hb_2026_12_02 SET status = 'via-partition' WHERE device_id = 9;
SELECT results_eq($$SELECT status FROM pg_temp.last(9)$$, $$VALUES ('via-partition')$$,
    'UPDATE straight on a partition is reflected');

MERGE INTO heartbeats h USING (VALUES (9::bigint, '2026-12-02 10:00+00'::timestamptz)) v(d, t)
    ON h.device_id = v.d AND h.ts = v.t
    WHEN MATCHED THEN UPDATE SET status = 'via-merge';
SELECT results_eq($$SELECT status FROM pg_temp.last(9)$$, $$VALUES ('via-merge')$$,
    'MERGE ... WHEN MATCHED THEN UPDATE is reflected');

-- ------------------------------------------------------------ DELETE
-- Devices 20..29: heartbeats at 08:00 (12-01), 09:00 (12-01), 10:00 (12-02).
INSERT INTO heartbeats
SELECT d, t, 'd' || d || '@' || to_char(t, 'HH24'), d
FROM generate_series(20, 29) d,
     unnest(ARRAY['2026-12-01 08:00+00', '2026-12-01 09:00+00', '2026-12-02 10:00+00']::timestamptz[]) t;

DELETE FROM heartbeats WHERE device_id = 20 AND ts = '2026-12-01 08:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(20)$$, $$VALUES ('d20@10')$$,
    'DELETE of an older heartbeat changes nothing');
DELETE FROM heartbeats WHERE device_id = 21 AND ts = '2026-12-02 10:00+00';
SELECT results_eq($$SELECT * FROM pg_temp.last(21)$$,
    $$VALUES (21::bigint, '2026-12-01 09:00+00'::timestamptz, 'd21@09'::text, 21)$$,
    'DELETE of the newest heartbeat falls back to the newest remaining one');
DELETE FROM heartbeats WHERE device_id = 21 AND ts = '2026-12-01 09:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(21)$$, $$VALUES ('d21@08')$$, '... and again');
DELETE FROM heartbeats WHERE device_id = 21;
SELECT is_empty($$SELECT * FROM pg_temp.last(21)$$, 'DELETE of the last heartbeat of a device removes the device');

DELETE FROM heartbeats WHERE device_id = 22 AND ts >= '2026-12-01 09:00+00';
SELECT results_eq($$SELECT status FROM pg_temp.last(22)$$, $$VALUES ('d22@08')$$,
    'DELETE of the two newest heartbeats in one statement falls back to the third');

DELETE FROM heartbeats WHERE (device_id = 23 AND ts = '2026-12-02 10:00+00') OR (device_id = 24 AND ts = '2026-12-01 08:00+00')
                          OR device_id = 25;
SELECT results_eq($$SELECT device_id, status FROM device_last_status WHERE device_id IN (23, 24, 25) ORDER BY 1$$,
    $$VALUES (23::bigint, 'd23@09'::text), (24, 'd24@10')$$,
    'one DELETE over several devices: newest removed, older removed, all removed');

DELETE FROM hb_2026_12_02 WHERE device_id = 26;
SELECT results_eq($$SELECT status FROM pg_temp.last(26)$$, $$VALUES ('d26@09')$$,
    'DELETE straight from a partition recomputes the device');
DELETE FROM hb_2026_12_01 WHERE device_id = 26;
SELECT is_empty($$SELECT * FROM pg_temp.last(26)$$, '... and removes it when nothing remains');

SELECT results_eq($$DELETE FROM heartbeats WHERE device_id = 27 AND ts = '2026-12-02 10:00+00' RETURNING status$$,
    $$VALUES ('d27@10')$$, 'DELETE ... RETURNING returns the row');
SELECT results_eq($$SELECT status FROM pg_temp.last(27)$$, $$VALUES ('d27@09')$$, '... and recomputes the device');

MERGE INTO heartbeats h USING (VALUES (28::bigint, '2026-12-02 10:00+00'::timestamptz)) v(d, t)
    ON h.device_id = v.d AND h.ts = v.t
    WHEN MATCHED THEN DELETE;
SELECT results_eq($$SELECT status FROM pg_temp.last(28)$$, $$VALUES ('d28@09')$$,
    'MERGE ... WHEN MATCHED THEN DELETE recomputes the device');

SAVEPOINT before_delete;
DELETE FROM heartbeats WHERE device_id = 29;
ROLLBACK TO SAVEPOINT before_delete;
SELECT results_eq($$SELECT status FROM pg_temp.last(29)$$, $$VALUES ('d29@10')$$,
    'a DELETE rolled back to a savepoint leaves the device as it was');

-- A DELETE of a whole day (not a partition drop) removes devices seen only that day.
INSERT INTO heartbeats VALUES (40, '2026-12-02 10:00+00', 'only day 2', 1), (41, '2026-12-01 10:00+00', 'only day 1', 1),
                              (41, '2026-12-02 11:00+00', 'day 2', 1);
DELETE FROM heartbeats WHERE ts >= '2026-12-02';
SELECT is_empty($$SELECT * FROM pg_temp.last(40)$$, 'a DELETE of a whole day removes devices seen only that day');
SELECT results_eq($$SELECT status FROM pg_temp.last(41)$$, $$VALUES ('only day 1')$$,
    '... and falls back to the previous day for the others');

-- ------------------------------------------------------------ the whole table
SELECT results_eq($$SELECT * FROM device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC$$,
    'device_last_status is exactly the newest heartbeat of every device');

SELECT * FROM finish();
ROLLBACK;
