#!/usr/bin/env bash
# The read path: device_last_status (kept by hb_lifecycle's triggers)
# against the legacy queries on the partitioned heartbeats table, in one
# run on one cluster, on one table grown in stages (10, 30 and 90 daily
# partitions by default) so that the data is loaded once:
#   per-device read   SELECT * FROM device_last_status WHERE device_id = $1
#                     vs SELECT * FROM heartbeats WHERE device_id = $1
#                     ORDER BY ts DESC LIMIT 1; and through the function,
#                     SELECT * FROM hb_device_status($1::bigint) with
#                     hb_lifecycle.read_from_last_status on vs off. pgbench,
#                     1 client, prepared statements, a random device per
#                     read; the variants in turn, the order rotating every
#                     repetition; ms per read (1 / tps), median. The two
#                     SQL reads also --pipeline at a time per round trip
#                     (pgbench's pipeline mode): what the server spends per
#                     read, without the client's wait for each answer. Plus
#                     EXPLAIN (ANALYZE, BUFFERS) of both SQL reads for a
#                     few devices: planning and execution time, buffers.
#   whole-fleet read  SELECT * FROM device_last_status vs SELECT DISTINCT
#                     ON (device_id) * FROM heartbeats ORDER BY device_id,
#                     ts DESC, timed in the server (EXPLAIN (ANALYZE,
#                     TIMING OFF, BUFFERS) execution time: the rows are
#                     produced, not sent), the fast one also as psql
#                     receives it (\timing, rows to a file); and
#                     hb_fleet_status() on vs off, timed by psql (\timing)
#                     with the rows written to files, which are compared.
#                     The legacy reads are slow: fewer repetitions
#                     (--legacy-fleet-reps), after the other measures (their
#                     sorts' temporary files push the history out of the
#                     OS cache).
#   flat              a copy of device_last_status made at the first stage
#                     (control_last_status) is read like it, in the same
#                     rotation, at every stage: the last-status reads over
#                     the control's tell whether they grow with the history
#                     whatever the machine's load does meanwhile.
#   hb_reconcile()    with no drift, each run in a new session (as the
#                     hourly job runs it), median of 5; each must return 0.
#   hb_compare_read_paths(--sample) rows.
#   correctness       the fast and the legacy fleet reads return the same
#                     rows (a FULL JOIN that counts the differences), and
#                     hb_fleet_status() returns the same rows on and off;
#                     a difference fails the run (after the report).
# The table: 20,000 devices, one heartbeat per device every 30 minutes (48
# a day: 960,000 rows a daily partition), 7 columns with a small jsonb
# payload, unique (device_id, ts). Stage 1 loads the newest 10 days (the
# last one is today's, up to now), runs hb_manage (premake 7, so 7 empty
# partitions ahead and the catch-all come with it) and CALL
# hb_backfill_last_status(since => NULL); each later stage adds the older
# days and runs the backfill again (timed: it reads every partition). Days
# are loaded into standalone tables (wal_level = minimal, created and
# filled in one transaction: no WAL for their data), indexed, vacuumed and
# attached with a CHECK constraint matching their bounds (no validation
# scan), --jobs at a time: the fastest of the ways tried.
# About 27 minutes with the defaults on 2 shared cores (loading the 86M
# rows: ~3 of them; the legacy fleet reads at 90 partitions: ~9).
# Needs ~25 GB free (14 GB of data, the legacy read's sort spills ~9 GB).
#
#   test/bench/read_path/run.sh [--devices N] [--per-day N] [--stages "10 30 90"]
#       [--reps N] [--seconds S] [--pipeline N] [--fleet-reps N]
#       [--legacy-fleet-reps N] [--sample N] [--jobs N]
# (defaults: 20000 devices, 48 a day, stages "10 30 90", 5 repetitions of
# 5 s of each per-device variant, 50 reads per pipelined round trip, 11
# fleet reads of the last-status table and 3 of the legacy query per
# variant, hb_compare_read_paths(1000), 2 loaders at a time).
#
# Needs root on a fresh machine (it installs packages, builds and installs
# the extension, and runs a scratch cluster as the postgres user).
# HB_SKIP_BUILD=1 uses the installed hb_lifecycle. HB_BENCH_MD=FILE writes
# the result tables as markdown to FILE (they are printed either way).
# HB_BENCH_KEEP=1 keeps the cluster's data directory at the end.
# HB_BENCH_DIR (default /tmp/bench_read_path), HB_BENCH_PORT (55471).
set -euo pipefail
source "$(cd "$(dirname "$0")/../../.." && pwd)/scripts/lib.sh"

DEVICES=20000 PER_DAY=48 STAGES="10 30 90" REPS=5 SECONDS_PER_RUN=5 FLEET_REPS=11 LEGACY_FLEET_REPS=3
SAMPLE=1000 JOBS=2 PIPELINE=50
while [ $# -gt 0 ]; do
    case "$1" in
        --devices) DEVICES="$2"; shift 2 ;;
        --per-day) PER_DAY="$2"; shift 2 ;;
        --stages) STAGES="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --fleet-reps) FLEET_REPS="$2"; shift 2 ;;
        --legacy-fleet-reps) LEGACY_FLEET_REPS="$2"; shift 2 ;;
        --sample) SAMPLE="$2"; shift 2 ;;
        --jobs) JOBS="$2"; shift 2 ;;
        --pipeline) PIPELINE="$2"; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done
prev=0
for n in $STAGES; do
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt "$prev" ] || die "--stages must be increasing day counts, like \"10 30 90\""
    prev=$n
done
STAGE_LIST=($STAGES)
FIRST=${STAGE_LIST[0]} LAST=${STAGE_LIST[-1]}
for v in DEVICES PER_DAY REPS SECONDS_PER_RUN FLEET_REPS LEGACY_FLEET_REPS SAMPLE JOBS PIPELINE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done

T_RUN=$EPOCHREALTIME
ensure_packages
build_and_install
COMMIT=$(git -C "$HB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$HB_ROOT" status --porcelain -- src sql Makefile 2>/dev/null | head -1)
SO="$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir)/hb_lifecycle.so"
SO_STAMP=$(stat -c '%Y %s' "$SO")

DIR="${HB_BENCH_DIR:-/tmp/bench_read_path}"
PORT="${HB_BENCH_PORT:-55471}"
DB=postgres

stop_cluster "$DIR"
rm -rf "$DIR"
mkdir -p "$DIR"
chown postgres:postgres "$DIR"

# Room: ~150 bytes a row of heap and index, ~110 more for the temporary
# files of the legacy fleet read's sort, 2 GB to spare.
NEED_GB=$(awk -v r="$((LAST * DEVICES * PER_DAY))" 'BEGIN {printf "%.0f", r * 260 / 1e9 + 2}')
FREE_GB=$(df -P -B1G "$DIR" | awk 'NR == 2 {print $4}')
[ "$FREE_GB" -ge "$NEED_GB" ] ||
    die "$DIR has $FREE_GB GB free, the run needs about $NEED_GB GB (use fewer --stages days or --devices)"
log "$FREE_GB GB free in $DIR, about $NEED_GB GB needed"

cleanup() {
    local rc=$?
    stop_cluster "$DIR"
    if [ "$rc" = 0 ] && [ "${HB_BENCH_KEEP:-0}" != 1 ]; then rm -rf "$DIR/data"; fi
}
trap cleanup EXIT

# autovacuum off: no vacuum lands in one measure and not another (the
# partitions are vacuumed and analyzed once loaded). shared_buffers 1GB:
# the last-status table and the upper levels of every index stay in it, the
# history does not (14 GB at 90 days: it is read from the OS cache).
# wal_level = minimal only makes the load faster (a table created and
# filled in one transaction writes no WAL); a checkpoint only on demand.
# Everything else is PostgreSQL's defaults (work_mem 4MB, 2 parallel
# workers per gather, jit on).
start_cluster "$DIR" "$PORT" "hb_lifecycle.database = '$DB'" \
    "autovacuum = off" "shared_buffers = 1GB" "max_wal_size = 16GB" "checkpoint_timeout = 1h" \
    "wal_level = minimal" "max_wal_senders = 0" "log_line_prefix = '%m [%p] %d '"

q() {  # q SQL...: runs each SQL (autocommit) in $DB, prints the rows unaligned
    local args=(-c "SET client_min_messages = warning")
    local s
    for s in "$@"; do args+=(-c "$s"); done
    pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}"
}
timed() {  # timed SQL...: runs each SQL (autocommit), prints their total ms (psql \timing)
    local args=(-c "SET client_min_messages = warning" -c '\timing on')
    local s
    for s in "$@"; do args+=(-c "$s"); done
    pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}" > "$DIR/timed.out" ||
        { cat "$DIR/timed.out" >&2; die "failed: $*"; }
    awk '/^Time: / {s += $2} END {printf "%.1f\n", s}' "$DIR/timed.out"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { sort -g | tail -1; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
grp() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

q "ALTER DATABASE $DB SET TimeZone = 'UTC'" "CREATE EXTENSION hb_lifecycle"
q "CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text,
       battery_pct smallint, rssi_dbm smallint, firmware text, payload jsonb) PARTITION BY RANGE (ts)" \
  "CREATE UNIQUE INDEX ON heartbeats (device_id, ts)"
# One instant for the whole run: today's partition holds the heartbeats up to it.
NOW_TS=$(q "SELECT now()")
TODAY=$(q "SELECT date_trunc('day', '$NOW_TS'::timestamptz)::date")

# ---- loading -------------------------------------------------------------

# One day into a standalone table, created and filled in one transaction
# (wal_level = minimal: its data is not WAL-logged), in time order (at each
# slot every device, spread over the slot), the unique index built after
# the rows, a CHECK constraint matching the partition's bounds (ATTACH then
# skips its validation scan), vacuumed (hint bits and visibility map set
# now, not by the first reads), attached, the constraint dropped.
cat > "$DIR/load_day.sql" <<'SQL'
BEGIN;
CREATE TABLE :"t" (LIKE heartbeats INCLUDING DEFAULTS);
INSERT INTO :"t"
SELECT * FROM (
    SELECT x.d::bigint AS device_id,
           :'day'::timestamptz + x.k * (interval '86400 seconds' / :per_day)
               + (x.d - 1) * (interval '86400 seconds' / :per_day / :devices) AS ts,
           CASE WHEN (x.d * 7 + x.k) % 997 = 0 THEN 'offline' WHEN (x.d + x.k) % 101 = 0 THEN 'low_battery'
                WHEN (x.d + x.k) % 13 = 0 THEN 'warn' ELSE 'ok' END AS status,
           (100 - (x.k + x.d) % 100)::smallint AS battery_pct, (-50 - (x.d * 3 + x.k) % 40)::smallint AS rssi_dbm,
           'fw-1.' || x.d % 7 || '.' || x.d % 3 AS firmware,
           jsonb_build_object('temp_c', 18 + (x.d * 7 + x.k) % 80 / 10.0, 'uptime_s', x.k * 1800 + x.d % 1000,
                              'net', CASE WHEN x.d % 5 = 0 THEN 'wifi' ELSE 'lte' END) AS payload
    FROM generate_series(0, :per_day * :devices - 1) i,
         LATERAL (SELECT i / :devices AS k, i % :devices + 1 AS d) x) s
WHERE s.ts <= :'until';
\echo rows :ROW_COUNT
CREATE UNIQUE INDEX ON :"t" (device_id, ts);
ALTER TABLE :"t" ADD CONSTRAINT :"c" CHECK (ts >= :'day'::timestamptz AND ts < :'next'::timestamptz);
COMMIT;
VACUUM :"t";
ALTER TABLE heartbeats ATTACH PARTITION :"t" FOR VALUES FROM (:'day') TO (:'next');
ALTER TABLE :"t" DROP CONSTRAINT :"c";
SQL
chown postgres "$DIR/load_day.sql"
mkdir -p "$DIR/load"
chown postgres "$DIR/load"

load_day() {  # load_day OFFSET: the day OFFSET days before today
    local o="$1" day next t
    day=$(date -u -d "$TODAY - $o days" +%Y-%m-%d)
    next=$(date -u -d "$TODAY - $o days + 1 day" +%Y-%m-%d)
    t="hb_${day//-/_}"
    pg_psql "$DIR" "$PORT" "$DB" -At -v t="$t" -v c="${t}_load_bounds" -v day="$day" -v next="$next" \
        -v until="$NOW_TS" -v per_day="$PER_DAY" -v devices="$DEVICES" -f "$DIR/load_day.sql" \
        > "$DIR/load/$o.out" 2>&1 && touch "$DIR/load/$o.ok"
}

load_days() {  # load_days FIRST LAST: the days FIRST..LAST days before today, JOBS at a time
    local o
    for o in $(seq "$1" "$2"); do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
        load_day "$o" &
    done
    wait
    for o in $(seq "$1" "$2"); do
        [ -e "$DIR/load/$o.ok" ] || { cat "$DIR/load/$o.out" >&2; die "loading the day $o days before $TODAY failed"; }
    done
    awk '$1 == "rows" {s += $2} END {print s + 0}' $(for o in $(seq "$1" "$2"); do echo "$DIR/load/$o.out"; done)
}

# ---- measures ------------------------------------------------------------

declare -A R  # measure,stage -> space-separated values of every run
declare -A S  # measure,stage -> a single value

# pgbench scripts: one read of a random device per transaction.
cat > "$DIR/read_ls.sql" <<SQL
\\set id random(1, $DEVICES)
SELECT * FROM device_last_status WHERE device_id = :id;
SQL
cat > "$DIR/read_ctl.sql" <<SQL
\\set id random(1, $DEVICES)
SELECT * FROM control_last_status WHERE device_id = :id;
SQL
cat > "$DIR/read_legacy.sql" <<SQL
\\set id random(1, $DEVICES)
SELECT * FROM heartbeats WHERE device_id = :id ORDER BY ts DESC LIMIT 1;
SQL
cat > "$DIR/read_fn.sql" <<SQL
\\set id random(1, $DEVICES)
SELECT * FROM hb_device_status(:id::bigint);
SQL
# The same reads, PIPELINE of them per round trip (pgbench's pipeline
# mode): what the server spends per read, without one client's wait for
# each answer (on this VM a round trip costs 20 to 80 us depending on
# whether the other vCPU is busy).
for t in ctl ls legacy; do
    case "$t" in
        ctl) sql="SELECT * FROM control_last_status WHERE device_id = :id%d;" ;;
        ls) sql="SELECT * FROM device_last_status WHERE device_id = :id%d;" ;;
        legacy) sql="SELECT * FROM heartbeats WHERE device_id = :id%d ORDER BY ts DESC LIMIT 1;" ;;
    esac
    {
        for i in $(seq 1 "$PIPELINE"); do echo "\\set id$i random(1, $DEVICES)"; done
        echo '\startpipeline'
        for i in $(seq 1 "$PIPELINE"); do printf "$sql\\n" "$i"; done
        echo '\endpipeline'
    } > "$DIR/read_${t}_p.sql"
done
chown postgres "$DIR"/read_*.sql

DEVICE_VARIANTS=(ctl ls legacy fn_on fn_off ctl_p ls_p legacy_p)
pgb() {  # pgb VARIANT SECONDS: ms per read (1000 / tps) of SECONDS of pgbench
    local v="$1" s="$2" script opts=()
    case "$v" in
        ctl_p | ls_p | legacy_p) script=read_$v ;;
        ctl) script=read_ctl ;; ls) script=read_ls ;; legacy) script=read_legacy ;; fn_on) script=read_fn ;;
        fn_off) script=read_fn opts=(PGOPTIONS="-c hb_lifecycle.read_from_last_status=off") ;;
    esac
    as_pg env "${opts[@]}" pgbench -h "$DIR" -p "$PORT" -n -M prepared -c 1 -T "$s" -f "$DIR/$script.sql" "$DB" \
        > "$DIR/pgbench.out" 2> "$DIR/pgbench.err" ||
        { cat "$DIR/pgbench.out" "$DIR/pgbench.err" >&2; die "pgbench failed ($v)"; }
    local per=1
    case "$v" in *_p) per=$PIPELINE ;; esac
    awk -v per="$per" '/^tps = / {printf "%.5f\n", 1000 / $3 / per}' "$DIR/pgbench.out"
}

measure_device() {  # measure_device N: the per-device reads (and the control), rotating
    local n="$1" rep i v k=${#DEVICE_VARIANTS[@]}
    log "[$n] per-device reads: a 2 s warm-up of each, then $REPS x ${SECONDS_PER_RUN} s of each, rotating"
    for v in "${DEVICE_VARIANTS[@]}"; do pgb "$v" 2 >/dev/null; done
    for rep in $(seq 1 "$REPS"); do
        for i in $(seq 0 $((k - 1))); do
            v=${DEVICE_VARIANTS[$(( (i + rep - 1) % k ))]}
            R[dev_$v,$n]+="$(pgb "$v" "$SECONDS_PER_RUN") "
        done
    done
}

# EXPLAIN (ANALYZE, BUFFERS) of both per-device SQL reads for 7 devices
# (one session, a warm-up read first): planning ms, execution ms, buffers
# (shared hit + read) of the plan's top node.
measure_explain_device() {
    local n="$1" which sql ids
    ids=$(q "SELECT string_agg((1 + floor(random() * $DEVICES))::int::text, ' ') FROM generate_series(1, 7)")
    for which in ls legacy; do
        local args=(-c "SELECT count(*) FROM heartbeats WHERE device_id = 1" -c "SELECT count(*) FROM device_last_status WHERE device_id = 1")
        local id
        for id in $ids; do
            if [ "$which" = ls ]; then sql="SELECT * FROM device_last_status WHERE device_id = $id"
            else sql="SELECT * FROM heartbeats WHERE device_id = $id ORDER BY ts DESC LIMIT 1"; fi
            args+=(-c "EXPLAIN (ANALYZE, BUFFERS) $sql")
        done
        pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}" > "$DIR/explain_dev_${which}_$n.txt"
        R[plan_$which,$n]=$(awk '/^Planning Time:/ {printf "%s ", $3}' "$DIR/explain_dev_${which}_$n.txt")
        R[exec_$which,$n]=$(awk '/^Execution Time:/ {printf "%s ", $3}' "$DIR/explain_dev_${which}_$n.txt")
        # The first Buffers line after each plan's first line is its top node's.
        local bufs
        bufs=$(awk '/^(Limit|Index Scan|Result)/ {top = 1} top && /Buffers: shared/ {
                h = 0; r = 0; if (match($0, /hit=[0-9]+/)) h = substr($0, RSTART + 4, RLENGTH - 4)
                if (match($0, /read=[0-9]+/)) r = substr($0, RSTART + 5, RLENGTH - 5)
                print h + r, r; top = 0 }' "$DIR/explain_dev_${which}_$n.txt")
        R[buf_$which,$n]=$(echo "$bufs" | awk '{printf "%s ", $1}')
        R[bufread_$which,$n]=$(echo "$bufs" | awk '{printf "%s ", $2}')
    done
    S[devplan,$n]=$(awk '/\(cost=/ {print; c++} c >= 3 {exit}' "$DIR/explain_dev_legacy_$n.txt" |
        sed 's/  (cost.*//; s/^ *//; s/^->  //; s/ on .*//; s/ using .*//' | paste -sd '<' | sed 's/</ <- /g')
    S[devscans,$n]=$(awk '/^Planning/ {exit} /Index Scan|Seq Scan|Index Only Scan/ {c++} END {print c + 0}' "$DIR/explain_dev_legacy_$n.txt")
}

FLEET_FAST_SQL="SELECT * FROM device_last_status"
FLEET_LEGACY_SQL="SELECT DISTINCT ON (device_id) * FROM heartbeats ORDER BY device_id, ts DESC"

explain_fleet() {  # explain_fleet KEY N RUNS SQL [warm-up]: EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) RUNS times, one session
    local key="$1" n="$2" runs="$3" sql="$4" warm="${5:-}" args=() i
    [ -n "$warm" ] && args+=(-c "EXPLAIN (ANALYZE, TIMING OFF) $sql")
    for i in $(seq 1 "$runs"); do args+=(-c "EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) $sql"); done
    pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}" > "$DIR/explain_${key}_$n.txt"
    local skip=0
    [ -n "$warm" ] && skip=1
    R[$key,$n]=$(awk -v skip=$skip '/^Execution Time:/ {if (++c > skip) printf "%s ", $3}' "$DIR/explain_${key}_$n.txt")
    R[${key}_plan,$n]=$(awk -v skip=$skip '/^Planning Time:/ {if (++c > skip) printf "%s ", $3}' "$DIR/explain_${key}_$n.txt")
}

explain_pair() {  # explain_pair KEY1 SQL1 KEY2 SQL2 N RUNS: both alternating in one session (a warm-up of each first)
    local k1="$1" s1="$2" k2="$3" s2="$4" n="$5" runs="$6" i
    local args=(-c "EXPLAIN (ANALYZE, TIMING OFF) $s1" -c "EXPLAIN (ANALYZE, TIMING OFF) $s2")
    for i in $(seq 1 "$runs"); do
        args+=(-c "EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) $s1" -c "EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) $s2")
    done
    pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}" > "$DIR/explain_${k1}_$n.txt"
    R[$k1,$n]=$(awk '/^Execution Time:/ {if (++c > 2 && c % 2 == 1) printf "%s ", $3}' "$DIR/explain_${k1}_$n.txt")
    R[$k2,$n]=$(awk '/^Execution Time:/ {if (++c > 2 && c % 2 == 0) printf "%s ", $3}' "$DIR/explain_${k1}_$n.txt")
    R[${k1}_plan,$n]=$(awk '/^Planning Time:/ {if (++c > 2 && c % 2 == 1) printf "%s ", $3}' "$DIR/explain_${k1}_$n.txt")
}

fleet_psql() {  # fleet_psql KEY N RUNS on|off SQL [warm-up]: psql \timing of SQL, rows to files, one session
    local key="$1" n="$2" runs="$3" guc="$4" sql="$5" warm="${6:-}" i first=1
    local args=(-c "SET hb_lifecycle.read_from_last_status = $guc" -c '\timing on')
    [ -n "$warm" ] && first=0
    for i in $(seq "$first" "$runs"); do
        args+=(-c "\\o $DIR/fleet/${key}_${n}_$i.out" -c "$sql")
    done
    pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}" > "$DIR/fleet/$key.time" 2> "$DIR/fleet/$key.err" ||
        { cat "$DIR/fleet/$key.err" >&2; die "$sql failed (read_from_last_status $guc)"; }
    R[$key,$n]=$(awk -v skip=$((1 - first)) '/^Time: / {if (++c > skip) printf "%s ", $2}' "$DIR/fleet/$key.time")
}

measure_fleet() {
    local n="$1" f
    mkdir -p "$DIR/fleet"
    chown postgres "$DIR/fleet"
    rm -f "$DIR"/fleet/*
    log "[$n] fleet reads: last-status $FLEET_REPS runs each (after a warm-up), legacy $LEGACY_FLEET_REPS runs each"
    explain_pair fleet_ls "$FLEET_FAST_SQL" fleet_ctl "SELECT * FROM control_last_status" "$n" "$FLEET_REPS"
    fleet_psql fleet_ls_psql "$n" "$FLEET_REPS" on "$FLEET_FAST_SQL" warm
    fleet_psql fleet_fn_on "$n" "$FLEET_REPS" on "SELECT * FROM hb_fleet_status()" warm
    log "[$n] legacy fleet read, SQL (EXPLAIN ANALYZE)"
    explain_fleet fleet_legacy "$n" "$LEGACY_FLEET_REPS" "$FLEET_LEGACY_SQL"
    log "[$n] legacy fleet read, hb_fleet_status() with read_from_last_status off"
    fleet_psql fleet_fn_off "$n" "$LEGACY_FLEET_REPS" off "SELECT * FROM hb_fleet_status()"
    # Every output of hb_fleet_status(), on and off, holds the same rows.
    S[fnsums,$n]=$(for f in "$DIR"/fleet/fleet_fn_*_"$n"_*.out; do
        [ "$f" = "$DIR/fleet/fleet_fn_on_${n}_0.out" ] || sort "$f" | md5sum | cut -c1-32; done | sort | uniq -c | awk '{printf "%s ", $1}')
    S[fnrows,$n]=$(wc -l < "$DIR/fleet/fleet_fn_off_${n}_1.out")
    # The legacy plan, condensed: its nodes down to the scans, and the scans counted.
    S[fleetplan,$n]=$(awk '/^Planning/ {exit} /\(cost=/ {print} /Seq Scan|Index Scan|Index Only Scan/ {exit}' "$DIR/explain_fleet_legacy_$n.txt" |
        sed 's/  (cost.*//; s/^ *//; s/^->  //; s/ on .*//; s/ using .*//' | paste -sd '<' | sed 's/</ <- /g')
    S[fleetscans,$n]=$(awk '/^Planning/ {exit} /Seq Scan|Index Scan|Index Only Scan/ {c++} END {print c + 0}' "$DIR/explain_fleet_legacy_$n.txt")
    S[fleettemp,$n]=$(awk '/^Planning/ {exit} /Disk: [0-9]+kB/ {for (i = 1; i <= NF; i++) if ($i == "Disk:") {v = $(i + 1); sub(/kB/, "", v); s += v}} END {printf "%.0f", s / 1024}' "$DIR/explain_fleet_legacy_$n.txt")
}

measure_reconcile() {  # 5 runs, each in a new session; each must repair 0
    local n="$1" i v
    log "[$n] hb_reconcile() with no drift, 5 runs"
    for i in 1 2 3 4 5; do
        R[reconcile,$n]+="$(timed "SELECT hb_reconcile()") "
        v=$(awk '!/^Time: / && NF {print; exit}' "$DIR/timed.out")
        R[reconcile_rows,$n]+="$v "
        [ "$v" = 0 ] || die "hb_reconcile() repaired $v rows at $n partitions, not 0"
    done
}

measure_compare() {
    local n="$1"
    log "[$n] hb_compare_read_paths($SAMPLE)"
    q "SELECT path, reads, round(p50_ms::numeric, 3), round(p95_ms::numeric, 3), round(p99_ms::numeric, 3),
              round(max_ms::numeric, 3), round(buffers_per_read::numeric, 1), mismatches
       FROM hb_compare_read_paths($SAMPLE)" > "$DIR/compare_$n.txt"
    S[compare,$n]=$(cat "$DIR/compare_$n.txt")
}

measure_correctness() {
    local n="$1"
    log "[$n] correctness: device_last_status against the legacy fleet read (FULL JOIN)"
    S[diff,$n]=$(q "SELECT count(*) FILTER (WHERE l.device_id IS NULL OR h.device_id IS NULL
                        OR (l.ts, l.status, l.battery_pct, l.rssi_dbm, l.firmware, l.payload)
                           IS DISTINCT FROM (h.ts, h.status, h.battery_pct, h.rssi_dbm, h.firmware, h.payload)),
                      count(l.device_id), count(h.device_id)
                    FROM device_last_status l FULL JOIN ($FLEET_LEGACY_SQL) h ON h.device_id = l.device_id" | tr '|' ' ')
}

# ---- the stages ----------------------------------------------------------

LOADAVG=""
prev=0
TOTAL_ROWS=0
for n in "${STAGE_LIST[@]}"; do
    LOADAVG+="$(cut -d' ' -f1 /proc/loadavg) "
    log "[$n] loading days $prev..$((n - 1)) before $TODAY ($((n - prev)) days, $JOBS at a time)"
    t0=$(now)
    rows=$(load_days "$prev" "$((n - 1))")
    t1=$(now)
    TOTAL_ROWS=$((TOTAL_ROWS + rows))
    S[load_rows,$n]=$rows S[load_s,$n]=$(elapsed "$t0" "$t1") S[rows,$n]=$TOTAL_ROWS
    log "[$n] $(grp "$rows") rows in ${S[load_s,$n]} s"
    if [ "$prev" = 0 ]; then
        S[manage_ms,$n]=$(timed "SELECT hb_manage('heartbeats', premake => 7, retention => '365 days')")
    else
        # Adopt the partitions attached by hand (hb_partitions; the triggers they got at ATTACH).
        timed "SELECT count(*) FROM hb_create_partitions('heartbeats', '$TODAY'::timestamptz - interval '$((n - 1)) days', '$NOW_TS')" >/dev/null
    fi
    log "[$n] CALL hb_backfill_last_status(since => NULL)"
    S[backfill_ms,$n]=$(timed "CALL hb_backfill_last_status(since => NULL, parent => 'heartbeats', batch_size => 5000)")
    S[backfill_rows,$n]=$(awk '!/^Time: / && NF {print; exit}' "$DIR/timed.out")
    [ -n "$(q "SELECT backfill_done_at FROM hb_config WHERE parent = 'heartbeats'::regclass")" ] ||
        die "hb_config.backfill_done_at is not set after hb_backfill_last_status"
    if [ "$prev" = 0 ]; then
        # The control: a copy of device_last_status, read like it in every
        # stage. It does not depend on the history: how its reads move
        # from stage to stage is the machine's noise.
        q "CREATE TABLE control_last_status (LIKE device_last_status INCLUDING ALL) WITH (fillfactor = 50)" \
          "INSERT INTO control_last_status SELECT * FROM device_last_status ORDER BY device_id"
    fi
    log "[$n] VACUUM ANALYZE, CHECKPOINT"
    t0=$(now)
    q "VACUUM ANALYZE heartbeats" "VACUUM ANALYZE device_last_status" "VACUUM ANALYZE control_last_status" "CHECKPOINT"
    S[vacuum_s,$n]=$(elapsed "$t0" "$(now)")
    S[children,$n]=$(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'heartbeats'::regclass")
    S[adopted,$n]=$(q "SELECT count(*) FROM hb_partitions WHERE parent = 'heartbeats'::regclass AND state <> 'dropped'")
    S[size_gb,$n]=$(q "SELECT round(sum(pg_total_relation_size(relid)) / 1e9, 1) FROM pg_partition_tree('heartbeats')")
    S[devices,$n]=$(q "SELECT count(*) FROM device_last_status")
    [ "${S[devices,$n]}" = "$DEVICES" ] || die "device_last_status holds ${S[devices,$n]} devices, not $DEVICES"

    # The reads that need the history in the OS cache before the legacy
    # fleet reads, whose sorts write GBs of temporary files (at 90 days
    # 14 GB of data and ~9 GB of temporary files do not both fit in RAM).
    measure_device "$n"
    measure_explain_device "$n"
    measure_compare "$n"
    measure_reconcile "$n"
    measure_fleet "$n"
    measure_correctness "$n"
    prev=$n
done
RUN_S=$(elapsed "$T_RUN" "$(now)")

# ---- the report ----------------------------------------------------------

med() { echo ${R[$1]} | tr ' ' '\n' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {r = a / b; printf (r >= 100 ? "%.0fx" : "%.1fx"), r}'; }
fmt() { awk -v v="$1" 'BEGIN {printf (v >= 100 ? "%.0f" : (v >= 1 ? "%.1f" : "%.3f")), v}'; }

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
PG_VERSION=$(q "SHOW server_version" | awk '{print $1}')

main_md() {
    local n m
    echo "| read | partitions | last-status | legacy | legacy / last-status |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    local -A LBL=([dev]="per device, SQL (ms, pgbench)" [devp]="per device, SQL, $PIPELINE reads per round trip (ms per read)"
                  [devfn]="per device, hb_device_status() on / off (ms, pgbench)"
                  [fleet]="whole fleet, SQL (ms, server)"
                  [fleetpsql]="whole fleet, SQL: last-status received by psql / legacy in the server (ms)"
                  [fleetfn]="whole fleet, hb_fleet_status() on / off (ms, psql)")
    local -A FAST=([dev]=dev_ls [devp]=dev_ls_p [devfn]=dev_fn_on [fleet]=fleet_ls [fleetpsql]=fleet_ls_psql [fleetfn]=fleet_fn_on)
    local -A SLOW=([dev]=dev_legacy [devp]=dev_legacy_p [devfn]=dev_fn_off [fleet]=fleet_legacy [fleetpsql]=fleet_legacy [fleetfn]=fleet_fn_off)
    for m in dev devp devfn fleet fleetpsql fleetfn; do
        for n in "${STAGE_LIST[@]}"; do
            local f s
            f=$(med "${FAST[$m]},$n") s=$(med "${SLOW[$m]},$n")
            printf '| %s | %s | %s | %s | **%s** |\n' "${LBL[$m]}" "$n" "$(fmt "$f")" "$(fmt "$s")" "$(ratio "$s" "$f")"
        done
    done
}

flat_md() {
    local n
    echo "| partitions | per device: control ms | last-status ms | / control | pipelined: control ms | last-status ms | / control | fleet (server): control ms | last-status ms | / control |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for n in "${STAGE_LIST[@]}"; do
        local a b c d e f
        a=$(med "dev_ctl,$n") b=$(med "dev_ls,$n") e=$(med "dev_ctl_p,$n") f=$(med "dev_ls_p,$n")
        c=$(med "fleet_ctl,$n") d=$(med "fleet_ls,$n")
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$(fmt "$a")" "$(fmt "$b")" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')" "$(fmt "$e")" "$(fmt "$f")" \
            "$(awk -v a="$e" -v b="$f" 'BEGIN {printf "%.2f", b / a}')" "$(fmt "$c")" "$(fmt "$d")" \
            "$(awk -v a="$c" -v b="$d" 'BEGIN {printf "%.2f", b / a}')"
    done
}

details_md() {
    local n
    echo "| partitions | rows | heap + index GB | children | load s (rows/s) | backfill s (rows written) | VACUUM ANALYZE s | reconcile ms (median, max of 5) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for n in "${STAGE_LIST[@]}"; do
        printf '| %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s, %s |\n' "$n" "$(grp "${S[rows,$n]}")" "${S[size_gb,$n]}" \
            "${S[children,$n]}" "${S[load_s,$n]}" "$(grp "$(awk -v r="${S[load_rows,$n]}" -v s="${S[load_s,$n]}" 'BEGIN {printf "%.0f", r / s}')")" \
            "$(awk -v m="${S[backfill_ms,$n]}" 'BEGIN {printf "%.1f", m / 1000}')" "$(grp "${S[backfill_rows,$n]}")" "${S[vacuum_s,$n]}" \
            "$(fmt "$(med "reconcile,$n")")" "$(fmt "$(echo ${R[reconcile,$n]} | tr ' ' '\n' | maxof)")"
    done
    echo
    echo "Per-device SQL reads in the server (EXPLAIN (ANALYZE, BUFFERS), 7 random devices, median):"
    echo
    echo "| partitions | last-status planning ms | execution ms | buffers (read) | legacy planning ms | execution ms | buffers (read) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for n in "${STAGE_LIST[@]}"; do
        printf '| %s | %s | %s | %s (%s) | %s | %s | %s (%s) |\n' "$n" "$(med "plan_ls,$n")" "$(med "exec_ls,$n")" \
            "$(med "buf_ls,$n")" "$(med "bufread_ls,$n")" \
            "$(med "plan_legacy,$n")" "$(med "exec_legacy,$n")" "$(med "buf_legacy,$n")" "$(med "bufread_legacy,$n")"
    done
    echo
    echo "hb_compare_read_paths($SAMPLE):"
    echo
    echo "| partitions | path | reads | p50 ms | p95 ms | p99 ms | max ms | buffers / read | mismatches |"
    echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for n in "${STAGE_LIST[@]}"; do
        echo "${S[compare,$n]}" | awk -F'|' -v n="$n" '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, $1, $2, $3, $4, $5, $6, $7, $8}'
    done
}

verdicts() {
    local n k
    # Flat: the last-status read over the control read of the same stage,
    # at the last stage against the first (the machine's drift cancels).
    for k in "dev - per-device %.4f" "dev _p pipelined_per-device %.4f" "fleet - fleet_(server) %.2f"; do
        set -- $k
        local m="$1" x="${2#-}"
        awk -v a="$(med "${m}_ls$x,$FIRST")" -v b="$(med "${m}_ls$x,$LAST")" -v ca="$(med "${m}_ctl$x,$FIRST")" \
            -v cb="$(med "${m}_ctl$x,$LAST")" -v la="$(med "${m}_legacy$x,$FIRST")" -v lb="$(med "${m}_legacy$x,$LAST")" \
            -v p="$FIRST" -v q="$LAST" -v l="${3//_/ }" -v f="$4" 'BEGIN {
            g = (b / cb) / (a / ca)
            printf "- flat, %s last-status read: " f " ms at %d partitions, " f " ms at %d (%.2fx raw; %.2fx against the control read of the same stage; legacy %.2fx); target <= 1.2x against the control: %s\n",
                l, a, p, b, q, b / a, g, lb / la, (g <= 1.2) ? "met" : "NOT met" }'
    done
    for k in "dev_ls dev_legacy per-device,~SQL 5" "dev_ls_p dev_legacy_p per-device,~SQL,~pipelined 5" \
             "dev_fn_on dev_fn_off per-device,~hb_device_status() 5" "fleet_ls fleet_legacy fleet,~SQL~(server) 1000" \
             "fleet_ls_psql fleet_legacy fleet,~SQL~(last-status~received~by~psql) 1000" \
             "fleet_fn_on fleet_fn_off fleet,~hb_fleet_status() 1000"; do
        set -- $k
        awk -v f="$(med "$1,$LAST")" -v s="$(med "$2,$LAST")" -v l="${3//\~/ }" -v t="$4" -v q="$LAST" 'BEGIN {
            printf "- %s at %d partitions: %.1fx; target >= %dx: %s\n", l, q, s / f, t, (s / f >= t) ? "met" : "NOT met" }'
    done
    for n in "${STAGE_LIST[@]}"; do
        awk -v m="$(echo ${R[reconcile,$n]} | tr ' ' '\n' | maxof)" -v md="$(med "reconcile,$n")" -v n="$n" -v d="$DEVICES" -v r="${R[reconcile_rows,$n]}" 'BEGIN {
            printf "- reconcile, %d devices, %d partitions: median %.1f ms, max %.1f ms, rows repaired %s; target 0 drift under 1 s: %s\n",
                d, n, md, m, r, (m < 1000) ? "met" : "NOT met" }'
    done
}

correctness() {
    local n diff l h
    for n in "${STAGE_LIST[@]}"; do
        read -r diff l h <<< "${S[diff,$n]}"
        printf -- '- %s partitions: device_last_status %s rows, legacy fleet read %s rows, %s differ (FULL JOIN on all columns): %s; ' \
            "$n" "$(grp "$l")" "$(grp "$h")" "$diff" "$([ "$diff" = 0 ] && echo ok || echo MISMATCH)"
        printf 'hb_fleet_status() on and off: %s outputs of %s rows, identical groups %s: %s; ' \
            "$((FLEET_REPS + LEGACY_FLEET_REPS))" "$(grp "${S[fnrows,$n]}")" "${S[fnsums,$n]}" \
            "$([ "$(echo ${S[fnsums,$n]} | wc -w)" = 1 ] && echo ok || echo MISMATCH)"
        printf 'hb_compare_read_paths mismatches: %s\n' "$(echo "${S[compare,$n]}" | awk -F'|' 'NR == 1 {print $8}')"
    done
}

plans() {
    local n
    for n in "${STAGE_LIST[@]}"; do
        printf -- '- %s partitions (%s children): legacy per-device plan %s (%s index scans); legacy fleet plan %s (%s scans, %s MB of temporary files), planning %s ms\n' \
            "$n" "${S[children,$n]}" "${S[devplan,$n]}" "${S[devscans,$n]}" "${S[fleetplan,$n]}" "${S[fleetscans,$n]}" "${S[fleettemp,$n]}" \
            "$(med "fleet_legacy_plan,$n")"
    done
}

report_md() {
    echo "Machine: $(nproc) vCPU ($CPU_MODEL), ${MEM_GIB} GiB; PostgreSQL $PG_VERSION; hb_lifecycle at $COMMIT${DIRTY:+ (with local changes)}; $(date -u +%Y-%m-%d)."
    echo "$(grp "$DEVICES") devices, $PER_DAY heartbeats per device a day; per-device reads: pgbench 1 client, prepared, $REPS x ${SECONDS_PER_RUN} s per variant, median;"
    echo "fleet reads: last-status median of $FLEET_REPS, legacy median of $LEGACY_FLEET_REPS. Whole run ${RUN_S} s."
    echo
    main_md
    echo
    echo "Flat: the last-status reads next to the same reads of a copy of device_last_status made at the first stage (the control), in the same rotation:"
    echo
    flat_md
    echo
    details_md
    echo
    echo "Against the targets:"
    echo
    verdicts
    echo
    echo "Correctness:"
    echo
    correctness
    echo
    echo "Plans:"
    echo
    plans
    echo "- load average (1 min) at the start of each stage: $LOADAVG"
    if [ "$(stat -c '%Y %s' "$SO")" != "$SO_STAMP" ]; then
        echo "- WARNING: $SO was replaced during the run (the cluster kept the one it had loaded)"
    fi
}

printf '\n'
report_md | tee "$DIR/report.md"
if [ -n "${HB_BENCH_MD:-}" ]; then
    cp "$DIR/report.md" "$HB_BENCH_MD"
    log "markdown written to $HB_BENCH_MD"
fi

printf '\nall runs:\n'
for n in "${STAGE_LIST[@]}"; do
    for k in dev_ctl dev_ls dev_legacy dev_fn_on dev_fn_off dev_ctl_p dev_ls_p dev_legacy_p fleet_ctl fleet_ls fleet_legacy fleet_ls_psql fleet_fn_on fleet_fn_off \
             fleet_ls_plan fleet_legacy_plan plan_ls exec_ls buf_ls plan_legacy exec_legacy buf_legacy bufread_legacy reconcile; do
        printf '  %-3s %-18s %s\n' "$n" "$k" "${R[$k,$n]}"
    done
done
# Correctness failures fail the run (after the report).
for n in "${STAGE_LIST[@]}"; do
    read -r diff _ _ <<< "${S[diff,$n]}"
    [ "$diff" = 0 ] || die "the last-status and legacy fleet reads differ on $diff devices at $n partitions"
    [ "$(echo ${S[fnsums,$n]} | wc -w)" = 1 ] || die "hb_fleet_status() returned different rows on and off at $n partitions"
    [ "$(echo "${S[compare,$n]}" | awk -F'|' 'NR == 1 {print $8}')" = 0 ] || die "hb_compare_read_paths found mismatches at $n partitions"
done
