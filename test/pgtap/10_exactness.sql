-- After a mixed workload (batches, retries, older rows, rollbacks, updates,
-- deletes, COPY, inserts straight into partitions) each last-status table is
-- exactly SELECT DISTINCT ON (device) * ... ORDER BY device, time DESC.
-- bigint, text and uuid devices; the direct write path and the SQL path (a
-- last-status table with a trigger of its own).
BEGIN;
SELECT plan(35);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- Four heartbeats tables with eight daily partitions each.
CREATE FUNCTION pg_temp.make_table(t text, devtype text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I (device_id %s, ts timestamptz, status text, seq int) PARTITION BY RANGE (ts)',
                   t, devtype);
    FOR d IN 1..8 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       t || '_2026_12_0' || d, t,
                       timestamptz '2026-12-01 00:00+00' + (d - 1) * interval '1 day',
                       timestamptz '2026-12-01 00:00+00' + d * interval '1 day');
    END LOOP;
    PERFORM hb_manage(t::regclass, last_status_table => (t || '_last')::name);
END $$;
SELECT pg_temp.make_table('hb_int', 'bigint');
SELECT pg_temp.make_table('hb_text', 'text');
SELECT pg_temp.make_table('hb_uuid', 'uuid');
SELECT pg_temp.make_table('hb_spi', 'bigint');

-- A trigger on a last-status table: it is written through SQL, and the
-- trigger sees every write.
CREATE TABLE spi_audit (op text, device_id bigint);
CREATE FUNCTION pg_temp.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.spi_audit VALUES (TG_OP, NEW.device_id);  -- runs with search_path pg_catalog, pg_temp
    RETURN NEW;
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE ON hb_spi_last FOR EACH ROW EXECUTE FUNCTION pg_temp.audit();

-- The device of workload row i, for each table.
CREATE FUNCTION pg_temp.dev(t text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE t WHEN 'hb_text' THEN $x$('dev-' || (%s) %% 37)$x$
                  WHEN 'hb_uuid' THEN $x$md5(((%s) %% 37)::text)::uuid$x$
                  ELSE $x$((%s) %% 37)::bigint$x$ END
$$;
-- A pseudo-random time in the eight days, for row i.
CREATE FUNCTION pg_temp.t(i int) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT timestamptz '2026-12-01 00:00+00' + ((i::bigint * 7919) % 11000) * interval '1 minute'
$$;

-- One phase of the workload on table t.
CREATE FUNCTION pg_temp.phase(t text, p int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    dev text := pg_temp.dev(t);
BEGIN
    CASE p
    WHEN 1 THEN  -- a big batch
        EXECUTE format('INSERT INTO %I SELECT %s, pg_temp.t(i), ''batch'', i FROM generate_series(1, 3000) i',
                       t, format(dev, 'i'));
    WHEN 2 THEN  -- retries with another payload, and rows older than anything stored
        EXECUTE format('INSERT INTO %I SELECT %s, pg_temp.t(i), ''retry'', -i FROM generate_series(1, 3000, 7) i',
                       t, format(dev, 'i'));
        EXECUTE format('INSERT INTO %I SELECT %s, timestamptz ''2026-12-01 00:00:01+00'' + i * interval ''1 second'', ''early'', i
                        FROM generate_series(1, 74) i', t, format(dev, 'i'));
    WHEN 3 THEN  -- single-row inserts, some of them rolled back
        FOR i IN 3001..3200 LOOP
            BEGIN
                EXECUTE format('INSERT INTO %I VALUES (%s, $1, ''single'', $2)', t, format(dev, '$2')) USING pg_temp.t(i), i;
                IF i % 3 = 0 THEN
                    RAISE EXCEPTION 'undo %', i;
                END IF;
            EXCEPTION WHEN raise_exception THEN
                NULL;
            END;
        END LOOP;
    WHEN 4 THEN  -- updates within a partition: payload, and times moved earlier in their day
        EXECUTE format('UPDATE %I SET status = ''updated'' WHERE seq %% 11 = 0', t);
        -- (whole-minute times; +30 s and -20 s never leave the day nor meet another row)
        EXECUTE format('UPDATE %I SET ts = ts + interval ''30 seconds'', status = ''later'' WHERE seq %% 13 = 0', t);
        EXECUTE format('UPDATE %I SET ts = ts - interval ''20 seconds'', status = ''earlier''
                        WHERE seq %% 17 = 0 AND ts::time > ''00:01''', t);
    WHEN 5 THEN  -- deletes: scattered rows, newest rows, whole devices
        EXECUTE format('DELETE FROM %I WHERE seq %% 5 = 0', t);
        EXECUTE format('DELETE FROM %I h WHERE ts = (SELECT max(ts) FROM %I x WHERE x.device_id = h.device_id)
                        AND seq %% 2 = 0', t, t);
        EXECUTE format('DELETE FROM %I WHERE device_id IN (SELECT %s FROM generate_series(3, 5) i)', t, format(dev, 'i'));
    WHEN 6 THEN  -- straight into partitions, and a DELETE from one
        EXECUTE format('INSERT INTO %I SELECT %s, timestamptz ''2026-12-08 12:00+00'' + i * interval ''1 minute'', ''direct'', i
                        FROM generate_series(1, 30) i', t || '_2026_12_08', format(dev, 'i * 3'));
        EXECUTE format('DELETE FROM %I WHERE seq %% 4 = 1', t || '_2026_12_03');
    END CASE;
END $$;

CREATE FUNCTION pg_temp.exact(t text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    ord text := CASE t WHEN 'hb_text' THEN 'device_id COLLATE "C"' ELSE 'device_id' END;
BEGIN
    RETURN NEXT results_eq(
        format('SELECT * FROM %I ORDER BY %s', t || '_last', ord),
        format('SELECT DISTINCT ON (%s) * FROM %I ORDER BY %s, ts DESC', ord, t, ord),
        format('%s: device_last_status is exact', t));
END $$;

-- Phase by phase, table by table.
SELECT pg_temp.phase(t, 1) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT is((SELECT count(*) FROM hb_int_last), 37::bigint, 'after the batch: 37 devices');
SELECT bag_eq($$SELECT op, device_id FROM spi_audit$$, $$SELECT 'INSERT', g::bigint FROM generate_series(0, 36) g$$,
    'after the batch: the trigger on hb_spi_last saw one INSERT per new device, nothing else');

SELECT pg_temp.phase(t, 2) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT is((SELECT count(*) FROM hb_int WHERE status = 'retry'), 0::bigint, 'after the retries: no retry was stored');

SELECT pg_temp.phase(t, 3) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;

SELECT pg_temp.phase(t, 4) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;

SELECT pg_temp.phase(t, 5) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT is((SELECT count(*) FROM hb_int_last), 34::bigint, 'after the deletes: 3 devices are gone');

SELECT pg_temp.phase(t, 6) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;

-- COPY: a heartbeat of device 1 newer than its row, and a retry of it; a
-- heartbeat of device 4 older than its row (phase 5 removed device 4, phase
-- 6 brought it back with a heartbeat of 12-08 inserted straight into a
-- partition); an older one of device 6; two of device 100, the only new
-- device. The audit of hb_spi_last starts again here.
TRUNCATE spi_audit;
COPY hb_int FROM STDIN;
1	2026-12-08 23:00:00+00	copy	1
1	2026-12-08 23:00:00+00	copy-retry	2
4	2026-12-02 10:00:00+00	copy-older	3
6	2026-12-01 00:00:00+00	copy-old	4
100	2026-12-05 10:00:00+00	copy-new	5
100	2026-12-05 11:00:00+00	copy-newer	6
\.
COPY hb_text FROM STDIN;
dev-1	2026-12-08 23:00:00+00	copy	1
dev-1	2026-12-08 23:00:00+00	copy-retry	2
dev-4	2026-12-02 10:00:00+00	copy-older	3
dev-6	2026-12-01 00:00:00+00	copy-old	4
dev-100	2026-12-05 10:00:00+00	copy-new	5
dev-100	2026-12-05 11:00:00+00	copy-newer	6
\.
COPY hb_uuid FROM STDIN;
c4ca4238-a0b9-2382-0dcc-509a6f75849b	2026-12-08 23:00:00+00	copy	1
c4ca4238-a0b9-2382-0dcc-509a6f75849b	2026-12-08 23:00:00+00	copy-retry	2
a87ff679-a2f3-e71d-9181-a67b7542122c	2026-12-02 10:00:00+00	copy-older	3
1679091c-5a88-0faf-6fb5-e6087eb1b2dc	2026-12-01 00:00:00+00	copy-old	4
f899139d-f5e1-0593-9643-1415e770c6dd	2026-12-05 10:00:00+00	copy-new	5
f899139d-f5e1-0593-9643-1415e770c6dd	2026-12-05 11:00:00+00	copy-newer	6
\.
COPY hb_spi FROM STDIN;
1	2026-12-08 23:00:00+00	copy	1
1	2026-12-08 23:00:00+00	copy-retry	2
4	2026-12-02 10:00:00+00	copy-older	3
6	2026-12-01 00:00:00+00	copy-old	4
100	2026-12-05 10:00:00+00	copy-new	5
100	2026-12-05 11:00:00+00	copy-newer	6
\.
SELECT pg_temp.exact(t) FROM unnest(ARRAY['hb_int', 'hb_text', 'hb_uuid', 'hb_spi']) t;
SELECT is((SELECT count(*) FROM hb_uuid WHERE status LIKE 'copy%'
            AND device_id IN (md5('1')::uuid, md5('4')::uuid, md5('6')::uuid, md5('100')::uuid)), 5::bigint,
    'the uuid COPY stored its rows for the intended devices, the retry once');

-- The two write paths agree, and the trigger on the SQL path saw each write.
SELECT results_eq($$SELECT * FROM hb_spi_last ORDER BY device_id$$, $$SELECT * FROM hb_int_last ORDER BY device_id$$,
    'the SQL write path and the direct one end in the same state');
SELECT bag_eq($$SELECT op, device_id FROM spi_audit$$, $$VALUES ('UPDATE', 1::bigint), ('INSERT', 100)$$,
    'the trigger on hb_spi_last saw the COPY''s two writes: device 1 updated, device 100 inserted');

SELECT * FROM finish();
ROLLBACK;
