#!/usr/bin/env bash
# Partition lifecycle of hb_lifecycle against pg_partman 4.7, in one run on
# one cluster, on identical tables (8 columns with a jsonb payload, a unique
# (device_id, ts) index, daily partitions, TimeZone UTC):
#   1. first set-up of ~400 daily partitions
#        hb:      hb_manage(premake 4) + hb_create_partitions(now() - 400 days, now())
#        partman: create_parent(premake 4, start 400 days back)
#   2. a maintenance run with nothing due, on those ~400 partitions
#        hb_run_maintenance() vs CALL partman.run_maintenance_proc()
#   3. a maintenance run that drops the 5 oldest partitions (retention set
#      just past them, archiving off on the hb side)
#   4. single-row insert latency (pgbench, 2,000 devices, prepared) on each
#      table alone, and while a loop churns its partitions: retention 30
#      days, create the missing partitions of the last 29 days, retention
#      10 days, maintenance (drops ~20), sleep 1 s, again; and during one
#      maintenance run that trims the table to 30 days (~355 partitions due;
#      hb_lifecycle drops at most 100 a run, pg_partman all of them).
# Each side has a database of its own in the cluster (bench_hb with
# hb_lifecycle, bench_pm with pg_partman), so that neither pays for the
# other's event triggers. pg_partman's background worker is not used: its
# procedures are called directly.
# Measures 1-3 are repeated (median printed, then every run); measure 4 runs
# once per variant. About 3 minutes with the defaults.
#
#   test/bench/lifecycle/run.sh [--reps N] [--seconds S] [--clients C]
#
# Needs root on a fresh machine (it installs packages, builds and installs
# the extension, and runs a scratch cluster as the postgres user).
# HB_SKIP_BUILD=1 uses the installed hb_lifecycle.
set -euo pipefail
source "$(cd "$(dirname "$0")/../../.." && pwd)/scripts/lib.sh"

REPS=3 SECONDS_PER_RUN=30 CLIENTS=4
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done

ensure_packages postgresql-15-partman
build_and_install

DIR="${HB_BENCH_DIR:-/tmp/hb_bench_lifecycle}"
PORT="${HB_BENCH_PORT:-5493}"
stop_cluster "$DIR"
rm -rf "$DIR"
# Only logging is added to the defaults: lock waits of a second or more
# (deadlock_timeout) are written to server.log with their database.
start_cluster "$DIR" "$PORT" "log_lock_waits = on" "log_line_prefix = '%m [%p] %d '"
CHURN_PID=""
cleanup() {
    if [ -n "$CHURN_PID" ]; then
        touch "$DIR"/stop_b "$DIR"/stop_d "$DIR"/stop_e "$DIR"/stop_f
        kill "$CHURN_PID" 2>/dev/null || true
        wait "$CHURN_PID" 2>/dev/null || true
    fi
    stop_cluster "$DIR"
}
trap cleanup EXIT

HB=bench_hb PM=bench_pm
for db in $HB $PM; do
    as_pg createdb -h "$DIR" -p "$PORT" "$db"
    pg_psql "$DIR" "$PORT" "$db" -c "ALTER DATABASE $db SET TimeZone = 'UTC'"
done
pg_psql "$DIR" "$PORT" $HB -c "CREATE EXTENSION hb_lifecycle"
pg_psql "$DIR" "$PORT" $PM -c "CREATE SCHEMA partman" -c "CREATE EXTENSION pg_partman SCHEMA partman"
DDL_LOCK_TIMEOUT=$(pg_psql "$DIR" "$PORT" $HB -At -c "SHOW hb_lifecycle.ddl_lock_timeout")
DDL_LOCK_TIMEOUT_MS=$(pg_psql "$DIR" "$PORT" $HB -At -c \
    "SELECT (extract(epoch FROM ddl_lock_timeout) * 1000)::bigint FROM hb_settings()")

q() {  # q DB SQL...: runs each SQL (autocommit), prints the rows unaligned
    local db="$1"
    shift
    local args=(-c "SET client_min_messages = warning")
    local s
    for s in "$@"; do args+=(-c "$s"); done
    pg_psql "$DIR" "$PORT" "$db" -At "${args[@]}"
}

timed() {  # timed DB SQL...: runs each SQL (autocommit), prints their total ms (psql \timing)
    local db="$1"
    shift
    local args=(-c "SET client_min_messages = warning" -c '\timing on')
    local s
    for s in "$@"; do args+=(-c "$s"); done
    pg_psql "$DIR" "$PORT" "$db" -At "${args[@]}" > "$DIR/timed.out" ||
        { cat "$DIR/timed.out" >&2; die "failed in $db: $*"; }
    awk '/^Time: / {s += $2} END {printf "%.1f\n", s}' "$DIR/timed.out"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The number of partitions attached to each side's table, the catch-all
# (DEFAULT) partition not counted.
CHILDREN="SELECT count(*) FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = '%s'::regclass AND NOT pg_get_expr(k.relpartbound, k.oid) = 'DEFAULT'"
count_hb() { q $HB "$(printf "$CHILDREN" hb_side)"; }
count_pm() { q $PM "$(printf "$CHILDREN" pm_side)"; }

create_table() {  # create_table DB NAME
    q "$1" "CREATE TABLE $2 (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text NOT NULL,
        battery_pct smallint, rssi_dbm smallint, firmware text, seq bigint, payload jsonb)
        PARTITION BY RANGE (ts)" \
        "CREATE UNIQUE INDEX ON $2 (device_id, ts)"
}

fresh_hb() {  # drops the hb side's tables (hb_lifecycle forgets them), creates an empty one
    q $HB "DROP TABLE IF EXISTS hb_side, hb_side_last"
    [ "$(q $HB "SELECT (SELECT count(*) FROM hb_config) + (SELECT count(*) FROM hb_partitions)")" = 0 ] ||
        die "hb_config or hb_partitions still lists a row after DROP TABLE hb_side, hb_side_last"
    create_table $HB hb_side
    q $HB "CHECKPOINT"
}

fresh_pm() {
    q $PM "DROP TABLE IF EXISTS pm_side" "DROP TABLE IF EXISTS partman.template_public_pm_side" \
        "DELETE FROM partman.part_config WHERE parent_table = 'public.pm_side'"
    create_table $PM pm_side
    q $PM "CHECKPOINT"
}

declare -A R  # measure,side -> space-separated values of every run

setup_hb() {
    fresh_hb
    R[setup,hb]+="$(timed $HB \
        "SELECT hb_manage('hb_side', premake => 4, retention => '500 days',
                          last_status_table => 'hb_side_last', partition_prefix => 'hbs')" \
        "SELECT count(*) FROM hb_create_partitions('hb_side', now() - interval '400 days', now())") "
    R[parts,hb]+="$(count_hb) "
}

setup_pm() {
    fresh_pm
    R[setup,pm]+="$(timed $PM \
        "SELECT partman.create_parent('public.pm_side', 'ts', 'native', 'daily', p_premake := 4,
             p_start_partition := to_char(now() - interval '400 days', 'YYYY-MM-DD'))") "
    R[parts,pm]+="$(count_pm) "
}

# 1. First set-up, fresh tables each time, the side that goes first alternating.
for rep in $(seq 1 "$REPS"); do
    log "1. set-up of ~400 partitions, rep $rep"
    if [ $((rep % 2)) = 1 ]; then setup_hb; setup_pm; else setup_pm; setup_hb; fi
done

# 2. Maintenance with nothing due, on the tables of the last set-up.
log "2. maintenance with nothing due (a warm-up run of each, then 5 each)"
timed $HB "SELECT hb_run_maintenance()" >/dev/null
timed $PM "CALL partman.run_maintenance_proc()" >/dev/null
before_hb=$(count_hb) before_pm=$(count_pm)
for i in 1 2 3 4 5; do
    R[noop,hb]+="$(timed $HB "SELECT hb_run_maintenance()") "
    R[noop,pm]+="$(timed $PM "CALL partman.run_maintenance_proc()") "
done
[ "$(count_hb)" = "$before_hb" ] || die "hb_run_maintenance with nothing due changed the partitions ($before_hb -> $(count_hb))"
[ "$(count_pm)" = "$before_pm" ] || die "run_maintenance_proc with nothing due changed the partitions ($before_pm -> $(count_pm))"

# 3. A maintenance run that drops the 5 oldest partitions: each side's
# retention is set so that its 5 oldest partitions end before now() -
# retention and the 6th ends half a day after it (pg_partman drops a
# partition when its end < now() - retention, hb_lifecycle when <=). Each rep
# the retention is 5 days shorter than the one before.
HB_RETENTION="SELECT date_trunc('second', now() - (min(range_start) + interval '5 days 12 hours'))
    FROM hb_partitions WHERE parent = 'hb_side'::regclass AND state <> 'dropped'"
PM_RETENTION="SELECT date_trunc('second', now() - (min(substring(pg_get_expr(k.relpartbound, k.oid)
        FROM 'FROM \(''([^'']+)''')::timestamptz) + interval '5 days 12 hours'))
    FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = 'pm_side'::regclass AND pg_get_expr(k.relpartbound, k.oid) <> 'DEFAULT'"
q $HB "SELECT 1 FROM hb_configure('hb_side', archive => false)" >/dev/null
for rep in $(seq 1 "$REPS"); do
    log "3. maintenance dropping 5 partitions, rep $rep"
    ret=$(q $HB "$HB_RETENTION")
    q $HB "SELECT 1 FROM hb_configure('hb_side', retention => '$ret')" >/dev/null
    before=$(count_hb)
    R[drop5,hb]+="$(timed $HB "SELECT hb_run_maintenance()") "
    after=$(count_hb)
    [ $((before - after)) = 5 ] ||
        { cat "$DIR/timed.out" >&2; die "hb_run_maintenance at retention $ret dropped $((before - after)) partitions, not 5 ($before -> $after)"; }
    R[ret,hb]+="'$ret' "
    ret=$(q $PM "$PM_RETENTION")
    q $PM "UPDATE partman.part_config SET retention = '$ret', retention_keep_table = false
           WHERE parent_table = 'public.pm_side'"
    before=$(count_pm)
    R[drop5,pm]+="$(timed $PM "CALL partman.run_maintenance_proc()") "
    after=$(count_pm)
    [ $((before - after)) = 5 ] ||
        die "run_maintenance_proc at retention $ret dropped $((before - after)) partitions, not 5 ($before -> $after)"
    R[ret,pm]+="'$ret' "
done

# pgbench scripts: one heartbeat per transaction from one of 2,000 devices.
for t in hb_side pm_side; do
    cat > "$DIR/insert_$t.sql" <<SQL
\set dev random(1, 2000)
INSERT INTO $t VALUES (:dev, now() + :client_id * interval '1 microsecond', 'ok', (:dev % 100)::smallint, -61::smallint, 'fw-1.4.2', :dev, '{"temp_c": 21, "uptime_s": 86400, "net": "lte", "errors": []}');
SQL
done
chown postgres "$DIR"/*.sql

churn_loop() {  # churn_loop hb|pm STOPFILE LOG: one line per cycle in LOG
    local side="$1" stop="$2" out="$3" db count cycle=0 t0 t1 c0 c1 c2 res
    local -a create drop
    if [ "$side" = hb ]; then db=$HB create=("${CHURN_HB_CREATE[@]}") drop=("${CHURN_HB_DROP[@]}") count=hb_side
    else db=$PM create=("${CHURN_PM_CREATE[@]}") drop=("${CHURN_PM_DROP[@]}") count=pm_side; fi
    local children
    children=$(printf "$CHILDREN" $count)
    while [ ! -e "$stop" ]; do
        cycle=$((cycle + 1))
        t0=$(date +%s.%N)
        if res=$(q $db "SELECT 'c0', ($children)" "${create[@]}" "SELECT 'c1', ($children)" \
                  "${drop[@]}" "SELECT 'c2', ($children)" 2>&1); then
            t1=$(date +%s.%N)
            c0=$(echo "$res" | awk -F'|' '$1 == "c0" {v = $2} END {print v}')
            c1=$(echo "$res" | awk -F'|' '$1 == "c1" {v = $2} END {print v}')
            c2=$(echo "$res" | awk -F'|' '$1 == "c2" {v = $2} END {print v}')
            printf 'ok %s %d %d %s %s\n' "$cycle" $((c1 - c0)) $((c1 - c2)) \
                "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b - a) * 1000}')" \
                "$(echo "$res" | awk -F'|' '$1 == "maint" {print "errors=" $3}')" >> "$out"
        else
            printf 'error %s %s\n' "$cycle" "$(echo "$res" | tr '\n' ' ')" >> "$out"
        fi
        sleep 1
    done
}

declare -A L  # run -> "transactions p50 p99 p99.9 max cycles created dropped errors"
RUNS=(a b c d e f)
declare -A RUN_LABEL=([a]="a) hb_side, no maintenance" [b]="b) hb_side, hb_lifecycle churn"
                      [c]="c) pm_side, no maintenance" [d]="d) pm_side, pg_partman churn"
                      [e]="e) hb_side, one trim run (first)" [f]="f) pm_side, one trim run (first)")
# run_latency RUN TABLE DB SECONDS [JOB ARGS...]: pgbench inserts into TABLE
# for SECONDS while JOB ARGS STOPFILE LOG runs in the background (until
# STOPFILE exists); the results go to L[RUN].
run_latency() {
    local run="$1" t="$2" db="$3" secs="$4" stop="$DIR/stop_$1" churn_log="$DIR/churn_$1.log"
    shift 4
    local side="${1:-}"
    rm -f "$stop" "$churn_log" "$DIR"/lat_"$run".*
    : > "$churn_log"
    q "$db" "CHECKPOINT"
    if [ -n "$side" ]; then
        "$@" "$stop" "$churn_log" &
        CHURN_PID=$!
    fi
    local out
    out=$(as_pg pgbench -h "$DIR" -p "$PORT" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
        -T "$secs" --log --log-prefix="$DIR/lat_$run" -f "$DIR/insert_$t.sql" "$db" 2>&1) || true
    if [ -n "$side" ]; then
        touch "$stop"
        wait "$CHURN_PID" || true
        CHURN_PID=""
    fi
    echo "$out" > "$DIR/pgbench_$run.out"
    local tx failed
    tx=$(echo "$out" | awk '/number of transactions actually processed/ {print $NF}')
    failed=$(echo "$out" | awk '/number of failed transactions/ {print $5}')
    [ -n "$tx" ] || { echo "$out" >&2; die "pgbench failed in run $run"; }
    # Latency in microseconds is field 3 of pgbench's per-transaction log.
    local lat
    lat=$(cat "$DIR"/lat_"$run".* | awk '{print $3}' | sort -n |
        awk '{a[NR] = $1} END {
            n = NR; split("0.5 0.99 0.999", q, " ");
            for (i = 1; i <= 3; i++) { k = int(q[i] * n + 0.999999); if (k < 1) k = 1; printf "%.1f ", a[k] / 1000 }
            printf "%.1f", a[n] / 1000 }')
    local cycles=0 created=0 dropped=0 errors=0
    if [ -n "$side" ]; then
        cycles=$(grep -c '^ok' "$churn_log" || true)
        errors=$(grep -c '^error\|errors=\[[^]]' "$churn_log" || true)
        created=$(awk '$1 == "ok" {s += $3} END {print s + 0}' "$churn_log")
        dropped=$(awk '$1 == "ok" {s += $4} END {print s + 0}' "$churn_log")
    fi
    L[$run]="$tx $lat $cycles $created $dropped $errors ${failed:-0}"
}

# Inserts during one maintenance run that drops many partitions: both
# tables are trimmed to a retention of 30 days (~355 partitions dropped in
# one run), 2 s into a short pgbench run. This runs first: the churn runs
# start from the trimmed tables.
trim_job() {  # trim_job hb|pm STOPFILE LOG
    local side="$1" out="$3" before after ms
    sleep 2
    if [ "$side" = hb ]; then
        q $HB "SELECT 1 FROM hb_configure('hb_side', retention => '30 days')" >/dev/null
        before=$(count_hb)
        ms=$(timed $HB "SELECT hb_run_maintenance()")
        after=$(count_hb)
    else
        q $PM "UPDATE partman.part_config SET retention = '30 days' WHERE parent_table = 'public.pm_side'"
        before=$(count_pm)
        ms=$(timed $PM "CALL partman.run_maintenance_proc()")
        after=$(count_pm)
    fi
    printf 'ok 1 0 %d %s\n' $((before - after)) "$ms" >> "$out"
}
TRIM_SECONDS=8
log "4. e) inserts into hb_side during one hb_run_maintenance() that trims it to 30 days (${TRIM_SECONDS}s)"
run_latency e hb_side $HB $TRIM_SECONDS trim_job hb
log "4. f) inserts into pm_side during one run_maintenance_proc() that trims it to 30 days"
run_latency f pm_side $PM $TRIM_SECONDS trim_job pm
read -r _ TRIM_HB_N TRIM_HB_MS < <(awk '{print $1, $4, $5}' "$DIR/churn_e.log")
read -r _ TRIM_PM_N TRIM_PM_MS < <(awk '{print $1, $4, $5}' "$DIR/churn_f.log")
[ -n "${TRIM_HB_MS:-}" ] && [ -n "${TRIM_PM_MS:-}" ] || die "a trim run failed (see $DIR/churn_e.log, $DIR/churn_f.log)"

# A churn cycle: the create phase, then the drop phase; the loop counts the
# attached partitions before, between and after them.
CHURN_HB_CREATE=(
    "SELECT 1 FROM hb_configure('hb_side', retention => '30 days')"
    "SELECT count(*) FROM hb_create_partitions('hb_side', now() - interval '29 days', now())")
CHURN_HB_DROP=(
    "SELECT 1 FROM hb_configure('hb_side', retention => '10 days')"
    "SELECT 'maint', jsonb_array_length(r->'dropped'), r->'errors', r->'ms' FROM hb_run_maintenance() r")
CHURN_PM_CREATE=(
    "UPDATE partman.part_config SET retention = '30 days' WHERE parent_table = 'public.pm_side'"
    "SELECT partman.create_partition_time('public.pm_side', ARRAY(
         SELECT d FROM generate_series(date_trunc('day', now() - interval '29 days'), now(), interval '1 day') d
         WHERE to_regclass('public.pm_side_p' || to_char(d, 'YYYY_MM_DD')) IS NULL), p_analyze := false)")
CHURN_PM_DROP=(
    "UPDATE partman.part_config SET retention = '10 days' WHERE parent_table = 'public.pm_side'"
    "CALL partman.run_maintenance_proc()")

log "4. a) inserts into hb_side, no maintenance (${SECONDS_PER_RUN}s, $CLIENTS clients)"
run_latency a hb_side $HB "$SECONDS_PER_RUN"
log "4. b) inserts into hb_side while the hb_lifecycle churn loop runs"
run_latency b hb_side $HB "$SECONDS_PER_RUN" churn_loop hb
log "4. c) inserts into pm_side, no maintenance"
run_latency c pm_side $PM "$SECONDS_PER_RUN"
log "4. d) inserts into pm_side while the pg_partman churn loop runs"
run_latency d pm_side $PM "$SECONDS_PER_RUN" churn_loop pm

# Correctness: hb_partitions agrees with the partitions attached to hb_side.
recorded=$(q $HB "SELECT count(*) FROM hb_partitions WHERE parent = 'hb_side'::regclass AND state <> 'dropped'")
attached=$(count_hb)
mismatch=$(q $HB "SELECT count(*) FROM (SELECT partition_name FROM hb_partitions
        WHERE parent = 'hb_side'::regclass AND state <> 'dropped') p
    FULL JOIN (SELECT k.relname::text AS partition_name FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
        WHERE i.inhparent = 'hb_side'::regclass AND pg_get_expr(k.relpartbound, k.oid) <> 'DEFAULT') a
    USING (partition_name) WHERE p IS NULL OR a IS NULL")
[ "$recorded" = "$attached" ] && [ "$mismatch" = 0 ] ||
    die "hb_partitions lists $recorded partitions of hb_side that are not dropped, $attached are attached ($mismatch names differ)"
LOCK_WAITS_HB=$(grep -c " $HB .*still waiting for" "$DIR/server.log" || true)
LOCK_WAITS_PM=$(grep -c " $PM .*still waiting for" "$DIR/server.log" || true)

# Summary.
printf '\n%-52s %13s %13s %11s\n' "measure (ms, median of $REPS)" "hb_lifecycle" "pg_partman" "hb/partman"
row() {  # row LABEL KEY
    local h p
    h=$(echo ${R[$2,hb]} | tr ' ' '\n' | median)
    p=$(echo ${R[$2,pm]} | tr ' ' '\n' | median)
    awk -v l="$1" -v h="$h" -v p="$p" 'BEGIN {printf "%-52s %13.1f %13.1f %10.2fx\n", l, h, p, h / p}'
}
row "1. first set-up of ~400 daily partitions" setup
printf '%-52s %13s %13s\n' "   partitions attached after it (each run)" "${R[parts,hb]% }" "${R[parts,pm]% }"
row "2. maintenance, nothing due (median of 5)" noop
row "3. maintenance dropping the 5 oldest partitions" drop5
printf '%-52s %13.1f %13.1f   (%s / %s partitions)\n' "   trim to 30 days, one run (in runs e, f below)" \
    "$TRIM_HB_MS" "$TRIM_PM_MS" "$TRIM_HB_N" "$TRIM_PM_N"

printf '\n4. single-row inserts, %s clients, prepared; latency in ms (a-d: %s s each; e, f: %s s, run before a)\n' \
    "$CLIENTS" "$SECONDS_PER_RUN" "$TRIM_SECONDS"
printf '%-34s %8s %8s %8s %8s %9s %7s %15s %7s %7s\n' "run" "tx" "p50" "p99" "p99.9" "max" \
    "cycles" "created/dropped" "errors" "failed"
for run in "${RUNS[@]}"; do
    read -r tx p50 p99 p999 max cycles created dropped errors failed <<< "${L[$run]}"
    printf '%-34s %8s %8s %8s %8s %9s %7s %15s %7s %7s\n' "${RUN_LABEL[$run]}" "$tx" "$p50" "$p99" "$p999" \
        "$max" "$cycles" "$created/$dropped" "$errors" "$failed"
done
read -r _ _ _ _ max_b _ <<< "${L[b]}"
read -r _ _ _ _ max_e _ <<< "${L[e]}"
verdict=$(awk -v b="$max_b" -v e="$max_e" -v t="$DDL_LOCK_TIMEOUT_MS" 'BEGIN {print (b <= t && e <= t) ? "met" : "NOT met"}')
printf '\nhb_lifecycle.ddl_lock_timeout = %s; target "no insert waits longer than it on the hb side": %s (max %s ms in b, %s ms in e)\n' \
    "$DDL_LOCK_TIMEOUT" "$verdict" "$max_b" "$max_e"
printf 'lock waits >= deadlock_timeout (1s) in server.log: %s in %s, %s in %s\n' \
    "$LOCK_WAITS_HB" "$HB" "$LOCK_WAITS_PM" "$PM"
printf 'correctness: hb_partitions lists %s live partitions of hb_side, %s are attached: ok\n' "$recorded" "$attached"

printf '\nall runs (ms):\n'
for k in setup noop drop5; do for s in hb pm; do printf '  %-6s %-3s %s\n' "$k" "$s" "${R[$k,$s]}"; done; done
printf '  retention set for measure 3: hb %s; partman %s\n' "${R[ret,hb]}" "${R[ret,pm]}"
for run in e f b d; do
    printf '  maintenance cycles of run %s (cycle created dropped ms [errors]):\n' "$run"
    sed 's/^/    /' "$DIR/churn_$run.log"
done
