# Upgrading: the current library serves a database whose extension is still
# at 0.1 (0.1's behaviour, no error), ALTER EXTENSION hb_lifecycle UPDATE
# brings it to the current version, the tables managed under 0.1 then get
# their lifecycle (grants, catch-all, adoption, partitions ahead), and the
# updated extension has exactly the objects a fresh install has. The same
# from 0.2: the library serves a database at 0.2 (its maintenance runs; the
# worker waits for the update), and the updated one equals a fresh install,
# its owners may archive.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hb_lifecycle'\n");
$node->start;

my $current = $node->safe_psql('postgres',
    q{SELECT default_version FROM pg_available_extensions WHERE name = 'hb_lifecycle'});

$node->safe_psql('postgres', q{
    CREATE ROLE fleet_owner;
    CREATE EXTENSION hb_lifecycle VERSION '0.1';
    SET TimeZone = 'UTC';
    CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
        PARTITION BY RANGE (ts);
    ALTER TABLE heartbeats OWNER TO fleet_owner;
    SELECT format('CREATE TABLE %I PARTITION OF heartbeats FOR VALUES FROM (%L) TO (%L)',
                  to_char(d, '"hb_"YYYY_MM_DD'), d, d + interval '1 day')
    FROM generate_series(date_trunc('day', now()) - interval '1 day', date_trunc('day', now()), interval '1 day') d
    \gexec
});
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT hb_manage('heartbeats')});
is($rc, 0, 'hb_manage works on a database still at 0.1') or diag($err);
$node->safe_psql('postgres', q{INSERT INTO heartbeats VALUES (1, now(), 'at 0.1'), (1, now() - interval '1 hour', 'older')});
is($node->safe_psql('postgres', q{SELECT status FROM device_last_status WHERE device_id = 1}),
    'at 0.1', 'and keeps device_last_status');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'heartbeats'::regclass}),
    '2', "with 0.1's behaviour: no partition created");
($rc, $out, $err) = $node->psql('postgres', q{CREATE TABLE spare (x int); DROP TABLE spare;});
is($rc, 0, 'the DDL event triggers work at 0.1') or diag($err);

($rc, $out, $err) = $node->psql('postgres', 'ALTER EXTENSION hb_lifecycle UPDATE');
is($rc, 0, 'ALTER EXTENSION hb_lifecycle UPDATE works') or diag($err);
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'hb_lifecycle'}),
    $current, "and brings it to $current");
is($node->safe_psql('postgres', q{SELECT has_function_privilege('fleet_owner', 'hb_run_maintenance()', 'EXECUTE')}),
    't', 'the owner of a table managed under 0.1 may run its lifecycle');
is($node->safe_psql('postgres', q{SELECT archive FROM hb_config WHERE parent = 'heartbeats'::regclass}),
    't', 'hb_config has its new column, archiving on');

# The partitions go in the table's schema: the owner must be able to create there.
my $refused = $node->safe_psql('postgres', q{SET ROLE fleet_owner; SELECT hb_run_maintenance()->'errors'->0->>'error'});
like($refused, qr/cannot create partitions of public.heartbeats: role "fleet_owner" may not create tables in schema "public"/,
    'an owner without CREATE on the schema gets an error that says so');
$node->safe_psql('postgres', 'GRANT CREATE ON SCHEMA public TO fleet_owner');
my $summary = $node->safe_psql('postgres', q{SET ROLE fleet_owner; SELECT hb_run_maintenance()});
like($summary, qr/"errors": \[\]/, 'the first maintenance after the update runs without errors');
is($node->safe_psql('postgres', q{SELECT partdefid::regclass FROM pg_partitioned_table WHERE partrelid = 'heartbeats'::regclass}),
    'hb_default', 'it gives the table its catch-all partition');
is($node->safe_psql('postgres', q{SELECT count(*) FROM hb_partitions WHERE adopted}),
    '2', 'adopts the partitions made under 0.1');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM hb_partitions WHERE NOT adopted AND range_start > now()}),
    '7', 'and creates the partitions ahead');

# The updated extension against a fresh install of the current version.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION hb_lifecycle');
my $members = q{
    SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
    WHERE e.extname = 'hb_lifecycle' AND d.deptype = 'e' ORDER BY 1};
my $functions = q{
    SELECT p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '')
    FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
    JOIN pg_extension e ON e.oid = d.refobjid
    WHERE e.extname = 'hb_lifecycle' AND d.deptype = 'e' AND p.prokind = 'f' ORDER BY 1};
my $columns = q{
    SELECT a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'hb_lifecycle'
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v') ORDER BY 1};
my $constraints = q{
    SELECT c.conrelid::regclass || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
    FROM pg_constraint c
    JOIN pg_depend d ON d.objid = c.conrelid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'hb_lifecycle' ORDER BY 1};
my $security = q{
    SELECT c.relname || ' ' || c.relrowsecurity || ' ' || coalesce(c.relacl::text, '') || ' ' ||
           coalesce((SELECT string_agg(p.polname || ':' || p.polcmd::text || ':' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
                                       || ':' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''), ', ' ORDER BY p.polname)
                     FROM pg_policy p WHERE p.polrelid = c.oid), '')
    FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'hb_lifecycle'
    WHERE c.relkind IN ('r', 'S', 'v') ORDER BY 1};

# Compares database `db`, updated from `from`, with the fresh install;
# `owner` is the role granted the lifecycle there (only there).
sub same_as_fresh {
    my ($db, $from, $owner) = @_;
    is($node->safe_psql($db, $members), $node->safe_psql('fresh', $members),
        "updated from $from, the extension has the objects of a fresh install");
    (my $upgraded_functions = $node->safe_psql($db, $functions)) =~ s/,?$owner=X\/\w+//g;
    is($upgraded_functions, $node->safe_psql('fresh', $functions),
        '... with the same function definitions and privileges');
    is($node->safe_psql($db, $columns), $node->safe_psql('fresh', $columns),
        '... the same columns (ADD COLUMN puts new ones last, where a fresh install may not)');
    is($node->safe_psql($db, $constraints), $node->safe_psql('fresh', $constraints),
        '... the same constraints');
    is($node->safe_psql($db, $security), $node->safe_psql('fresh', $security),
        '... and the same privileges and row-level security on the tables');
}
same_as_fresh('postgres', '0.1', 'fleet_owner');

# From 0.2.
$node->safe_psql('postgres', 'CREATE DATABASE at02');
$node->safe_psql('at02', q{
    CREATE ROLE fleet_owner2;
    GRANT CREATE ON SCHEMA public TO fleet_owner2;
    CREATE EXTENSION hb_lifecycle VERSION '0.2';
    CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text)
        PARTITION BY RANGE (ts);
    ALTER TABLE heartbeats OWNER TO fleet_owner2;
});
$node->safe_psql('at02', q{SELECT hb_manage('heartbeats', premake => 2)});
$node->safe_psql('at02', q{INSERT INTO heartbeats VALUES (1, now(), 'at 0.2')});
like($node->safe_psql('at02', q{SET ROLE fleet_owner2; SELECT hb_run_maintenance()}), qr/"errors": \[\]/,
    'the current library runs the maintenance of a database still at 0.2');
($rc, $out, $err) = $node->psql('at02', 'ALTER EXTENSION hb_lifecycle UPDATE');
is($rc, 0, 'ALTER EXTENSION hb_lifecycle UPDATE from 0.2 works') or diag($err);
is($node->safe_psql('at02', q{SELECT extversion FROM pg_extension WHERE extname = 'hb_lifecycle'}),
    $current, "and brings it to $current");
is($node->safe_psql('at02', q{SELECT has_function_privilege('fleet_owner2', 'hb_archive_partition(text, boolean)', 'EXECUTE')}),
    't', 'the owner of a table managed under 0.2 may archive its partitions');
is($node->safe_psql('at02', q{SELECT status FROM device_last_status WHERE device_id = 1}), 'at 0.2',
    'device_last_status is kept');
same_as_fresh('at02', '0.2', 'fleet_owner2');

$node->stop;
done_testing();
