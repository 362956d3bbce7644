# Crash recovery: device_last_status commits and rolls back with the
# heartbeats, so after a server crash it equals the newest committed
# heartbeat of every device, and nothing of an interrupted transaction
# remains in either table. Crashes are made: with a transaction open after
# its writes, in the middle of a large statement, in the middle of the
# last-status writes themselves, and right after a commit.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hb_lifecycle'\nrestart_after_crash = on");
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION hb_lifecycle;
    CREATE TABLE heartbeats (device_id int NOT NULL, ts timestamptz NOT NULL, status text,
                             payload jsonb) PARTITION BY RANGE (ts);
    CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats
        FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2026-12-02 00:00+00');
    CREATE TABLE hb_2026_12_02 PARTITION OF heartbeats
        FOR VALUES FROM ('2026-12-02 00:00+00') TO ('2026-12-03 00:00+00');
    SELECT hb_manage('heartbeats');
});

# Committed history: 1,000 devices, 3 heartbeats each.
$node->safe_psql('postgres', q{
    INSERT INTO heartbeats
    SELECT d, timestamptz '2026-12-01 00:00+00' + b * interval '1 minute', 'committed-' || b, '{}'
      FROM generate_series(1, 1000) d, generate_series(1, 3) b;
});

# Kills one backend with SIGKILL: the postmaster then terminates every other
# backend, reinitialises shared memory and replays the WAL (a crash of the
# whole server, as far as the data is concerned).
sub crash_restart {
    my ($victim_pid) = @_;
    my $log_offset = -s $node->logfile;
    kill 'KILL', $victim_pid;
    # The postmaster notices the death asynchronously: a query right after
    # the kill may still reach the old server, so wait for the log first.
    my $reinitialized = 0;
    for (1 .. 300) {
        last if ($reinitialized = $node->log_contains('all server processes terminated; reinitializing', $log_offset));
        usleep(100_000);
    }
    ok($reinitialized, 'the server went through crash recovery');
    $node->poll_query_until('postgres', 'SELECT true')
      or die 'the server did not come back after the crash';
}

# Starts `sql` in a new session, waits until that backend is busy as
# `busy_condition` (over pg_stat_activity) says and one second more, then
# crashes the server by killing it.
sub crash_during {
    my ($sql, $busy_condition, $what) = @_;
    my $session = $node->background_psql('postgres', on_error_stop => 0);
    my $pid = $session->query_safe('SELECT pg_backend_pid()');
    $session->query_until(qr/started/, "\\echo started\n$sql");
    $node->poll_query_until('postgres',
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $pid AND $busy_condition")
      or die "$what did not start";
    sleep(1);
    crash_restart($pid);
    eval { $session->quit };  # its connection died with the crash
}

my $mismatches = q{
    SELECT count(*) FROM
      (SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC) h
      FULL JOIN device_last_status l USING (device_id)
     WHERE h.device_id IS NULL OR l.device_id IS NULL
        OR (h.ts, h.status, h.payload) IS DISTINCT FROM (l.ts, l.status, l.payload)
};
is($node->safe_psql('postgres', $mismatches), '0', 'exact before any crash');

# 1. A transaction whose INSERT finished (and whose last-status writes were
#    made) but which never committed when the server crashed.
my $session = $node->background_psql('postgres');
$session->query_safe(q{
    BEGIN;
    INSERT INTO heartbeats
    SELECT d, timestamptz '2026-12-02 00:00+00', 'uncommitted', '{}' FROM generate_series(1, 1000) d;
});
is($session->query_safe(q{SELECT count(*) FROM device_last_status WHERE status = 'uncommitted'}),
    '1000', 'the open transaction sees its own last-status writes');
crash_restart($session->query_safe('SELECT pg_backend_pid()'));
eval { $session->quit };  # its connection died with the crash

is($node->safe_psql('postgres', q{SELECT count(*) FROM heartbeats WHERE status = 'uncommitted'}),
    '0', 'no heartbeat of the killed transaction survives');
is($node->safe_psql('postgres', q{SELECT count(*) FROM device_last_status WHERE status = 'uncommitted'}),
    '0', 'no last-status write of the killed transaction survives');
is($node->safe_psql('postgres', $mismatches), '0', 'exact after a crash with a transaction open');

# 2. A backend killed in the middle of a large statement.
$node->safe_psql('postgres', q{
    CREATE FUNCTION slow_status(i int) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN
        IF i % 200000 = 0 THEN PERFORM pg_sleep(0.5); END IF;
        RETURN 'interrupted';
    END $$;
});
crash_during(q{
    INSERT INTO heartbeats
    SELECT d % 1000 + 1, timestamptz '2026-12-02 01:00+00' + (d / 1000) * interval '1 second',
           slow_status(d), '{}'
      FROM generate_series(1, 2000000) d;
}, "state = 'active' AND query LIKE 'INSERT%'", 'the large INSERT');

is($node->safe_psql('postgres', q{SELECT count(*) FROM heartbeats WHERE status = 'interrupted'}),
    '0', 'no heartbeat of the interrupted statement survives');
is($node->safe_psql('postgres', $mismatches), '0', 'exact after a backend crash mid-statement');

# 3. A backend killed while it writes the last-status rows: a trigger on
#    device_last_status (which makes the writer go through SQL) slows the
#    writes down so that the kill lands in the middle of them.
$node->safe_psql('postgres', q{
    CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;
    CREATE TRIGGER slow_write BEFORE UPDATE ON device_last_status
        FOR EACH ROW EXECUTE FUNCTION slow_write();
});
crash_during(q{
    INSERT INTO heartbeats
    SELECT d, timestamptz '2026-12-02 01:30+00', 'mid-write', '{}' FROM generate_series(1, 1000) d;
}, "wait_event = 'PgSleep'", 'the last-status writes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM heartbeats WHERE status = 'mid-write'}),
    '0', 'no heartbeat of the statement killed while writing last status survives');
is($node->safe_psql('postgres', $mismatches), '0', 'exact after a crash in the middle of the last-status writes');
$node->safe_psql('postgres', 'DROP TRIGGER slow_write ON device_last_status');

# 4. A transaction committed just before a crash is kept whole.
$node->safe_psql('postgres', q{
    INSERT INTO heartbeats
    SELECT d, timestamptz '2026-12-02 02:00+00', 'last-committed', '{"n": 1}'
      FROM generate_series(1, 1000) d;
});
my $idle = $node->background_psql('postgres');
crash_restart($idle->query_safe('SELECT pg_backend_pid()'));
eval { $idle->quit };
is($node->safe_psql('postgres', q{SELECT count(*) FROM device_last_status WHERE status = 'last-committed'}),
    '1000', 'last-status rows of a transaction committed before the crash are kept');
is($node->safe_psql('postgres', $mismatches), '0', 'exact after a crash following a commit');

# The triggers work as before after recovery.
$node->safe_psql('postgres', q{
    INSERT INTO heartbeats VALUES (1, '2026-12-02 03:00+00', 'after-recovery', '{}');
});
is($node->safe_psql('postgres', q{SELECT status FROM device_last_status WHERE device_id = 1}),
    'after-recovery', 'the triggers keep working after recovery');

$node->stop;
done_testing();
