-- Every way a heartbeat is inserted keeps device_last_status in sync, in the
-- same transaction.
BEGIN;
SELECT plan(28);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text, battery int)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2001_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-01') TO ('2001-12-02');
CREATE TABLE hb_2001_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-02') TO ('2001-12-03');
CREATE TABLE hb_2001_12_03 PARTITION OF heartbeats FOR VALUES FROM ('2001-12-03') TO ('2001-12-04');
SELECT hb_manage('heartbeats');

-- The newest heartbeat of each device in [lo, hi], from the heartbeats themselves.
CREATE FUNCTION pg_temp.newest(lo bigint, hi bigint) RETURNS SETOF heartbeats LANGUAGE sql AS $$
    SELECT DISTINCT ON (device_id) * FROM heartbeats
    WHERE device_id BETWEEN lo AND hi ORDER BY device_id, ts DESC
$$;
CREATE FUNCTION pg_temp.last(lo bigint, hi bigint) RETURNS SETOF device_last_status LANGUAGE sql AS $$
    SELECT * FROM device_last_status WHERE device_id BETWEEN lo AND hi ORDER BY device_id
$$;

-- ------------------------------------------------------------ single row
INSERT INTO heartbeats VALUES (1, '2001-12-01 10:00+00', 'ok', 90);
SELECT results_eq($$SELECT * FROM pg_temp.last(1, 1)$$,
    $$VALUES (1::bigint, '2001-12-01 10:00+00'::timestamptz, 'ok'::text, 90)$$,
    'a single-row INSERT writes the whole row to device_last_status');
INSERT INTO heartbeats VALUES (1, '2001-12-02 10:00+00', 'later', 80);
SELECT results_eq($$SELECT * FROM pg_temp.last(1, 1)$$,
    $$VALUES (1::bigint, '2001-12-02 10:00+00'::timestamptz, 'later'::text, 80)$$,
    'a newer single-row INSERT replaces it');

-- A column list; the columns left out are NULL.
INSERT INTO heartbeats (ts, device_id) VALUES ('2001-12-01 11:00+00', 2);
SELECT results_eq($$SELECT * FROM pg_temp.last(2, 2)$$,
    $$VALUES (2::bigint, '2001-12-01 11:00+00'::timestamptz, NULL::text, NULL::int)$$,
    'an INSERT with a column list stores NULL for the other columns');

-- ------------------------------------------------------------ multi-row VALUES
INSERT INTO heartbeats VALUES
    (10, '2001-12-01 10:00+00', 'a', 1), (11, '2001-12-02 10:00+00', 'b', 2),
    (10, '2001-12-03 10:00+00', 'c', 3), (12, '2001-12-01 09:00+00', 'd', 4),
    (11, '2001-12-01 10:00+00', 'e', 5);
SELECT results_eq($$SELECT * FROM pg_temp.last(10, 12)$$,
    $$VALUES (10::bigint, '2001-12-03 10:00+00'::timestamptz, 'c'::text, 3),
             (11, '2001-12-02 10:00+00', 'b', 2),
             (12, '2001-12-01 09:00+00', 'd', 4)$$,
    'a multi-row INSERT across partitions leaves the newest row of each device');

-- ------------------------------------------------------------ INSERT ... SELECT
INSERT INTO heartbeats
SELECT 100 + i % 50, '2001-12-01 00:00+00'::timestamptz + i * interval '1 minute', 's' || i, i
FROM generate_series(1, 4000) i;
SELECT results_eq($$SELECT * FROM pg_temp.last(100, 149)$$, $$SELECT * FROM pg_temp.newest(100, 149)$$,
    'INSERT ... SELECT of 4000 rows over 50 devices and 3 partitions leaves each device''s newest');
SELECT is((SELECT count(*) FROM pg_temp.last(100, 149)), 50::bigint,
    '... one row per device');

-- ------------------------------------------------------------ COPY
COPY heartbeats FROM STDIN;
200	2001-12-01 10:00:00+00	copy-a	10
201	2001-12-01 10:00:00+00	copy-b	11
200	2001-12-02 10:00:00+00	copy-c	12
201	2001-12-01 09:00:00+00	copy-d	13
202	2001-12-03 23:59:59.999999+00	copy-e	\N
\.
SELECT results_eq($$SELECT * FROM pg_temp.last(200, 202)$$,
    $$VALUES (200::bigint, '2001-12-02 10:00+00'::timestamptz, 'copy-c'::text, 12),
             (201, '2001-12-01 10:00+00', 'copy-b', 11),
             (202, '2001-12-03 23:59:59.999999+00', 'copy-e', NULL)$$,
    'COPY FROM STDIN leaves the newest row of each device');

COPY heartbeats (ts, status, device_id) FROM STDIN WITH (FORMAT csv, HEADER true);
ts,status,device_id
2001-12-02 08:00:00+00,csv-a,210
2001-12-02 09:00:00+00,csv-b,210
2001-12-01 09:00:00+00,csv-c,211
\.
SELECT results_eq($$SELECT * FROM pg_temp.last(210, 211)$$,
    $$VALUES (210::bigint, '2001-12-02 09:00+00'::timestamptz, 'csv-b'::text, NULL::int),
             (211, '2001-12-01 09:00+00', 'csv-c', NULL)$$,
    'COPY in CSV with a header and a column list in another order is kept in sync');

-- One big COPY statement from a server-side file: 200 rows per device, 100
-- devices, 3 partitions; the statement's buffer keeps each device's newest
-- through all of them. (PostgreSQL's COPY inserts one row at a time into a
-- table with BEFORE ROW triggers, so this is not about multi-insert buffers.)
CREATE TEMP TABLE copy_src AS
SELECT 300 + i % 100 AS device_id, '2001-12-01 00:00+00'::timestamptz + i * interval '12 seconds' AS ts,
       'bulk' || i AS status, i AS battery
FROM generate_series(1, 20000) i;
-- The file is written into the scratch cluster's data directory, read back
-- by a program that removes it whatever COPY makes of it (superuser only).
DO $$
DECLARE
    f text := current_setting('data_directory') || '/hb_tap_03_copy.tsv';
    sh text := '''' || replace(f, '''', '''"''"''') || '''';  -- f, quoted for sh
BEGIN
    EXECUTE format('COPY copy_src TO %L', f);
    EXECUTE format('COPY heartbeats FROM PROGRAM %L',
                   format('cat %s; rc=$?; rm -f %s; exit $rc', sh, sh));
END $$;
SELECT results_eq($$SELECT * FROM pg_temp.last(300, 399)$$, $$SELECT * FROM pg_temp.newest(300, 399)$$,
    'one 20000-row COPY (200 rows per device, 100 devices, 3 partitions) leaves each device''s newest');

-- ------------------------------------------------------------ straight into a partition
INSERT INTO hb_2001_12_02 VALUES (400, '2001-12-02 10:00+00', 'direct', 1);
SELECT results_eq($$SELECT * FROM pg_temp.last(400, 400)$$,
    $$VALUES (400::bigint, '2001-12-02 10:00+00'::timestamptz, 'direct'::text, 1)$$,
    'an INSERT straight into a partition is kept in sync');
INSERT INTO hb_2001_12_03 VALUES (400, '2001-12-03 10:00+00', 'direct-2', 2), (401, '2001-12-03 01:00+00', 'x', 3);
INSERT INTO hb_2001_12_01 VALUES (400, '2001-12-01 10:00+00', 'direct-old', 3);
SELECT results_eq($$SELECT * FROM pg_temp.last(400, 401)$$,
    $$VALUES (400::bigint, '2001-12-03 10:00+00'::timestamptz, 'direct-2'::text, 2),
             (401, '2001-12-03 01:00+00', 'x', 3)$$,
    'inserts straight into several partitions leave the newest');
COPY hb_2001_12_03 FROM STDIN;
402	2001-12-03 05:00:00+00	copy-part	7
\.
SELECT results_eq($$SELECT * FROM pg_temp.last(402, 402)$$,
    $$VALUES (402::bigint, '2001-12-03 05:00+00'::timestamptz, 'copy-part'::text, 7)$$,
    'COPY straight into a partition is kept in sync');

-- ------------------------------------------------------------ ON CONFLICT
INSERT INTO heartbeats VALUES (500, '2001-12-01 10:00+00', 'first', 1) ON CONFLICT DO NOTHING;
SELECT results_eq($$SELECT * FROM pg_temp.last(500, 500)$$,
    $$VALUES (500::bigint, '2001-12-01 10:00+00'::timestamptz, 'first'::text, 1)$$,
    'INSERT ... ON CONFLICT DO NOTHING of a new heartbeat is kept in sync');
-- With skip_duplicate_heartbeats on (the default) the dedupe probe skips
-- the retry before PostgreSQL's ON CONFLICT sees it.
INSERT INTO heartbeats VALUES (500, '2001-12-01 10:00+00', 'again', 2), (500, '2001-12-01 11:00+00', 'second', 3)
    ON CONFLICT (device_id, ts) DO NOTHING;
SELECT results_eq($$SELECT * FROM pg_temp.last(500, 500)$$,
    $$VALUES (500::bigint, '2001-12-01 11:00+00'::timestamptz, 'second'::text, 3)$$,
    'INSERT ... ON CONFLICT DO NOTHING of a retry (skipped by the dedupe probe) and a new row keeps the new one');
-- With it off, ON CONFLICT itself decides.
SET LOCAL hb_lifecycle.skip_duplicate_heartbeats = off;
INSERT INTO heartbeats VALUES (500, '2001-12-01 11:00+00', 'conflict', 4), (500, '2001-12-01 12:00+00', 'third', 5)
    ON CONFLICT (device_id, ts) DO NOTHING;
SELECT results_eq($$SELECT * FROM pg_temp.last(500, 500)$$,
    $$VALUES (500::bigint, '2001-12-01 12:00+00'::timestamptz, 'third'::text, 5)$$,
    'with skip_duplicate_heartbeats off, ON CONFLICT DO NOTHING skips the conflicting row and the new one is kept in sync');
INSERT INTO heartbeats VALUES (500, '2001-12-01 12:00+00', 'updated', 6)
    ON CONFLICT (device_id, ts) DO UPDATE SET status = EXCLUDED.status, battery = EXCLUDED.battery;
SELECT results_eq($$SELECT * FROM pg_temp.last(500, 500)$$,
    $$VALUES (500::bigint, '2001-12-01 12:00+00'::timestamptz, 'updated'::text, 6)$$,
    'with skip_duplicate_heartbeats off, ON CONFLICT DO UPDATE of the newest heartbeat is kept in sync');
SET LOCAL hb_lifecycle.skip_duplicate_heartbeats = on;

-- ------------------------------------------------------------ RETURNING, CTE, MERGE
SELECT results_eq(
    $$INSERT INTO heartbeats VALUES (600, '2001-12-02 10:00+00', 'ret', 1) RETURNING device_id, status$$,
    $$VALUES (600::bigint, 'ret'::text)$$, 'INSERT ... RETURNING returns the row');
SELECT results_eq($$SELECT status FROM pg_temp.last(600, 600)$$, $$VALUES ('ret')$$,
    '... and keeps device_last_status in sync');

SELECT results_eq(
    $$WITH ins AS (
          INSERT INTO heartbeats VALUES (601, '2001-12-02 10:00+00', 'cte', 1), (601, '2001-12-02 11:00+00', 'cte-2', 2)
          RETURNING 1)
      SELECT count(*) FROM ins$$,
    $$VALUES (2::bigint)$$, 'an INSERT in a data-modifying CTE inserts its rows');
SELECT results_eq($$SELECT status FROM pg_temp.last(601, 601)$$, $$VALUES ('cte-2')$$,
    'an INSERT in a data-modifying CTE is kept in sync');

MERGE INTO heartbeats h
USING (VALUES (602::bigint, '2001-12-02 10:00+00'::timestamptz, 'merge-a'),
              (602, '2001-12-02 12:00+00', 'merge-b'),
              (603, '2001-12-01 12:00+00', 'merge-c')) v(d, t, s)
ON h.device_id = v.d AND h.ts = v.t
WHEN NOT MATCHED THEN INSERT VALUES (v.d, v.t, v.s, 0);
SELECT results_eq($$SELECT device_id, status FROM pg_temp.last(602, 603)$$,
    $$VALUES (602::bigint, 'merge-b'::text), (603, 'merge-c')$$,
    'MERGE ... WHEN NOT MATCHED THEN INSERT is kept in sync');

-- ------------------------------------------------------------ from code
PREPARE hb_ins(bigint, timestamptz, text) AS INSERT INTO heartbeats VALUES ($1, $2, $3, NULL);
EXECUTE hb_ins(700, '2001-12-01 10:00+00', 'prep-1');
EXECUTE hb_ins(700, '2001-12-03 10:00+00', 'prep-2');
EXECUTE hb_ins(700, '2001-12-02 10:00+00', 'prep-3');
SELECT results_eq($$SELECT status FROM pg_temp.last(700, 700)$$, $$VALUES ('prep-2')$$,
    'a prepared INSERT executed several times is kept in sync');
DEALLOCATE hb_ins;

DO $$
BEGIN
    FOR i IN 1..60 LOOP
        INSERT INTO heartbeats VALUES (710 + i % 3, '2001-12-01 00:00+00'::timestamptz + i * interval '1 hour',
                                       'plpgsql-' || i, i);
    END LOOP;
END $$;
SELECT results_eq($$SELECT * FROM pg_temp.last(710, 712)$$, $$SELECT * FROM pg_temp.newest(710, 712)$$,
    'row-by-row inserts from a PL/pgSQL loop are kept in sync');

-- An insert fired by a trigger of another table.
CREATE TABLE raw_events (device bigint, at timestamptz, what text);
CREATE FUNCTION pg_temp.forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO heartbeats VALUES (NEW.device, NEW.at, NEW.what, NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER forward AFTER INSERT ON raw_events FOR EACH ROW EXECUTE FUNCTION pg_temp.forward();
INSERT INTO raw_events VALUES (720, '2001-12-01 10:00+00', 'trg-a'), (720, '2001-12-02 10:00+00', 'trg-b'),
                              (721, '2001-12-01 10:00+00', 'trg-c');
SELECT results_eq($$SELECT device_id, status FROM pg_temp.last(720, 721)$$,
    $$VALUES (720::bigint, 'trg-b'::text), (721, 'trg-c')$$,
    'heartbeats inserted by another table''s trigger are kept in sync');

-- One statement over more partitions than the dedupe keeps scans open for.
DO $$
BEGIN
    FOR d IN 4..24 LOOP
        EXECUTE format('CREATE TABLE hb_2001_12_%s PARTITION OF heartbeats FOR VALUES FROM (%L) TO (%L)',
                       lpad(d::text, 2, '0'), '2001-12-' || lpad(d::text, 2, '0'),
                       '2001-12-' || lpad((d + 1)::text, 2, '0'));
    END LOOP;
END $$;
INSERT INTO heartbeats
SELECT 800 + i % 5, '2001-12-04 12:00+00'::timestamptz + i * interval '1 day', 'wide-' || i, i
FROM generate_series(0, 20) i;
SELECT results_eq($$SELECT * FROM pg_temp.last(800, 804)$$, $$SELECT * FROM pg_temp.newest(800, 804)$$,
    'one INSERT over 21 partitions is kept in sync');

-- INSERT ... SELECT reading the heartbeats table itself.
INSERT INTO heartbeats SELECT device_id, ts + interval '1 hour', 'self-' || status, battery
FROM heartbeats WHERE device_id BETWEEN 10 AND 12;
SELECT results_eq($$SELECT device_id, status FROM pg_temp.last(10, 12)$$,
    $$VALUES (10::bigint, 'self-c'::text), (11, 'self-b'), (12, 'self-d')$$,
    'INSERT ... SELECT from the heartbeats table itself is kept in sync');

-- One statement for 20000 devices.
INSERT INTO heartbeats SELECT 100000 + i, '2001-12-02 10:00+00', 'many', i FROM generate_series(1, 20000) i;
SELECT is((SELECT count(*) FROM pg_temp.last(100001, 120000)), 20000::bigint,
    'one INSERT of 20000 devices adds 20000 rows to device_last_status');

-- The whole table, after all of the above.
SELECT results_eq($$SELECT * FROM device_last_status ORDER BY device_id$$,
    $$SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC$$,
    'device_last_status is exactly the newest heartbeat of every device');

SELECT * FROM finish();
ROLLBACK;
