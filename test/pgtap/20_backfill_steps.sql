-- The backfill's steps, called one by one (CALL hb_backfill_last_status()
-- runs them and commits after each; it cannot run inside this test's
-- transaction): the catch-all first, then partitions newest first; a
-- backfill resumed with a wider horizon reads the older partitions too; a
-- partition attached meanwhile is read when its turn comes; the cursor
-- names no OID (it survives a dump and restore); rows of the history with
-- a NULL time or device never become a last status, and the legacy path
-- ignores them as well.
BEGIN;
SELECT plan(14);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE FUNCTION pg_temp.run_steps(parent regclass, batch integer, max_steps integer DEFAULT 1000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE s record; n integer := 0;
BEGIN
    LOOP
        SELECT * INTO s FROM _hb_backfill_step(parent, batch);
        n := n + 1;
        EXIT WHEN s.done OR n >= max_steps;
    END LOOP;
    RETURN n;
END $$;

-- History: devices 1-100 two days ago, 101-200 fifteen days ago, 201-210
-- only in the catch-all (forty days ago), written before hb_manage.
CREATE TABLE heartbeats (device_id integer, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE heartbeats_default PARTITION OF heartbeats DEFAULT;
DO $$
DECLARE d date;
BEGIN
    FOR d IN SELECT current_date - i FROM unnest(ARRAY[2, 15]) i LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF heartbeats FOR VALUES FROM (%L) TO (%L)',
                       'bf_' || to_char(d, 'YYYY_MM_DD'), d::timestamptz, (d + 1)::timestamptz);
    END LOOP;
END $$;
INSERT INTO heartbeats SELECT d, current_date - 2 + interval '10 hours' + d * interval '1 s', 'recent'
FROM generate_series(1, 100) d;
INSERT INTO heartbeats SELECT d, current_date - 15 + interval '10 hours' + d * interval '1 s', 'old'
FROM generate_series(101, 200) d;
INSERT INTO heartbeats SELECT d, current_date - 40 + d * interval '1 s', 'catch-all'
FROM generate_series(201, 210) d;
-- Rows no heartbeat could be once managed: a NULL time (only the catch-all
-- takes it), a NULL device.
INSERT INTO heartbeats VALUES (5, NULL, 'no time'), (NULL, current_date - 2 + interval '23 hours', 'no device');
SELECT hb_manage('heartbeats', premake => 1, partition_prefix => 'bf');

SELECT is((SELECT count(*)::int FROM _hb_backfill_begin('7 days', 'heartbeats', 30)), 1,
          '_hb_backfill_begin records a backfill of the last 7 days');
SELECT is((SELECT array_agg(k ORDER BY k) FROM hb_config, jsonb_object_keys(backfill_cursor) k
           WHERE parent = 'heartbeats'::regclass),
          ARRAY['after', 'batches', 'catchall', 'from', 'in', 'rows', 'started_at', 'upper'],
          'its cursor holds bounds and keys, no partition OID (a dump and restore keeps it valid)');
SELECT is((SELECT part::text FROM _hb_backfill_next('heartbeats',
              (SELECT backfill_cursor FROM hb_config WHERE parent = 'heartbeats'::regclass))),
          'heartbeats_default', 'the catch-all comes first');
SELECT is((SELECT (s).written FROM (SELECT _hb_backfill_step('heartbeats', 30) s) x), 0::bigint,
          '... whose rows are older than 7 days: nothing written');
-- Resumed with a wider horizon: all of the history.
SELECT is((SELECT count(*)::int FROM _hb_backfill_begin(NULL, 'heartbeats', 30)), 1,
          'a backfill resumed with since => NULL ...');
SELECT is((SELECT backfill_cursor->'from' FROM hb_config WHERE parent = 'heartbeats'::regclass), 'null'::jsonb,
          '... reads from the oldest of the two horizons: all of the history');
SELECT cmp_ok(pg_temp.run_steps('heartbeats', 30, 3), '=', 3, 'three more batches');

-- Meanwhile, a partition of history is attached below the cursor.
CREATE TABLE bf_attached (LIKE heartbeats);
INSERT INTO bf_attached SELECT d, current_date - 30 + interval '1 hour', 'attached' FROM generate_series(301, 320) d;
ALTER TABLE heartbeats ATTACH PARTITION bf_attached
    FOR VALUES FROM (current_date - 30) TO (current_date - 29);

SELECT cmp_ok(pg_temp.run_steps('heartbeats', 30), '<', 1000, 'the backfill completes');
SELECT is((SELECT count(*)::int FROM device_last_status), 230,
          'every device is there: recent, 15 days old, catch-all, and the partition attached meanwhile');
SELECT is((SELECT count(*)::int FROM device_last_status WHERE device_id BETWEEN 301 AND 320), 20,
          '... the 20 devices of the partition attached during the backfill among them');
SELECT is((SELECT status FROM device_last_status WHERE device_id = 5), 'recent',
          'a row of the history with a NULL time never becomes a last status');
SELECT is((SELECT count(*)::int FROM device_last_status WHERE device_id IS NULL), 0,
          '... nor one with a NULL device');
SELECT is((SELECT backfill_done_at IS NOT NULL AND backfill_from IS NULL AND backfill_cursor IS NULL
           FROM hb_config WHERE parent = 'heartbeats'::regclass), true,
          'the backfill is recorded as complete, from all of the history');

CREATE FUNCTION pg_temp.fleet(fast boolean) RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('hb_lifecycle.read_from_last_status', CASE WHEN fast THEN 'on' ELSE 'off' END, true);
    RETURN QUERY SELECT f.device_id, f.ts, f.heartbeat::text FROM hb_fleet_status() f;
END $$;
SELECT set_eq($$SELECT * FROM pg_temp.fleet(true) AS (d text, t timestamptz, h text)$$,
              $$SELECT * FROM pg_temp.fleet(false) AS (d text, t timestamptz, h text)$$,
              'both read paths agree: the legacy path ignores rows with a NULL time or device too');

SELECT * FROM finish();
ROLLBACK;
