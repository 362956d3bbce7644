-- hb_manage() refuses what it cannot manage, with a clear error.
--
-- Each refused call here runs inside throws_ok's EXCEPTION block, i.e. in a
-- subtransaction that PostgreSQL rolls back whatever hb_manage did before
-- raising: this file cannot show that a refusal leaves nothing behind. The
-- regress test sql/hb_manage.sql makes the refused calls at top level.
BEGIN;
SELECT plan(58);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- The SQLSTATE, detail or hint of the error a statement raises (NULL if none).
CREATE FUNCTION pg_temp.error_field(q text, field text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; det text; hnt text;
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    RETURN CASE field WHEN 'sqlstate' THEN st WHEN 'detail' THEN det WHEN 'hint' THEN hnt END;
END $$;

-- A well-formed heartbeats table, used for the argument checks.
CREATE TABLE heartbeats (device_id bigint, ts timestamptz, status text)
    PARTITION BY RANGE (ts);
CREATE TABLE hb_2026_12_01 PARTITION OF heartbeats
    FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');

-- ---------------------------------------------------------------- NULL args
SELECT throws_ok($$SELECT hb_manage(NULL)$$, '22004',
    'hb_manage: parent must not be NULL', 'parent NULL is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', device_column => NULL)$$, '22004',
    'hb_manage: device_column must not be NULL', 'device_column NULL is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', time_column => NULL)$$, '22004',
    'hb_manage: time_column must not be NULL', 'time_column NULL is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', granularity => NULL)$$, '22004',
    'hb_manage: granularity must not be NULL', 'granularity NULL is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', premake => NULL)$$, '22004',
    'hb_manage: premake must not be NULL', 'premake NULL is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', retention => NULL)$$, '22004',
    'hb_manage: retention must not be NULL', 'retention NULL is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', last_status_table => NULL)$$, '22004',
    'hb_manage: last_status_table must not be NULL', 'last_status_table NULL is refused');
SELECT is(pg_temp.error_field($$SELECT hb_manage('heartbeats', premake => NULL)$$, 'hint'),
    'Omit the argument to use its default.', 'a NULL argument error hints at the default');
SELECT throws_ok($$SELECT hb_manage(0)$$, '42P01',
    'relation with OID 0 does not exist', 'a parent that does not exist is refused');

-- ------------------------------------------------------------ table shape
CREATE TABLE plain_hb (device_id bigint, ts timestamptz);
SELECT throws_ok($$SELECT hb_manage('plain_hb')$$, '42809',
    '"plain_hb" is not a partitioned table', 'a plain table is refused');
SELECT is(pg_temp.error_field($$SELECT hb_manage('plain_hb')$$, 'hint'),
    'Create the table with PARTITION BY RANGE (ts) and move the rows into it.',
    'the plain-table error says how to fix it');

CREATE TABLE list_hb (device_id bigint, ts timestamptz) PARTITION BY LIST (ts);
SELECT throws_ok($$SELECT hb_manage('list_hb')$$, '42P16',
    '"list_hb" must be partitioned by range of "ts" alone', 'LIST partitioning is refused');

CREATE TABLE hash_hb (device_id bigint, ts timestamptz) PARTITION BY HASH (device_id);
SELECT throws_ok($$SELECT hb_manage('hash_hb')$$, '42P16',
    '"hash_hb" must be partitioned by range of "ts" alone', 'HASH partitioning is refused');

CREATE TABLE multi_hb (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts, device_id);
SELECT throws_ok($$SELECT hb_manage('multi_hb')$$, '42P16',
    '"multi_hb" must be partitioned by range of "ts" alone',
    'a two-column range key is refused');

CREATE TABLE devkey_hb (device_id bigint, ts timestamptz) PARTITION BY RANGE (device_id);
SELECT throws_ok($$SELECT hb_manage('devkey_hb')$$, '42P16',
    '"devkey_hb" must be partitioned by range of "ts" alone',
    'a range key on another column is refused');

CREATE TABLE expr_hb (device_id bigint, ts timestamptz)
    PARTITION BY RANGE ((ts AT TIME ZONE 'UTC'));
SELECT throws_ok($$SELECT hb_manage('expr_hb')$$, '42P16',
    '"expr_hb" must be partitioned by range of "ts" alone',
    'a range key on an expression is refused');

SELECT throws_ok($$SELECT hb_manage('heartbeats', time_column => 'seen_at')$$, '42703',
    'column "seen_at" of "heartbeats" does not exist', 'a missing time column is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', device_column => 'sensor')$$, '42703',
    'column "sensor" of "heartbeats" does not exist', 'a missing device column is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', device_column => 'ts')$$, '22023',
    'hb_manage: device_column and time_column must be different columns',
    'the same column for device and time is refused');

-- ------------------------------------------------------------ column types
CREATE TABLE naive_hb (device_id bigint, ts timestamp) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('naive_hb')$$, '42804',
    'time column "ts" of "naive_hb" is timestamp without time zone',
    'timestamp without time zone is refused');
SELECT is(pg_temp.error_field($$SELECT hb_manage('naive_hb')$$, 'hint'),
    'Use timestamptz. A partition key cannot change type in place: create the table with '
    '"ts timestamptz" and copy the rows with ts AT TIME ZONE ''UTC''.',
    'the timestamp-without-time-zone error hints at timestamptz and how to migrate');

CREATE TABLE date_hb (device_id bigint, ts date) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('date_hb')$$, '42804',
    'time column "ts" of "date_hb" has type date', 'a date time column is refused');

CREATE TABLE numeric_hb (device_id numeric, ts timestamptz) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('numeric_hb')$$, '42804',
    'device column "device_id" of "numeric_hb" has type numeric, which hb_lifecycle does not support',
    'a numeric device column is refused');

CREATE TABLE bpchar_hb (device_id char(8), ts timestamptz) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('bpchar_hb')$$, '42804',
    'device column "device_id" of "bpchar_hb" has type character, which hb_lifecycle does not support',
    'a char(n) device column is refused');

CREATE TABLE json_hb (device_id jsonb, ts timestamptz) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('json_hb')$$, '42804',
    'device column "device_id" of "json_hb" has type jsonb, which hb_lifecycle does not support',
    'a jsonb device column is refused');

CREATE COLLATION pg_temp.hb_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE nd_hb (device_id text COLLATE pg_temp.hb_ci, ts timestamptz) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('nd_hb')$$, '0A000',
    'device column "device_id" of "nd_hb" uses a nondeterministic collation',
    'a device column with a nondeterministic collation is refused');

-- ------------------------------------------------------------ other args
SELECT throws_ok($$SELECT hb_manage('heartbeats', granularity => 'week')$$, '22023',
    'hb_manage: granularity must be ''day'' or ''month'', not ''week''',
    'granularity other than day|month is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', granularity => 'hour')$$, '22023',
    'hb_manage: granularity must be ''day'' or ''month'', not ''hour''',
    'granularity hour is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', premake => -1)$$, '22023',
    'hb_manage: premake must be between 0 and 1000, not -1', 'premake -1 is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', premake => 1001)$$, '22023',
    'hb_manage: premake must be between 0 and 1000, not 1001', 'premake 1001 is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', retention => '0')$$, '22023',
    'hb_manage: retention must be a positive interval', 'retention 0 is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', retention => '-1 day')$$, '22023',
    'hb_manage: retention must be a positive interval', 'a negative retention is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', last_status_table => '')$$, '22023',
    'hb_manage: last_status_table must not be empty', 'an empty last_status_table is refused');

-- ------------------------------------------------------------ prefixes
SELECT throws_ok($$SELECT hb_manage('heartbeats', partition_prefix => 'Hb')$$, '22023',
    'hb_manage: partition prefix "Hb" is not usable', 'an upper-case prefix is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', partition_prefix => '1hb')$$, '22023',
    'hb_manage: partition prefix "1hb" is not usable', 'a prefix starting with a digit is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', partition_prefix => 'hb-x')$$, '22023',
    'hb_manage: partition prefix "hb-x" is not usable', 'a prefix with a dash is refused');
SELECT throws_ok($$SELECT hb_manage('heartbeats', partition_prefix => '')$$, '22023',
    'hb_manage: partition prefix "" is not usable', 'an empty prefix is refused');
SELECT throws_ok(format('SELECT hb_manage(%L, partition_prefix => %L)', 'heartbeats', repeat('a', 53)),
    '22023', format('hb_manage: partition prefix "%s" is not usable', repeat('a', 53)),
    'a 53-character prefix is refused');

-- ------------------------------------------------------------ last-status table
CREATE TABLE taken_status (x int);
SELECT throws_ok($$SELECT hb_manage('heartbeats', last_status_table => 'taken_status')$$, '42P07',
    'relation "public.taken_status" already exists',
    'an existing last-status table is refused');

-- ------------------------------------------------------------ accepted boundaries
-- The NULL prefix defaults to hb for the first table managed in the
-- database: what follows needs hb_config empty when ok_a is managed.
SELECT is((SELECT count(*) FROM hb_config), 0::bigint,
    'precondition: hb_config is empty before this file manages its first table');
CREATE TABLE ok_a (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE ok_b (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE ok_c (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE ok_d (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE ok_e (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
SELECT lives_ok($$SELECT hb_manage('ok_a', premake => 0, last_status_table => 'ok_a_status')$$,
    'premake 0 is accepted');
SELECT lives_ok($$SELECT hb_manage('ok_b', premake => 1000, granularity => 'month',
    last_status_table => 'ok_b_status')$$, 'premake 1000 and granularity month are accepted');
SELECT lives_ok($$SELECT hb_manage('ok_c', retention => '1 second', last_status_table => 'ok_c_status')$$,
    'retention 1 second is accepted');
SELECT lives_ok(format('SELECT hb_manage(%L, last_status_table => %L, partition_prefix => %L)',
    'ok_d', 'ok_d_status', repeat('z', 52)), 'a 52-character prefix is accepted');
SELECT lives_ok($$SELECT hb_manage('ok_e', last_status_table => 'ok_e_status', partition_prefix => '_e9')$$,
    'a prefix starting with an underscore is accepted');
SELECT results_eq(
    $$SELECT parent::text, premake, granularity, retention, partition_prefix FROM hb_config
      WHERE parent IN ('ok_a'::regclass, 'ok_b', 'ok_c', 'ok_d', 'ok_e') ORDER BY parent::text$$,
    $$VALUES ('ok_a', 0, 'day', interval '90 days', 'hb'),
             ('ok_b', 1000, 'month', interval '90 days', 'ok_b'),
             ('ok_c', 7, 'day', interval '1 second', 'ok_c'),
             ('ok_d', 7, 'day', interval '90 days', repeat('z', 52)),
             ('ok_e', 7, 'day', interval '90 days', '_e9')$$,
    'accepted calls are recorded with their arguments; NULL prefix: hb first, then the table name');

-- A prefix in use, explicit or defaulted from the table name.
SELECT throws_ok($$SELECT hb_manage('heartbeats', partition_prefix => 'hb')$$, '42710',
    'partition prefix "hb" is already used by "public.ok_a"', 'a prefix in use is refused');
CREATE TABLE "_e9" (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('_e9', last_status_table => 'e9_status')$$, '42710',
    'partition prefix "_e9" is already used by "public.ok_e"',
    'a default prefix (the table name) already in use is refused');
CREATE TABLE "HB_Upper" (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT hb_manage('"HB_Upper"', last_status_table => 'upper_status')$$, '22023',
    'hb_manage: partition prefix "HB_Upper" is not usable',
    'a table name that is not a usable prefix must be replaced by partition_prefix');
SELECT lives_ok($$SELECT hb_manage('"HB_Upper"', last_status_table => 'upper_status',
    partition_prefix => 'hb_upper')$$, '... and works with an explicit prefix');

-- ------------------------------------------------------------ duplicates
CREATE TABLE dup_hb (device_id bigint, ts timestamptz, status text) PARTITION BY RANGE (ts);
CREATE TABLE dup_hb_p PARTITION OF dup_hb FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
INSERT INTO dup_hb VALUES (7, '2026-12-01 10:00', 'a'), (7, '2026-12-01 10:00', 'b'),
    (7, '2026-12-01 10:00', 'c'), (8, '2026-12-01 11:00', 'a'), (8, '2026-12-01 11:00', 'b'),
    (9, '2026-12-01 12:00', 'a');
SELECT throws_ok($$SELECT hb_manage('dup_hb', last_status_table => 'dup_status')$$, '23505',
    'cannot make (device_id, ts) unique on "dup_hb": 2 (device, time) pairs are stored more than once',
    'duplicates (device, time) are refused with a count');
SELECT is(pg_temp.error_field($$SELECT hb_manage('dup_hb', last_status_table => 'dup_status')$$, 'detail'),
    'For example device 7 at 2026-12-01 10:00:00+00 is stored 3 times.',
    'the duplicates error names an example');
SELECT is(pg_temp.error_field($$SELECT hb_manage('dup_hb', last_status_table => 'dup_status')$$, 'hint'),
    'Delete the extra copies (keep one row per device and time), then call hb_manage again.',
    'the duplicates error says what to do');

-- An invalid unique index (created ON ONLY the parent, not attached).
CREATE TABLE inv_hb (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE inv_hb_p PARTITION OF inv_hb FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
CREATE UNIQUE INDEX inv_hb_key ON ONLY inv_hb (device_id, ts);
SELECT throws_ok($$SELECT hb_manage('inv_hb', last_status_table => 'inv_status')$$, '55000',
    'the unique index on (device_id, ts) of "inv_hb" is not valid',
    'an invalid unique (device, time) index is refused');

-- ------------------------------------------------------------ trees
CREATE TABLE tree_hb (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE tree_2026_12 PARTITION OF tree_hb
    FOR VALUES FROM ('2026-12-01') TO ('2027-01-01') PARTITION BY RANGE (ts);
CREATE TABLE tree_2026_12_01 PARTITION OF tree_2026_12
    FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
SELECT lives_ok($$SELECT hb_manage('tree_hb', last_status_table => 'tree_status')$$,
    'a two-level tree can be managed');
SELECT throws_ok($$SELECT hb_manage('tree_2026_12', last_status_table => 'sub_status')$$, '55000',
    '"tree_2026_12" is a partition of managed table "tree_hb"',
    'a partition of a managed table is refused');

CREATE TABLE tree2_hb (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE tree2_2026_12 PARTITION OF tree2_hb
    FOR VALUES FROM ('2026-12-01') TO ('2027-01-01') PARTITION BY RANGE (ts);
SELECT hb_manage('tree2_2026_12', last_status_table => 'tree2_sub_status', partition_prefix => 'tree2_sub');
SELECT throws_ok($$SELECT hb_manage('tree2_hb', last_status_table => 'tree2_status')$$, '55000',
    'partition "tree2_2026_12" of "tree2_hb" is itself managed',
    'a table one of whose partitions is managed is refused');

CREATE EXTENSION file_fdw;
CREATE SERVER hb_files FOREIGN DATA WRAPPER file_fdw;
CREATE TABLE ft_hb (device_id bigint, ts timestamptz) PARTITION BY RANGE (ts);
CREATE FOREIGN TABLE ft_hb_p PARTITION OF ft_hb FOR VALUES FROM ('2026-12-01') TO ('2026-12-02')
    SERVER hb_files OPTIONS (filename '/dev/null');
SELECT throws_ok($$SELECT hb_manage('ft_hb', last_status_table => 'ft_status')$$, '0A000',
    'partition "ft_hb_p" of "ft_hb" is a foreign table', 'a foreign-table partition is refused');

SELECT * FROM finish();
ROLLBACK;
