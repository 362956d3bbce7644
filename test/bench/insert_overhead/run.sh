#!/usr/bin/env bash
# Insert overhead of keeping device_last_status, measured in one run on one
# table shape (8 columns with a jsonb payload, 2,000 devices, daily
# partitions), against two baselines measured alongside:
#   no trigger (the limit) and the PL/pgSQL upsert trigger users write today.
# Workloads, as applications send heartbeats (PostgreSQL's default
# durability, synchronous_commit = on):
#   single    single-row autocommit INSERTs, 2 connections, prepared
#   batch     2,000-row batches, one multi-row INSERT ... VALUES each, as
#             client libraries build them (simple protocol)
#   copy      COPY of 1M rows from a file
# and a stress variant that removes the work PostgreSQL does anyway around
# the insert (parsing 2,000 rows of literals), so that little but the
# triggers' CPU cost is left:
#   batch-server   2,000-row batches generated in the server
#                  (INSERT ... SELECT FROM generate_series, prepared)
# Runs are interleaved and repeated; the medians and their ratios are
# printed, then every run.
#
#   test/bench/insert_overhead/run.sh [--reps N] [--seconds S] [--copy-rows N]
#
# Needs root on a fresh machine (it installs packages, builds and installs
# the extension, and runs a scratch cluster as the postgres user).
set -euo pipefail
source "$(cd "$(dirname "$0")/../../.." && pwd)/scripts/lib.sh"
HERE="$HB_ROOT/test/bench/insert_overhead"

REPS=3 SECONDS_PER_RUN=20 COPY_ROWS=1000000 CLIENTS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --copy-rows) COPY_ROWS="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done

ensure_packages
build_and_install

DIR="${HB_BENCH_DIR:-/tmp/hb_bench_insert}"
PORT="${HB_BENCH_PORT:-5491}"
stop_cluster "$DIR"
rm -rf "$DIR"
start_cluster "$DIR" "$PORT" \
    "shared_buffers = 1GB" "max_wal_size = 16GB" "checkpoint_timeout = 1h" \
    "autovacuum = off" "work_mem = 64MB"
trap 'stop_cluster "$DIR"' EXIT

as_pg createdb -h "$DIR" -p "$PORT" bench
pg_psql "$DIR" "$PORT" bench -f "$HERE/setup.sql" >/dev/null
PSQL=(pg_psql "$DIR" "$PORT" bench -At)
VARIANTS=(none plpgsql ext)
declare -A LS=([none]="" [plpgsql]=plpgsql_last_status [ext]=ext_last_status)

# pgbench scripts.
for v in "${VARIANTS[@]}"; do
    cat > "$DIR/single_$v.sql" <<SQL
\set dev random(1, 2000)
INSERT INTO hb_$v VALUES (:dev, now() + :client_id * interval '1 microsecond', 'ok', (:dev % 100)::smallint, -61::smallint, 'fw-1.4.2', :dev, '{"temp_c": 21, "uptime_s": 86400, "net": "lte", "errors": []}');
SQL
    "${PSQL[@]}" -c "SELECT bench_batch_sql('hb_$v')" > "$DIR/batch-server_$v.sql"
    echo ";" >> "$DIR/batch-server_$v.sql"
    "${PSQL[@]}" -c "SELECT bench_values_sql('hb_$v')" > "$DIR/batch_$v.sql"
    echo ";" >> "$DIR/batch_$v.sql"
done
chown postgres "$DIR"/*.sql

log "writing the $COPY_ROWS-row COPY file"
"${PSQL[@]}" -c "COPY (SELECT g % 2000 + 1, current_date::timestamptz + (g / 2000) * interval '10 seconds', 'ok',
    (g % 100)::smallint, (-50 - g % 40)::smallint, 'fw-1.4.2', g,
    ('{\"temp_c\":' || (20 + g % 15) || ',\"uptime_s\":' || g * 60 || ',\"net\":\"lte\",\"errors\":[]}')::jsonb
    FROM generate_series(0, $COPY_ROWS - 1) g) TO '$DIR/copy.csv' (FORMAT csv)"

reset_variant() {  # empty the table (and its last-status table), then warm it up
    local v="$1"
    "${PSQL[@]}" -c "TRUNCATE hb_$v" >/dev/null
    [ -n "${LS[$v]}" ] && "${PSQL[@]}" -c "TRUNCATE ${LS[$v]}" >/dev/null
    as_pg pgbench -h "$DIR" -p "$PORT" -n -c 1 -t 1 -f "$DIR/batch-server_$v.sql" bench >/dev/null 2>&1
    "${PSQL[@]}" -c "CHECKPOINT" >/dev/null
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A R
run_pgbench() {  # script variant clients rows-per-transaction protocol [PGOPTIONS] -> rows/s
    local w="$1" v="$2" clients="$3" rows_per_tx="$4" protocol="$5" options="${6:-}"
    reset_variant "$v"
    local tps
    tps=$(as_pg env PGOPTIONS="$options" pgbench -h "$DIR" -p "$PORT" -n -M "$protocol" \
        -c "$clients" -j "$clients" -T "$SECONDS_PER_RUN" -f "$DIR/${w}_$v.sql" bench 2>/dev/null |
        awk '/^tps/ {print $3}')
    awk -v t="$tps" -v r="$rows_per_tx" 'BEGIN {printf "%.0f\n", t * r}'
}

run_copy() {
    local v="$1"
    "${PSQL[@]}" -c "TRUNCATE hb_$v" >/dev/null
    [ -n "${LS[$v]}" ] && "${PSQL[@]}" -c "TRUNCATE ${LS[$v]}" >/dev/null
    "${PSQL[@]}" -c "CHECKPOINT" >/dev/null
    local t0 t1
    t0=$(date +%s.%N)
    "${PSQL[@]}" -c "COPY hb_$v FROM '$DIR/copy.csv' (FORMAT csv)" >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v n="$COPY_ROWS" 'BEGIN {printf "%.0f\n", n / (b - a)}'
}

WORKLOADS=(single batch copy batch-server)
for rep in $(seq 1 "$REPS"); do
    for v in "${VARIANTS[@]}"; do
        log "rep $rep: $v"
        R[single,$v]+="$(run_pgbench single "$v" "$CLIENTS" 1 prepared) "
        R[batch,$v]+="$(run_pgbench batch "$v" 1 2000 simple) "
        R[copy,$v]+="$(run_copy "$v") "
        R[batch-server,$v]+="$(run_pgbench batch-server "$v" 1 2000 prepared) "
    done
done

# Exactness check of the run: every device's newest heartbeat is its last status.
for v in plpgsql ext; do
    bad=$("${PSQL[@]}" -c "SELECT count(*) FROM (SELECT DISTINCT ON (device_id) * FROM hb_$v
        ORDER BY device_id, ts DESC) h FULL JOIN ${LS[$v]} l USING (device_id)
        WHERE l IS NULL OR h IS NULL OR (h.*)::text <> (l.*)::text")
    [ "$bad" = 0 ] || die "$v: $bad devices whose last status is not their newest heartbeat"
done

printf '\n%-44s %11s %11s %13s %8s %8s %8s\n' "workload (rows/s, median of $REPS)" \
    "no trigger" "PL/pgSQL" "hb_lifecycle" "hb/none" "pl/none" "hb/pl"
for w in "${WORKLOADS[@]}"; do
    n=$(echo ${R[$w,none]} | tr ' ' '\n' | median)
    p=$(echo ${R[$w,plpgsql]} | tr ' ' '\n' | median)
    e=$(echo ${R[$w,ext]} | tr ' ' '\n' | median)
    case $w in
        single) label="single-row INSERT, ${CLIENTS} clients" ;;
        batch) label="2,000-row INSERT ... VALUES batches" ;;
        copy) label="COPY of $COPY_ROWS rows" ;;
        batch-server) label="stress: 2,000-row batches built in server" ;;
    esac
    awk -v l="$label" -v n="$n" -v p="$p" -v e="$e" \
        'BEGIN {printf "%-44s %11d %11d %13d %7.2fx %7.2fx %7.2fx\n", l, n, p, e, e/n, p/n, e/p}'
done
printf '\nall runs (rows/s):\n'
for w in "${WORKLOADS[@]}"; do for v in "${VARIANTS[@]}"; do printf '  %-14s %-8s %s\n' "$w" "$v" "${R[$w,$v]}"; done; done
