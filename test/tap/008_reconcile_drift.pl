# hb_reconcile heals drift made while an application keeps inserting
# (pgbench, two clients, 100,000 devices in each of three phases): heartbeats
# inserted while the sync triggers were disabled, rows deleted from
# device_last_status and rows set to older values. Run with max_rows = 100, it heals all of it in exactly
# ceil(drift / 100) runs (one of them while inserts still go on), after
# which the last-status table agrees with the heartbeats on every device
# and a further run repairs 0.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX qw(ceil);
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('reconcile');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'hb_lifecycle'
hb_lifecycle.database = 'postgres'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION hb_lifecycle;
    CREATE TABLE heartbeats (device_id integer NOT NULL, ts timestamptz NOT NULL, status text)
        PARTITION BY RANGE (ts);
    SELECT hb_manage('heartbeats', premake => 2);
    SELECT count(*) FROM hb_create_partitions('heartbeats', now() - interval '1 day', now());
    INSERT INTO heartbeats SELECT d, now() - interval '3 hours' + d * interval '1 ms', 'start'
    FROM generate_series(1, 3000) d;
    CREATE TABLE bench_phase (phase integer NOT NULL);
    INSERT INTO bench_phase VALUES (0);
});

sub mismatches {
    return $node->safe_psql('postgres', q{
        SELECT count(*) FROM (SELECT DISTINCT ON (device_id) device_id, ts, status FROM heartbeats
                              ORDER BY device_id, ts DESC) h
        FULL JOIN device_last_status l USING (device_id)
        WHERE h.device_id IS NULL OR l.device_id IS NULL OR (h.ts, h.status) IS DISTINCT FROM (l.ts, l.status)});
}

sub live_rows {
    return $node->safe_psql('postgres', q{SELECT count(*) FROM heartbeats WHERE status = 'live'});
}

# Waits until `n` more live heartbeats than `from` are stored.
sub wait_for_inserts {
    my ($from, $n) = @_;
    for (1 .. 300) {
        return 1 if live_rows() >= $from + $n;
        usleep(50_000);
    }
    return 0;
}

is(mismatches(), '0', 'at the start device_last_status agrees with the heartbeats');
is($node->safe_psql('postgres', 'SELECT hb_reconcile(max_rows => 100)'), '0', 'a healthy table repairs 0');

# Each client inserts for devices of its own (odd or even): two clients
# never store one device's heartbeat in the same microsecond. Each phase
# (before, while and after the triggers are disabled) has devices of its
# own: a device first heard from while they were disabled stays missing,
# however long the inserts go on after.
my $script = PostgreSQL::Test::Utils::tempdir() . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
SELECT phase FROM bench_phase \gset
\set d random(0, 49999) * 2 + 1 + :client_id + :phase * 100000
INSERT INTO heartbeats (device_id, ts, status) VALUES (:d, clock_timestamp(), 'live');
});
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
    ['pgbench', '-n', '-c', '2', '-T', '15', '-f', $script, $node->connstr('postgres')],
    '>', \$bench_out, '2>', \$bench_err);
ok(wait_for_inserts(0, 200), 'the application is inserting');

# Drift 1: the sync triggers disabled while inserts go on.
$node->safe_psql('postgres', 'BEGIN; UPDATE bench_phase SET phase = 1; ALTER TABLE heartbeats DISABLE TRIGGER USER; COMMIT');
my $before = live_rows();
ok(wait_for_inserts($before, 300), 'inserts go on while the triggers are disabled');
$node->safe_psql('postgres', 'BEGIN; ALTER TABLE heartbeats ENABLE TRIGGER USER; UPDATE bench_phase SET phase = 2; COMMIT');
ok(wait_for_inserts(live_rows(), 100), 'and after they are enabled again');

# A run while inserts go on: it repairs, and nothing it does is undone.
my $at_run = live_rows();
cmp_ok($node->safe_psql('postgres', 'SELECT hb_reconcile(max_rows => 100)'), '>', 0,
    'a capped run while inserts go on repairs drift');
$bench->finish;
is($bench->result(0), 0, 'every insert of the application succeeded') or diag($bench_err);
cmp_ok(live_rows(), '>', $at_run, '... inserts that went on after the run began');

cmp_ok($node->safe_psql('postgres', q{
        SELECT count(*) FROM (SELECT DISTINCT device_id FROM heartbeats) h
        WHERE NOT EXISTS (SELECT 1 FROM device_last_status l WHERE l.device_id = h.device_id)}), '>', 100,
    'devices first heard from while the triggers were disabled are missing from device_last_status');

# Drift 2 and 3: rows deleted, rows set older (and with another status).
$node->safe_psql('postgres', q{
    DELETE FROM device_last_status WHERE device_id BETWEEN 1001 AND 1150;
    UPDATE device_last_status SET ts = ts - interval '1 hour', status = 'older'
    WHERE device_id BETWEEN 2001 AND 2120;
});
my $drift = mismatches();
cmp_ok($drift, '>', 370, "the drift: $drift devices whose last status is wrong");

my $runs = ceil($drift / 100);
my @repaired;
push @repaired, $node->safe_psql('postgres', 'SELECT hb_reconcile(max_rows => 100)') for 1 .. $runs;
is_deeply(\@repaired, [ (100) x ($runs - 1), $drift - 100 * ($runs - 1) ],
    "ceil($drift / 100) = $runs runs repair 100 each, the last one the rest (@repaired)");
is(mismatches(), '0', 'then device_last_status agrees with the heartbeats on every device');
is($node->safe_psql('postgres', 'SELECT hb_reconcile(max_rows => 100)'), '0', 'a further run repairs 0');
is($node->safe_psql('postgres', q{SELECT reconcile_after IS NULL FROM hb_config}), 't',
    '... and the next pass starts from the first device');
is($node->safe_psql('postgres', q{SELECT count(*) FROM hb_events WHERE event = 'reconcile'}), $runs + 3,
    'each run recorded a reconcile event');

$node->stop;
done_testing();
