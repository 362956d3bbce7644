-- Removing whole partitions (TRUNCATE, DROP, DETACH) never removes a device
-- from device_last_status, and the table keeps working afterwards.
BEGIN;
SELECT plan(25);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text, battery int)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
CREATE TABLE hb_2026_12_03 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-03') TO ('2026-12-04');
CREATE TABLE hb_2026_12_04 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-04') TO ('2026-12-05');
SELECT hb_manage('heartbeats');

-- Device d has its newest heartbeat on day (d % 4) + 1, and an older one on
-- every earlier day.
INSERT INTO heartbeats
SELECT d, '2026-11-30 12:00+00'::timestamptz + day * interval '1 day', 'd' || d || '-day' || day, day
FROM generate_series(1, 40) d, generate_series(1, 4) day
WHERE day <= d % 4 + 1;
CREATE TEMP TABLE snapshot_before AS SELECT * FROM device_last_status;

SELECT results_eq($$SELECT * FROM device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC$$,
    'before: device_last_status is the newest heartbeat of each of the 40 devices');

-- ------------------------------------------------------------ TRUNCATE
TRUNCATE hb_2026_12_04;
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    'TRUNCATE of a partition keeps every device and its row');
TRUNCATE hb_2026_12_03, hb_2026_12_02;
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    'TRUNCATE of two partitions at once keeps every device and its row');

-- After a TRUNCATE the rules still hold against the kept row.
INSERT INTO heartbeats VALUES (4, '2026-12-02 08:00+00', 'newer', 0);
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 4$$, $$VALUES ('newer')$$,
    'after TRUNCATE: device 4 only had day 1 heartbeats (not truncated); a newer one replaces them');
INSERT INTO heartbeats VALUES (3, '2026-12-03 08:00+00', 'older than kept', 0);
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 3$$, $$VALUES ('d3-day4')$$,
    'after TRUNCATE: a heartbeat older than the kept (truncated) one does not overwrite it');
DELETE FROM heartbeats WHERE device_id = 3;
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 3$$, $$VALUES ('d3-day4')$$,
    'after TRUNCATE: deleting heartbeats older than the kept one does not remove the device');
INSERT INTO heartbeats VALUES (3, '2026-12-04 23:00+00', 'newer than kept', 0);
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 3$$, $$VALUES ('newer than kept')$$,
    'after TRUNCATE: a newer heartbeat overwrites the kept one');

-- ------------------------------------------------------------ DROP
-- Start again from the same 40 devices.
TRUNCATE heartbeats;
TRUNCATE device_last_status;
INSERT INTO heartbeats
SELECT d, '2026-11-30 12:00+00'::timestamptz + day * interval '1 day', 'r' || d || '-day' || day, day
FROM generate_series(1, 40) d, generate_series(1, 4) day
WHERE day <= d % 4 + 1;
DROP TABLE snapshot_before;
CREATE TEMP TABLE snapshot_before AS SELECT * FROM device_last_status;
SELECT is((SELECT count(*) FROM snapshot_before), 40::bigint, 'refilled: 40 devices');

DROP TABLE hb_2026_12_04;
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    'DROP of a partition keeps every device and its row');
INSERT INTO heartbeats VALUES (100, '2026-12-03 10:00+00', 'after drop', 1);
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 100$$, $$VALUES ('after drop')$$,
    'inserts keep working after a partition was dropped');
DELETE FROM heartbeats WHERE device_id = 7;
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 7$$, $$VALUES ('r7-day4')$$,
    'after DROP: deleting heartbeats older than the kept one does not remove the device');

-- ------------------------------------------------------------ DETACH
DELETE FROM snapshot_before;
INSERT INTO snapshot_before SELECT * FROM device_last_status;
ALTER TABLE heartbeats DETACH PARTITION hb_2026_12_03;
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    'DETACH PARTITION keeps every device and its row');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'hb_2026_12_03'::regclass AND tgparentid <> 0), 0::bigint,
    'the detached table loses the row triggers cloned from the parent');
SELECT lives_ok($$INSERT INTO hb_2026_12_03 VALUES (7, '2026-12-03 23:00+00', 'into detached', 1)$$,
    'the detached table still takes inserts');
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    '... which do not reach device_last_status');
-- (The detached table keeps the statement triggers hb_manage put on it;
-- they fire, and must find nothing to do.)
SELECT lives_ok($$UPDATE hb_2026_12_03 SET status = 'changed in detached'$$, 'the detached table still takes updates');
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    '... which do not reach device_last_status');
SELECT lives_ok($$DELETE FROM hb_2026_12_03$$, 'the detached table still takes deletes');
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    '... which remove no device');
-- Every row of an attached partition updated to the same values: devices
-- whose row is newer than what remains (kept from the dropped and detached
-- partitions) must keep it, the others get the same row back.
SELECT lives_ok($$UPDATE hb_2026_12_01 SET status = status$$, 'the attached partitions still take updates');
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    '... and an UPDATE that changes no value leaves device_last_status as it was');

-- ------------------------------------------------------------ TRUNCATE of the whole table
TRUNCATE heartbeats;
SELECT bag_eq($$SELECT * FROM device_last_status$$, $$SELECT * FROM snapshot_before$$,
    'TRUNCATE of the whole heartbeats table keeps every device');
INSERT INTO heartbeats VALUES (1, '2026-12-02 23:00+00', 'fresh', 1);
SELECT results_eq($$SELECT status FROM device_last_status WHERE device_id = 1$$, $$VALUES ('fresh')$$,
    'inserts keep working after TRUNCATE of the whole table');

-- hb_unmanage still works on the shrunken tree.
SELECT lives_ok($$SELECT hb_unmanage('heartbeats')$$, 'hb_unmanage works after partitions were dropped and detached');
SELECT is((SELECT count(*) FROM device_last_status), 41::bigint, '... and keeps device_last_status');

SELECT * FROM finish();
ROLLBACK;
