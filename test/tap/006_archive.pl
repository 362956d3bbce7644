# Archives on a live server, through the background worker, to real
# targets: the default file target; moto_server, which checks SigV4
# signatures; s3rver, a second S3 implementation; and faults in between (a
# proxy that fails or slows requests, a server that is down, wrong or
# exposed credentials, a target directory that cannot be written, kill -9
# of the worker in the middle of an upload, a corrupted object). awscli
# reads back what was written. Nothing may be lost in any of them.
#
# scripts/test.sh starts moto_server and s3rver and passes their addresses
# in the file named by HB_S3_ENV.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use Digest::SHA;
use JSON::PP;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $env_file = $ENV{HB_S3_ENV};
plan skip_all => 'HB_S3_ENV is not set (scripts/test.sh starts the S3 servers)'
  unless $env_file && -r $env_file;
my %s3;
open(my $fh, '<', $env_file) or die "cannot read $env_file: $!";
while (<$fh>) { chomp; $s3{$1} = $2 if /^(\w+)=(.*)$/; }
close $fh;

my $tools = dirname(abs_path(__FILE__)) . '/tools';
my $work = tempdir(CLEANUP => 1);

# A free TCP port on loopback.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die $!;
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub wait_port {
    my ($port) = @_;
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
        if ($s) { close $s; return 1; }
        usleep(100_000);
    }
    die "nothing listens on port $port";
}

my @children;
sub spawn {
    my @cmd = @_;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) { exec(@cmd) or die "exec @cmd: $!"; }
    push @children, $pid;
    return $pid;
}
END { kill 'TERM', @children if @children; }

# The webhook that alerts go to.
my $hook_port = free_port();
my $hook_file = "$work/alerts.txt";
spawn('python3', "$tools/webhook_capture.py", $hook_port, $hook_file);
wait_port($hook_port);
sub alerts {
    return () unless -e $hook_file;
    open(my $f, '<', $hook_file) or die $!;
    my @lines = <$f>;
    close $f;
    return @lines;
}

# A fault-injecting proxy in front of moto.
my ($moto_port) = $s3{HB_MOTO_ENDPOINT} =~ /:(\d+)$/;
my $proxy_port = free_port();
my $control = "$work/proxy.json";
sub proxy_faults {
    my ($json) = @_;
    open(my $f, '>', $control) or die $!;
    print $f $json;
    close $f;
}
proxy_faults('{}');
spawn('python3', "$tools/s3_fault_proxy.py", $proxy_port, $moto_port, $control);
wait_port($proxy_port);
sub proxy_log {
    return () unless -e "$control.log";
    open(my $f, '<', "$control.log") or die $!;
    my @lines = <$f>;
    close $f;
    return @lines;
}

# The webhook's URL lives in a file (chmod 600): a URL carries its token.
open(my $wf, '>', "$work/webhook-first") or die $!;
print $wf "http://127.0.0.1:$hook_port/api/webhooks/123/secret-token\n";
close $wf;
chmod 0600, "$work/webhook-first";

my $node = PostgreSQL::Test::Cluster->new('archive');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,hb_lifecycle'
cron.database_name = 'postgres'
restart_after_crash = on
hb_lifecycle.database = 'postgres'
hb_lifecycle.alert_webhook_url = 'file://$work/webhook-first'
hb_lifecycle.alert_min_interval = '1h'
});
$node->start;
my $pgdata = $node->data_dir;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Runs a query returning one boolean every 0.2 s until it is true (or
# `seconds` pass); survives the server restarting meanwhile.
sub poll_until {
    my ($query, $seconds) = @_;
    my $deadline = time() + $seconds;
    while (time() < $deadline) {
        my ($rc, $out) = $node->psql('postgres', $query);
        return 1 if $rc == 0 && defined $out && $out eq 't';
        usleep(200_000);
    }
    diag("gave up after $seconds s waiting for: $query");
    return 0;
}

sub settings {
    my (%set) = @_;
    # A worker that is running logs the reload (one that starts after it
    # reads the new settings without a word).
    poll_until("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'", 60)
        or die 'no hb_lifecycle worker is running';
    my $offset = -s $node->logfile;
    sql(join('', map { "ALTER SYSTEM SET hb_lifecycle.$_ = '$set{$_}';" } sort keys %set)
          . 'SELECT pg_reload_conf();');
    # The next job must see the new settings: wait until the worker has
    # reread its configuration.
    $node->wait_for_log(qr/hb_lifecycle worker: configuration reloaded/, $offset);
}

sub day { return sql(qq{SELECT to_char((now() AT TIME ZONE 'UTC')::date + $_[0], '"hb_"YYYY_MM_DD')}); }

sub aws {
    my ($endpoint, $key, $secret, @args) = @_;
    local $ENV{AWS_ACCESS_KEY_ID} = $key;
    local $ENV{AWS_SECRET_ACCESS_KEY} = $secret;
    local $ENV{AWS_DEFAULT_REGION} = 'us-east-1';
    local $ENV{HOME} = $work;
    my ($stdout, $stderr);
    my $ok = IPC::Run::run(['aws', '--endpoint-url', $endpoint, @args], '>', \$stdout, '2>', \$stderr);
    die "aws @args: $stderr" unless $ok;
    return $stdout;
}
sub moto { return aws($s3{HB_MOTO_ENDPOINT}, $s3{HB_MOTO_KEY_ID}, $s3{HB_MOTO_SECRET}, @_); }
sub s3rver { return aws($s3{HB_S3RVER_ENDPOINT}, $s3{HB_S3RVER_KEY_ID}, $s3{HB_S3RVER_SECRET}, @_); }

sub sha256_file { return Digest::SHA->new(256)->addfile($_[0])->hexdigest; }

sub slurp {
    open(my $f, '<', $_[0]) or die "$_[0]: $!";
    local $/;
    my $t = <$f>;
    close $f;
    return $t;
}

sub credentials_file {
    my ($path, $key, $secret, $mode) = @_;
    open(my $f, '>', $path) or die $!;
    print $f "[default]\naws_access_key_id = $key\naws_secret_access_key = $secret\n";
    close $f;
    chmod $mode, $path;
}

# The rows of a partition, as text, in a stable order: what an archive
# must bring back exactly.
sub rows_of {
    my ($rel) = @_;
    return sql("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)), count(*) FROM $rel t");
}

sql(q{
    CREATE EXTENSION hb_lifecycle;
    CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text,
                             battery integer, payload jsonb) PARTITION BY RANGE (ts);
    SELECT hb_manage('heartbeats', retention => '30 days', premake => 2);
    SELECT hb_create_partitions('heartbeats', now() - interval '12 days', now());
});
# Rows for day `d` days ago: `n` of them, with values that CSV must quote
# (commas, quotes, newlines, an empty string, "\."), NULLs and non-ASCII.
sub fill {
    my ($d, $n) = @_;
    sql(qq{
        INSERT INTO heartbeats
        SELECT i % 500, (now() AT TIME ZONE 'UTC')::date - $d + (i % 86000) * interval '1 second'
                        + (i / 86000) * interval '1 millisecond',
               CASE i % 6 WHEN 0 THEN 'a,b "quoted"' WHEN 1 THEN E'line\\nbreak' WHEN 2 THEN ''
                          WHEN 3 THEN '\\.' WHEN 4 THEN NULL ELSE 'ok ✓ ' || md5(i::text) END,
               i % 101, CASE WHEN i % 3 = 0 THEN NULL ELSE jsonb_build_object('i', i) END
        FROM generate_series(1, $n) i});
}
fill(2, 20000);
fill(3, 250000);
fill(4, 250000);
fill(5, 2000);
fill(6, 250000);
fill(7, 5000);
fill(8, 250000);
fill(9, 3000);

# ---- 1. The default target: a directory under the data directory --------
my $p2 = day(-2);
is(sql("SELECT hb_archive_partition('$p2')"), 'archived', 'a closed partition is archived to the default target');
my $dir = "$pgdata/hb_archive/public.heartbeats/$p2";
ok(-f "$dir/part-00000.csv.gz" && -f "$dir/manifest.json",
    'the default target is hb_archive under the data directory, with a data file and a manifest');
my $manifest = decode_json(slurp("$dir/manifest.json"));
my ($sha, $rows, $url) = split /\|/, sql(
    "SELECT sha256, row_count, checksum_manifest_url FROM hb_partitions WHERE partition_name = '$p2'");
is(sha256_file("$dir/part-00000.csv.gz"), $sha, "the data file's SHA-256 is the one hb_partitions records");
is($manifest->{files}[0]{sha256}, $sha, '... and the one the manifest lists');
is("$rows|$manifest->{row_count}", "20000|20000", 'hb_partitions and the manifest count every row');
is($url, "file://$dir/manifest.json", 'checksum_manifest_url points at the manifest');
sql("CREATE TABLE copy_back (LIKE heartbeats); "
      . "COPY copy_back FROM PROGRAM 'zcat $dir/part-00000.csv.gz' (FORMAT csv, HEADER)");
is(rows_of('copy_back'), rows_of($p2), 'the archive, read back with COPY, holds exactly the partition\'s rows');
my $mtime = (stat("$dir/part-00000.csv.gz"))[9];
is(sql("SELECT hb_archive_partition('$p2')"), 'archived', 'archiving an archived partition again says archived');
is(sql("SELECT detail->>'uploaded' FROM hb_events WHERE event = 'archive.end' AND partition_name = '$p2' "
      . "ORDER BY id DESC LIMIT 1"), 'false', '... after checking the manifest, uploading nothing');
is((stat("$dir/part-00000.csv.gz"))[9], $mtime, '... and the data file was not written again');
is(sql("SELECT count(*) FILTER (WHERE state = 'done' AND rows = 20000) FROM hb_jobs WHERE partition_name = '$p2'"),
    '2', 'hb_jobs records both jobs as done, with their rows');

# ---- 2. Late rows: a write after the archive sends it back ---------------
sql("INSERT INTO heartbeats VALUES (9999, (now() AT TIME ZONE 'UTC')::date - 2 + interval '1 hour', 'late', 1, NULL)");
is(sql("SELECT state FROM hb_partitions WHERE partition_name = '$p2'"), 'active',
    'a row written into an archived partition makes it active again');
my $summary = decode_json(sql('SELECT hb_run_maintenance()'));
ok((grep { $_ eq $p2 } @{ $summary->{archive_queued} }), 'maintenance queues its archive again');
ok(poll_until("SELECT state = 'archived' AND row_count = 20001 FROM hb_partitions WHERE partition_name = '$p2'", 60),
    '... and the worker archives it again with the late row');
# A late UPDATE keeps the row count: the next archive still exports again.
my $sha_before = sql("SELECT sha256 FROM hb_partitions WHERE partition_name = '$p2'");
sql("UPDATE heartbeats SET status = 'changed late' WHERE device_id = 9999");
is(sql("SELECT hb_archive_partition('$p2')"), 'archived', 'after a late UPDATE, the partition is archived again');
is(sql("SELECT detail->>'uploaded' FROM hb_events WHERE event = 'archive.end' AND partition_name = '$p2' "
      . "ORDER BY id DESC LIMIT 1"), 'true', '... exported and written again, though its row count is the same');
my $sha_after = sql("SELECT sha256 FROM hb_partitions WHERE partition_name = '$p2'");
isnt($sha_after, $sha_before, '... with a new SHA-256');
sql("TRUNCATE copy_back; COPY copy_back FROM PROGRAM 'zcat $dir/part-00000.csv.gz' (FORMAT csv, HEADER)");
is(sql("SELECT status FROM copy_back WHERE device_id = 9999"), 'changed late', '... that holds the updated row');
# Maintenance queued every closed partition: let those jobs end (to the
# file target) before the targets change.
ok(poll_until("SELECT count(*) = 0 FROM hb_jobs WHERE state IN ('queued', 'running')", 120),
    'the worker runs every job maintenance queued');

# ---- 3. moto_server (signatures checked): multipart, SSE, read back ----
# Buckets of this run's own: the S3 servers may outlive one run.
my $bucket = "hb-archive-$$";
my $bucket2 = "hb-second-$$";
moto('s3', 'mb', "s3://$bucket");
my $creds = "$work/credentials";
credentials_file($creds, $s3{HB_MOTO_KEY_ID}, $s3{HB_MOTO_SECRET}, 0600);
settings(archive_url => "s3://$bucket/fleet", s3_endpoint => $s3{HB_MOTO_ENDPOINT},
    s3_credentials_file => $creds, s3_part_size => '5MB', archive_compression => 'none');
my $p3 = day(-3);
is(sql("SELECT hb_archive_partition('$p3')"), 'archived', 'a partition is archived to moto_server');
my $key3 = "fleet/public.heartbeats/$p3";
my $head = decode_json(moto('s3api', 'head-object', '--bucket', $bucket, '--key', "$key3/part-00000.csv"));
is($head->{ServerSideEncryption}, 'AES256', 'the object was uploaded with server-side encryption AES256');
like($head->{ETag}, qr/-\d+"$/, '... in a multipart upload (its ETag counts the parts)');
moto('s3', 'cp', "s3://$bucket/$key3/part-00000.csv", "$work/p3.csv");
moto('s3', 'cp', "s3://$bucket/$key3/manifest.json", "$work/p3.json");
my $m3 = decode_json(slurp("$work/p3.json"));
($sha, $rows) = split /\|/, sql("SELECT sha256, row_count FROM hb_partitions WHERE partition_name = '$p3'");
is(sha256_file("$work/p3.csv"), $sha, "awscli reads back the object with the SHA-256 hb_partitions records");
is($m3->{files}[0]{sha256} . "|$m3->{row_count}|$m3->{compression}", "$sha|$rows|none",
    '... the manifest agrees on SHA-256 and row count');
sql("TRUNCATE copy_back; COPY copy_back FROM '$work/p3.csv' (FORMAT csv, HEADER)");
is(rows_of('copy_back'), rows_of($p3), '... and the object holds exactly the partition\'s rows');
is(moto('s3api', 'list-multipart-uploads', '--bucket', $bucket, '--output', 'json') =~ /UploadId/ ? 1 : 0, 0,
    'no multipart upload is left unfinished');

# ---- 4. The first parts fail with 500: the retries succeed ---------------
settings(s3_endpoint => "http://127.0.0.1:$proxy_port");
proxy_faults('{"fail_parts": 2}');
my $p4 = day(-4);
is(sql("SELECT hb_archive_partition('$p4')"), 'archived', 'an upload whose first two parts fail with 500 succeeds');
is(scalar(grep { /partNumber=.* 500$/ } proxy_log()), 2, '... after the server answered 500 twice');
is(sql("SELECT attempts FROM hb_jobs WHERE partition_name = '$p4' ORDER BY id DESC LIMIT 1"), '1',
    '... within one attempt of the job');
proxy_faults('{}');

# ---- 5. The server is down: archive_failed, kept, one alert --------------
proxy_faults('{"fail_all": true}');
my $p5 = day(-5);
my ($rows5) = rows_of($p5);
is(sql("SELECT hb_archive_partition('$p5')"), 'archive_failed', 'an archive to a server that is down fails');
my ($state, $err, $attempts) = split /\|/, sql(
    "SELECT state, last_error, attempts FROM hb_partitions WHERE partition_name = '$p5'");
is($state, 'archive_failed', '... the state is archive_failed');
like($err, qr/503/, '... last_error says why');
is(rows_of($p5), $rows5, '... and the partition is kept, every row in it');
is(sql("SELECT count(*) FROM hb_events WHERE event = 'archive.failed' AND partition_name = '$p5'"), '1',
    '... an archive.failed event is recorded');
ok(poll_until("SELECT true", 1) && scalar(alerts()) == 1, '... and one alert goes to the webhook');
my $alert = decode_json((alerts())[0]);
like($alert->{content}, qr/\Q$p5\E.*failed/, '... in Discord\'s JSON, naming the partition');
is(sql("SELECT hb_archive_partition('$p5')"), 'archive_failed', 'a second failure');
is(scalar(alerts()), 1, '... sends no second alert within alert_min_interval');
sql("UPDATE hb_config SET retention = '1 day'");
my ($rc, $out, $stderr) = $node->psql('postgres', "SELECT hb_drop_partition('$p5')");
like($stderr, qr/is not archived/, 'a failed archive is never dropped');
sql("UPDATE hb_config SET retention = '30 days'");
proxy_faults('{}');

# ---- 6. Wrong credentials: the cause, never the secret -------------------
my $bad_secret = 'WRONGsecretWRONGsecretWRONGsecret0123456';
credentials_file($creds, $s3{HB_MOTO_KEY_ID}, $bad_secret, 0600);
is(sql("SELECT hb_archive_partition('$p5')"), 'archive_failed', 'an archive with a wrong secret key fails');
$err = sql("SELECT last_error FROM hb_partitions WHERE partition_name = '$p5'");
like($err, qr/403|Signature/i, '... and last_error names the cause');
my $everything = sql("SELECT string_agg(detail::text, ' ') FROM hb_events")
  . sql("SELECT string_agg(coalesce(last_error, ''), ' ') FROM hb_jobs")
  . sql("SELECT string_agg(coalesce(last_error, ''), ' ') FROM hb_partitions")
  . sql("SELECT string_agg(setting, ' ') FROM pg_settings WHERE name LIKE 'hb_lifecycle.%'")
  . slurp($node->logfile);
ok(index($everything, $bad_secret) < 0 && index($everything, $s3{HB_MOTO_SECRET}) < 0,
    'no secret key is in hb_events, hb_jobs, hb_partitions, pg_settings or the server log');
ok(index($everything, 'secret-token') < 0, '... nor the webhook URL\'s token');

# ---- 7. A credentials file others may read is refused --------------------
credentials_file($creds, $s3{HB_MOTO_KEY_ID}, $s3{HB_MOTO_SECRET}, 0644);
is(sql("SELECT hb_archive_partition('$p5')"), 'archive_failed', 'a credentials file readable by others is refused');
like(sql("SELECT last_error FROM hb_partitions WHERE partition_name = '$p5'"), qr/chmod 600/,
    '... with the fix in the message');
chmod 0600, $creds;
is(sql("SELECT hb_archive_partition('$p5')"), 'archived', 'once fixed, the archive succeeds');

# ---- 8. kill -9 of the worker in the middle of an upload -----------------
# The proxy holds the part uploads, so the worker is killed while it waits
# for one, however slow this machine.
proxy_faults('{"hold_parts": true}');
my $p6 = day(-6);
my $rows6 = rows_of($p6);
is(sql("SELECT hb_archive_partition('$p6', wait => false)"), 'queued', 'an archive queued without waiting says queued');
ok(poll_until("SELECT phase = 'upload' FROM hb_jobs WHERE partition_name = '$p6' AND state = 'running'", 60),
    'hb_jobs shows the running job in its upload');
ok(poll_until("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker' "
      . "AND query LIKE 'hb_lifecycle job % upload%'", 10), '... and pg_stat_activity shows its progress');
my $worker = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'");
kill 'KILL', $worker;
proxy_faults('{}');
ok(poll_until("SELECT state = 'archived' FROM hb_partitions WHERE partition_name = '$p6'", 120),
    'after kill -9 of the worker mid-upload, a new worker completes the job');
isnt(sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'"), $worker,
    '... the postmaster restarted the worker');
# (The whole bucket is listed: moto miscomputes the signature of a listing
# whose prefix holds a '/'.)
my @objects = grep { m{public\.heartbeats/$p6/} } split /\n/, moto('s3', 'ls', '--recursive', "s3://$bucket/");
is(scalar(@objects), 2, '... and the target holds exactly one set of objects (data and manifest)');
is(moto('s3api', 'list-multipart-uploads', '--bucket', $bucket, '--output', 'json') =~ /UploadId/ ? 1 : 0, 0,
    '... and the interrupted multipart upload was aborted');
moto('s3', 'cp', "s3://$bucket/fleet/public.heartbeats/$p6/part-00000.csv", "$work/p6.csv");
is(sha256_file("$work/p6.csv"), sql("SELECT sha256 FROM hb_partitions WHERE partition_name = '$p6'"),
    '... whose data has the recorded SHA-256');
is(rows_of($p6), $rows6, '... and the partition lost nothing');

# ---- 9. Restore: a corrupted object is refused, a good one comes back ----
my $status_before = sql('SELECT md5(string_agg(t::text, \',\' ORDER BY device_id)) FROM device_last_status t');
sql("UPDATE hb_config SET retention = '1 day'");
is(sql("SELECT hb_drop_partition('$p3')"), 't', 'an archived partition past retention is dropped');
moto('s3', 'cp', "$work/p6.csv", "s3://$bucket/$key3/part-00000.csv");
($rc, $out, $stderr) = $node->psql('postgres', "SELECT hb_restore_partition('$p3')");
like($stderr, qr/corrupt/, 'a restore from a corrupted object is refused');
is(sql("SELECT to_regclass('$p3') IS NULL AND state = 'dropped' FROM hb_partitions WHERE partition_name = '$p3'"),
    't', '... and nothing was restored');
moto('s3', 'cp', "$work/p3.csv", "s3://$bucket/$key3/part-00000.csv");
is(sql("SELECT hb_restore_partition('$p3')"), '250000', 'with the object put back, the restore returns its rows');
sql("TRUNCATE copy_back; COPY copy_back FROM '$work/p3.csv' (FORMAT csv, HEADER)");
is(rows_of($p3), rows_of('copy_back'), '... and the partition holds exactly the archived rows');
is(sql("SELECT state || ' ' || (restored_at IS NOT NULL) FROM hb_partitions WHERE partition_name = '$p3'"),
    'archived true', '... recorded as archived and restored');
is(sql('SELECT md5(string_agg(t::text, \',\' ORDER BY device_id)) FROM device_last_status t'), $status_before,
    'device_last_status is the same as before the drop and the restore (nothing moved back)');
sql("UPDATE hb_config SET retention = '30 days'");

# ---- 10. A file target that cannot be written ----------------------------
mkdir "$work/readonly";
chmod 0500, "$work/readonly";
settings(archive_url => "file://$work/readonly", archive_compression => 'gzip');
my $p7 = day(-7);
is(sql("SELECT hb_archive_partition('$p7')"), 'archive_failed', 'an archive into a directory that cannot be written fails');
like(sql("SELECT last_error FROM hb_partitions WHERE partition_name = '$p7'"), qr/ermission/,
    '... saying so');
is(sql("SELECT count(*) FROM $p7"), '5000', '... and the partition keeps its rows');

# ---- 11. s3rver, a second S3 implementation: archive and restore ----------
s3rver('s3', 'mb', "s3://$bucket2");
credentials_file($creds, $s3{HB_S3RVER_KEY_ID}, $s3{HB_S3RVER_SECRET}, 0600);
settings(archive_url => "s3://$bucket2/x", s3_endpoint => $s3{HB_S3RVER_ENDPOINT});
my $p8 = day(-8);
my $rows8 = rows_of($p8);
is(sql("SELECT hb_archive_partition('$p8')"), 'archived', 'a partition is archived to s3rver');
s3rver('s3', 'cp', "s3://$bucket2/x/public.heartbeats/$p8/part-00000.csv.gz", "$work/p8.csv.gz");
is(sha256_file("$work/p8.csv.gz"), sql("SELECT sha256 FROM hb_partitions WHERE partition_name = '$p8'"),
    '... awscli reads it back with the recorded SHA-256');
sql("UPDATE hb_config SET retention = '1 day'");
sql("SELECT hb_drop_partition('$p8')");
is(sql("SELECT hb_restore_partition('$p8')"), '250000', '... and it is restored from there');
is(rows_of($p8), $rows8, '... with exactly its rows');
sql("UPDATE hb_config SET retention = '30 days'");

# ---- 12. Cancel a running job -------------------------------------------
credentials_file($creds, $s3{HB_MOTO_KEY_ID}, $s3{HB_MOTO_SECRET}, 0600);
settings(archive_url => "s3://$bucket/fleet", s3_endpoint => "http://127.0.0.1:$proxy_port",
    archive_compression => 'none');
proxy_faults('{"hold_parts": true}');
sql("UPDATE hb_partitions SET state = 'active' WHERE partition_name = '$p4'");
moto('s3', 'rm', "s3://$bucket/fleet/public.heartbeats/$p4/manifest.json");
sql("SELECT hb_archive_partition('$p4', false)");
ok(poll_until("SELECT phase = 'upload' FROM hb_jobs WHERE partition_name = '$p4' AND state = 'running'", 60),
    'a job is uploading');
is(sql("SELECT hb_cancel_job(id) FROM hb_jobs WHERE partition_name = '$p4' AND state = 'running'"), 't',
    'hb_cancel_job stops a running job');
proxy_faults('{}');
ok(poll_until("SELECT state = 'cancelled' FROM hb_jobs WHERE partition_name = '$p4' ORDER BY id DESC LIMIT 1", 30),
    '... which ends cancelled');
is(sql("SELECT state FROM hb_partitions WHERE partition_name = '$p4'"), 'active',
    '... and the partition has its state back');

# A running restore (held at its download by the proxy) is cancelled too:
# nothing is restored, and the call waiting for it says so.
sql("UPDATE hb_config SET retention = '1 day'");
is(sql("SELECT hb_drop_partition('$p6')"), 't', 'set-up: a partition archived to moto is dropped');
proxy_faults('{"hold_gets": true}');
my $restorer = $node->background_psql('postgres', on_error_stop => 0);
$restorer->query_until(qr/started/, "\\set VERBOSITY verbose\n\\echo started\nSELECT hb_restore_partition('$p6');\n");
my $restore_job = "SELECT id FROM hb_jobs WHERE partition_name = '$p6' AND kind = 'restore' AND state = 'running'";
ok(poll_until("SELECT phase = 'download' FROM hb_jobs WHERE id = ($restore_job)", 60),
    'a restore from S3 shows its download in hb_jobs');
is(sql("SELECT hb_cancel_job(($restore_job))"), 't', 'hb_cancel_job stops a running restore');
proxy_faults('{}');
ok(pump_until($restorer->{run}, $restorer->{timeout}, \$restorer->{stderr},
        qr/57014: hb_restore_partition: restore cancelled/),
    '... the call waiting for it fails: "restore cancelled", SQLSTATE 57014');
$restorer->quit;
is(sql("SELECT state || ': ' || last_error FROM hb_jobs WHERE partition_name = '$p6' AND kind = 'restore' "
      . 'ORDER BY id DESC LIMIT 1'), 'cancelled: restore cancelled', '... the job ends cancelled');
is(sql("SELECT to_regclass('$p6') IS NULL AND state = 'dropped' FROM hb_partitions WHERE partition_name = '$p6'"),
    't', '... and nothing was restored');

# A restore whose worker is stopped (SIGTERM) fails, saying so; called
# again once the worker is back, it completes.
proxy_faults('{"hold_gets": true}');
$restorer = $node->background_psql('postgres', on_error_stop => 0);
$restorer->query_until(qr/started/, "\\set VERBOSITY verbose\n\\echo started\nSELECT hb_restore_partition('$p6');\n");
ok(poll_until("SELECT phase = 'download' FROM hb_jobs WHERE id = ($restore_job)", 60), 'a second restore is downloading');
my $stopped = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'");
sql("SELECT pg_terminate_backend($stopped)");
proxy_faults('{}');
ok(pump_until($restorer->{run}, $restorer->{timeout}, \$restorer->{stderr},
        qr/57014: hb_restore_partition: the worker was shut down while it ran this restore; nothing was restored/),
    'when the worker is stopped (SIGTERM), the waiting call fails, saying so (SQLSTATE 57014)');
$restorer->quit;
is(sql("SELECT to_regclass('$p6') IS NULL"), 't', '... and nothing was restored');
ok(poll_until("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker' "
      . "AND pid <> $stopped", 60),
    '... a new worker starts');
is(sql("SELECT hb_restore_partition('$p6')"), (split /\|/, $rows6)[1], '... and the restore called again completes');
is(rows_of($p6), $rows6, '... with exactly the archived rows');
sql("UPDATE hb_config SET retention = '30 days'");

# A webhook URL in a file (PostgreSQL logs a setting's new value on a
# reload): the alert goes to it, and its token is never logged.
open(my $hf, '>', "$work/webhook") or die $!;
print $hf "http://127.0.0.1:$hook_port/api/webhooks/456/other-token\n";
close $hf;
chmod 0600, "$work/webhook";
settings(alert_webhook_url => "file://$work/webhook", s3_endpoint => 'http://127.0.0.1:1');
my $p9 = day(-9);
my $before = scalar(alerts());
is(sql("SELECT hb_archive_partition('$p9')"), 'archive_failed', 'an archive to an endpoint that refuses connections fails');
is(scalar(alerts()), $before + 1, '... and alerts the webhook read from its file');
ok(index(slurp($node->logfile), 'other-token') < 0, '... whose token is not in the server log');

# A webhook that does not answer: the failure is logged, the job ends.
open(my $bf, '>', "$work/webhook-broken") or die $!;
print $bf "http://127.0.0.1:1/api/webhooks/789/unreachable\n";
close $bf;
chmod 0600, "$work/webhook-broken";
settings(alert_webhook_url => "file://$work/webhook-broken");
sql("UPDATE hb_partitions SET alerted_at = NULL WHERE partition_name = '$p9'");
is(sql("SELECT hb_archive_partition('$p9')"), 'archive_failed', 'with a webhook that does not answer, a failed archive');
like(slurp($node->logfile), qr/the alert about \Q$p9\E was not sent/, '... logs that the alert was not sent');
is(sql("SELECT state FROM hb_jobs WHERE partition_name = '$p9' ORDER BY id DESC LIMIT 1"), 'failed',
    '... and its job still ends');

# A job that three workers died running is not run a fourth time: the next
# worker fails it, and it alerts as any failed archive does. (The job is
# written as the third crash leaves it.)
settings(alert_webhook_url => "file://$work/webhook");
sql("UPDATE hb_partitions SET state = 'archiving', alerted_at = NULL WHERE partition_name = '$p9'");
my $crashed = sql(qq{INSERT INTO _hb_jobs (kind, partition_name, parent, requested_by, state, attempts, started_at)
                     VALUES ('archive', '$p9', 'heartbeats', 10, 'running', 3, now()) RETURNING id});
$before = scalar(alerts());
kill 'KILL', sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'");
ok(poll_until("SELECT state = 'failed' FROM _hb_jobs WHERE id = $crashed", 120),
    'after the third worker died running a job, the next one fails it');
like(sql("SELECT state || ': ' || last_error FROM hb_partitions WHERE partition_name = '$p9'"),
    qr/^archive_failed: the worker stopped 3 times/, '... its partition is archive_failed, saying why');
my $deadline = time() + 30;
usleep(100_000) while scalar(alerts()) <= $before && time() < $deadline;
is(scalar(alerts()), $before + 1, '... and one alert goes to the webhook');
like(decode_json((alerts())[-1])->{content}, qr/\Q$p9\E.*stopped three times/, '... naming the partition and the cause');

# A manifest that does not agree with hb_partitions: the restore refuses.
sql("UPDATE hb_config SET retention = '1 day'");
is(sql("SELECT hb_drop_partition('$p2')"), 't', 'a partition archived to the file target is dropped');
my $mtext = slurp("$dir/manifest.json");
(my $forged = $mtext) =~ s/"row_count": (\d+)/'"row_count": ' . ($1 + 1)/e;
open(my $mf, '>', "$dir/manifest.json") or die $!;
print $mf $forged;
close $mf;
($rc, $out, $stderr) = $node->psql('postgres', "SELECT hb_restore_partition('$p2')");
like($stderr, qr/counts 20002 rows, hb_partitions 20001/, 'a restore whose manifest counts other rows is refused');
is(sql("SELECT to_regclass('$p2') IS NULL"), 't', '... and nothing was restored');
open($mf, '>', "$dir/manifest.json") or die $!;
print $mf $mtext;
close $mf;
is(sql("SELECT hb_restore_partition('$p2')"), '20001', 'with the manifest put back, it is restored from the file target');
sql("UPDATE hb_config SET retention = '30 days'");

# Maintenance drops what is archived and past retention, but not a
# partition someone restored.
sql("UPDATE hb_config SET retention = '1 day'");
$summary = decode_json(sql('SELECT hb_run_maintenance()'));
ok((grep { $_ eq $p3 } @{ $summary->{kept_restored} }) && sql("SELECT to_regclass('$p3') IS NOT NULL") eq 't',
    'maintenance keeps a restored partition');
sql("UPDATE hb_config SET retention = '30 days'");

# ---- 13. SIGTERM: the worker stops cleanly and comes back ----------------
$worker = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'");
sql("SELECT pg_terminate_backend($worker)");
ok(poll_until("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker' "
      . "AND pid <> $worker", 30), 'a worker stopped with SIGTERM is started again');
like(slurp($node->logfile), qr/hb_lifecycle worker shutting down/, '... after a clean shutdown');

$node->stop;
done_testing();
