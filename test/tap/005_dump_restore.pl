# pg_dump keeps a managed database whole: hb_lifecycle's configuration and
# lifecycle tables come back with their rows, the restored table stays in
# sync and its lifecycle runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hb_lifecycle'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE fleet');
$node->safe_psql('fleet', q{
    CREATE EXTENSION hb_lifecycle;
    CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
        PARTITION BY RANGE (ts);
    SELECT hb_manage('heartbeats', premake => 2, retention => '60 days');
    INSERT INTO heartbeats SELECT d, now() - d * interval '1 minute', 'ok' FROM generate_series(1, 50) d;
    INSERT INTO heartbeats VALUES (99, now() + interval '400 days', 'wrong clock');
    SELECT hb_configure('heartbeats', archive => false);
    SELECT hb_run_maintenance();
});

my $dump = $node->basedir . '/fleet.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('fleet')], 'pg_dump of a managed database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump], 'pg_restore of it');

for my $query (
    [q{SELECT parent, device_column, time_column, granularity, premake, retention, last_status_table, partition_prefix, archive FROM hb_config}, 'hb_config'],
    [q{SELECT partition_name, parent, range_start, range_end, state FROM hb_partitions ORDER BY 1}, 'hb_partitions'],
    [q{SELECT event, partition_name, parent, detail FROM hb_events ORDER BY id}, 'hb_events'],
    [q{SELECT parent, reason, heartbeat FROM hb_quarantine ORDER BY id}, 'hb_quarantine'],
    [q{SELECT * FROM device_last_status ORDER BY device_id}, 'device_last_status'])
{
    my ($sql, $what) = @$query;
    is($node->safe_psql('restored', $sql), $node->safe_psql('fleet', $sql), "$what comes back as it was");
}

$node->safe_psql('restored', q{INSERT INTO heartbeats VALUES (1, now() + interval '1 second', 'after restore')});
is($node->safe_psql('restored', q{SELECT status FROM device_last_status WHERE device_id = 1}),
    'after restore', 'the restored table is kept in sync');
like($node->safe_psql('restored', q{SELECT hb_run_maintenance()}), qr/"errors": \[\]/,
    'and its maintenance runs without errors');
is($node->safe_psql('restored', q{SELECT nextval('hb_events_id_seq') > max(id) FROM hb_events}),
    't', 'the event sequence goes on after the restored events');

$node->stop;
done_testing();
