#!/usr/bin/env bash
# Archives of closed partitions (hb_archive_partition, run by the
# background worker) against what PostgreSQL itself does with the same
# partition, in one run on one cluster:
#   baseline  COPY (SELECT * FROM ONLY partition) TO STDOUT (FORMAT csv,
#             HEADER) from psql into /dev/null, and the same piped through
#             gzip -1 (the archive's own default level) into wc -c;
#   archive   SELECT hb_archive_partition(partition) to a file:// target
#             with gzip (the default, level 1), to the same target without
#             compression (archive_compression = 'none'), and to an S3
#             target with gzip: moto_server on loopback, which checks
#             SigV4 signatures, with an IAM user and a bucket of its own.
# Each is timed wall-clock, around the psql that runs it (the same psql
# start-up in every measure), on a partition of 5,000,000 rows and on one
# of 1,000,000 (20,000 devices, 9 columns with a jsonb payload), several
# repetitions, median printed.
# Before every archive the worker is restarted (pg_terminate_backend; the
# postmaster starts it again within ~5 s), so that VmHWM in
# /proc/PID/status, read after the job, is that job's peak; VmRSS, RssAnon
# and RssShmem are also sampled every 50 ms during the job, and so is the
# thread count, which tells the export (the gzip/SHA-256 thread runs) from
# the upload (it has ended) for S3. Between archives of one partition its
# files (or objects) are deleted and its hb_partitions row is put back to
# 'active'.
# The partitions are frozen and checkpointed once loaded, then the cluster
# is restarted: every measure reads them from the OS cache, none from
# shared_buffers (whose pages a process's RSS would count). A warm-up
# (not counted) checks that each partition's uncompressed archive is
# byte-identical to COPY's CSV (size and SHA-256); every archive's row
# count is checked too.
# About 9 minutes with the defaults on 2 shared cores (loading the 6M
# rows: ~1 of them).
#
#   test/bench/archive/run.sh [--reps N] [--rows-big N] [--rows-small N]
#
# Needs root (moto_server lives in root's pyenv; the cluster runs as the
# postgres user). HB_SKIP_BUILD=1 uses the installed hb_lifecycle.
# HB_BENCH_MD=FILE writes the result tables as markdown to FILE (else to
# stdout). HB_BENCH_KEEP=1 keeps the cluster's data directory at the end.
set -euo pipefail
source "$(cd "$(dirname "$0")/../../.." && pwd)/scripts/lib.sh"

REPS=5 ROWS_BIG=5000000 ROWS_SMALL=1000000 DEVICES=20000
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --rows-big) ROWS_BIG="$2"; shift 2 ;;
        --rows-small) ROWS_SMALL="$2"; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done
is_root || die "run this as root (moto_server is in root's pyenv)"

MOTO="${HB_MOTO_SERVER:-$(command -v moto_server || echo /root/.pyenv/shims/moto_server)}"
[ -x "$MOTO" ] || die "moto_server not found (set HB_MOTO_SERVER)"
command -v aws >/dev/null || die "awscli not found (apt-get install awscli)"
ensure_packages
build_and_install
COMMIT=$(git -C "$HB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$HB_ROOT" status --porcelain -- src sql Makefile 2>/dev/null | head -1)
SO="$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir)/hb_lifecycle.so"

DIR="${HB_BENCH_DIR:-/tmp/bench_archive}"
PORT="${HB_BENCH_PORT:-55443}"
MOTO_PORT="${HB_BENCH_MOTO_PORT:-54611}"
DB=postgres
ARCHIVE_DIR="$DIR/archive"
FILE_URL="file://$ARCHIVE_DIR"
BUCKET=hb-bench
S3_URL="s3://$BUCKET/archive"
CREDS="$DIR/s3_credentials"

stop_cluster "$DIR"
rm -rf "$DIR"
mkdir -p "$DIR"
chown postgres:postgres "$DIR"

MOTO_PID="" SAMPLER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SAMPLER_PID" ]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    stop_cluster "$DIR"
    if [ -n "$MOTO_PID" ]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    rm -rf "$ARCHIVE_DIR"
    if [ "$rc" = 0 ] && [ "${HB_BENCH_KEEP:-0}" != 1 ]; then rm -rf "$DIR/data"; fi
}
trap cleanup EXIT

# ---- moto_server: an IAM user, its key, a bucket -------------------------

# A TCP probe, not an HTTP one: an HTTP request would use up one of the
# unauthenticated calls.
wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
log "starting moto_server on 127.0.0.1:$MOTO_PORT (signatures checked)"
INITIAL_NO_AUTH_ACTION_COUNT=4 "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$DIR/moto.log" 2>&1 &
MOTO_PID=$!
wait_port "$MOTO_PORT" || { cat "$DIR/moto.log" >&2; die "moto_server did not start"; }
awsm() {
    AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap AWS_DEFAULT_REGION=us-east-1 \
        aws --endpoint-url "http://127.0.0.1:$MOTO_PORT" --output text "$@"
}
awsm iam create-user --user-name hb-archiver >/dev/null
read -r KEY_ID SECRET < <(awsm iam create-access-key --user-name hb-archiver \
    --query 'AccessKey.[AccessKeyId,SecretAccessKey]')
POLICY_ARN=$(awsm iam create-policy --policy-name hb-archiver-s3 --query 'Policy.Arn' \
    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')
awsm iam attach-user-policy --user-name hb-archiver --policy-arn "$POLICY_ARN" >/dev/null
aws_user() {
    AWS_ACCESS_KEY_ID="$KEY_ID" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1 \
        aws --endpoint-url "http://127.0.0.1:$MOTO_PORT" --output text "$@"
}
if awsm s3api list-buckets >/dev/null 2>&1; then
    die "moto_server accepted a request signed with an unknown key: signatures are not checked"
fi
aws_user s3api create-bucket --bucket "$BUCKET" >/dev/null
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$KEY_ID" "$SECRET" > "$CREDS"
chown postgres:postgres "$CREDS"
chmod 600 "$CREDS"

# ---- the cluster ---------------------------------------------------------

# autovacuum off and a checkpoint only on demand: no vacuum or checkpoint
# lands in one measure and not another (the partitions are frozen and
# checkpointed once loaded). shared_buffers stays at its default (128MB):
# both sides read the partitions from the OS cache through a ring buffer.
start_cluster "$DIR" "$PORT" "hb_lifecycle.database = '$DB'" \
    "hb_lifecycle.s3_endpoint = 'http://127.0.0.1:$MOTO_PORT'" \
    "hb_lifecycle.s3_credentials_file = '$CREDS'" \
    "autovacuum = off" "max_wal_size = 16GB" "checkpoint_timeout = 1h" \
    "log_line_prefix = '%m [%p] %d '"
mkdir -p "$ARCHIVE_DIR"
chown postgres:postgres "$ARCHIVE_DIR"

q() {  # q SQL...: runs each SQL (autocommit) in $DB, prints the rows unaligned
    local args=(-c "SET client_min_messages = warning")
    local s
    for s in "$@"; do args+=(-c "$s"); done
    pg_psql "$DIR" "$PORT" "$DB" -At "${args[@]}"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { sort -g | tail -1; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

q "ALTER DATABASE $DB SET TimeZone = 'UTC'" "CREATE EXTENSION hb_lifecycle"

# ---- the table and its two closed partitions -----------------------------

q "CREATE TABLE heartbeats (device_id bigint NOT NULL, ts timestamptz NOT NULL, status text NOT NULL,
       battery_pct smallint, rssi_dbm smallint, lat double precision, lon double precision,
       firmware text, payload jsonb) PARTITION BY RANGE (ts)" \
  "CREATE UNIQUE INDEX ON heartbeats (device_id, ts)" \
  "SELECT hb_manage('heartbeats', premake => 2, retention => '90 days', partition_prefix => 'hb')" \
  "SELECT count(*) FROM hb_create_partitions('heartbeats', now() - interval '4 days', now())" >/dev/null
DAY_BIG=$(q "SELECT to_char(date_trunc('day', now()) - interval '3 days', 'YYYY-MM-DD')")
DAY_SMALL=$(q "SELECT to_char(date_trunc('day', now()) - interval '2 days', 'YYYY-MM-DD')")
PART_BIG="hb_${DAY_BIG//-/_}" PART_SMALL="hb_${DAY_SMALL//-/_}"
for p in "$PART_BIG" "$PART_SMALL"; do
    [ "$(q "SELECT state FROM hb_partitions WHERE partition_name = '$p' AND range_end <= now()")" = active ] ||
        die "partition $p is not a closed, active partition in hb_partitions"
done

# load DAY ROWS: ROWS heartbeats of DEVICES devices spread over the day, in
# time order (all devices at slot k, then k + 1), unique per (device, ts),
# in statements of at most 1,000,000 rows.
load() {
    local day="$1" rows="$2" from=0 to
    local slots=$(( (rows + DEVICES - 1) / DEVICES ))
    while [ "$from" -lt "$rows" ]; do
        to=$(( from + 1000000 < rows ? from + 1000000 : rows ))
        q "SET hb_lifecycle.skip_duplicate_heartbeats = off" "SET synchronous_commit = off" \
          "INSERT INTO heartbeats
           SELECT d, '$day'::timestamptz + k * (interval '86400 seconds' / $slots) + d * interval '1 millisecond',
                  CASE WHEN i % 997 = 0 THEN 'offline' WHEN i % 101 = 0 THEN 'low_battery'
                       WHEN i % 13 = 0 THEN 'warn' ELSE 'ok' END,
                  (100 - (k + d) % 100)::smallint, (-50 - i % 40)::smallint,
                  52.0 + (d % 500) * 0.01 + random() * 0.001, 13.0 + (d / 500) * 0.01 + random() * 0.001,
                  'fw-1.' || d % 7 || '.' || d % 3,
                  jsonb_build_object('temp_c', round((18 + random() * 8)::numeric, 1),
                                     'uptime_s', k * 345 + d % 1000,
                                     'net', CASE WHEN d % 5 = 0 THEN 'wifi' ELSE 'lte' END,
                                     'errors', '[]'::jsonb)
           FROM generate_series($from, $((to - 1))) i, LATERAL (SELECT i % $DEVICES + 1 AS d, i / $DEVICES AS k) x" \
          >/dev/null
        from=$to
    done
}
log "loading $ROWS_BIG rows into $PART_BIG and $ROWS_SMALL into $PART_SMALL"
t0=$(now)
load "$DAY_BIG" "$ROWS_BIG"
t1=$(now)
load "$DAY_SMALL" "$ROWS_SMALL"
t2=$(now)
LOAD_BIG_S=$(elapsed "$t0" "$t1") LOAD_SMALL_S=$(elapsed "$t1" "$t2")
log "loaded in ${LOAD_BIG_S} s and ${LOAD_SMALL_S} s; VACUUM (FREEZE, ANALYZE), CHECKPOINT"
t0=$(now)
q "VACUUM (FREEZE, ANALYZE) $PART_BIG" "VACUUM (FREEZE, ANALYZE) $PART_SMALL" "CHECKPOINT"
VACUUM_S=$(elapsed "$t0" "$(now)")
# A restart empties shared_buffers: otherwise the partition loaded last
# would be read from shared buffers and the other from the OS cache (and
# a process's RSS counts the shared buffers it touches: RssShmem).
log "restarting the cluster (shared_buffers empty; the OS cache keeps the partitions)"
stop_cluster "$DIR"
start_cluster "$DIR" "$PORT"
SO_STAMP=$(stat -c '%Y %s' "$SO")
declare -A NROWS=([$PART_BIG]=$ROWS_BIG [$PART_SMALL]=$ROWS_SMALL)
for p in "$PART_BIG" "$PART_SMALL"; do
    n=$(q "SELECT count(*) FROM ONLY $p")
    [ "$n" = "${NROWS[$p]}" ] || die "$p has $n rows, not ${NROWS[$p]}"
done
HEAP_MB_BIG=$(q "SELECT round(pg_table_size('$PART_BIG') / 1e6)")
HEAP_MB_SMALL=$(q "SELECT round(pg_table_size('$PART_SMALL') / 1e6)")

# ---- the measures --------------------------------------------------------

COPY_SETTINGS=(-c "SET TimeZone = 'UTC'" -c "SET DateStyle = 'ISO, YMD'" -c "SET extra_float_digits = 1")
copy_sql() { echo "COPY (SELECT * FROM ONLY $1) TO STDOUT (FORMAT csv, HEADER)"; }
copy_out() {  # copy_out PART: the partition's CSV on stdout, as COPY writes it
    pg_psql "$DIR" "$PORT" "$DB" "${COPY_SETTINGS[@]}" -c "$(copy_sql "$1")"
}

declare -A R  # measure,partition -> space-separated values of every run
declare -A GZ_BYTES  # partition -> bytes of its CSV through gzip -1

measure_copy() {  # measure_copy PART
    local t0 t1
    t0=$(now)
    copy_out "$1" > /dev/null
    t1=$(now)
    R[copy,$1]+="$(elapsed "$t0" "$t1") "
    t0=$(now)
    GZ_BYTES[$1]=$(copy_out "$1" | gzip -1 | wc -c)
    t1=$(now)
    R[copygz,$1]+="$(elapsed "$t0" "$t1") "
}

worker_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'hb_lifecycle worker'"; }

# restart_worker: terminates the worker, waits for the postmaster's new one
# (bgw_restart_time: 5 s), prints its pid.
restart_worker() {
    local old new i
    old=$(worker_pid)
    [ -n "$old" ] || die "no hb_lifecycle worker in pg_stat_activity"
    q "SELECT pg_terminate_backend($old)" >/dev/null
    for i in $(seq 1 150); do
        new=$(worker_pid)
        if [ -n "$new" ] && [ "$new" != "$old" ]; then
            sleep 0.5  # its start-up: the recovery of jobs left by the old one
            echo "$new"
            return 0
        fi
        sleep 0.2
    done
    die "the hb_lifecycle worker did not come back within 30 s after pg_terminate_backend($old)"
}

# sample PID OUT STOPFILE: every 50 ms, one line "time VmRSS RssAnon
# RssShmem (kB) Threads CPU-ticks" of PID into OUT, until STOPFILE exists.
# Builtins only, but for sleep.
sample() {
    local pid="$1" out="$2" stop="$3" k v rss anon shm thr stat
    while [ ! -e "$stop" ] && [ -r "/proc/$pid/status" ]; do
        rss="" anon="" shm="" thr="" stat=""
        while read -r k v _; do
            case "$k" in
                VmRSS:) rss=$v ;; RssAnon:) anon=$v ;; RssShmem:) shm=$v ;; Threads:) thr=$v ;;
            esac
        done < "/proc/$pid/status" 2>/dev/null || true
        read -r stat < "/proc/$pid/stat" 2>/dev/null || true
        set -- ${stat##*) }
        # A sample with a field missing (a read that raced the process) is left out.
        [ -n "$rss" ] && [ -n "$anon" ] && [ -n "$shm" ] && [ -n "$thr" ] && [ $# -ge 13 ] &&
            echo "$EPOCHREALTIME $rss $anon $shm $thr $((${12} + ${13}))" >> "$out"
        sleep 0.05
    done
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_s() {  # cpu_s PID: user + system CPU seconds of the process, its ended threads included
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"
}

CURRENT_TARGET=""
set_target() {  # set_target URL COMPRESSION (the worker is restarted after it)
    [ "$CURRENT_TARGET" = "$1 $2" ] && return 0
    q "ALTER SYSTEM SET hb_lifecycle.archive_url = '$1'" \
      "ALTER SYSTEM SET hb_lifecycle.archive_compression = '$2'" "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    CURRENT_TARGET="$1 $2"
}

forget_archive() {  # forget_archive VARIANT PART: deletes its archive, makes it 'active' again
    if [ "$1" = s3 ]; then
        # Object by object: moto refuses this IAM user a ListObjectsV2 (403)
        # that aws s3 rm --recursive would need.
        local f
        for f in manifest.json part-00000.csv.gz; do
            aws_user s3api delete-object --bucket "$BUCKET" --key "archive/public.heartbeats/$2/$f" >/dev/null
        done
    else
        rm -rf "$ARCHIVE_DIR/public.heartbeats/$2"
    fi
    q "UPDATE hb_partitions SET state = 'active' WHERE partition_name = '$2'" >/dev/null
}

declare -A VARIANT_URL=([file]="$FILE_URL" [plain]="$FILE_URL" [s3]="$S3_URL")
declare -A VARIANT_COMP=([file]=gzip [plain]=none [s3]=gzip)

# archive VARIANT PART: one measured archive (file: file:// + gzip, plain:
# file:// uncompressed, s3: S3 + gzip); results in R[VARIANT*,PART].
archive() {
    local v="$1" part="$2" pid t0 t1 state hwm start_rss cpu ev samples="$DIR/samples" stop="$DIR/sampler.stop"
    set_target "${VARIANT_URL[$v]}" "${VARIANT_COMP[$v]}"
    pid=$(restart_worker)
    start_rss=$(status_kb "$pid" VmRSS)
    local moto0
    moto0=$(cpu_s "$MOTO_PID")
    rm -f "$stop"
    : > "$samples"
    sample "$pid" "$samples" "$stop" &
    SAMPLER_PID=$!
    t0=$(now)
    state=$(q "SELECT hb_archive_partition('$part')" 2>"$DIR/archive.err") ||
        { cat "$DIR/archive.err" >&2; die "hb_archive_partition('$part') failed ($v)"; }
    t1=$(now)
    touch "$stop"
    wait "$SAMPLER_PID" || die "the memory sampler failed"
    SAMPLER_PID=""
    [ -s "$samples" ] || die "the memory sampler recorded nothing during the archive of $part ($v)"
    [ "$state" = archived ] ||
        { cat "$DIR/archive.err" >&2; die "hb_archive_partition('$part') returned '$state' ($v), not 'archived'"; }
    [ "$(worker_pid)" = "$pid" ] || die "the worker changed during the archive of $part ($v)"
    hwm=$(status_kb "$pid" VmHWM)
    cpu=$(cpu_s "$pid")
    R[${v}moto,$part]+="$(awk -v a="$moto0" -v b="$(cpu_s "$MOTO_PID")" 'BEGIN {printf "%.2f", b - a}') "
    # rows, CSV bytes, file bytes, the worker's own seconds: its archive.end event.
    ev=$(q "SELECT detail->>'rows', detail->>'csv_bytes', detail->>'bytes', detail->>'seconds', detail->>'sha256',
                   detail->>'uploaded'
            FROM hb_events WHERE event = 'archive.end' AND partition_name = '$part' ORDER BY id DESC LIMIT 1")
    local rows csv bytes secs sha uploaded
    IFS='|' read -r rows csv bytes secs sha uploaded <<< "$ev"
    [ "$uploaded" = true ] || die "the archive of $part ($v) uploaded nothing: the target still had a matching archive"
    [ "$rows" = "${NROWS[$part]}" ] || die "the archive of $part ($v) has $rows rows, not ${NROWS[$part]}"
    R[$v,$part]+="$(elapsed "$t0" "$t1") "
    R[${v}job,$part]+="$secs "
    R[${v}cpu,$part]+="$cpu "
    R[${v}hwm,$part]+="$hwm "
    R[${v}start,$part]+="$start_rss "
    R[${v}rss,$part]+="$(awk '{print $2}' "$samples" | maxof) "
    R[${v}anon,$part]+="$(awk '{print $3}' "$samples" | maxof) "
    R[${v}shm,$part]+="$(awk '{print $4}' "$samples" | maxof) "
    R[${v}n,$part]+="$(wc -l < "$samples") "
    # The export is while the gzip/SHA-256 thread runs (Threads >= 2).
    R[${v}export,$part]+="$(awk -v t0="$t0" '$5 >= 2 {e = $1} END {printf "%.2f", (e ? e - t0 : 0)}' "$samples") "
    R[${v}exportcpu,$part]+="$(awk -v hz="$(getconf CLK_TCK)" '$5 >= 2 {c = $6} END {printf "%.2f", c / hz}' "$samples") "
    R[${v}exportanon,$part]+="$(awk '$5 >= 2 && $3 > m {m = $3} END {print m + 0}' "$samples") "
    R[${v}uploadanon,$part]+="$(awk 'NR > 1 && $5 == 1 && seen && $3 > m {m = $3} $5 >= 2 {seen = 1} END {print m + 0}' "$samples") "
    CSV_BYTES[$part]=$csv
    FILE_BYTES[$v,$part]=$bytes
    SHA[$v,$part]=$sha
    cp "$samples" "$DIR/samples_${v}_${part}_$(echo ${R[$v,$part]} | wc -w)"
    forget_archive "$v" "$part"
}
declare -A CSV_BYTES FILE_BYTES SHA

for i in $(seq 1 150); do [ -n "$(worker_pid)" ] && break; sleep 0.2; done
[ -n "$(worker_pid)" ] || die "no hb_lifecycle worker in pg_stat_activity 30 s after the start"

# Warm-up (not counted): a COPY of each partition (its CSV's SHA-256 and
# size kept), an uncompressed archive of each, checked byte for byte
# against COPY's CSV; this also installs the partitions' late-write
# triggers, which every later archive finds in place.
log "warm-up: COPY of each partition, an uncompressed archive of each (checked against COPY's CSV)"
declare -A COPY_SHA COPY_BYTES
for p in "$PART_BIG" "$PART_SMALL"; do
    rm -f "$DIR/copy_bytes"
    read -r COPY_SHA[$p] _ < <(copy_out "$p" | tee >(wc -c > "$DIR/copy_bytes.tmp"; mv "$DIR/copy_bytes.tmp" "$DIR/copy_bytes") | sha256sum)
    for i in $(seq 1 100); do [ -s "$DIR/copy_bytes" ] && break; sleep 0.1; done
    COPY_BYTES[$p]=$(cat "$DIR/copy_bytes")
    archive plain "$p"
    [ "${SHA[plain,$p]}" = "${COPY_SHA[$p]}" ] && [ "${CSV_BYTES[$p]}" = "${COPY_BYTES[$p]}" ] ||
        die "the uncompressed archive of $p (${CSV_BYTES[$p]} bytes, SHA-256 ${SHA[plain,$p]}) is not COPY's CSV (${COPY_BYTES[$p]} bytes, ${COPY_SHA[$p]})"
done
R=()
log "the uncompressed archives are byte-identical to COPY's CSV (${COPY_BYTES[$PART_BIG]} and ${COPY_BYTES[$PART_SMALL]} bytes)"

T_START=$(now)
LOADAVG=""
for rep in $(seq 1 "$REPS"); do
    LOADAVG+="$(cut -d' ' -f1 /proc/loadavg) "
    for p in "$PART_BIG" "$PART_SMALL"; do
        log "rep $rep/$REPS, $p (${NROWS[$p]} rows): COPY, COPY | gzip -1, archives file+gzip, file, S3+gzip"
        measure_copy "$p"
        archive file "$p"
        archive plain "$p"
        archive s3 "$p"
    done
done
MEASURE_S=$(elapsed "$T_START" "$(now)")

# ---- the report ----------------------------------------------------------

med() { echo ${R[$1]} | tr ' ' '\n' | median; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# An awk function: grp(n), n rounded, with thousands separators.
AWK_GRP='function grp(n,  s, o) { s = sprintf("%.0f", n); o = "";
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
    return s o }
'
grp() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
PG_VERSION=$(q "SHOW server_version" | awk '{print $1}')
PART_SIZE=$(q "SHOW hb_lifecycle.s3_part_size")
GZ_LEVEL=$(q "SHOW hb_lifecycle.archive_gzip_level")

declare -A LABEL=([copy]="COPY TO STDOUT (csv, header) > /dev/null"
                  [copygz]="COPY ... \\| gzip -1 \\| wc -c"
                  [file]="hb_archive_partition, file://, gzip -$GZ_LEVEL"
                  [plain]="hb_archive_partition, file://, none"
                  [s3]="hb_archive_partition, S3 (moto), gzip -$GZ_LEVEL")
MEASURES=(copy copygz file plain s3)

throughput_md() {  # the throughput table, markdown
    local p m t rows csv stored job cpu
    echo "| partition | measure | seconds (median of $REPS) | rows/s | CSV MB/s | time / COPY | time / COPY\\|gzip | output MB | worker job s | worker CPU s |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for p in "$PART_BIG" "$PART_SMALL"; do
        rows=${NROWS[$p]} csv=${COPY_BYTES[$p]}
        local tc tg
        tc=$(med "copy,$p") tg=$(med "copygz,$p")
        for m in "${MEASURES[@]}"; do
            t=$(med "$m,$p")
            stored="" job="" cpu=""
            case "$m" in
                copy) stored=$(awk -v b="$csv" 'BEGIN {printf "%.0f", b / 1e6}') ;;
                copygz) stored=$(awk -v b="${GZ_BYTES[$p]}" 'BEGIN {printf "%.0f", b / 1e6}') ;;
                *) stored=$(awk -v b="${FILE_BYTES[$m,$p]}" 'BEGIN {printf "%.0f", b / 1e6}')
                   job=$(med "${m}job,$p") cpu=$(med "${m}cpu,$p") ;;
            esac
            L="${LABEL[$m]}" awk -v p="$p ($(grp "$rows") rows)" -v t="$t" -v r="$rows" -v c="$csv" \
                -v tc="$tc" -v tg="$tg" -v s="$stored" -v j="$job" -v u="$cpu" "$AWK_GRP"'BEGIN { l = ENVIRON["L"]
                    printf "| %s | %s | %.2f | %s | %.1f | %.2fx | %.2fx | %s | %s | %s |\n",
                        p, l, t, grp(r / t), c / 1e6 / t, t / tc, t / tg, s, j, u }'
        done
    done
}

memory_md() {
    local p m
    echo "| partition | archive | VmHWM MiB (median, max) | sampled VmRSS peak MiB | RssAnon peak MiB (export / upload) | RssShmem peak MiB | VmRSS at worker start MiB | samples |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for p in "$PART_BIG" "$PART_SMALL"; do
        for m in file plain s3; do
            local up=""
            [ "$m" = s3 ] && up=" / $(mib "$(echo ${R[${m}uploadanon,$p]} | tr ' ' '\n' | maxof)")"
            printf '| %s (%s rows) | %s | %s, %s | %s | %s%s | %s | %s | %s |\n' "$p" "$(grp "${NROWS[$p]}")" \
                "${LABEL[$m]#hb_archive_partition, }" \
                "$(mib "$(med "${m}hwm,$p")")" "$(mib "$(echo ${R[${m}hwm,$p]} | tr ' ' '\n' | maxof)")" \
                "$(mib "$(echo ${R[${m}rss,$p]} | tr ' ' '\n' | maxof)")" \
                "$(mib "$(echo ${R[${m}exportanon,$p]} | tr ' ' '\n' | maxof)")" "$up" \
                "$(mib "$(echo ${R[${m}shm,$p]} | tr ' ' '\n' | maxof)")" \
                "$(mib "$(med "${m}start,$p")")" "$(echo ${R[${m}n,$p]} | tr ' ' '+')"
        done
    done
}

verdicts() {
    local tc tf ts
    tc=$(med "copy,$PART_BIG") tf=$(med "file,$PART_BIG") ts=$(med "s3,$PART_BIG")
    awk -v tc="$tc" -v tf="$tf" -v ts="$ts" 'BEGIN {
        printf "- throughput, %s: archive (file://, gzip) %.2fx of COPY'"'"'s (time ratio %.2fx); S3 %.2fx (%.2fx); target >= 0.8x: %s (file), %s (S3)\n",
            "'"$PART_BIG"'", tc / tf, tf / tc, tc / ts, ts / tc, (tc / tf >= 0.8) ? "met" : "NOT met", (tc / ts >= 0.8) ? "met" : "NOT met" }'
    local m hb hs limit
    limit=$(awk -v p="$PART_SIZE" 'BEGIN {v = p + 0; if (p ~ /kB$/) v /= 1024; else if (p ~ /GB$/) v *= 1024; print 64 + v}')
    for m in file plain s3; do
        hb=$(echo ${R[${m}hwm,$PART_BIG]} | tr ' ' '\n' | maxof)
        hs=$(echo ${R[${m}hwm,$PART_SMALL]} | tr ' ' '\n' | maxof)
        awk -v m="${LABEL[$m]#hb_archive_partition, }" -v b="$hb" -v s="$hs" -v lim="$limit" 'BEGIN {
            d = (b - s) / s * 100;
            printf "- memory, %s: VmHWM %.1f MiB for %s rows, %.1f MiB for %s rows (%+.1f%%); target within 10%% and < %d MiB: %s\n",
                m, b / 1024, "'"$(grp "$ROWS_BIG")"'", s / 1024, "'"$(grp "$ROWS_SMALL")"'", d, lim,
                (d <= 10 && d >= -10 && b / 1024 < lim && s / 1024 < lim) ? "met" : "NOT met" }'
    done
    printf -- '- S3: the export (until the gzip thread ends) took %s s of %s s (median), the upload and manifest the rest\n' \
        "$(med "s3export,$PART_BIG")" "$ts"
}

phases_md() {  # where an archive's time goes: the export, then (S3) the upload
    local p m
    echo "| partition | archive | wall s | export s | worker CPU in it s | after it s (upload, manifest) | worker CPU after it s | moto CPU s |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for p in "$PART_BIG" "$PART_SMALL"; do
        for m in file plain s3; do
            local t e ec c mc
            t=$(med "$m,$p") e=$(med "${m}export,$p") ec=$(med "${m}exportcpu,$p") c=$(med "${m}cpu,$p")
            mc=$(med "${m}moto,$p")
            awk -v p="$p ($(grp "${NROWS[$p]}") rows)" -v l="${LABEL[$m]#hb_archive_partition, }" -v t="$t" \
                -v e="$e" -v ec="$ec" -v c="$c" -v mc="$mc" 'BEGIN {
                    printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", p, l, t, e, ec, t - e, c - ec, mc }'
        done
    done
}

report_md() {
    echo "Machine: $(nproc) vCPU ($CPU_MODEL), ${MEM_GIB} GiB; PostgreSQL $PG_VERSION; hb_lifecycle at $COMMIT${DIRTY:+ (with local changes)};"
    echo "gzip level $GZ_LEVEL, s3_part_size $PART_SIZE; $(date -u +%Y-%m-%d)."
    echo "Partitions: $PART_BIG $(grp "$ROWS_BIG") rows (heap ${HEAP_MB_BIG} MB, CSV $(awk -v b="${COPY_BYTES[$PART_BIG]}" 'BEGIN {printf "%.0f", b / 1e6}') MB), $PART_SMALL $(grp "$ROWS_SMALL") rows (heap ${HEAP_MB_SMALL} MB, CSV $(awk -v b="${COPY_BYTES[$PART_SMALL]}" 'BEGIN {printf "%.0f", b / 1e6}') MB); loaded in ${LOAD_BIG_S} s and ${LOAD_SMALL_S} s, frozen in ${VACUUM_S} s; measures ${MEASURE_S} s."
    echo
    throughput_md
    echo
    memory_md
    echo
    phases_md
    echo
    verdicts
    echo "- load average (1 min) at the start of each rep: $LOADAVG"
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

printf '\nall runs (s): \n'
for p in "$PART_BIG" "$PART_SMALL"; do
    for m in "${MEASURES[@]}"; do printf '  %-8s %-14s %s\n' "$m" "$p" "${R[$m,$p]}"; done
    for m in file plain s3; do
        printf '  %-8s %-14s job s %s| cpu s %s| VmHWM kB %s| export s %s\n' "$m" "$p" "${R[${m}job,$p]}" \
            "${R[${m}cpu,$p]}" "${R[${m}hwm,$p]}" "${R[${m}export,$p]}"
    done
done
