-- What hb_manage says, in full, when it refuses a table or an argument, and
-- what the DDL guards say when a change would break a managed table.
SET client_min_messages = notice;
CREATE EXTENSION hb_lifecycle;

CREATE TABLE plain (device_id bigint, ts timestamptz);
SELECT hb_manage('plain');

CREATE TABLE by_list (device_id bigint, ts timestamptz) PARTITION BY LIST (device_id);
SELECT hb_manage('by_list');

CREATE TABLE naive (device_id bigint, ts timestamp) PARTITION BY RANGE (ts);
SELECT hb_manage('naive');

CREATE TABLE floaty (device_id float8, ts timestamptz) PARTITION BY RANGE (ts);
SELECT hb_manage('floaty');

CREATE TABLE heartbeats (device_id bigint, ts timestamptz NOT NULL, status text)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats
    FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2026-12-02 00:00+00');
SELECT hb_manage('heartbeats', device_column => 'device');
SELECT hb_manage('heartbeats', granularity => 'week');
SELECT hb_manage('heartbeats', retention => '-1 day');
SELECT hb_manage('heartbeats', premake => NULL);
SELECT hb_manage('heartbeats', partition_prefix => 'Bad-Prefix');

-- Duplicates already stored: the unique (device, time) index cannot be built.
INSERT INTO heartbeats VALUES (7, '2026-12-01 10:00+00', 'a'), (7, '2026-12-01 10:00+00', 'b');
SELECT hb_manage('heartbeats');
DELETE FROM heartbeats WHERE status = 'b';

-- Registered; a second call changes nothing.
SELECT hb_manage('heartbeats');
SELECT hb_manage('heartbeats');
SELECT parent, device_column, time_column, granularity, premake, retention,
       last_status_table, partition_prefix FROM hb_config;

-- A second table needs its own last-status table and gets its own prefix.
CREATE TABLE heartbeats_b (device_id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT hb_manage('heartbeats_b');
SELECT hb_manage('heartbeats_b', last_status_table => 'last_status_b', partition_prefix => 'hb');
SELECT hb_manage('heartbeats_b', last_status_table => 'last_status_b');
SELECT parent, last_status_table, partition_prefix FROM hb_config ORDER BY parent::text;

-- DDL that would break the sync is refused ...
ALTER TABLE heartbeats RENAME COLUMN device_id TO dev;
ALTER TABLE heartbeats ALTER COLUMN status TYPE varchar(20);
ALTER TABLE device_last_status DROP CONSTRAINT device_last_status_pkey;
-- ... other DDL is not.
ALTER TABLE heartbeats ADD COLUMN battery int;
ALTER TABLE device_last_status ADD COLUMN note text;

-- A partition created later gets the statement triggers.
CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats
    FOR VALUES FROM ('2026-12-02 00:00+00') TO ('2026-12-03 00:00+00');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'hb_2026_12_02'::regclass ORDER BY tgname;

-- The last-status table of a managed table cannot be dropped alone.
DROP TABLE last_status_b;
-- A dropped table leaves hb_config; its last-status table stays.
DROP TABLE heartbeats_b;
SELECT parent FROM hb_config ORDER BY parent::text;
SELECT to_regclass('last_status_b') IS NOT NULL AS last_status_kept;

SELECT hb_unmanage('heartbeats');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE '%hb_lifecycle%';
SELECT hb_unmanage('heartbeats');

-- The DDL event trigger keeps its query's plan, which names the
-- extension's schema: a renamed schema gets a new plan, and DDL goes on.
CREATE TABLE rename_probe_1 (a int);
ALTER SCHEMA public RENAME TO hb_renamed;
CREATE TABLE hb_renamed.rename_probe_2 (a int);
ALTER TABLE hb_renamed.rename_probe_1 ADD COLUMN b int;
ALTER SCHEMA hb_renamed RENAME TO public;
DROP TABLE rename_probe_1, rename_probe_2;
DROP TABLE heartbeats, device_last_status, last_status_b, plain, by_list, naive, floaty;
DROP EXTENSION hb_lifecycle;
