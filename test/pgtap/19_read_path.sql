-- The read path: hb_device_status() and hb_fleet_status() read
-- device_last_status once the table's backfill is complete (a table
-- managed while empty has nothing to backfill) and the legacy query on
-- the heartbeats otherwise, or when hb_lifecycle.read_from_last_status is
-- off (the kill switch); both paths return the same rows on the same
-- data; hb_compare_read_paths() counts the devices on which they
-- disagree; arguments, several managed tables and privileges.
-- (Which path ran is told by a last-status row made wrong on purpose:
-- only the last-status path returns it.)
BEGIN;
SELECT plan(35);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE ROLE hb_rp_owner;
CREATE ROLE hb_rp_reader;
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text,
                         battery int, note text)
    PARTITION BY RANGE (ts);
ALTER TABLE heartbeats OWNER TO hb_rp_owner;
GRANT CREATE ON SCHEMA public TO hb_rp_owner;
SELECT hb_manage('heartbeats', premake => 1, partition_prefix => 'rp');
-- The last-status table keeps all columns but "note".
ALTER TABLE device_last_status DROP COLUMN note;
SET LOCAL ROLE hb_rp_owner;
SELECT count(*) FROM hb_create_partitions('heartbeats', now() - interval '3 days', now());
INSERT INTO heartbeats SELECT d, now() - interval '2 days' + b * interval '1 hour' + d * interval '1 ms',
       'b' || b, b, 'n' || d FROM generate_series(1, 200) d, generate_series(1, 5) b;
RESET ROLE;

SELECT isnt((SELECT backfill_done_at FROM hb_config WHERE parent = 'heartbeats'::regclass), NULL,
            'a table managed while empty has nothing to backfill: it is recorded as backfilled');

-- Both paths on the same data.
CREATE FUNCTION pg_temp.fleet(fast boolean) RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('hb_lifecycle.read_from_last_status', CASE WHEN fast THEN 'on' ELSE 'off' END, true);
    RETURN QUERY SELECT f.device_id, f.ts, f.heartbeat::text FROM hb_fleet_status() f;
END $$;
SELECT is((SELECT count(*) FROM hb_fleet_status()), 200::bigint, 'hb_fleet_status() returns every device');
SELECT set_eq($$SELECT * FROM pg_temp.fleet(true) AS (d text, t timestamptz, h text)$$,
              $$SELECT * FROM pg_temp.fleet(false) AS (d text, t timestamptz, h text)$$,
              'hb_fleet_status(): the last-status path and the legacy path return the same rows');
SET LOCAL hb_lifecycle.read_from_last_status = on;
SELECT is((SELECT heartbeat::text FROM hb_device_status(7)),
          (SELECT row_to_json(x)::text FROM (SELECT device_id, ts, status, battery FROM heartbeats
                                    WHERE device_id = 7 ORDER BY ts DESC LIMIT 1) x),
          'hb_device_status(7) is the newest heartbeat of device 7, as json of the columns both tables have');
SELECT is((SELECT device_id || ' ' || ts FROM hb_device_status(7)),
          (SELECT device_id || ' ' || ts FROM heartbeats WHERE device_id = 7 ORDER BY ts DESC LIMIT 1),
          '... with its device and time as columns');
SELECT is((SELECT heartbeat::jsonb ? 'note' FROM hb_device_status(7)), false,
          'a column only the heartbeats table has is not part of the result');
SET LOCAL hb_lifecycle.read_from_last_status = off;
SELECT is((SELECT heartbeat::text FROM hb_device_status(7)),
          (SELECT row_to_json(x)::text FROM (SELECT device_id, ts, status, battery FROM heartbeats
                                    WHERE device_id = 7 ORDER BY ts DESC LIMIT 1) x),
          'the legacy path returns the same row, without "note" too');
SET LOCAL hb_lifecycle.read_from_last_status = on;

-- Which path: a wrong last-status row.
UPDATE device_last_status SET status = 'only in device_last_status' WHERE device_id = 9;
SELECT is((SELECT heartbeat->>'status' FROM hb_device_status(9)), 'only in device_last_status',
          'with the setting on, a backfilled table is read from device_last_status');
SELECT is((SELECT heartbeat->>'status' FROM hb_fleet_status() WHERE device_id = '9'), 'only in device_last_status',
          '... for the whole fleet too');
SET LOCAL hb_lifecycle.read_from_last_status = off;
SELECT is((SELECT heartbeat->>'status' FROM hb_device_status(9)), 'b5',
          'the kill switch off: the legacy query on the heartbeats, at once');
SELECT is((SELECT heartbeat->>'status' FROM hb_fleet_status() WHERE device_id = '9'), 'b5',
          '... for the whole fleet too');
SET LOCAL hb_lifecycle.read_from_last_status = on;

-- hb_compare_read_paths: every device sampled (sample > devices).
SELECT is((SELECT array_agg(path ORDER BY path) FROM hb_compare_read_paths(1000)), ARRAY['last_status', 'legacy'],
          'hb_compare_read_paths() returns a row per path');
SELECT is((SELECT min(reads) FROM hb_compare_read_paths(1000)), 200, '... each having read every device once');
SELECT is((SELECT min(mismatches) FROM hb_compare_read_paths(1000)), 1,
          '... and counts the one device on which they disagree');
UPDATE device_last_status l SET status = h.status
FROM (SELECT DISTINCT ON (device_id) device_id, status FROM heartbeats ORDER BY device_id, ts DESC) h
WHERE h.device_id = l.device_id AND l.device_id = 9;
SELECT is((SELECT max(mismatches) FROM hb_compare_read_paths(1000)), 0, 'a healthy table: no disagreement');
SET LOCAL ROLE hb_rp_owner;
SELECT is((SELECT min(reads) FROM hb_compare_read_paths(1000)), 200,
          'the table''s owner may compare the paths (hb_manage granted it)');
RESET ROLE;
SELECT ok((SELECT bool_and(p50_ms >= 0 AND p95_ms >= p50_ms AND p99_ms >= p95_ms AND max_ms >= p99_ms
                           AND buffers_per_read > 0) FROM hb_compare_read_paths(50)),
          '... latency percentiles in order, and the buffers each read touched');
DELETE FROM device_last_status WHERE device_id = 11;
SET LOCAL hb_lifecycle.read_from_last_status = off;
SELECT is((SELECT count(*)::int FROM hb_device_status(11)), 1,
          'a device missing from device_last_status (drift) is found by the legacy path ...');
SET LOCAL hb_lifecycle.read_from_last_status = on;
SELECT is((SELECT count(*)::int FROM hb_device_status(11)), 0, '... not by the last-status path');
SELECT is(hb_reconcile("window" => '3 days'), 1::bigint, '... until hb_reconcile() repairs it');

-- Not backfilled: the legacy path, whatever the setting.
UPDATE hb_config SET backfill_done_at = NULL WHERE parent = 'heartbeats'::regclass;
UPDATE device_last_status SET status = 'only in device_last_status' WHERE device_id = 9;
SELECT is((SELECT heartbeat->>'status' FROM hb_device_status(9)), 'b5',
          'a table whose backfill is not complete is read with the legacy query');
SELECT is((SELECT heartbeat->>'status' FROM hb_fleet_status() WHERE device_id = '9'), 'b5',
          '... for the whole fleet too');
UPDATE hb_config SET backfill_done_at = now() WHERE parent = 'heartbeats'::regclass;
SELECT is((SELECT heartbeat->>'status' FROM hb_device_status(9)), 'only in device_last_status',
          '... and with device_last_status once it is');

-- Arguments.
SELECT is((SELECT count(*)::int FROM hb_device_status(NULL::bigint)), 0, 'a NULL device: no row');
SELECT is((SELECT count(*)::int FROM hb_device_status(123456)), 0, 'a device never heard from: no row');
SELECT is((SELECT ts FROM hb_device_status('7'::text)), (SELECT ts FROM hb_device_status(7::bigint)),
          'the device may be given as any type that converts to the device column''s');
SELECT throws_ok($$SELECT * FROM hb_device_status('x'::text)$$, '22P02', NULL,
                 'a device that does not convert is an error');
SELECT throws_ok($$SELECT * FROM hb_fleet_status('pg_class')$$, '42704',
                 'hb_fleet_status: table pg_catalog.pg_class is not managed by hb_lifecycle',
                 'a table that is not managed is an error');

-- Several managed tables: name the one to read.
CREATE TABLE other_hb (dev text NOT NULL, ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);
SELECT hb_manage('other_hb', device_column => 'dev', premake => 1, last_status_table => 'other_last',
                 partition_prefix => 'ot');
INSERT INTO other_hb VALUES ('a', now() - interval '1 hour', 1), ('a', now(), 2), ('b', now(), 3);
SELECT throws_ok($$SELECT * FROM hb_device_status(7)$$, '42P08',
                 'hb_device_status: several tables are managed by hb_lifecycle; name the one to read',
                 'with several managed tables, parent must be named');
SELECT is((SELECT heartbeat->>'v' FROM hb_device_status('a'::text, 'other_hb')), '2',
          'a text device of the named table');
SELECT is((SELECT count(*)::int FROM hb_fleet_status('other_hb')), 2, 'the named table''s fleet');

-- Privileges: the reader needs SELECT on the table read, nothing else.
GRANT SELECT ON device_last_status TO hb_rp_reader;
SET LOCAL ROLE hb_rp_reader;
SELECT is((SELECT count(*)::int FROM hb_device_status(7, 'heartbeats')), 1,
          'a role with SELECT on device_last_status reads through hb_device_status()');
SET LOCAL hb_lifecycle.read_from_last_status = off;
SELECT throws_ok($$SELECT * FROM hb_device_status(7, 'heartbeats')$$, '42501', NULL,
                 '... not the legacy path: it has no SELECT on heartbeats');
SELECT throws_ok($$SELECT * FROM hb_compare_read_paths(10, 'heartbeats')$$, '42501', NULL,
                 'hb_compare_read_paths() is not for every role');
RESET ROLE;
SELECT throws_ok($$CALL hb_backfill_last_status()$$, '25001',
                 'hb_backfill_last_status cannot run inside a transaction block',
                 'the backfill refuses to run inside a transaction block (it commits per batch)');

SELECT * FROM finish();
ROLLBACK;
