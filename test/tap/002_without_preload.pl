# Without shared_preload_libraries: CREATE EXTENSION works, hb_manage and the
# triggers work (the library is loaded on first use), retries are still
# skipped, and what needs shared memory says so clearly.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION hb_lifecycle;
    CREATE TABLE heartbeats (device_id bigint, ts timestamptz NOT NULL, status text)
        PARTITION BY RANGE (ts);
    CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats
        FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2026-12-02 00:00+00');
    SELECT hb_manage('heartbeats');
});
pass('CREATE EXTENSION and hb_manage work without preloading');

$node->safe_psql('postgres', q{
    INSERT INTO heartbeats VALUES (1, '2026-12-01 10:00+00', 'a'), (1, '2026-12-01 11:00+00', 'b'),
                                  (2, '2026-12-01 09:00+00', 'c');
    INSERT INTO heartbeats VALUES (1, '2026-12-01 10:30+00', 'older');
});
is($node->safe_psql('postgres', q{SELECT string_agg(device_id || '=' || status, ',' ORDER BY device_id) FROM device_last_status}),
    '1=b,2=c', 'device_last_status is kept in sync');

my ($rc, $out, $err) = $node->psql('postgres',
    q{INSERT INTO heartbeats VALUES (1, '2026-12-01 11:00+00', 'retry')});
is($rc, 0, 'a retried heartbeat raises no error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM heartbeats WHERE device_id = 1 AND ts = '2026-12-01 11:00+00'}),
    '1', 'and is stored once');

($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM hb_counters()',
    extra_params => ['-v', 'VERBOSITY=verbose']);
isnt($rc, 0, 'hb_counters() fails without preloading');
like($err, qr/55000: hb_lifecycle's shared counters are not available/, 'with a clear message and SQLSTATE');
like($err, qr/HINT:  Add hb_lifecycle to shared_preload_libraries/, 'and says what to do');

# The archive functions need the worker, which exists only when preloaded.
$node->safe_psql('postgres', q{SELECT hb_create_partitions('heartbeats', now() - interval '3 days', now())});
my $closed = $node->safe_psql('postgres',
    q{SELECT to_char((now() AT TIME ZONE 'UTC')::date - 2, '"hb_"YYYY_MM_DD')});
for my $wait ('true', 'false') {
    ($rc, $out, $err) = $node->psql('postgres', "SELECT hb_archive_partition('$closed', wait => $wait)",
        extra_params => ['-v', 'VERBOSITY=verbose']);
    like($err, qr/55000: hb_lifecycle's background worker is not running/,
        "hb_archive_partition(wait => $wait) says that the worker is not running");
}
like($err, qr/HINT:  Add hb_lifecycle to shared_preload_libraries/, '... and says what to do');
is($node->safe_psql('postgres', "SELECT state FROM hb_partitions WHERE partition_name = '$closed'"), 'active',
    '... and leaves the partition as it was');

$node->stop;
done_testing();
