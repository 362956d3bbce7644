-- Who may call what: hb_manage is for the table's owner; the application
-- needs INSERT on the heartbeats table only, never a privilege on the
-- last-status table.
BEGIN;
SELECT plan(52);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- Runs q as role r: 'ok', or the error as 'SQLSTATE: message'. pgTAP's own
-- bookkeeping stays with the session user.
CREATE FUNCTION pg_temp.as_role(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('role', r, true);
    EXECUTE q;
    PERFORM set_config('role', 'none', true);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;   -- the role setting is undone with the subtransaction
END $$;

CREATE ROLE hb_tap_owner NOLOGIN;
CREATE ROLE hb_tap_member NOLOGIN IN ROLE hb_tap_owner;
CREATE ROLE hb_tap_app NOLOGIN;
CREATE ROLE hb_tap_janitor NOLOGIN;
CREATE ROLE hb_tap_other NOLOGIN;
CREATE SCHEMA fleet AUTHORIZATION hb_tap_owner;
GRANT USAGE ON SCHEMA fleet TO hb_tap_app, hb_tap_janitor, hb_tap_other;

-- ------------------------------------------------------------ function privileges
SELECT ok(NOT has_function_privilege('public', 'hb_manage(regclass,name,name,text,integer,interval,name,text)', 'EXECUTE'),
    'PUBLIC cannot execute hb_manage');
SELECT ok(NOT has_function_privilege('public', 'hb_unmanage(regclass)', 'EXECUTE'),
    'PUBLIC cannot execute hb_unmanage');
SELECT ok(NOT has_function_privilege('public', 'hb_counters()', 'EXECUTE'), 'PUBLIC cannot execute hb_counters');
SELECT ok(has_function_privilege('pg_monitor', 'hb_counters()', 'EXECUTE'), 'pg_monitor can execute hb_counters');
SELECT ok(NOT has_table_privilege('public', 'hb_config', 'INSERT')
          AND NOT has_table_privilege('public', 'hb_config', 'UPDATE')
          AND NOT has_table_privilege('public', 'hb_config', 'DELETE'), 'PUBLIC cannot write hb_config');
SELECT ok(has_table_privilege('public', 'hb_config', 'SELECT'), 'PUBLIC can read hb_config');

-- The owner creates its table.
SELECT is(pg_temp.as_role('hb_tap_owner', $q$
    CREATE TABLE fleet.heartbeats (device_id bigint, ts timestamptz, status text) PARTITION BY RANGE (ts);
    CREATE TABLE fleet.hb_2026_12_01 PARTITION OF fleet.heartbeats FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
    CREATE TABLE fleet.hb_2026_12_02 PARTITION OF fleet.heartbeats FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
    GRANT INSERT ON fleet.heartbeats TO hb_tap_app;
    GRANT SELECT, UPDATE, DELETE ON fleet.heartbeats TO hb_tap_janitor;
$q$), 'ok', 'the owner creates its heartbeats table');

SELECT is(pg_temp.as_role('hb_tap_owner', $$SELECT hb_manage('fleet.heartbeats')$$),
    '42501: permission denied for function hb_manage',
    'the owner cannot call hb_manage until granted EXECUTE');
GRANT EXECUTE ON FUNCTION hb_manage(regclass, name, name, text, integer, interval, name, text) TO hb_tap_owner, hb_tap_other;
GRANT EXECUTE ON FUNCTION hb_unmanage(regclass) TO hb_tap_owner, hb_tap_other;

SELECT is(pg_temp.as_role('hb_tap_app', $$SELECT hb_manage('fleet.heartbeats')$$),
    '42501: permission denied for function hb_manage', 'a role without EXECUTE cannot call hb_manage');
SELECT is(pg_temp.as_role('hb_tap_other', $$SELECT hb_manage('fleet.heartbeats')$$),
    '42501: must be owner of table heartbeats', 'a role that does not own the table cannot hb_manage it');
SELECT is(pg_temp.as_role('hb_tap_other', $$INSERT INTO hb_config (parent, device_column, time_column, granularity,
        premake, retention, last_status_table, partition_prefix)
        VALUES ('fleet.heartbeats', 'device_id', 'ts', 'day', 7, '90 days', 'fleet.hb_2026_12_01', 'x')$$),
    '42501: permission denied for table hb_config', '... nor register it by writing hb_config');

SELECT is(pg_temp.as_role('hb_tap_owner', $$SELECT hb_manage('fleet.heartbeats')$$), 'ok',
    'the owner, granted EXECUTE, can hb_manage its table');
SELECT is((SELECT count(*) FROM hb_config WHERE parent = 'fleet.heartbeats'::regclass), 1::bigint,
    'the owner''s call is registered in hb_config');
SELECT table_owner_is('fleet', 'device_last_status', 'hb_tap_owner', 'the last-status table belongs to the owner');
SELECT is(pg_temp.as_role('hb_tap_owner', $$DELETE FROM hb_config$$),
    '42501: permission denied for table hb_config', 'the owner cannot write hb_config directly');

-- ------------------------------------------------------------ the application role
SELECT ok(NOT has_table_privilege('hb_tap_app', 'fleet.device_last_status', 'SELECT')
          AND NOT has_table_privilege('hb_tap_app', 'fleet.device_last_status', 'INSERT')
          AND NOT has_table_privilege('hb_tap_app', 'fleet.device_last_status', 'UPDATE'),
    'the app role has no privilege on device_last_status');
SELECT ok(NOT has_table_privilege('hb_tap_app', 'fleet.heartbeats', 'SELECT'),
    'the app role cannot even read the heartbeats table');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.heartbeats VALUES (1, '2026-12-01 10:00+00', 'app')$$), 'ok',
    'the app role inserts a heartbeat');
SELECT results_eq($$SELECT device_id, status FROM fleet.device_last_status$$, $$VALUES (1::bigint, 'app'::text)$$,
    '... and device_last_status is updated');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.heartbeats VALUES (1, '2026-12-02 10:00+00', 'app-2'),
                                         (2, '2026-12-01 10:00+00', 'app-3'), (1, '2026-12-01 11:00+00', 'older')$$), 'ok',
    'the app role inserts a batch');
SELECT results_eq($$SELECT device_id, status FROM fleet.device_last_status ORDER BY 1$$,
    $$VALUES (1::bigint, 'app-2'::text), (2, 'app-3')$$, '... and device_last_status keeps the newest of each device');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.heartbeats VALUES (1, '2026-12-02 10:00+00', 'retry')$$), 'ok',
    'the app role retries a heartbeat without error');
SELECT is((SELECT count(*) FROM fleet.heartbeats WHERE device_id = 1 AND ts = '2026-12-02 10:00+00'), 1::bigint,
    '... and it is stored once');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.hb_2026_12_02 VALUES (3, '2026-12-02 10:00+00', 'direct')$$),
    '42501: permission denied for table hb_2026_12_02',
    'the app role has no privilege on the partitions themselves (sanity)');
GRANT INSERT ON fleet.hb_2026_12_02 TO hb_tap_app;
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.hb_2026_12_02 VALUES (3, '2026-12-02 10:00+00', 'direct')$$),
    'ok', 'the app role, granted INSERT on a partition, inserts straight into it');
SELECT results_eq($$SELECT status FROM fleet.device_last_status WHERE device_id = 3$$, $$VALUES ('direct')$$,
    '... and device_last_status is updated');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.device_last_status VALUES (9, '2026-12-09', 'forged')$$),
    '42501: permission denied for table device_last_status', 'the app role cannot write device_last_status');
SELECT is(pg_temp.as_role('hb_tap_app', $$SELECT hb_unmanage('fleet.heartbeats')$$),
    '42501: permission denied for function hb_unmanage', 'the app role cannot hb_unmanage');
SELECT is(pg_temp.as_role('hb_tap_app', $$SELECT * FROM hb_counters()$$),
    '42501: permission denied for function hb_counters', 'the app role cannot read hb_counters');

-- The app's own objects on its search_path do not divert the writes.
SELECT is(pg_temp.as_role('hb_tap_app', $q$
    CREATE TEMP TABLE device_last_status (device_id bigint PRIMARY KEY, ts timestamptz, status text);
    SET LOCAL search_path = pg_temp, fleet, public;
    INSERT INTO fleet.heartbeats VALUES (4, '2026-12-01 10:00+00', 'app-path');
    SET LOCAL search_path = DEFAULT;
$q$), 'ok', 'the app role inserts with a decoy device_last_status first on its search_path');
SELECT results_eq($$SELECT status FROM fleet.device_last_status WHERE device_id = 4$$, $$VALUES ('app-path')$$,
    '... and the real device_last_status is updated');
SELECT is_empty($$SELECT * FROM pg_temp.device_last_status$$, '... and the decoy is not');

-- ------------------------------------------------------------ UPDATE and DELETE by another role
SELECT is(pg_temp.as_role('hb_tap_janitor', $$DELETE FROM fleet.heartbeats WHERE device_id = 1 AND ts = '2026-12-02 10:00+00'$$),
    'ok', 'a role with DELETE on heartbeats deletes a device''s newest heartbeat');
SELECT results_eq($$SELECT status FROM fleet.device_last_status WHERE device_id = 1$$, $$VALUES ('older')$$,
    '... and device_last_status falls back without that role having any privilege on it');
SELECT is(pg_temp.as_role('hb_tap_janitor', $$UPDATE fleet.heartbeats SET status = 'fixed' WHERE device_id = 2$$), 'ok',
    'a role with UPDATE on heartbeats updates a newest heartbeat');
SELECT results_eq($$SELECT status FROM fleet.device_last_status WHERE device_id = 2$$, $$VALUES ('fixed')$$,
    '... and device_last_status follows');

-- ------------------------------------------------------------ COPY as the app role
SET LOCAL ROLE hb_tap_app;
COPY fleet.heartbeats FROM STDIN;
5	2026-12-01 10:00:00+00	copy-1
5	2026-12-01 11:00:00+00	copy-2
\.
RESET ROLE;
SELECT results_eq($$SELECT status FROM fleet.device_last_status WHERE device_id = 5$$, $$VALUES ('copy-2')$$,
    'COPY by the app role keeps device_last_status in sync');

-- A partition the owner creates later.
SELECT is(pg_temp.as_role('hb_tap_owner', $q$
    CREATE TABLE fleet.hb_2026_12_03 PARTITION OF fleet.heartbeats FOR VALUES FROM ('2026-12-03') TO ('2026-12-04');
$q$), 'ok', 'the owner creates a partition later');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'fleet.hb_2026_12_03'::regclass), 6::bigint,
    '... which gets the six triggers');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.heartbeats VALUES (6, '2026-12-03 10:00+00', 'new partition')$$),
    'ok', 'the app role inserts into it');
SELECT results_eq($$SELECT status FROM fleet.device_last_status WHERE device_id = 6$$, $$VALUES ('new partition')$$,
    '... and device_last_status is updated');

-- ------------------------------------------------------------ the SQL write path
-- With a trigger on the last-status table every write goes through SQL,
-- run as the last-status table's owner with search_path = pg_catalog,
-- pg_temp: the owner's trigger function names its schema.
SELECT is(pg_temp.as_role('hb_tap_owner', $q$
    CREATE TABLE fleet.ls_audit (op text, device_id bigint, status text);
    CREATE FUNCTION fleet.audit_ls() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        INSERT INTO fleet.ls_audit VALUES (TG_OP, NEW.device_id, NEW.status);
        RETURN NEW;
    END $f$;
    CREATE TRIGGER audit_ls AFTER INSERT OR UPDATE ON fleet.device_last_status
        FOR EACH ROW EXECUTE FUNCTION fleet.audit_ls();
$q$), 'ok', 'the owner puts an audit trigger on device_last_status');
SELECT ok(NOT has_table_privilege('hb_tap_app', 'fleet.ls_audit', 'INSERT'), 'the app role cannot write the audit table');
SELECT is(pg_temp.as_role('hb_tap_app', $$INSERT INTO fleet.heartbeats VALUES (1, '2026-12-02 12:00+00', 'sql path'),
                                         (7, '2026-12-01 10:00+00', 'sql path, new')$$), 'ok',
    'the app role inserts a known and a new device while device_last_status has a trigger');
SELECT results_eq($$SELECT device_id, status FROM fleet.device_last_status WHERE device_id IN (1, 7) ORDER BY 1$$,
    $$VALUES (1::bigint, 'sql path'::text), (7, 'sql path, new')$$,
    '... and device_last_status is updated');
SELECT bag_eq($$SELECT op, device_id, status FROM fleet.ls_audit$$,
    $$VALUES ('UPDATE', 1::bigint, 'sql path'::text), ('INSERT', 7, 'sql path, new')$$,
    '... through SQL run as the owner: the owner''s trigger saw both writes');

-- ------------------------------------------------------------ membership, unmanage
SELECT is(pg_temp.as_role('hb_tap_owner', $q$
    CREATE TABLE fleet.more_beats (device_id int, ts timestamptz) PARTITION BY RANGE (ts);
$q$), 'ok', 'the owner creates a second table');
SELECT is(pg_temp.as_role('hb_tap_member', $$SELECT hb_manage('fleet.more_beats', last_status_table => 'more_status')$$),
    'ok', 'a member of the owning role can hb_manage it');
SELECT table_owner_is('fleet', 'more_status', 'hb_tap_owner',
    '... and the last-status table belongs to the table''s owner, not to the member');
SELECT is(pg_temp.as_role('hb_tap_other', $$SELECT hb_unmanage('fleet.heartbeats')$$),
    '42501: must be owner of table heartbeats', 'a role that does not own the table cannot hb_unmanage it');
SELECT is(pg_temp.as_role('hb_tap_owner', $$SELECT hb_unmanage('fleet.heartbeats')$$), 'ok',
    'the owner can hb_unmanage its table');
SELECT is((SELECT count(*) FROM hb_config WHERE parent = 'fleet.heartbeats'::regclass), 0::bigint,
    '... which removes its hb_config row');

SELECT * FROM finish();
ROLLBACK;
