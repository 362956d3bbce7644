-- What the read path says, in full: the NOTICE once per session when it
-- falls back to the legacy query (the backfill is not complete; the kill
-- switch is off), the errors of its arguments, and the backfill's own
-- messages and result.
SET client_min_messages = notice;
SET TimeZone = 'UTC';
CREATE EXTENSION hb_lifecycle;

-- History written before the table was managed.
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_11_01 PARTITION OF heartbeats
    FOR VALUES FROM ('2026-11-01 00:00+00') TO ('2026-11-02 00:00+00');
INSERT INTO heartbeats SELECT d, '2026-11-01 10:00+00'::timestamptz + b * interval '1 minute', 's' || b
FROM generate_series(1, 30) d, generate_series(1, 3) b;
SELECT hb_manage('heartbeats', premake => 0);

-- Not backfilled: the legacy query, and a NOTICE saying so, once.
SELECT * FROM hb_device_status(4);
SELECT * FROM hb_device_status(5);
SELECT count(*) FROM hb_fleet_status();

-- The backfill: a procedure that commits per batch (its progress NOTICEs
-- name today's partitions, so they are not shown here).
BEGIN;
CALL hb_backfill_last_status();
ROLLBACK;
CALL hb_backfill_last_status(since => '0 days');
CALL hb_backfill_last_status(batch_size => 0);
-- Who may run it: not a role without the grant; not the owner of another
-- table for this one.
CREATE ROLE regress_hb_stranger;
SET ROLE regress_hb_stranger;
CALL hb_backfill_last_status();
RESET ROLE;
CREATE ROLE regress_hb_other_owner;
GRANT CREATE ON SCHEMA public TO regress_hb_other_owner;
CREATE TABLE other_hb (device_id bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE other_hb_2026_11_01 PARTITION OF other_hb
    FOR VALUES FROM ('2026-11-01 00:00+00') TO ('2026-11-02 00:00+00');
INSERT INTO other_hb SELECT d, '2026-11-01 12:00+00' FROM generate_series(1, 12) d;
ALTER TABLE other_hb OWNER TO regress_hb_other_owner;
ALTER TABLE other_hb_2026_11_01 OWNER TO regress_hb_other_owner;
SET client_min_messages = warning;
SELECT hb_manage('other_hb', premake => 0, last_status_table => 'other_last', partition_prefix => 'ot');
SET client_min_messages = notice;
SET ROLE regress_hb_other_owner;
CALL hb_backfill_last_status(parent => 'heartbeats');
-- Its own table it may backfill (the grants hb_manage gave it suffice).
SET client_min_messages = warning;
CALL hb_backfill_last_status(since => NULL, parent => 'other_hb');
SET client_min_messages = notice;
SELECT count(*) AS devices FROM other_last;
SELECT backfill_done_at IS NOT NULL AS done FROM hb_config WHERE parent = 'other_hb'::regclass;
RESET ROLE;
SET client_min_messages = warning;
SELECT hb_unmanage('other_hb');
DROP TABLE other_hb, other_last;
CALL hb_backfill_last_status(since => NULL, parent => 'heartbeats', batch_size => 7);
SET client_min_messages = notice;
SELECT backfill_done_at IS NOT NULL AS done, backfill_from, backfill_cursor
FROM hb_config WHERE parent = 'heartbeats'::regclass;
SELECT detail->'rows' AS rows, detail->'batches' AS batches FROM hb_events
WHERE event = 'backfill' AND parent = 'heartbeats'::regclass;

-- Backfilled: device_last_status, silently.
SELECT * FROM hb_device_status(4);
SELECT count(*) FROM hb_fleet_status();

-- The kill switch: the legacy query at once, and a NOTICE once.
SET hb_lifecycle.read_from_last_status = off;
SELECT * FROM hb_device_status(4);
SELECT * FROM hb_device_status(5);
RESET hb_lifecycle.read_from_last_status;
SELECT * FROM hb_device_status(5);

-- Arguments.
SELECT * FROM hb_device_status('4');
SELECT * FROM hb_device_status('four'::text);
SELECT * FROM hb_fleet_status('pg_class');
SELECT * FROM hb_compare_read_paths(0);

DROP TABLE heartbeats, device_last_status;
SELECT * FROM hb_fleet_status();
DROP EXTENSION hb_lifecycle;
REVOKE CREATE ON SCHEMA public FROM regress_hb_other_owner;
DROP ROLE regress_hb_stranger, regress_hb_other_owner;
