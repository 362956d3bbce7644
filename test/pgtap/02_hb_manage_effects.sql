-- What hb_manage() creates and records, the no-op second call, and
-- hb_unmanage().
BEGIN;
SELECT plan(48);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- The hb_lifecycle triggers of a relation, decoded from pg_trigger.
CREATE FUNCTION pg_temp.hb_triggers(rel regclass)
RETURNS TABLE (name name, timing text, level text, event text, func text, old_table name, new_table name)
LANGUAGE sql AS $$
    SELECT tgname,
           CASE WHEN tgtype & 2 = 2 THEN 'BEFORE' ELSE 'AFTER' END,
           CASE WHEN tgtype & 1 = 1 THEN 'ROW' ELSE 'STATEMENT' END,
           concat_ws(' ', CASE WHEN tgtype & 4 = 4 THEN 'INSERT' END,
                          CASE WHEN tgtype & 8 = 8 THEN 'DELETE' END,
                          CASE WHEN tgtype & 16 = 16 THEN 'UPDATE' END,
                          CASE WHEN tgtype & 32 = 32 THEN 'TRUNCATE' END),
           tgfoid::regproc::text, tgoldtable, tgnewtable
    FROM pg_trigger
    WHERE tgrelid = rel AND tgname LIKE '%hb_lifecycle%'
    ORDER BY tgname
$$;

CREATE ROLE hb_tap_owner NOLOGIN;
CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text,
                         battery smallint, payload jsonb)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
ALTER TABLE heartbeats OWNER TO hb_tap_owner;
ALTER TABLE hb_2026_12_01 OWNER TO hb_tap_owner;
ALTER TABLE hb_2026_12_02 OWNER TO hb_tap_owner;

-- The NULL prefix defaults to hb for the first table managed in the
-- database: the hb_config checks below need hb_config empty at this point.
SELECT is((SELECT count(*) FROM hb_config), 0::bigint,
    'precondition: hb_config is empty before this file manages its first table');

-- Called by the superuser on a table owned by hb_tap_owner.
SELECT lives_ok($$SELECT hb_manage('heartbeats')$$, 'hb_manage with all defaults succeeds');

-- ------------------------------------------------------------ hb_config
SELECT results_eq(
    $$SELECT parent, device_column, time_column, granularity, premake, retention,
             last_status_table, partition_prefix FROM hb_config WHERE parent = 'heartbeats'::regclass$$,
    $$VALUES ('heartbeats'::regclass, 'device_id'::name, 'ts'::name, 'day'::text, 7,
              interval '90 days', 'device_last_status'::regclass, 'hb'::text)$$,
    'hb_config records the call with its defaults and prefix hb for the first parent');
SELECT ok((SELECT created_at = now() FROM hb_config WHERE parent = 'heartbeats'::regclass),
    'hb_config.created_at is the time of the call');

-- ------------------------------------------------------------ last-status table
SELECT has_table('public', 'device_last_status', 'device_last_status is created');
SELECT results_eq(
    $$SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'device_last_status'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum$$,
    $$SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'heartbeats'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum$$,
    'device_last_status has the columns of the heartbeats table, in order, with their types');
SELECT col_is_pk('public', 'device_last_status', ARRAY['device_id'],
    'device_last_status has its primary key on the device column');
SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'device_last_status'::regclass),
    ARRAY['fillfactor=50'], 'device_last_status has fillfactor 50');
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'device_last_status'::regclass), 'r',
    'device_last_status is a plain table');
SELECT table_owner_is('public', 'device_last_status', 'hb_tap_owner',
    'device_last_status belongs to the owner of the heartbeats table, not to the caller');
SELECT is(obj_description('device_last_status'::regclass, 'pg_class'),
    'Newest heartbeat of each device of public.heartbeats, kept by hb_lifecycle.',
    'device_last_status has a comment');
SELECT is_empty('SELECT * FROM device_last_status', 'device_last_status starts empty');

-- ------------------------------------------------------------ unique index
SELECT is(
    (SELECT string_agg(a.attname::text, ',' ORDER BY k.n)
     FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = 'heartbeats'::regclass AND i.indisunique AND i.indisvalid),
    'device_id,ts',
    'a unique index on (device_id, ts) is created on the heartbeats table');
SELECT is((SELECT count(*) FROM pg_index WHERE indrelid IN ('hb_2026_12_01'::regclass, 'hb_2026_12_02'::regclass)
           AND indisunique AND indisvalid AND indnatts = 2), 2::bigint,
    'every partition has the unique (device_id, ts) index');

-- ------------------------------------------------------------ triggers
SELECT results_eq(
    $$SELECT * FROM pg_temp.hb_triggers('heartbeats')$$,
    $$VALUES ('hb_lifecycle_sync_delete'::name, 'AFTER', 'STATEMENT', 'DELETE', 'hb_sync_delete', 'hb_old'::name, NULL::name),
             ('hb_lifecycle_sync_insert', 'AFTER', 'STATEMENT', 'INSERT', 'hb_sync_insert', NULL, NULL),
             ('hb_lifecycle_sync_row', 'AFTER', 'ROW', 'INSERT', 'hb_sync_row', NULL, NULL),
             ('hb_lifecycle_sync_update', 'AFTER', 'STATEMENT', 'UPDATE', 'hb_sync_update', 'hb_old', 'hb_new'),
             ('zz_hb_lifecycle_dedupe', 'BEFORE', 'ROW', 'INSERT', 'hb_before_insert', NULL, NULL),
             ('zz_hb_lifecycle_update', 'BEFORE', 'ROW', 'UPDATE', 'hb_before_update', NULL, NULL)$$,
    'the heartbeats table has the six hb_lifecycle triggers');
SELECT results_eq(
    $$SELECT * FROM pg_temp.hb_triggers('hb_2026_12_01')$$,
    $$SELECT * FROM pg_temp.hb_triggers('heartbeats')$$,
    'partition hb_2026_12_01 has the same six triggers');
SELECT results_eq(
    $$SELECT * FROM pg_temp.hb_triggers('hb_2026_12_02')$$,
    $$SELECT * FROM pg_temp.hb_triggers('heartbeats')$$,
    'partition hb_2026_12_02 has the same six triggers');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'device_last_status'::regclass), 0::bigint,
    'device_last_status itself carries no trigger');

-- ------------------------------------------------------------ second call
-- A second call is a no-op with a NOTICE. PL/pgSQL cannot capture a NOTICE
-- (only errors), so the NOTICE text is left to the regress test
-- (sql/hb_manage.sql, expected/hb_manage.out); here: nothing changes, row by
-- row, against a snapshot taken before the call.
CREATE TEMP TABLE config_before AS SELECT * FROM hb_config WHERE parent = 'heartbeats'::regclass;
CREATE TEMP TABLE triggers_before AS
    SELECT tgrelid::regclass::text AS rel, tgname, tgfoid::regproc::text AS func, tgtype, tgenabled
    FROM pg_trigger WHERE tgrelid IN ('heartbeats'::regclass, 'hb_2026_12_01'::regclass, 'hb_2026_12_02'::regclass);
CREATE TEMP TABLE indexes_before AS
    SELECT indrelid::regclass::text AS rel, indexrelid::regclass::text AS idx
    FROM pg_index WHERE indrelid IN ('heartbeats'::regclass, 'hb_2026_12_01'::regclass, 'hb_2026_12_02'::regclass);
SELECT lives_ok($$SELECT hb_manage('heartbeats', premake => 3, granularity => 'month',
                                  last_status_table => 'other_status', partition_prefix => 'other')$$,
    'a second hb_manage of the same table does not fail');
SELECT results_eq($$SELECT * FROM hb_config WHERE parent = 'heartbeats'::regclass$$,
    $$SELECT * FROM config_before$$,
    'a second hb_manage (with other arguments) leaves the hb_config row as it was');
SELECT ok(to_regclass('other_status') IS NULL, 'a second hb_manage creates no other last-status table');
SELECT bag_eq(
    $$SELECT tgrelid::regclass::text, tgname, tgfoid::regproc::text, tgtype, tgenabled
      FROM pg_trigger WHERE tgrelid IN ('heartbeats'::regclass, 'hb_2026_12_01'::regclass, 'hb_2026_12_02'::regclass)$$,
    $$SELECT * FROM triggers_before$$,
    'a second hb_manage leaves the triggers of the table and its partitions as they were');
SELECT bag_eq(
    $$SELECT indrelid::regclass::text, indexrelid::regclass::text
      FROM pg_index WHERE indrelid IN ('heartbeats'::regclass, 'hb_2026_12_01'::regclass, 'hb_2026_12_02'::regclass)$$,
    $$SELECT * FROM indexes_before$$,
    'a second hb_manage leaves the indexes of the table and its partitions as they were');

-- ------------------------------------------------------------ existing index, rows, schema
CREATE SCHEMA fleet;
CREATE TABLE fleet.beats (ts timestamptz, device_id int, status text) PARTITION BY RANGE (ts);
CREATE TABLE fleet.beats_p PARTITION OF fleet.beats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE UNIQUE INDEX beats_key ON fleet.beats (ts, device_id);
INSERT INTO fleet.beats VALUES ('2026-12-01 10:00', 1, 'before'), ('2026-12-01 11:00', 2, 'before');
SELECT lives_ok($$SELECT hb_manage('fleet.beats')$$,
    'a table in another schema, with rows and its own unique index, can be managed');
SELECT is((SELECT array_agg(pg_get_indexdef(indexrelid) ORDER BY indexrelid) FROM pg_index WHERE indrelid = 'fleet.beats'::regclass),
    ARRAY['CREATE UNIQUE INDEX beats_key ON ONLY fleet.beats USING btree (ts, device_id)',
          'CREATE UNIQUE INDEX beats_device_id_ts_idx ON ONLY fleet.beats USING btree (device_id, ts)'],
    'a unique (time, device) index does not serve: a (device, time) one is added, led by the device');
SELECT has_table('fleet', 'device_last_status', 'the last-status table is created in the schema of the heartbeats table');
SELECT is_empty('SELECT * FROM fleet.device_last_status',
    'rows stored before hb_manage are not copied into the last-status table');
SELECT is((SELECT partition_prefix FROM hb_config WHERE parent = 'fleet.beats'::regclass), 'beats',
    'the second managed parent gets its table name as prefix');
INSERT INTO fleet.beats VALUES ('2026-12-01 12:00', 1, 'after');
SELECT results_eq($$SELECT device_id, status FROM fleet.device_last_status$$, $$VALUES (1, 'after')$$,
    'a heartbeat inserted after hb_manage reaches the last-status table');
SELECT is_empty('SELECT * FROM public.device_last_status',
    'it does not reach the last-status table of another parent');

-- ------------------------------------------------------------ hb_unmanage
INSERT INTO heartbeats VALUES (1, '2026-12-01 10:00', 'kept', 50, '{}');
SELECT lives_ok($$SELECT hb_unmanage('heartbeats')$$, 'hb_unmanage succeeds');
SELECT is((SELECT count(*) FROM pg_trigger
           WHERE tgrelid IN ('heartbeats'::regclass, 'hb_2026_12_01'::regclass, 'hb_2026_12_02'::regclass)),
    0::bigint, 'hb_unmanage removes every trigger from the table and its partitions');
SELECT is((SELECT count(*) FROM hb_config WHERE parent = 'heartbeats'::regclass), 0::bigint,
    'hb_unmanage removes the hb_config row');
SELECT is((SELECT count(*) FROM hb_config WHERE parent = 'fleet.beats'::regclass), 1::bigint,
    'hb_unmanage keeps the other parent''s registration');
SELECT results_eq($$SELECT device_id, status FROM device_last_status$$, $$VALUES (1::bigint, 'kept')$$,
    'hb_unmanage keeps the last-status table and its rows');
SELECT is((SELECT count(*) FROM heartbeats), 1::bigint, 'hb_unmanage keeps the heartbeats');
SELECT is((SELECT count(*) FROM pg_index WHERE indrelid = 'heartbeats'::regclass), 1::bigint,
    'hb_unmanage keeps the unique index');
INSERT INTO heartbeats VALUES (1, '2026-12-01 11:00', 'unmanaged', 50, '{}');
SELECT results_eq($$SELECT status FROM device_last_status$$, $$VALUES ('kept')$$,
    'after hb_unmanage inserts no longer touch the last-status table');
SELECT throws_ok($$SELECT hb_unmanage('heartbeats')$$, '55000',
    '"heartbeats" is not managed by hb_lifecycle', 'hb_unmanage of a table that is not managed is refused');
SELECT throws_ok($$SELECT hb_unmanage(0)$$, '42P01', 'relation with OID 0 does not exist',
    'hb_unmanage of a table that does not exist is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats')$$, '42P07',
    'relation "public.device_last_status" already exists',
    'managing it again needs a new last-status table (the old one is kept)');
SELECT lives_ok($$SELECT hb_manage('heartbeats', last_status_table => 'device_last_status_v2',
                                   partition_prefix => 'hb')$$,
    'a table can be managed again after hb_unmanage, with the prefix it had');
INSERT INTO heartbeats VALUES (1, '2026-12-01 12:00', 'again', 50, '{}');
SELECT results_eq($$SELECT status FROM device_last_status_v2$$, $$VALUES ('again')$$,
    'after managing it again inserts reach the new last-status table');

-- ------------------------------------------------------------ triggers made by hand
CREATE TABLE rogue (device_id bigint, ts timestamptz);
CREATE TRIGGER rogue_row AFTER INSERT ON rogue FOR EACH ROW EXECUTE FUNCTION hb_sync_row();
SELECT throws_ok($$INSERT INTO rogue VALUES (1, '2026-12-01 10:00+00')$$, '55000',
    '"rogue" has hb_lifecycle triggers but is not a managed table',
    'an hb_lifecycle trigger on a table that is not managed fails with a clear error');
CREATE TABLE rogue2 (device_id bigint, ts timestamptz);
CREATE TRIGGER rogue_stmt BEFORE INSERT ON rogue2 FOR EACH STATEMENT EXECUTE FUNCTION hb_sync_insert();
SELECT throws_ok($$INSERT INTO rogue2 VALUES (1, '2026-12-01 10:00+00')$$, '39P01',
    'hb_sync_insert() fired for the wrong event on "rogue2"',
    'an hb_lifecycle trigger function fired for the wrong event fails with a clear error');

-- ------------------------------------------------------------ dropping a managed table
-- hb_config keeps one row per managed parent: a dropped parent must not
-- leave a registration behind (its prefix and name would stay reserved).
-- Its last-status table, and the rows in it, are kept.
SELECT 'fleet.beats'::regclass::oid AS fleet_beats_oid \gset
DROP TABLE fleet.beats;
SELECT is((SELECT count(*) FROM hb_config WHERE parent::oid = :fleet_beats_oid), 0::bigint,
    'DROP TABLE of a managed parent leaves no hb_config row behind');
SELECT has_table('fleet', 'device_last_status', 'DROP TABLE of a managed parent keeps its last-status table');
SELECT results_eq($$SELECT device_id, status FROM fleet.device_last_status$$, $$VALUES (1, 'after')$$,
    '... with its rows');

SELECT * FROM finish();
ROLLBACK;
