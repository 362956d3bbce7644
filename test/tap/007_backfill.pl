# hb_backfill_last_status on a live server, on tables whose history was
# written before hb_manage:
#  1. while an application keeps inserting newer heartbeats (pgbench, two
#     clients, lock_timeout 2 s), the backfill fills device_last_status
#     batch by batch: every insert succeeds, rows are inserted while it
#     runs, and at the end every device's row is its newest heartbeat
#     (devices silent for days and rows of the catch-all included); the
#     read path switches to device_last_status only then;
#  2. since bounds the history read, and is recorded;
#  3. a backfill cancelled half-way keeps the batches it committed, and
#     the next call resumes where it stopped and writes only the rest, in
#     the same database and in a copy of it made by pg_dump.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('backfill');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'hb_lifecycle'
hb_lifecycle.database = 'postgres'
autovacuum = off
max_connections = 30
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION hb_lifecycle');

# Creates table `name` with daily partitions (prefix `prefix`, UTC days)
# from `from` to `to` days from today, and a default partition.
sub history_table {
    my ($name, $prefix, $from, $to) = @_;
    $node->safe_psql('postgres', qq{
        SET TimeZone = 'UTC';
        CREATE TABLE $name (device_id integer NOT NULL, ts timestamptz NOT NULL, status text,
                            inserted_at timestamptz NOT NULL DEFAULT clock_timestamp())
            PARTITION BY RANGE (ts);
        CREATE TABLE ${name}_default PARTITION OF $name DEFAULT;
        DO \$\$
        DECLARE d date;
        BEGIN
            FOR d IN SELECT current_date + i FROM generate_series($from, $to) i LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF $name FOR VALUES FROM (%L) TO (%L)',
                               '${prefix}_' || to_char(d, 'YYYY_MM_DD'), d::timestamptz, (d + 1)::timestamptz);
            END LOOP;
        END \$\$;
    });
}

# Devices whose row in last-status table `ls` is not their newest heartbeat
# in `parent` (missing, other time or values, or a row with no heartbeat).
sub mismatches {
    my ($parent, $ls) = @_;
    return mismatches_in('postgres', $parent, $ls);
}

sub mismatches_in {
    my ($db, $parent, $ls) = @_;
    return $node->safe_psql($db, qq{
        SELECT count(*) FROM (SELECT DISTINCT ON (device_id) device_id, ts, status FROM $parent
                              ORDER BY device_id, ts DESC) h
        FULL JOIN $ls l USING (device_id)
        WHERE h.device_id IS NULL OR l.device_id IS NULL OR (h.ts, h.status) IS DISTINCT FROM (l.ts, l.status)});
}

# 1. The backfill while the application inserts.
# 1,800 devices with a heartbeat every 2 hours for 10 days, 200 silent for
# the last 8 days, and 50 whose only heartbeats are in the catch-all.
history_table('heartbeats', 'hb', -10, -1);
$node->safe_psql('postgres', q{
    SET TimeZone = 'UTC';
    INSERT INTO heartbeats (device_id, ts, status)
    SELECT d, t + d * interval '1 second', 'history'
    FROM generate_series(1, 2000) d,
         generate_series(current_date - 10, current_date - interval '2 hours', interval '2 hours') t
    WHERE d <= 1800 OR t < current_date - 8;
    INSERT INTO heartbeats (device_id, ts, status)
    SELECT d, current_date - 20 + d * interval '1 minute', 'catch-all' FROM generate_series(2001, 2050) d;
});
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT hb_manage('heartbeats', premake => 2)});
like($err, qr/already holds heartbeats; device_last_status starts empty.*CALL hb_backfill_last_status/s,
    'hb_manage of a table with history says that its last-status table starts empty, and what to run');
is($node->safe_psql('postgres', 'SELECT count(*) FROM device_last_status'), '0',
    'device_last_status starts empty');
($rc, $out, $err) = $node->psql('postgres', 'SELECT heartbeat->>\'status\' FROM hb_device_status(1900)');
is($out, 'history', 'before the backfill, hb_device_status() finds a device through the legacy query ...');
like($err, qr/the backfill of public.device_last_status is not complete/, '... and says why');

# Each client inserts for devices of its own (odd or even): two clients
# never store one device's heartbeat in the same microsecond.
my $script = PostgreSQL::Test::Utils::tempdir() . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set d random(0, 1024) * 2 + 1 + :client_id
INSERT INTO heartbeats (device_id, ts, status) VALUES (:d, clock_timestamp(), 'live');
});
my ($bench_out, $bench_err) = ('', '');
local $ENV{PGOPTIONS} = '-c lock_timeout=2s';
my $bench = IPC::Run::start(
    ['pgbench', '-n', '-c', '2', '-T', '12', '-f', $script, $node->connstr('postgres')],
    '>', \$bench_out, '2>', \$bench_err);
delete $ENV{PGOPTIONS};
my $started = 0;
for (1 .. 100) {
    $started = $node->safe_psql('postgres', q{SELECT count(*) > 0 FROM heartbeats WHERE status = 'live'}) eq 't';
    last if $started;
    usleep(100_000);
}
ok($started, 'the application is inserting');

($rc, $out, $err) = $node->psql('postgres',
    q{SET lock_timeout = '2s'; CALL hb_backfill_last_status(since => NULL, batch_size => 50)});
is($rc, 0, 'CALL hb_backfill_last_status(since => NULL, batch_size => 50) completes while inserts go on');
like($err, qr/heartbeats is complete: \d+ rows written in \d+ batches/, '... and says so');
$bench->finish;
is($bench->result(0), 0, 'every insert of the application succeeded (lock_timeout 2 s, never reached)')
    or diag($bench_err);
like($bench_out, qr/number of failed transactions: 0 /, '... pgbench counted no failed transaction');

my $batches = $node->safe_psql('postgres',
    q{SELECT (detail->>'batches')::int FROM hb_events WHERE event = 'backfill' AND parent = 'heartbeats'::regclass});
cmp_ok($batches, '>=', 40, "the backfill committed batch by batch ($batches batches of at most 50 devices)");
cmp_ok($node->safe_psql('postgres', q{
        SELECT count(*) FROM heartbeats h, hb_events e
        WHERE e.event = 'backfill' AND e.parent = 'heartbeats'::regclass
          AND h.status = 'live' AND h.inserted_at > (e.detail->>'started_at')::timestamptz
          AND h.inserted_at < e.at}), '>', 0,
    'heartbeats were inserted while it ran');
is(mismatches('heartbeats', 'device_last_status'), '0',
    'every device\'s row is its newest heartbeat: no device missing, older or backwards');
is($node->safe_psql('postgres', 'SELECT count(*) FROM device_last_status'), '2050',
    '... 2,050 devices, those silent for 8 days and those only in the catch-all among them');
is($node->safe_psql('postgres', q{
        SELECT backfill_done_at IS NOT NULL AND backfill_from IS NULL AND backfill_cursor IS NULL
        FROM hb_config WHERE parent = 'heartbeats'::regclass}), 't',
    'the backfill is recorded as complete, from the whole history');
$node->safe_psql('postgres', q{UPDATE device_last_status SET status = 'from device_last_status' WHERE device_id = 1900});
($rc, $out, $err) = $node->psql('postgres', 'SELECT heartbeat->>\'status\' FROM hb_device_status(1900)');
is($out, 'from device_last_status', 'hb_device_status() now reads device_last_status');
unlike($err, qr/NOTICE/, '... without a NOTICE');

# 2. since: only the history of the last 3 days is read.
history_table('hb2', 'hc', -5, -1);
$node->safe_psql('postgres', q{
    SET TimeZone = 'UTC';
    INSERT INTO hb2 (device_id, ts, status)
    SELECT d, t + d * interval '1 second', 'h'
    FROM generate_series(1, 1100) d, generate_series(current_date - 5, current_date - interval '6 hours', interval '6 hours') t
    WHERE d <= 1000 OR t < current_date - 4;
    SELECT hb_manage('hb2', premake => 1, last_status_table => 'hb2_last', partition_prefix => 'hc');
});
is($node->safe_psql('postgres', q{CALL hb_backfill_last_status(since => '3 days', parent => 'hb2')}), '1000',
    'CALL hb_backfill_last_status(since => \'3 days\') writes the devices heard from in 3 days');
is($node->safe_psql('postgres', 'SELECT count(*) FROM hb2_last WHERE device_id > 1000'), '0',
    '... and none of those silent for longer');
is($node->safe_psql('postgres', q{
        SELECT backfill_from BETWEEN now() - interval '3 days 1 minute' AND now() - interval '3 days' + interval '1 minute'
        FROM hb_config WHERE parent = 'hb2'::regclass}), 't',
    'the horizon it read from is recorded (backfill_from)');

# 3. Cancelled half-way, resumed. A trigger on the last-status table makes
#    each write take 5 ms: 1,000 devices take 5 s, the backfill is
#    cancelled by its statement_timeout after 1 s.
history_table('hb3', 'hd', -3, -1);
$node->safe_psql('postgres', q{
    SET TimeZone = 'UTC';
    INSERT INTO hb3 (device_id, ts, status)
    SELECT d, t + d * interval '1 second', 'h'
    FROM generate_series(1, 1000) d, generate_series(current_date - 3, current_date - interval '6 hours', interval '6 hours') t;
    SELECT hb_manage('hb3', premake => 1, last_status_table => 'hb3_last', partition_prefix => 'hd');
    CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_catalog.pg_sleep(0.005); RETURN NEW; END $$;
    CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON hb3_last FOR EACH ROW EXECUTE FUNCTION slow_write();
});
($rc, $out, $err) = $node->psql('postgres',
    q{SET statement_timeout = '1s'; CALL hb_backfill_last_status(since => NULL, parent => 'hb3', batch_size => 25)});
like($err, qr/canceling statement due to statement timeout/, 'a backfill cancelled half-way ...');
my $kept = $node->safe_psql('postgres', 'SELECT count(*) FROM hb3_last');
ok($kept > 0 && $kept < 1000 && $kept % 25 == 0,
    "... keeps the whole batches it committed ($kept devices, a multiple of 25)");
is($node->safe_psql('postgres', q{
        SELECT backfill_done_at IS NULL AND backfill_cursor->>'after' IS NOT NULL
        FROM hb_config WHERE parent = 'hb3'::regclass}), 't',
    '... is not complete, and knows where it stopped');
($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM hb_fleet_status(\'hb3\')');
is($out, '1000', 'meanwhile hb_fleet_status() reads the legacy query: all 1,000 devices');
$node->safe_psql('postgres', 'DROP TRIGGER slow ON hb3_last');

# The cursor survives a dump and restore: in a copy of the database, the
# backfill resumes where it stopped.
$node->safe_psql('postgres', 'CREATE DATABASE copy');
my ($dump, $dump_err) = ('', '');
IPC::Run::run(['pg_dump', '-d', $node->connstr('postgres')], '>', \$dump, '2>', \$dump_err)
    or die "pg_dump failed: $dump_err";
my ($restore_out, $restore_err) = ('', '');
IPC::Run::run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('copy')],
    '<', \$dump, '>', \$restore_out, '2>', \$restore_err)
    or die "restore failed: $restore_err";
($rc, $out, $err) = $node->psql('copy', q{CALL hb_backfill_last_status(parent => 'hb3', batch_size => 25)});
is($out, 1000 - $kept, 'in a restored copy of the database, the backfill resumes where it stopped');
is(mismatches_in('copy', 'hb3', 'hb3_last'), '0', '... and completes');
($rc, $out, $err) = $node->psql('postgres', q{CALL hb_backfill_last_status(parent => 'hb3', batch_size => 25)});
like($err, qr/resumes the backfill started at/, 'the next call resumes it ...');
is($out, 1000 - $kept, '... and writes only the devices the first one had not');
is(mismatches('hb3', 'hb3_last'), '0', 'every device\'s row is its newest heartbeat');
is($node->safe_psql('postgres', q{SELECT backfill_done_at IS NOT NULL FROM hb_config WHERE parent = 'hb3'::regclass}),
    't', 'the backfill is complete');

$node->stop;
done_testing();
