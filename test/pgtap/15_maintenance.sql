-- hb_run_maintenance: what its summary says it did, one failing table not
-- stopping the others, counts of closed partitions, events pruned; and the
-- privileges and pg_dump registration of the lifecycle.
BEGIN;
SELECT plan(32);
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE ROLE hb_maint_owner;
CREATE ROLE hb_maint_nobody;
CREATE FUNCTION pg_temp.make(t text, prefix text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
                    PARTITION BY RANGE (ts)', t);
    PERFORM hb_manage(t::regclass, premake => 1, retention => '30 days',
                      last_status_table => (t || '_last')::name, partition_prefix => prefix);
END $$;
SELECT pg_temp.make('fleet_a', 'pa');
SELECT pg_temp.make('fleet_b', 'pb');
ALTER TABLE fleet_b OWNER TO hb_maint_owner;
CREATE FUNCTION pg_temp.day(prefix text, d int) RETURNS text LANGUAGE sql AS
    $$ SELECT prefix || to_char((now() AT TIME ZONE 'UTC')::date + d, '_YYYY_MM_DD') $$;

-- ------------------------------------------------------------ the summary
CREATE TEMP TABLE run1 AS SELECT hb_run_maintenance() AS r;
SELECT is((SELECT array_agg(k ORDER BY k) FROM run1, jsonb_object_keys(r) k),
    ARRAY['adopted', 'analyzed', 'archive_due', 'archive_not_queued', 'archive_queued', 'catchall_rows',
          'counted', 'created', 'detached', 'dropped', 'drops_deferred', 'errors', 'events_pruned', 'jobs_pruned',
          'kept_restored', 'moved', 'ms', 'parents', 'quarantined', 'unmatched', 'vacuum_queued',
          'waiting_for_archive'],
    'the summary has all its keys');
SELECT is((SELECT (r->>'parents')::int FROM run1), 2, 'a superuser''s run covers every managed table');
SELECT is((SELECT r->'errors' FROM run1), '[]'::jsonb, 'a healthy run has no errors');
SELECT is((SELECT r->'created' FROM run1), '[]'::jsonb, 'nothing to create right after hb_manage');
SELECT is((SELECT hb_run_maintenance()->'created'), '[]'::jsonb, 'a second run creates nothing either');

-- ------------------------------------------------------------ one table failing
SELECT hb_configure('fleet_a', premake => 2);
SELECT hb_configure('fleet_b', premake => 2);
-- A stray table with the name fleet_a's next partition needs.
SELECT format('CREATE TABLE %I (x int)', pg_temp.day('pa', 2)) \gexec
CREATE TEMP TABLE run2 AS SELECT hb_run_maintenance() AS r;
SELECT is((SELECT jsonb_array_length(r->'errors') FROM run2), 1, 'a table whose maintenance fails gives one error');
SELECT results_eq($$SELECT e->>'parent', e->>'sqlstate' FROM run2, jsonb_array_elements(r->'errors') e$$,
    $$VALUES ('public.fleet_a', '42P07')$$, 'naming the table and the SQLSTATE');
SELECT ok((SELECT r->'created' FROM run2) ? pg_temp.day('pb', 2),
    'the other table is maintained all the same');
SELECT ok(to_regclass(pg_temp.day('pb', 2)) IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM hb_partitions WHERE partition_name = pg_temp.day('pa', 2)),
    'the failed table''s work is undone, the other''s kept');
SELECT format('DROP TABLE %I', pg_temp.day('pa', 2)) \gexec

-- ------------------------------------------------------------ closed partitions
SELECT hb_create_partitions('fleet_a', now() - interval '2 days', now() - interval '2 days');
INSERT INTO fleet_a VALUES (1, now() - interval '2 days', 'a'), (2, now() - interval '2 days', 'b'),
                           (3, now() - interval '2 days', 'c');
CREATE TEMP TABLE run3 AS SELECT hb_run_maintenance() AS r;
SELECT results_eq($$SELECT row_count, bytes > 0, stats_at IS NOT NULL FROM hb_partitions
                    WHERE partition_name = pg_temp.day('pa', -2)$$,
    $$VALUES (3::bigint, true, true)$$, 'maintenance counts the rows and bytes of a closed partition');
SELECT ok((SELECT r->'archive_due' FROM run3) ? pg_temp.day('pa', -2),
    'a closed partition is due for archiving while archiving is on');
SELECT ok(NOT (SELECT r->'archive_due' FROM run3) ? pg_temp.day('pa', 0), 'the current one is not');
SELECT is((SELECT row_count FROM hb_partitions WHERE partition_name = pg_temp.day('pa', 0)), NULL::bigint,
    'open partitions are not counted');

-- ------------------------------------------------------------ retention
SELECT hb_configure('fleet_a', retention => '1 day');
CREATE TEMP TABLE run4 AS SELECT hb_run_maintenance() AS r;
SELECT ok((SELECT r->'waiting_for_archive' FROM run4) ? pg_temp.day('pa', -2)
          AND NOT (SELECT r->'dropped' FROM run4) ? pg_temp.day('pa', -2),
    'past the retention but not archived: kept, and reported as waiting for its archive');
SELECT hb_configure('fleet_a', archive => false);
SELECT is((SELECT hb_run_maintenance()->'dropped'), jsonb_build_array(pg_temp.day('pa', -2)),
    'with archiving off, maintenance drops what is past the retention');
SELECT is((SELECT count(*)::int FROM fleet_a_last), 3, 'and device_last_status keeps its devices');

-- ------------------------------------------------------------ a backlog of drops
-- Each drop keeps an ACCESS EXCLUSIVE lock on the table until the run
-- commits: a run drops at most hb_lifecycle.max_drops_per_run (100) (and
-- for at most half of ddl_lock_timeout); the rest goes in the next.
SELECT hb_configure('fleet_b', retention => '1000 days');
SELECT count(*) FROM hb_create_partitions('fleet_b', now() - interval '200 days', now() - interval '91 days');
SELECT hb_configure('fleet_b', retention => '30 days', archive => false);
-- The count alone limits these runs (the time budget is tested below).
SET hb_lifecycle.ddl_lock_timeout = '10min';
CREATE TEMP TABLE run5 AS SELECT hb_run_maintenance() AS r;
SELECT results_eq($$SELECT jsonb_array_length(r->'dropped'), jsonb_array_length(r->'drops_deferred') FROM run5$$,
    $$VALUES (100, 10)$$, 'a run drops at most 100 partitions and defers the rest');
SET hb_lifecycle.max_drops_per_run = 4;
SELECT is((SELECT jsonb_array_length(hb_run_maintenance()->'dropped')), 4,
    'hb_lifecycle.max_drops_per_run sets how many');
RESET hb_lifecycle.max_drops_per_run;
SELECT is((SELECT jsonb_array_length(hb_run_maintenance()->'dropped')), 6, 'the next run drops the rest');
-- The time budget: drops stop once the first has been held for half of
-- ddl_lock_timeout (10 ms here; a drop takes a millisecond or more).
SELECT hb_configure('fleet_b', retention => '1000 days');
SELECT count(*) FROM hb_create_partitions('fleet_b', now() - interval '400 days', now() - interval '301 days');
SELECT hb_configure('fleet_b', retention => '30 days');
SET hb_lifecycle.ddl_lock_timeout = '20ms';
CREATE TEMP TABLE run6 AS SELECT hb_run_maintenance() AS r;
SELECT ok((SELECT jsonb_array_length(r->'dropped') BETWEEN 1 AND 99
                  AND jsonb_array_length(r->'dropped') + jsonb_array_length(r->'drops_deferred') = 100
                  AND r->'errors' = '[]' FROM run6),
    'drops stop after half of ddl_lock_timeout, and the rest are deferred');
RESET hb_lifecycle.ddl_lock_timeout;
SELECT hb_run_maintenance();

-- ------------------------------------------------------------ events are pruned
INSERT INTO hb_events (at, event, partition_name, parent) VALUES
    (now() - interval '31 days', 'drop', 'ancient', 'fleet_a'),
    (now() - interval '29 days', 'drop', 'recent', 'fleet_a');
SELECT ok((SELECT (hb_run_maintenance()->>'events_pruned')::int) >= 1, 'maintenance prunes old events');
SELECT results_eq($$SELECT partition_name FROM hb_events WHERE partition_name IN ('ancient', 'recent')$$,
    $$VALUES ('recent')$$, 'older than hb_lifecycle.events_retention (30 days), and only those');

-- ------------------------------------------------------------ who may run it
SELECT ok(has_function_privilege('hb_maint_owner', 'hb_run_maintenance()', 'EXECUTE'),
    'a table that changes hands after hb_manage lets its new owner run its lifecycle');
SET ROLE hb_maint_owner;
SELECT is((SELECT (hb_run_maintenance()->>'parents')::int), 1,
    'a table owner''s run covers the tables that role owns');
SELECT throws_ok($$SELECT hb_configure('fleet_a', premake => 3)$$, '42501', NULL,
    'an owner cannot configure another role''s table');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM _hb_lifecycle_functions() f
           WHERE has_function_privilege('hb_maint_nobody', f, 'EXECUTE')), 0,
    'PUBLIC can execute none of the lifecycle functions');
SELECT is((SELECT count(*)::int FROM _hb_lifecycle_functions() f
           WHERE NOT has_function_privilege('hb_maint_owner', f, 'EXECUTE')), 0,
    'hb_manage lets the owner of the table it registers run them all');
SELECT ok(NOT has_function_privilege('hb_maint_nobody', 'hb_schedule(text, text)', 'EXECUTE')
          AND NOT has_function_privilege('hb_maint_nobody', 'hb_unschedule()', 'EXECUTE'),
    'nor hb_schedule / hb_unschedule');

-- ------------------------------------------------------------ hb_configure
SELECT throws_ok($$SELECT hb_configure('fleet_a', premake => -1)$$, '22023', NULL, 'a negative premake is refused');
SELECT throws_ok($$SELECT hb_configure('fleet_a', retention => '-1 day')$$, '22023', NULL,
    'a retention that is not positive is refused');
SELECT throws_ok($$SELECT hb_configure(NULL)$$, '22004', NULL, 'a NULL table is refused');

-- ------------------------------------------------------------ pg_dump
SELECT ok((SELECT extconfig::regclass[]::text[] FROM pg_extension WHERE extname = 'hb_lifecycle')
          @> ARRAY['hb_config', 'hb_partitions', 'hb_events', 'hb_quarantine', 'hb_events_id_seq',
                   'hb_quarantine_id_seq'],
    'the lifecycle''s tables are extension configuration, which pg_dump keeps');

SELECT * FROM finish();
ROLLBACK;
