-- hb_reconcile: drift in device_last_status (rows deleted, rows set to
-- older values, a manual edit of a value, heartbeats inserted while the
-- sync trigger was disabled) heals in ceil(drift / max_rows) runs, each
-- run repairing at most max_rows and going on where the last capped one
-- stopped; a healthy table repairs 0; a device never moves backwards; each
-- run records a reconcile event; bad arguments are refused; only a
-- table's owner reconciles it.
BEGIN;
SELECT plan(23);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE ROLE hb_rec_owner;
CREATE ROLE hb_rec_other;
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text, battery int)
    PARTITION BY RANGE (ts);
ALTER TABLE heartbeats OWNER TO hb_rec_owner;
GRANT CREATE ON SCHEMA public TO hb_rec_owner;
SELECT hb_manage('heartbeats', premake => 1, partition_prefix => 'rc');
SET LOCAL ROLE hb_rec_owner;
SELECT count(*) FROM hb_create_partitions('heartbeats', now() - interval '3 days', now());
-- 1,000 devices, 5 heartbeats each in the last 10 hours, and one of each
-- 2 days ago (outside the default window).
INSERT INTO heartbeats SELECT d, now() - interval '2 days' - d * interval '1 second', 'old', 1
FROM generate_series(1, 1000) d;
INSERT INTO heartbeats SELECT d, now() - interval '10 hours' + b * interval '1 hour' + d * interval '1 ms',
       'b' || b, b FROM generate_series(1, 1000) d, generate_series(1, 5) b;

CREATE FUNCTION pg_temp.mismatches() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC) h
    FULL JOIN device_last_status l USING (device_id)
    WHERE h.device_id IS NULL OR l.device_id IS NULL OR (h.ts, h.status, h.battery) IS DISTINCT FROM (l.ts, l.status, l.battery)
$$;

SELECT is(hb_reconcile(), 0::bigint, 'a healthy table: hb_reconcile() repairs 0');
SELECT is((SELECT (detail->>'repaired')::int FROM hb_events WHERE event = 'reconcile' ORDER BY id DESC LIMIT 1), 0,
          '... and records a reconcile event saying so');

-- Drift: 120 rows deleted, 100 set older, 30 edited by hand (same time),
-- 50 devices whose new heartbeats went in with the trigger disabled.
DELETE FROM device_last_status WHERE device_id BETWEEN 1 AND 120;
UPDATE device_last_status SET ts = ts - interval '3 hours', status = 'stale' WHERE device_id BETWEEN 201 AND 300;
UPDATE device_last_status SET status = 'edited' WHERE device_id BETWEEN 401 AND 430;
RESET ROLE;
ALTER TABLE heartbeats DISABLE TRIGGER USER;
SET LOCAL ROLE hb_rec_owner;
INSERT INTO heartbeats SELECT d, now() - interval '10 minutes', 'unsynced', 9 FROM generate_series(601, 650) d;
RESET ROLE;
ALTER TABLE heartbeats ENABLE TRIGGER USER;
SET LOCAL ROLE hb_rec_owner;
SELECT is(pg_temp.mismatches(), 300::bigint, 'the drift: 300 devices whose last status is wrong');

SELECT is(hb_reconcile(max_rows => 100), 100::bigint, 'a run capped at 100 repairs 100');
SELECT isnt((SELECT reconcile_after FROM hb_config WHERE parent = 'heartbeats'::regclass), NULL,
            '... and records where it stopped');
SELECT is(hb_reconcile(max_rows => 100), 100::bigint, 'the second run goes on from there: 100 more');
SELECT is(hb_reconcile(max_rows => 100), 100::bigint, 'the third: the last 100');
SELECT is(pg_temp.mismatches(), 0::bigint, 'ceil(300 / 100) = 3 runs heal all of it: no mismatch with the heartbeats');
SELECT is(hb_reconcile(max_rows => 100), 0::bigint, 'a fourth run repairs nothing');
SELECT is((SELECT reconcile_after FROM hb_config WHERE parent = 'heartbeats'::regclass), NULL,
          '... and starts over next time (the pass is complete)');
SELECT is((SELECT count(*)::int FROM hb_events WHERE event = 'reconcile'), 5, 'each run recorded a reconcile event');

-- Never backwards: a row newer than every heartbeat is kept.
UPDATE device_last_status SET ts = now() + interval '1 hour', status = 'from the future' WHERE device_id = 999;
SELECT is(hb_reconcile(), 0::bigint, 'a last status newer than the heartbeats is not a repair');
SELECT is((SELECT status FROM device_last_status WHERE device_id = 999), 'from the future',
          '... the device does not move backwards');

-- The window: a device whose only heartbeats are older than it is not looked at.
DELETE FROM heartbeats WHERE device_id = 7 AND ts > now() - interval '1 day';
DELETE FROM device_last_status WHERE device_id = 7;
SELECT is(hb_reconcile("window" => '1 day'), 0::bigint, 'outside the window nothing is repaired');
SELECT is(hb_reconcile("window" => '3 days'), 1::bigint, 'a wider window repairs it');

-- A column with no equality (json): values are compared as text.
RESET ROLE;
CREATE TABLE hb_json (device_id int NOT NULL, ts timestamptz NOT NULL, payload json) PARTITION BY RANGE (ts);
ALTER TABLE hb_json OWNER TO hb_rec_owner;
SELECT hb_manage('hb_json', premake => 1, last_status_table => 'hb_json_last', partition_prefix => 'rj');
SET LOCAL ROLE hb_rec_owner;
INSERT INTO hb_json SELECT d, now() - interval '1 hour', json_build_object('v', d) FROM generate_series(1, 10) d;
UPDATE hb_json_last SET payload = '{"v": "edited"}' WHERE device_id <= 3;
SELECT is(hb_reconcile(), 3::bigint, 'a table with a json column is reconciled (values compared as text)');
SELECT is((SELECT count(*)::int FROM hb_json_last WHERE payload::text LIKE '%edited%'), 0,
          '... its edited rows repaired');

-- A table that fails does not stop the others: a CHECK of the last-status
-- table that the newest heartbeat breaks (written while the trigger was off).
RESET ROLE;
ALTER TABLE hb_json_last ADD CONSTRAINT no_bad CHECK (payload::text NOT LIKE '%bad%');
ALTER TABLE hb_json DISABLE TRIGGER USER;
INSERT INTO hb_json VALUES (4, now() - interval '10 minutes', '{"v": "bad"}');
ALTER TABLE hb_json ENABLE TRIGGER USER;
DELETE FROM device_last_status WHERE device_id = 500;
SET LOCAL ROLE hb_rec_owner;
SET LOCAL client_min_messages = error;  -- its WARNING
SELECT is(hb_reconcile(), 1::bigint, 'a table that fails is skipped, the others are reconciled');
SET LOCAL client_min_messages = warning;
SELECT is((SELECT detail->>'sqlstate' FROM hb_events WHERE event = 'reconcile' AND parent = 'hb_json'::regclass
           ORDER BY id DESC LIMIT 1), '23514', '... and its event records the error');
RESET ROLE;
ALTER TABLE hb_json_last DROP CONSTRAINT no_bad;

-- Another owner's run leaves this table alone.
CREATE ROLE hb_rec_third;
CREATE TABLE hb_third (device_id int NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE hb_third OWNER TO hb_rec_third;
GRANT CREATE ON SCHEMA public TO hb_rec_third;
SELECT hb_manage('hb_third', premake => 1, last_status_table => 'hb_third_last', partition_prefix => 'rt');
DELETE FROM device_last_status WHERE device_id = 501;
SET LOCAL ROLE hb_rec_third;
SELECT is(hb_reconcile(), 0::bigint, 'the owner of another table reconciles only its own');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM device_last_status WHERE device_id = 501), 0,
          '... this one''s drift is left for its owner');
SET LOCAL ROLE hb_rec_owner;

-- Arguments and privileges.
SELECT throws_ok($$SELECT hb_reconcile(max_rows => 0)$$, '22023',
                 'hb_reconcile: max_rows must be at least 1', 'max_rows must be at least 1');
RESET ROLE;
SET LOCAL ROLE hb_rec_other;
SELECT throws_ok($$SELECT hb_reconcile()$$, '42501', NULL, 'a role that owns no managed table may not run it');

SELECT * FROM finish();
ROLLBACK;
