-- The storage paths of the last-status writer: HOT and non-HOT updates,
-- TOASTed payloads, heartbeats over dead index entries, a last-status table
-- that differs from the heartbeats table, and one that has its own trigger
-- (written through SQL instead of the table AM).
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE EXTENSION hb_lifecycle;
CREATE TABLE heartbeats (device_id int NOT NULL, ts timestamptz NOT NULL, status text,
                         payload jsonb) PARTITION BY RANGE (ts);
CREATE TABLE hb_2001_12_01 PARTITION OF heartbeats
    FOR VALUES FROM ('2001-12-01 00:00+00') TO ('2001-12-02 00:00+00');
SELECT hb_manage('heartbeats');

CREATE VIEW mismatches AS
SELECT count(*) AS mismatches
  FROM (SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC) h
  FULL JOIN device_last_status l USING (device_id)
 WHERE h.device_id IS NULL OR l.device_id IS NULL
    OR (h.ts, h.status, h.payload) IS DISTINCT FROM (l.ts, l.status, l.payload);

-- 200 devices; a second heartbeat of the same size: every update finds room
-- on its page (fillfactor 50) and is HOT, adding no index entry.
INSERT INTO heartbeats SELECT d, '2001-12-01 01:00+00', 'small', '{}' FROM generate_series(1, 200) d;
INSERT INTO heartbeats SELECT d, '2001-12-01 01:30+00', 'small2', '{}' FROM generate_series(1, 200) d;
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd AS updates, n_tup_hot_upd AS hot_updates
  FROM pg_stat_user_tables WHERE relname = 'device_last_status';
-- Rows that no longer fit their page: non-HOT updates, whose new index
-- entries the writer inserts itself.
INSERT INTO heartbeats SELECT d, '2001-12-01 02:00+00', 'grown',
       jsonb_build_object('blob', repeat('x', 600)) FROM generate_series(1, 200) d;
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd AS updates, n_tup_hot_upd < n_tup_upd AS some_not_hot
  FROM pg_stat_user_tables WHERE relname = 'device_last_status';
SELECT * FROM mismatches;
-- Every row is still found through the primary key.
SET enable_seqscan = off;
SELECT count(*) FROM device_last_status WHERE device_id BETWEEN 1 AND 200;
RESET enable_seqscan;

-- A payload large enough to be TOASTed in the heartbeats partition is
-- copied, not pointed at: it survives the partition's rows being dropped.
INSERT INTO heartbeats VALUES (1, '2001-12-01 03:00+00', 'toasted',
    jsonb_build_object('blob', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)));
SELECT pg_column_size(payload) > 2000 AS stored_large, length(payload->>'blob')
  FROM device_last_status WHERE device_id = 1;
SELECT * FROM mismatches;
TRUNCATE hb_2001_12_01;
VACUUM hb_2001_12_01;
SELECT status, length(payload->>'blob') FROM device_last_status WHERE device_id = 1;

-- Retries over dead index entries (rolled-back heartbeats): the dedupe probe
-- passes over them and the retried rows are stored.
BEGIN;
INSERT INTO heartbeats SELECT d, '2001-12-01 04:00+00', 'rolled back', '{}' FROM generate_series(1, 200) d;
ROLLBACK;
INSERT INTO heartbeats SELECT d, '2001-12-01 04:00+00', 'after rollback', '{}' FROM generate_series(1, 200) d;
INSERT INTO heartbeats SELECT d, '2001-12-01 04:00+00', 'retry', '{}' FROM generate_series(1, 200) d;
SELECT status, count(*) FROM heartbeats WHERE ts = '2001-12-01 04:00+00' GROUP BY status;
SELECT * FROM mismatches;

-- The writer never replaces a row with one of the same time: with the
-- stored heartbeat gone (TRUNCATE fires no trigger), the same (device,
-- time) with another payload is stored, and the device's row is kept.
TRUNCATE hb_2001_12_01;
INSERT INTO heartbeats VALUES (5, '2001-12-01 04:00+00', 'same time, other payload', '{"b": 2}');
SELECT status, payload FROM device_last_status WHERE device_id = 5;

-- A column only the last-status table has keeps its value; a column of the
-- heartbeats table it lacks is not copied.
DROP VIEW mismatches;
ALTER TABLE device_last_status ADD COLUMN note text;
UPDATE device_last_status SET note = 'keep me' WHERE device_id = 2;
ALTER TABLE device_last_status DROP COLUMN payload;
INSERT INTO heartbeats VALUES (2, '2001-12-01 05:00+00', 'with note', '{"a": 1}');
SELECT device_id, ts, status, note FROM device_last_status WHERE device_id = 2;

-- A trigger on the last-status table (say, to notify on status changes)
-- fires: such a table is written through SQL. It runs, like the rest of
-- hb_lifecycle's writes, as the table's owner with search_path =
-- pg_catalog, pg_temp, so it names its schema (or sets its search_path).
CREATE TABLE status_changes (device_id int, status text);
CREATE FUNCTION log_status_change() RETURNS trigger LANGUAGE plpgsql
    SET search_path = public AS $$
BEGIN
    INSERT INTO status_changes VALUES (NEW.device_id, NEW.status);
    RETURN NEW;
END $$;
CREATE TRIGGER log_change AFTER UPDATE OR INSERT ON device_last_status
    FOR EACH ROW EXECUTE FUNCTION log_status_change();
INSERT INTO heartbeats VALUES (3, '2001-12-01 06:00+00', 'seen by trigger', '{}'),
                              (3, '2001-12-01 05:59+00', 'older', '{}'),
                              (999, '2001-12-01 06:00+00', 'new device', '{}');
SELECT * FROM status_changes ORDER BY device_id;
SELECT device_id, status FROM device_last_status WHERE device_id IN (3, 999) ORDER BY 1;

-- Rows inserted straight into a partition that lacks the statement triggers
-- wait for the pre-commit flush; if the transaction drops the partition
-- before it commits, they are gone with it, and COMMIT works.
DROP TRIGGER log_change ON device_last_status;
ALTER EVENT TRIGGER hb_lifecycle_partition_triggers DISABLE;
CREATE TABLE hb_bare PARTITION OF heartbeats
    FOR VALUES FROM ('2001-12-05 00:00+00') TO ('2001-12-06 00:00+00');
ALTER EVENT TRIGGER hb_lifecycle_partition_triggers ENABLE;
BEGIN;
INSERT INTO hb_bare VALUES (3, '2001-12-05 01:00+00', 'in a dropped partition');
DROP TABLE hb_bare;
COMMIT;
SELECT device_id, status FROM device_last_status WHERE device_id = 3;

DROP TABLE heartbeats, device_last_status, status_changes CASCADE;
DROP FUNCTION log_status_change();
DROP EXTENSION hb_lifecycle;
