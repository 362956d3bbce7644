-- Partition names and bounds: UTC days and months whatever the session's
-- TimeZone, create-ahead, the catch-all partition, adoption of partitions
-- made by hand, and hb_partitions agreeing with the catalog.
BEGIN;
SELECT plan(30);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE ROLE hb_scheme_owner;
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
ALTER TABLE heartbeats OWNER TO hb_scheme_owner;
SELECT hb_manage('heartbeats', premake => 3);

-- The name of the daily partition d days from today (UTC).
CREATE FUNCTION pg_temp.day(prefix text, d int) RETURNS text LANGUAGE sql AS
    $$ SELECT prefix || to_char((now() AT TIME ZONE 'UTC')::date + d, '_YYYY_MM_DD') $$;
-- The partitions of a parent as the catalog has them (no catch-all).
CREATE FUNCTION pg_temp.attached(parent regclass) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT k.relname::text FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    CROSS JOIN LATERAL hb_partition_bounds(k.oid) b
    WHERE i.inhparent = parent AND NOT b.is_default $$;

-- ------------------------------------------------------------ hb_manage creates ahead
SELECT set_eq($$SELECT partition_name FROM hb_partitions WHERE parent = 'heartbeats'::regclass$$,
    $$SELECT pg_temp.day('hb', d) FROM generate_series(0, 3) d$$,
    'hb_manage creates today''s partition and premake more, named hb_yyyy_mm_dd');
SELECT set_eq($$SELECT pg_temp.attached('heartbeats')$$,
    $$SELECT partition_name FROM hb_partitions WHERE parent = 'heartbeats'::regclass AND state <> 'dropped'$$,
    'hb_partitions lists exactly the attached partitions');
SELECT is((SELECT count(*)::int FROM hb_partitions p CROSS JOIN LATERAL hb_partition_bounds(p.partition_name::regclass) b
           WHERE b.range_start = p.range_start AND b.range_end = p.range_end), 4,
    'the recorded bounds are the catalog''s');
SELECT is((SELECT count(*)::int FROM hb_partitions
           WHERE range_start = date_trunc('day', range_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
             AND range_end - range_start = interval '1 day'), 4,
    'each daily partition spans one UTC day, midnight to midnight');
SELECT is((SELECT count(*)::int FROM hb_partitions WHERE state = 'active' AND NOT adopted), 4,
    'new partitions are active and not adopted');
SELECT is((SELECT partdefid::regclass::text FROM pg_partitioned_table WHERE partrelid = 'heartbeats'::regclass),
    'hb_default', 'hb_manage gives the table a catch-all default partition, <prefix>_default');
SELECT is((SELECT count(*)::int FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
           WHERE i.inhparent = 'heartbeats'::regclass AND k.relowner <> 'hb_scheme_owner'::regrole), 0,
    'every partition, the catch-all included, belongs to the table''s owner');
SELECT set_eq($$SELECT partition_name FROM hb_events WHERE event = 'partition.create' AND parent = 'heartbeats'::regclass$$,
    $$SELECT pg_temp.day('hb', d) FROM generate_series(0, 3) d$$,
    'each partition created has a partition.create event');
SELECT is((SELECT detail->>'range_start' FROM hb_events WHERE partition_name = pg_temp.day('hb', 1)),
    to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYY-MM-DD"T00:00:00+00:00"'),
    'the event gives the partition''s bounds');

-- ------------------------------------------------------------ hb_create_ahead
SELECT is_empty($$SELECT hb_create_ahead('heartbeats')$$, 'a second create-ahead creates nothing');
SELECT set_eq($$SELECT hb_create_ahead('heartbeats', 5)$$,
    $$VALUES (pg_temp.day('hb', 4)), (pg_temp.day('hb', 5))$$,
    'create-ahead with a larger premake creates only what is missing');
SELECT is((SELECT count(*)::int FROM hb_events WHERE event = 'partition.create' AND parent = 'heartbeats'::regclass), 6,
    'and records one event per partition it created');
SELECT throws_ok($$SELECT hb_create_ahead('heartbeats', -1)$$, '22023', NULL, 'a negative premake is refused');
SELECT throws_ok($$SELECT hb_create_ahead('pg_class')$$, '55000', NULL, 'an unmanaged table is refused');

-- ------------------------------------------------------------ UTC whatever the TimeZone
SELECT hb_configure('heartbeats', retention => '100 years');
SET TimeZone = 'America/New_York';
-- 2024-11-03: clocks fall back in New York (a 25-hour local day);
-- 2025-03-09: they spring forward (a 23-hour local day). Past dates: days
-- that create-ahead never makes.
SELECT set_eq($$SELECT hb_create_partitions('heartbeats', '2024-11-02 12:00', '2024-11-04 12:00')$$,
    $$VALUES ('hb_2024_11_02'), ('hb_2024_11_03'), ('hb_2024_11_04')$$,
    'under America/New_York the names are the UTC dates');
SELECT is((SELECT count(*)::int FROM hb_partitions
           WHERE partition_name IN ('hb_2024_11_02', 'hb_2024_11_03', 'hb_2024_11_04')
             AND extract(epoch FROM range_end - range_start) = 86400
             AND to_char(range_start AT TIME ZONE 'UTC', 'HH24:MI') = '00:00'), 3,
    'across the fall-back change each partition is 24 hours from UTC midnight');
SELECT set_eq($$SELECT hb_create_partitions('heartbeats', '2025-03-08 12:00', '2025-03-10 12:00')$$,
    $$VALUES ('hb_2025_03_08'), ('hb_2025_03_09'), ('hb_2025_03_10')$$,
    'across the spring-forward change too');
SELECT is((SELECT range_start FROM hb_partitions WHERE partition_name = 'hb_2025_03_09'),
    '2025-03-09 00:00:00+00'::timestamptz, 'hb_2025_03_09 starts at UTC midnight, 19:00 local');
INSERT INTO heartbeats VALUES (1, '2025-03-08 20:30-05', 'evening in New York');
SELECT is((SELECT tableoid::regclass::text FROM heartbeats WHERE device_id = 1),
    'hb_2025_03_09', 'a heartbeat at 20:30 New York time on the 8th is in the UTC day of the 9th');
SET TimeZone = 'Asia/Kolkata';
SELECT is((SELECT hb_create_partitions('heartbeats', '2024-11-20 03:00', '2024-11-20 03:00')),
    'hb_2024_11_19', 'under Asia/Kolkata 03:00 local on the 20th is in hb_2024_11_19');
SELECT is((SELECT range_end FROM hb_partitions WHERE partition_name = 'hb_2024_11_19'),
    '2024-11-20 05:30:00+05:30'::timestamptz, 'whose end is UTC midnight, 05:30 local');
SET TimeZone = 'UTC';

-- ------------------------------------------------------------ monthly
CREATE TABLE monthly (device_id int NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT hb_manage('monthly', granularity => 'month', premake => 2, partition_prefix => 'mon',
                 last_status_table => 'monthly_last');
SELECT set_eq($$SELECT partition_name FROM hb_partitions WHERE parent = 'monthly'::regclass$$,
    $$SELECT 'mon' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + m * interval '1 month', '_YYYY_MM')
      FROM generate_series(0, 2) m$$,
    'a monthly table gets mon_yyyy_mm for this month and premake more');
SELECT is((SELECT count(*)::int FROM hb_partitions WHERE parent = 'monthly'::regclass
           AND to_char(range_start AT TIME ZONE 'UTC', 'DD HH24:MI') = '01 00:00'
           AND range_end = (range_start AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC'), 3,
    'each monthly partition runs from the first of its UTC month to the first of the next');

-- ------------------------------------------------------------ partitions made by hand
CREATE TABLE handmade (device_id bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
-- Today's UTC day, under a name of its own: fits the scheme.
SELECT format('CREATE TABLE handmade_today PARTITION OF handmade FOR VALUES FROM (%L) TO (%L)',
              date_trunc('day', now()), date_trunc('day', now()) + interval '1 day') \gexec
-- Tomorrow 05:00 to the day after 05:00: does not.
SELECT format('CREATE TABLE handmade_odd PARTITION OF handmade FOR VALUES FROM (%L) TO (%L)',
              date_trunc('day', now()) + interval '29 hours', date_trunc('day', now()) + interval '53 hours') \gexec
SELECT hb_manage('handmade', premake => 3, partition_prefix => 'hm', last_status_table => 'handmade_last');
SELECT results_eq($$SELECT partition_name, adopted FROM hb_partitions WHERE parent = 'handmade'::regclass
                    AND range_start = date_trunc('day', now())$$,
    $$VALUES ('handmade_today', true)$$,
    'a partition made by hand whose bounds are a UTC day is adopted under its own name');
SELECT is((SELECT count(*)::int FROM hb_events WHERE event = 'partition.create' AND partition_name = 'handmade_today'
           AND (detail->>'adopted')::boolean), 1, 'the adoption is recorded as an event');
SELECT set_eq($$SELECT partition_name FROM hb_partitions WHERE parent = 'handmade'::regclass$$,
    $$VALUES ('handmade_today'), (pg_temp.day('hm', 3))$$,
    'slots that a partition off the scheme overlaps are not created');
SELECT ok(to_regclass('handmade_odd') IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM hb_partitions WHERE partition_name = 'handmade_odd'),
    'the partition off the scheme is left alone and not recorded');
SELECT is(hb_run_maintenance()->'unmatched', '["handmade_odd"]'::jsonb,
    'and maintenance reports it as unmatched');

-- ------------------------------------------------------------ hb_partition_slot
SELECT results_eq($$SELECT * FROM hb_partition_slot('day', 'hb', '2026-11-02 23:59:59.999999+00')$$,
    $$VALUES ('hb_2026_11_02', '2026-11-02 00:00+00'::timestamptz, '2026-11-03 00:00+00'::timestamptz)$$,
    'the last microsecond of a UTC day belongs to that day''s partition');
SELECT throws_ok($$SELECT hb_partition_slot('week', 'hb', now())$$, '22023', NULL,
    'hb_partition_slot refuses an unknown granularity');

SELECT * FROM finish();
ROLLBACK;
