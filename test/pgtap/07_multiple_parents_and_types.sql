-- Several managed parents side by side, each with its own last-status
-- table; every supported device type; custom (and quoted) names.
BEGIN;
SELECT plan(41);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- ------------------------------------------------------------ the parents
CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');

CREATE TABLE sensor_beats (sensor text, seen_at timestamptz, reading numeric) PARTITION BY RANGE (seen_at);
CREATE TABLE sensor_beats_2026_12_01 PARTITION OF sensor_beats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE sensor_beats_2026_12_02 PARTITION OF sensor_beats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');

CREATE TABLE uuid_beats (device uuid, ts timestamptz, note text) PARTITION BY RANGE (ts);
CREATE TABLE uuid_beats_2026_12 PARTITION OF uuid_beats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');

CREATE TABLE small_beats (device_id smallint, ts timestamptz, v int) PARTITION BY RANGE (ts);
CREATE TABLE small_beats_p PARTITION OF small_beats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
CREATE TABLE int_beats (device_id integer, ts timestamptz, v int) PARTITION BY RANGE (ts);
CREATE TABLE int_beats_p PARTITION OF int_beats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
CREATE TABLE varchar_beats (device_id varchar(40), ts timestamptz, v int) PARTITION BY RANGE (ts);
CREATE TABLE varchar_beats_p PARTITION OF varchar_beats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
CREATE DOMAIN pg_temp.device_code AS text CHECK (VALUE <> '');
CREATE TABLE domain_beats (device_id pg_temp.device_code, ts timestamptz, v int) PARTITION BY RANGE (ts);
CREATE TABLE domain_beats_p PARTITION OF domain_beats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');

-- Quoted names, a dropped column, and a partition whose columns are in another order.
CREATE SCHEMA "Fleet X";
CREATE TABLE "Fleet X"."Beats" ("Dev Id" text COLLATE "C", junk int, "Seen At" timestamptz, "Status" text)
    PARTITION BY RANGE ("Seen At");
ALTER TABLE "Fleet X"."Beats" DROP COLUMN junk;
CREATE TABLE "Fleet X"."Day 1" PARTITION OF "Fleet X"."Beats" FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE "Fleet X"."Day 2" ("Status" text, "Seen At" timestamptz, "Dev Id" text COLLATE "C");
ALTER TABLE "Fleet X"."Beats" ATTACH PARTITION "Fleet X"."Day 2" FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');

-- Two tables of the same name in two schemas, both with the default last-status name.
CREATE SCHEMA site_a;
CREATE SCHEMA site_b;
CREATE TABLE site_a.heartbeats (device_id int, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE site_a.p PARTITION OF site_a.heartbeats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
CREATE TABLE site_b.heartbeats (device_id int, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE site_b.p PARTITION OF site_b.heartbeats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');

-- Generated and identity columns.
CREATE TABLE gen_beats (device_id int, ts timestamptz, raw int,
                        pct int GENERATED ALWAYS AS (raw * 10) STORED,
                        id bigint GENERATED ALWAYS AS IDENTITY)
    PARTITION BY RANGE (ts);
CREATE TABLE gen_beats_p PARTITION OF gen_beats FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');

-- The NULL prefix defaults to hb for the first table managed in the
-- database: heartbeats must be the first.
SELECT is((SELECT count(*) FROM hb_config), 0::bigint,
    'precondition: hb_config is empty before this file manages its first table');
SELECT lives_ok($$SELECT hb_manage('heartbeats')$$, 'manage heartbeats (bigint)');
SELECT lives_ok($$SELECT hb_manage('sensor_beats', device_column => 'sensor', time_column => 'seen_at',
                                   last_status_table => 'sensor_status')$$,
    'manage sensor_beats (text, custom column and table names)');
SELECT lives_ok($$SELECT hb_manage('uuid_beats', device_column => 'device', last_status_table => 'uuid_status',
                                   partition_prefix => 'uu')$$, 'manage uuid_beats (uuid)');
SELECT lives_ok($$SELECT hb_manage('small_beats', last_status_table => 'small_status')$$, 'manage small_beats (smallint)');
SELECT lives_ok($$SELECT hb_manage('int_beats', last_status_table => 'int_status')$$, 'manage int_beats (integer)');
SELECT lives_ok($$SELECT hb_manage('varchar_beats', last_status_table => 'varchar_status')$$, 'manage varchar_beats (varchar)');
SELECT lives_ok($$SELECT hb_manage('domain_beats', last_status_table => 'domain_status')$$,
    'manage domain_beats (a domain over text)');
SELECT lives_ok($$SELECT hb_manage('"Fleet X"."Beats"', device_column => 'Dev Id', time_column => 'Seen At',
                                   last_status_table => 'Last Seen', partition_prefix => 'fleet_x')$$,
    'manage "Fleet X"."Beats" (quoted names everywhere)');
SELECT lives_ok($$SELECT hb_manage('site_a.heartbeats', partition_prefix => 'site_a')$$, 'manage site_a.heartbeats');
SELECT lives_ok($$SELECT hb_manage('site_b.heartbeats', partition_prefix => 'site_b')$$, 'manage site_b.heartbeats');
SELECT lives_ok($$SELECT hb_manage('gen_beats', last_status_table => 'gen_status')$$,
    'manage gen_beats (generated and identity columns)');

SELECT results_eq(
    $$SELECT parent::text, device_column::text COLLATE "default", time_column::text COLLATE "default",
             last_status_table::text, partition_prefix
      FROM hb_config
      WHERE parent IN ('domain_beats'::regclass, '"Fleet X"."Beats"', 'gen_beats', 'heartbeats', 'int_beats',
                       'sensor_beats', 'site_a.heartbeats', 'site_b.heartbeats', 'small_beats', 'uuid_beats',
                       'varchar_beats')
      ORDER BY partition_prefix$$,
    $$VALUES ('domain_beats', 'device_id', 'ts', 'domain_status', 'domain_beats'),
             ('"Fleet X"."Beats"', 'Dev Id', 'Seen At', '"Fleet X"."Last Seen"', 'fleet_x'),
             ('gen_beats', 'device_id', 'ts', 'gen_status', 'gen_beats'),
             ('heartbeats', 'device_id', 'ts', 'device_last_status', 'hb'),
             ('int_beats', 'device_id', 'ts', 'int_status', 'int_beats'),
             ('sensor_beats', 'sensor', 'seen_at', 'sensor_status', 'sensor_beats'),
             ('site_a.heartbeats', 'device_id', 'ts', 'site_a.device_last_status', 'site_a'),
             ('site_b.heartbeats', 'device_id', 'ts', 'site_b.device_last_status', 'site_b'),
             ('small_beats', 'device_id', 'ts', 'small_status', 'small_beats'),
             ('uuid_beats', 'device', 'ts', 'uuid_status', 'uu'),
             ('varchar_beats', 'device_id', 'ts', 'varchar_status', 'varchar_beats')$$,
    'hb_config has one row per parent; NULL prefix is hb for the first, the table name afterwards');

-- ------------------------------------------------------------ independence
INSERT INTO heartbeats VALUES (1, '2026-12-01 10:00+00', 'bigint');
SELECT is_empty(
    $$SELECT 'sensor_status' FROM sensor_status UNION ALL SELECT 'uuid_status' FROM uuid_status
      UNION ALL SELECT 'small_status' FROM small_status UNION ALL SELECT 'int_status' FROM int_status
      UNION ALL SELECT 'varchar_status' FROM varchar_status UNION ALL SELECT 'domain_status' FROM domain_status
      UNION ALL SELECT 'Fleet X.Last Seen' FROM "Fleet X"."Last Seen"
      UNION ALL SELECT 'site_a.device_last_status' FROM site_a.device_last_status
      UNION ALL SELECT 'site_b.device_last_status' FROM site_b.device_last_status
      UNION ALL SELECT 'gen_status' FROM gen_status$$,
    'a heartbeat of one parent reaches none of the 10 other parents'' last-status tables');
INSERT INTO site_a.heartbeats VALUES (1, '2026-12-01 10:00+00', 'site a');
INSERT INTO site_b.heartbeats VALUES (1, '2026-12-01 11:00+00', 'site b'), (2, '2026-12-01 11:00+00', 'site b');
SELECT results_eq($$SELECT device_id, status FROM site_a.device_last_status$$, $$VALUES (1, 'site a')$$,
    'site_a.device_last_status has only site_a''s heartbeats');
SELECT results_eq($$SELECT device_id, status FROM site_b.device_last_status ORDER BY 1$$,
    $$VALUES (1, 'site b'), (2, 'site b')$$, 'site_b.device_last_status has only site_b''s heartbeats');
SELECT results_eq($$SELECT device_id, status FROM public.device_last_status$$, $$VALUES (1::bigint, 'bigint')$$,
    'public.device_last_status has only public.heartbeats''s heartbeats');

-- ------------------------------------------------------------ text devices
INSERT INTO sensor_beats VALUES
    ('a', '2026-12-01 10:00+00', 1), ('A', '2026-12-01 11:00+00', 2), ('a ', '2026-12-01 12:00+00', 3),
    ('', '2026-12-01 13:00+00', 4), ('ä', '2026-12-01 14:00+00', 5), ('a', '2026-12-02 09:00+00', 6),
    (repeat('long-device-', 30), '2026-12-01 10:00+00', 7), (repeat('long-device-', 30), '2026-12-02 10:00+00', 8),
    ('A', '2026-12-01 08:00+00', 9), ('Ω-7', '2026-12-02 01:00+00', 10);
SELECT results_eq($$SELECT * FROM sensor_status ORDER BY sensor COLLATE "C"$$,
    $$SELECT DISTINCT ON (sensor COLLATE "C") * FROM sensor_beats ORDER BY sensor COLLATE "C", seen_at DESC$$,
    'text devices: case, trailing space, empty string, non-ASCII and long names are distinct devices');
SELECT results_eq($$SELECT reading FROM sensor_status WHERE sensor IN ('a', 'A', 'a ') ORDER BY sensor COLLATE "C"$$,
    $$VALUES (2::numeric), (6), (3)$$, 'text devices: each keeps its own newest heartbeat');
INSERT INTO sensor_beats VALUES ('a', '2026-12-02 09:00+00', 60), ('A', '2026-12-02 09:00+00', 61);
SELECT results_eq($$SELECT sensor, reading FROM sensor_beats WHERE seen_at = '2026-12-02 09:00+00' ORDER BY sensor COLLATE "C"$$,
    $$VALUES ('A'::text, 61::numeric), ('a', 6)$$,
    'text devices: a retry of ''a'' is skipped, the same time for ''A'' is a new heartbeat');
DELETE FROM sensor_beats WHERE sensor = 'a' AND seen_at = '2026-12-02 09:00+00';
UPDATE sensor_beats SET reading = 99 WHERE sensor = 'A' AND seen_at = '2026-12-02 09:00+00';
DELETE FROM sensor_beats WHERE sensor = repeat('long-device-', 30);
SELECT results_eq($$SELECT * FROM sensor_status ORDER BY sensor COLLATE "C"$$,
    $$SELECT DISTINCT ON (sensor COLLATE "C") * FROM sensor_beats ORDER BY sensor COLLATE "C", seen_at DESC$$,
    'text devices: exact after UPDATE and DELETE');

INSERT INTO varchar_beats VALUES ('dev-1', '2026-12-01 10:00+00', 1), ('dev-1', '2026-12-02 10:00+00', 2),
                                 ('DEV-1', '2026-12-01 10:00+00', 3), ('dev-2', '2026-12-01 10:00+00', 4);
DELETE FROM varchar_beats WHERE device_id = 'dev-1' AND v = 2;
SELECT results_eq($$SELECT device_id::text, v FROM varchar_status ORDER BY device_id COLLATE "C"$$,
    $$VALUES ('DEV-1', 3), ('dev-1', 1), ('dev-2', 4)$$, 'varchar devices are kept exact');

INSERT INTO domain_beats VALUES ('x', '2026-12-01 10:00+00', 1), ('x', '2026-12-01 11:00+00', 2), ('y', '2026-12-01 10:00+00', 3);
DELETE FROM domain_beats WHERE device_id = 'x' AND v = 2;
SELECT results_eq($$SELECT device_id::text, v FROM domain_status ORDER BY 1$$, $$VALUES ('x', 1), ('y', 3)$$,
    'devices of a domain type over text are kept exact');

-- ------------------------------------------------------------ uuid devices
INSERT INTO uuid_beats
SELECT md5('device' || i % 7)::uuid, '2026-12-01 00:00+00'::timestamptz + i * interval '1 hour', 'n' || i
FROM generate_series(1, 100) i;
INSERT INTO uuid_beats VALUES ('00000000-0000-0000-0000-000000000000', '2026-12-01 10:00+00', 'nil'),
                              ('ffffffff-ffff-ffff-ffff-ffffffffffff', '2026-12-01 10:00+00', 'max');
SELECT results_eq($$SELECT * FROM uuid_status ORDER BY device$$,
    $$SELECT DISTINCT ON (device) * FROM uuid_beats ORDER BY device, ts DESC$$,
    'uuid devices: device_last_status is the newest of each');
DELETE FROM uuid_beats WHERE ts > '2026-12-04 12:00+00';
UPDATE uuid_beats SET note = note || '!' WHERE ts > '2026-12-04';
SELECT results_eq($$SELECT * FROM uuid_status ORDER BY device$$,
    $$SELECT DISTINCT ON (device) * FROM uuid_beats ORDER BY device, ts DESC$$,
    'uuid devices: exact after DELETE and UPDATE');
INSERT INTO uuid_beats VALUES (md5('device1')::uuid, '2026-12-04 12:00+00', 'newer');
SELECT results_eq($$SELECT note FROM uuid_status WHERE device = md5('device1')::uuid$$, $$VALUES ('newer')$$,
    'uuid devices: a newer heartbeat replaces the stored one');

-- ------------------------------------------------------------ integer widths
INSERT INTO small_beats VALUES (-32768, '2026-12-01 10:00+00', 1), (32767, '2026-12-01 10:00+00', 2),
                               (0, '2026-12-01 10:00+00', 3), (-1, '2026-12-01 10:00+00', 4), (-1, '2026-12-01 11:00+00', 5);
SELECT results_eq($$SELECT device_id, v FROM small_status ORDER BY 1$$,
    $$VALUES ((-32768)::smallint, 1), (-1::smallint, 5), (0::smallint, 3), (32767::smallint, 2)$$,
    'smallint devices, extremes included');
INSERT INTO int_beats VALUES (-2147483648, '2026-12-01 10:00+00', 1), (2147483647, '2026-12-01 10:00+00', 2),
                             (2147483647, '2026-12-01 09:00+00', 3), (256, '2026-12-01 10:00+00', 4), (1, '2026-12-01 10:00+00', 5);
DELETE FROM int_beats WHERE device_id = 256;
SELECT results_eq($$SELECT device_id, v FROM int_status ORDER BY 1$$,
    $$VALUES ((-2147483648)::int, 1), (1, 5), (2147483647, 2)$$,
    'integer devices, extremes included');

-- ------------------------------------------------------------ quoted names
SELECT has_table('Fleet X', 'Last Seen', 'the last-status table "Fleet X"."Last Seen" is created');
SELECT results_eq(
    $$SELECT attname::text COLLATE "default" FROM pg_attribute WHERE attrelid = '"Fleet X"."Last Seen"'::regclass AND attnum > 0
      AND NOT attisdropped ORDER BY attnum$$,
    $$VALUES ('Dev Id'), ('Seen At'), ('Status')$$, '... with the columns of the parent (not the dropped one)');
SELECT col_is_pk('Fleet X', 'Last Seen', ARRAY['Dev Id'], '... and its primary key on "Dev Id"');
INSERT INTO "Fleet X"."Beats" VALUES ('a', '2026-12-01 10:00+00', 's1'), ('b', '2026-12-02 10:00+00', 's2'),
                                     ('a', '2026-12-02 11:00+00', 's3');
INSERT INTO "Fleet X"."Day 2" VALUES ('s4', '2026-12-02 12:00+00', 'b');
INSERT INTO "Fleet X"."Day 1" VALUES ('c', '2026-12-01 12:00+00', 's5');
COPY "Fleet X"."Day 2" FROM STDIN;
s6	2026-12-02 13:00:00+00	c
\.
SELECT results_eq($$SELECT "Dev Id" COLLATE "default", "Seen At", "Status" FROM "Fleet X"."Last Seen" ORDER BY 1$$,
    $$VALUES ('a'::text, '2026-12-02 11:00+00'::timestamptz, 's3'::text), ('b', '2026-12-02 12:00+00', 's4'),
             ('c', '2026-12-02 13:00+00', 's6')$$,
    'quoted names: inserts through the parent and into partitions of another column order are exact');
UPDATE "Fleet X"."Beats" SET "Status" = 'upd' WHERE "Dev Id" = 'b' AND "Seen At" = '2026-12-02 12:00+00';
DELETE FROM "Fleet X"."Beats" WHERE "Dev Id" = 'a' AND "Seen At" = '2026-12-02 11:00+00';
DELETE FROM "Fleet X"."Day 2" WHERE "Dev Id" = 'c';
SELECT results_eq($$SELECT * FROM "Fleet X"."Last Seen" ORDER BY 1$$,
    $$SELECT DISTINCT ON ("Dev Id") "Dev Id", "Seen At", "Status" FROM "Fleet X"."Beats" ORDER BY 1, 2 DESC$$,
    'quoted names: exact after UPDATE and DELETE');

-- ------------------------------------------------------------ generated columns
INSERT INTO gen_beats (device_id, ts, raw) VALUES (1, '2026-12-01 10:00+00', 5), (1, '2026-12-01 11:00+00', 7);
SELECT results_eq($$SELECT device_id, raw, pct, id FROM gen_status$$, $$VALUES (1, 7, 70, 2::bigint)$$,
    'generated and identity columns of the newest heartbeat are copied');

-- ------------------------------------------------------------ other column types, a long device id
CREATE TABLE odd_beats (device_id text, ts timestamptz, j json, p point, x xml, arr int[], r int4range)
    PARTITION BY RANGE (ts);
CREATE TABLE odd_beats_p PARTITION OF odd_beats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
SELECT hb_manage('odd_beats', last_status_table => 'odd_status');
INSERT INTO odd_beats VALUES (repeat('x', 5000), '2026-12-01 10:00+00', '{"a": 1}', '(1,2)', '<a/>', '{1,2}', '[1,5)');
INSERT INTO odd_beats VALUES (repeat('x', 5000), '2026-12-01 11:00+00', '{"a": 2}', '(1,3)', '<b/>', '{3}', '[2,6)');
INSERT INTO odd_beats VALUES (repeat('x', 5000), '2026-12-01 11:00+00', '{"a": 3}', '(1,4)', '<c/>', '{4}', '[3,7)');
SELECT results_eq($$SELECT length(device_id), j::text, p::text, x::text, arr, r FROM odd_status$$,
    $$VALUES (5000, '{"a": 2}', '(1,3)', '<b/>', '{3}'::int[], '[2,6)'::int4range)$$,
    'json, point, xml, array and range columns, and a 5000-character device id, are kept (retry skipped)');
DELETE FROM odd_beats WHERE ts = '2026-12-01 11:00+00';
SELECT results_eq($$SELECT j::text, p::text FROM odd_status$$, $$VALUES ('{"a": 1}', '(1,2)')$$,
    '... also through DELETE');

-- ------------------------------------------------------------ the parent changes shape
ALTER TABLE heartbeats ADD COLUMN battery int;
SELECT lives_ok($$INSERT INTO heartbeats VALUES (1, '2026-12-02 10:00+00', 'after add column', 42)$$,
    'a column added to the heartbeats table after hb_manage does not break inserts');
SELECT results_eq($$SELECT device_id, ts, status FROM device_last_status$$,
    $$VALUES (1::bigint, '2026-12-02 10:00+00'::timestamptz, 'after add column'::text)$$,
    '... and the columns device_last_status has are kept in sync');
DELETE FROM heartbeats WHERE status = 'after add column';
SELECT results_eq($$SELECT status FROM device_last_status$$, $$VALUES ('bigint')$$,
    '... also by DELETE');
SELECT throws_ok($$ALTER TABLE int_beats RENAME COLUMN device_id TO dev$$, '55000',
    'hb_lifecycle cannot keep the last status of "int_beats" in sync',
    'renaming the device column of a managed table is refused with a clear error');
SELECT lives_ok($$INSERT INTO int_beats VALUES (5, '2026-12-01 10:00+00', 1)$$,
    '... and inserts go on as before');

SELECT * FROM finish();
ROLLBACK;
