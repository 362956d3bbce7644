CREATE EXTENSION hb_lifecycle;

CREATE TABLE heartbeats (device_id int NOT NULL, ts timestamptz NOT NULL, status text, payload jsonb) PARTITION BY RANGE (ts);

CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2026-12-02 00:00+00');

CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-02 00:00+00') TO ('2026-12-03 00:00+00');

SELECT hb_manage('heartbeats');

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-01 00:00+00' + b * interval '1 minute', 'history', '{}' FROM generate_series(1, 500) d, generate_series(1, 3) b;

BEGIN;

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-02 01:00+00', 'rolled back', '{}' FROM generate_series(1, 500) d;

ROLLBACK;

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-02 01:00+00', 'grown', jsonb_build_object('blob', repeat('x', 300 + d % 400)) FROM generate_series(1, 500) d;

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-02 01:00+00', 'retry', '{}' FROM generate_series(1, 250) d;

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-01 12:00+00', 'older', '{}' FROM generate_series(1, 500) d;

INSERT INTO heartbeats VALUES (9000, '2026-12-02 02:00+00', 'new', '{}'), (9000, '2026-12-02 02:30+00', 'newer', '{}') ON CONFLICT DO NOTHING;

INSERT INTO hb_2026_12_02 VALUES (9001, '2026-12-02 03:00+00', 'direct', '{}');

INSERT INTO heartbeats VALUES (1, '2026-12-02 04:00+00', 'toasted', jsonb_build_object('blob', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i)));

DELETE FROM heartbeats WHERE device_id <= 50 AND ts = '2026-12-02 01:00+00';

UPDATE heartbeats SET status = 'edited' WHERE device_id BETWEEN 51 AND 100 AND ts = '2026-12-02 01:00+00';

DELETE FROM heartbeats WHERE device_id = 9000;

SET hb_lifecycle.skip_duplicate_heartbeats = off;

INSERT INTO heartbeats VALUES (300, '2026-12-02 01:00+00', 'upserted', '{"u": 1}'), (9100, '2026-12-02 01:00+00', 'upsert-new', '{}') ON CONFLICT (device_id, ts) DO UPDATE SET status = EXCLUDED.status, payload = EXCLUDED.payload;

RESET hb_lifecycle.skip_duplicate_heartbeats;

BEGIN;

INSERT INTO heartbeats VALUES (2, '2026-12-02 05:00+00', 'outer', '{}');

SAVEPOINT s;

INSERT INTO heartbeats VALUES (3, '2026-12-02 05:00+00', 'inner', '{}');

ROLLBACK TO SAVEPOINT s;

COMMIT;

DO $$ BEGIN INSERT INTO heartbeats VALUES (4, '2026-12-02 06:00+00', 'in block', '{}'); INSERT INTO heartbeats VALUES (NULL, '2026-12-02 06:00+00', 'no device', '{}'); EXCEPTION WHEN not_null_violation THEN NULL; END $$;

CREATE TABLE hb_2026_12_03 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-03 00:00+00') TO ('2026-12-04 00:00+00');

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-03 00:00+00', 'next day', '{}' FROM generate_series(1, 100) d;

UPDATE heartbeats SET ts = '2026-12-03 00:30+00' WHERE device_id BETWEEN 201 AND 210 AND ts = '2026-12-02 01:00+00';

COPY (SELECT d, timestamptz '2026-12-03 02:00+00' + (d % 7) * interval '1 second', 'copied', '{}' FROM generate_series(1, 700) d) TO '/tmp/hb_memcheck_copy.csv' (FORMAT csv);

COPY heartbeats FROM '/tmp/hb_memcheck_copy.csv' (FORMAT csv);

CREATE TABLE status_log (device_id int, status text);

CREATE FUNCTION log_status() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$ BEGIN INSERT INTO status_log VALUES (NEW.device_id, NEW.status); RETURN NEW; END $$;

CREATE TRIGGER log_status AFTER INSERT OR UPDATE ON device_last_status FOR EACH ROW EXECUTE FUNCTION log_status();

INSERT INTO heartbeats SELECT d, timestamptz '2026-12-03 03:00+00', 'through sql', '{}' FROM generate_series(1, 300) d;

DELETE FROM heartbeats WHERE device_id <= 20 AND ts = '2026-12-03 03:00+00';

DROP TRIGGER log_status ON device_last_status;

TRUNCATE hb_2026_12_01;

SELECT 'mismatches=' || count(*) FROM (SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC) h FULL JOIN device_last_status l USING (device_id) WHERE l.device_id IS NULL OR (h.device_id IS NOT NULL AND (h.ts, h.status, h.payload) IS DISTINCT FROM (l.ts, l.status, l.payload));

CREATE TABLE tagged (device text NOT NULL, ts timestamptz NOT NULL, note text) PARTITION BY RANGE (ts);

CREATE TABLE tagged_2026_12 PARTITION OF tagged FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2027-01-01 00:00+00');

SELECT hb_manage('tagged', device_column => 'device', last_status_table => 'tagged_last', partition_prefix => 'tg');

INSERT INTO tagged SELECT 'device-' || repeat('x', d % 40) || d, timestamptz '2026-12-05 00:00+00' + b * interval '1 hour', 'n' || b FROM generate_series(1, 300) d, generate_series(1, 3) b;

DELETE FROM tagged WHERE ts = '2026-12-05 03:00+00' AND device LIKE 'device-x%';

SELECT 'tagged mismatches=' || count(*) FROM (SELECT DISTINCT ON (device) * FROM tagged ORDER BY device, ts DESC) h FULL JOIN tagged_last l USING (device) WHERE h.device IS NULL OR l.device IS NULL OR (h.ts, h.note) IS DISTINCT FROM (l.ts, l.note);

CREATE TABLE unit_beats (unit uuid NOT NULL, ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);

CREATE TABLE unit_beats_2026_12 PARTITION OF unit_beats FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2027-01-01 00:00+00');

SELECT hb_manage('unit_beats', device_column => 'unit', last_status_table => 'unit_last', partition_prefix => 'ub');

INSERT INTO unit_beats SELECT md5(d::text)::uuid, timestamptz '2026-12-05 00:00+00' + b * interval '1 minute', b FROM generate_series(1, 300) d, generate_series(1, 4) b;

SELECT 'unit mismatches=' || count(*) FROM (SELECT DISTINCT ON (unit) * FROM unit_beats ORDER BY unit, ts DESC) h FULL JOIN unit_last l USING (unit) WHERE h.unit IS NULL OR l.unit IS NULL OR (h.ts, h.v) IS DISTINCT FROM (l.ts, l.v);

SET hb_lifecycle.max_future = '30d';

INSERT INTO heartbeats VALUES (7000, now() + interval '10 days', 'ahead', '{}'), (7001, now() + interval '400 days', 'wrong clock', '{}'), (7002, now() - interval '200 days', 'old', '{}');

SELECT hb_run_maintenance() - 'ms';

SELECT hb_create_ahead('heartbeats', 12);

SELECT hb_configure('heartbeats', retention => '100 years', archive => false);

SELECT hb_create_partitions('heartbeats', '2001-01-01 12:00+00', '2001-01-03 12:00+00');

INSERT INTO heartbeats SELECT d, timestamptz '2001-01-02 12:00+00', 'to be dropped', '{}' FROM generate_series(1, 50) d;

SELECT hb_configure('heartbeats', retention => '10 years');

SELECT hb_run_maintenance() - 'ms';

SELECT 'partition mismatches=' || count(*) FROM (SELECT partition_name FROM hb_partitions WHERE parent = 'heartbeats'::regclass AND state <> 'dropped') r FULL JOIN (SELECT k.relname::text AS partition_name FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid CROSS JOIN LATERAL hb_partition_bounds(k.oid) b WHERE i.inhparent = 'heartbeats'::regclass AND NOT b.is_default) c USING (partition_name) WHERE r.partition_name IS NULL OR c.partition_name IS NULL;

SELECT 'lifecycle mismatches=' || count(*) FROM (SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC) h FULL JOIN device_last_status l USING (device_id) WHERE l.device_id IS NULL OR (h.device_id IS NOT NULL AND (h.ts, h.status, h.payload) IS DISTINCT FROM (l.ts, l.status, l.payload));

SELECT 'read path device=' || count(*) FROM hb_device_status(7, 'heartbeats');

SELECT 'read path fleet=' || count(*) FROM hb_fleet_status('heartbeats');

-- Every device, so the result does not depend on the sample: the paths differ on exactly one device, 7002, whose only heartbeat (200 days old) was quarantined, and which device_last_status keeps by design.
SELECT 'read path compare mismatches=' || max(mismatches) || ' without heartbeats=' || (SELECT string_agg(device_id::text, ',' ORDER BY device_id) FROM device_last_status l WHERE NOT EXISTS (SELECT FROM heartbeats h WHERE h.device_id = l.device_id)) FROM hb_compare_read_paths(100000, 'heartbeats');

SET hb_lifecycle.read_from_last_status = off;

SELECT 'legacy device=' || count(*) FROM hb_device_status('7'::text, 'heartbeats');

SELECT 'legacy fleet=' || count(*) FROM hb_fleet_status('heartbeats');

RESET hb_lifecycle.read_from_last_status;

DELETE FROM device_last_status WHERE device_id <= 10;

CALL hb_backfill_last_status(since => NULL, parent => 'heartbeats', batch_size => 7);

UPDATE device_last_status SET status = 'edited' WHERE device_id BETWEEN 11 AND 20;

SELECT hb_reconcile("window" => '3650 days', max_rows => 4);

SELECT hb_reconcile("window" => '3650 days', max_rows => 4);

SELECT hb_reconcile("window" => '3650 days', max_rows => 4);

SELECT 'backfill mismatches=' || count(*) FROM (SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC) h FULL JOIN device_last_status l USING (device_id) WHERE l.device_id IS NULL OR (h.device_id IS NOT NULL AND (h.ts, h.status, h.payload) IS DISTINCT FROM (l.ts, l.status, l.payload));

SELECT hb_unmanage('heartbeats');


CREATE TABLE archived_beats (device_id int NOT NULL, ts timestamptz NOT NULL, status text) PARTITION BY RANGE (ts);

SELECT hb_manage('archived_beats', last_status_table => 'archived_last', partition_prefix => 'ab', premake => 0);

SELECT count(*) FROM hb_create_partitions('archived_beats', now() - interval '5 days', now() - interval '3 days');

INSERT INTO archived_beats SELECT d, now() - interval '4 days', 'archived day' FROM generate_series(1, 20) d;

INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by) SELECT 'archive', partition_name, parent, 10 FROM hb_partitions WHERE parent = 'archived_beats'::regclass AND range_start <= now() - interval '4 days' AND range_end > now() - interval '4 days';

SELECT _hb_archive_begin(max(id)) IS NOT NULL FROM _hb_jobs;

SELECT _hb_archive_done(max(id), 20, 100, 50, repeat('b', 64), 'file:///nowhere/manifest.json', true, 0.1) FROM _hb_jobs;

DO $$ BEGIN BEGIN INSERT INTO archived_beats SELECT d, now() - interval '4 days' + interval '1 hour', 'late' FROM generate_series(1, 3) d; RAISE EXCEPTION 'undone'; EXCEPTION WHEN raise_exception THEN NULL; END; UPDATE archived_beats SET status = 'late update' WHERE status = 'archived day' AND device_id = 1; END $$;

SELECT 'late write state=' || p.state FROM hb_partitions p JOIN _hb_jobs j USING (partition_name) WHERE j.id = (SELECT max(id) FROM _hb_jobs);
