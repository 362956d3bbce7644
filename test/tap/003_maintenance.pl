# Maintenance on a live server: the vacuum worker really vacuums and
# analyzes the hot partition (autovacuum is off, so nothing else could);
# hb_run_maintenance() is reentrant, and a run cancelled while it waits on
# a drop's lock releases its advisory lock so that the next run does the
# drop; pg_cron runs the job hb_schedule() installs, hb_schedule() is
# idempotent and hb_unschedule() removes it; in a database where pg_cron is
# not installed hb_schedule() says where it runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('maintenance');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron,hb_lifecycle'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION pg_cron;
    CREATE EXTENSION hb_lifecycle;
    CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
        PARTITION BY RANGE (ts);
    SELECT hb_manage('heartbeats', premake => 3);
});

# Runs `sql` (a query returning one boolean) every 0.2 s until it returns
# true or `seconds` have passed; returns whether it did.
sub poll_until {
    my ($sql, $seconds) = @_;
    my $deadline = time() + $seconds;
    while (time() < $deadline) {
        return 1 if $node->safe_psql('postgres', $sql) eq 't';
        usleep(200_000);
    }
    diag("gave up after $seconds s waiting for: $sql");
    return 0;
}

# The name of the partition of the UTC day `days` from today.
sub day_partition {
    my ($days) = @_;
    return $node->safe_psql('postgres',
        qq{SELECT to_char((now() AT TIME ZONE 'UTC')::date + $days, '"hb_"YYYY_MM_DD')});
}

sub maintenance {
    return $node->safe_psql('postgres', 'SELECT hb_run_maintenance()');
}

# 1. The hot partition is vacuumed and analyzed by the background worker.
my $today = day_partition(0);
$node->safe_psql('postgres', q{
    INSERT INTO heartbeats SELECT d, now(), 'ok' FROM generate_series(1, 1000) d;
    DELETE FROM heartbeats WHERE device_id % 2 = 0;
});
is($node->safe_psql('postgres', 'SELECT string_agg(DISTINCT tableoid::regclass::text, \',\') FROM heartbeats'),
    $today, 'heartbeats of now() are stored in the partition of today (UTC)');
# The deleting backend's statistics are flushed when it exits: wait for
# them, so that they cannot land after the worker's VACUUM.
ok(poll_until(qq{SELECT n_dead_tup >= 500 AND last_vacuum IS NULL AND last_analyze IS NULL
                 FROM pg_stat_all_tables WHERE relid = '$today'::regclass}, 30),
    'before maintenance the partition of today has dead tuples and was never vacuumed');

my $summary = maintenance();
cmp_ok($node->safe_psql('postgres', qq{SELECT ('$summary'::jsonb->>'vacuum_queued')::int}), '>=', 1,
    'hb_run_maintenance() hands the hot partitions to the vacuum worker');
ok(poll_until(qq{SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL
                 FROM pg_stat_all_tables WHERE relid = '$today'::regclass}, 60),
    'the worker ran VACUUM and ANALYZE on the partition of today');
is($node->safe_psql('postgres', qq{SELECT n_dead_tup FROM pg_stat_all_tables WHERE relid = '$today'::regclass}),
    '0', 'the VACUUM removed the dead tuples');
is($node->safe_psql('postgres', qq{SELECT last_autovacuum IS NULL AND last_autoanalyze IS NULL
                                          AND autovacuum_count = 0 AND vacuum_count >= 1
                                   FROM pg_stat_all_tables WHERE relid = '$today'::regclass}),
    't', 'it was a VACUUM run as a command, not autovacuum (which is off)');

# 1b. The same for a table whose owner cannot log in (a worker cannot
#     connect as such a role): its own maintenance still gets it vacuumed.
$node->safe_psql('postgres', q{
    CREATE ROLE fleet_nologin NOLOGIN;
    GRANT CREATE ON SCHEMA public TO fleet_nologin;
    CREATE TABLE fleet_b (device_id bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
    ALTER TABLE fleet_b OWNER TO fleet_nologin;
    SELECT hb_manage('fleet_b', premake => 0, last_status_table => 'fleet_b_last', partition_prefix => 'fb');
});
my $fb_today = $node->safe_psql('postgres',
    q{SELECT to_char((now() AT TIME ZONE 'UTC')::date, '"fb_"YYYY_MM_DD')});
my $fb_summary = $node->safe_psql('postgres', 'SET ROLE fleet_nologin; SELECT hb_run_maintenance()');
like($fb_summary, qr/"vacuum_queued": [1-9]/, "a NOLOGIN owner's maintenance hands its partitions to the worker");
ok(poll_until(qq{SELECT last_vacuum IS NOT NULL FROM pg_stat_all_tables WHERE relid = '$fb_today'::regclass}, 60),
    'and the worker vacuums them');

# 2. Reentrancy: a second run while one is in progress is skipped at once.
my $first = $node->background_psql('postgres');
$first->query_safe('BEGIN');
my $in_txn = $first->query_safe('SELECT hb_run_maintenance()');
unlike($in_txn, qr/skipped/, 'a run inside an open transaction is not skipped');
is(maintenance(), '{"skipped": "already running"}',
    'a second run while the first one\'s transaction is open is skipped');
$first->query_safe('COMMIT');
$first->quit;
is($node->safe_psql('postgres', q{SELECT hb_run_maintenance() ? 'skipped'}), 'f',
    'once the first run committed, a new run is not skipped');

# 3. A run cancelled while its drop waits for the parent's lock releases the
#    advisory lock with its transaction; the next run does the drop.
my $old = day_partition(-10);
is($node->safe_psql('postgres', q{
        SELECT string_agg(p, ',') FROM hb_create_partitions('heartbeats', now() - interval '10 days',
                                                             now() - interval '10 days') p}),
    $old, 'a partition 10 days old is created while the retention is 90 days');
$node->safe_psql('postgres',
    q{SELECT hb_configure('heartbeats', retention => '5 days', archive => false)});

my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE heartbeats IN ACCESS SHARE MODE');
my $runner = $node->background_psql('postgres', on_error_stop => 0);
my $runner_pid = $runner->query_safe('SELECT pg_backend_pid()');
$runner->query_safe(q{SET hb_lifecycle.ddl_lock_timeout = '60s'});
$runner->query_until(qr/started/, "\\echo started\nSELECT hb_run_maintenance();\n");
ok(poll_until(qq{SELECT EXISTS (
                     SELECT 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
                     WHERE a.pid = $runner_pid AND a.wait_event_type = 'Lock' AND NOT l.granted
                       AND l.relation = 'heartbeats'::regclass AND l.mode = 'AccessExclusiveLock')}, 30),
    'maintenance waits for the parent\'s ACCESS EXCLUSIVE lock to drop the old partition');
is($node->safe_psql('postgres', 'SELECT hb_run_maintenance()'), '{"skipped": "already running"}',
    'a run while it waits is skipped');

$node->safe_psql('postgres', "SELECT pg_cancel_backend($runner_pid)");
ok(pump_until($runner->{run}, $runner->{timeout}, \$runner->{stderr},
        qr/canceling statement due to user request/),
    'the waiting run is cancelled: "canceling statement due to user request"');
# The session's next query runs once the cancelled transaction is aborted
# (the error reaches the client first).
is(scalar $runner->query(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()}), '0',
    'the cancelled run released its advisory lock');
$runner->quit;
is($node->safe_psql('postgres', qq{SELECT state FROM hb_partitions WHERE partition_name = '$old'}), 'active',
    'the cancelled drop changed nothing in hb_partitions');

$holder->query_safe('COMMIT');
$holder->quit;
$summary = maintenance();
unlike($summary, qr/skipped/, 'after the cancel, a new run is not skipped');
is($node->safe_psql('postgres', qq{SELECT '$summary'::jsonb->'dropped' ? '$old'}), 't',
    'the new run drops the partition past the retention');
is($node->safe_psql('postgres', qq{SELECT state FROM hb_partitions WHERE partition_name = '$old'}), 'dropped',
    'hb_partitions records it as dropped');
is($node->safe_psql('postgres', qq{SELECT to_regclass('$old') IS NULL}), 't', 'and its table is gone');

# 4. hb_schedule() in a database where pg_cron is not installed.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION hb_lifecycle');
my ($rc, $out, $err) = $node->psql('other', 'SELECT * FROM hb_schedule()',
    extra_params => ['-v', 'VERBOSITY=verbose']);
isnt($rc, 0, 'hb_schedule() fails in a database without pg_cron');
like($err, qr/ERROR:  55000: hb_schedule: pg_cron runs its jobs from database "postgres", not from "other"/,
    'with SQLSTATE 55000, naming the database pg_cron runs in');
like($err, qr/HINT:  Connect to postgres and run: SELECT cron\.schedule_in_database\('hb_lifecycle_maintenance'/,
    'and a hint saying how to schedule the job from there');

# 5. pg_cron runs the job (last: it waits for a minute boundary). premake goes from 3 to 6: the partitions of
#    today + 4 .. today + 6 are missing until the job runs.
my $ahead = day_partition(6);
$node->safe_psql('postgres', q{SELECT hb_configure('heartbeats', premake => 6)});
is($node->safe_psql('postgres', qq{SELECT count(*) FROM hb_partitions WHERE partition_name = '$ahead'}), '0',
    'the partition of today + 6 does not exist before the job runs');
($rc, $out, $err) = $node->psql('postgres',
    q{SELECT string_agg(jobname || ' ' || schedule || ' ' || command || ' ' || username, ' | ' ORDER BY jobname)
      FROM hb_schedule('* * * * *')});
is($out, 'hb_lifecycle_maintenance * * * * * SELECT public.hb_run_maintenance() postgres | '
       . 'hb_lifecycle_reconcile 7 * * * * SELECT public.hb_reconcile() postgres',
    'hb_schedule() installs the maintenance and the hourly reconcile jobs as the calling role');
my $jobid = $node->safe_psql('postgres', q{SELECT jobid FROM cron.job WHERE jobname = 'hb_lifecycle_maintenance'});

ok(poll_until(q{SELECT EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                               WHERE j.jobname = 'hb_lifecycle_maintenance'
                                 AND d.status IN ('succeeded', 'failed'))}, 150),
    'pg_cron runs the maintenance job within two minutes');
is($node->safe_psql('postgres', q{
        SELECT d.status || CASE WHEN d.status = 'failed' THEN ': ' || d.return_message ELSE '' END
        FROM cron.job_run_details d JOIN cron.job j USING (jobid)
        WHERE j.jobname = 'hb_lifecycle_maintenance' AND d.status IN ('succeeded', 'failed')
        ORDER BY d.runid LIMIT 1}),
    'succeeded', 'the job succeeded');
is($node->safe_psql('postgres', qq{SELECT state FROM hb_partitions WHERE partition_name = '$ahead'}), 'active',
    'the job created the partition of today + 6');

$node->safe_psql('postgres', q{SELECT * FROM hb_schedule('* * * * *')});
is($node->safe_psql('postgres', q{SELECT string_agg(jobid::text, ',') FROM cron.job
                                  WHERE jobname = 'hb_lifecycle_maintenance'}),
    $jobid, 'hb_schedule() called again leaves the one job it installed');
is($node->safe_psql('postgres', 'SELECT hb_unschedule()'), '2', 'hb_unschedule() removes the two jobs');
is($node->safe_psql('postgres', 'SELECT hb_unschedule()'), '0', 'hb_unschedule() a second time removes nothing');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname LIKE 'hb\_lifecycle\_%'}), '0',
    'no hb_lifecycle job is left in cron.job');

$node->stop;
done_testing();
