#!/usr/bin/env bash
# Runs test/memcheck/workload.sql in a single-user backend under valgrind's
# memcheck and fails on any memory error (use after free, invalid read or
# write, uninitialised value used) or on a wrong final state. The workload
# goes through every path of the triggers: new devices, HOT and non-HOT
# updates, TOASTed payloads, retries over dead index entries, subtransaction
# rollback, UPDATE/DELETE recomputation, direct partition inserts.
#
#   test/memcheck/run.sh WORKDIR     (as root or postgres; needs valgrind)
set -euo pipefail
source "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"
WORK="$1"
mkdir -p "$WORK"
is_root && chown postgres:postgres "$WORK"
rm -rf "$WORK/data"
as_pg "$PG_BIN/initdb" -D "$WORK/data" -A trust -U postgres --no-sync >/dev/null
cp "$HB_ROOT/test/memcheck/workload.sql" "$WORK/workload.sql"
is_root && chown postgres:postgres "$WORK/workload.sql"
log "valgrind memcheck of a single-user backend (a minute or two)"
as_pg valgrind --error-exitcode=97 --error-limit=no --num-callers=30 --track-origins=yes \
    --suppressions="$HB_ROOT/test/memcheck/valgrind.supp" \
    "$PG_BIN/postgres" --single -j -D "$WORK/data" -c shared_preload_libraries=hb_lifecycle \
    -c TimeZone=UTC postgres <"$WORK/workload.sql" >"$WORK/memcheck.out" 2>&1 || {
    rc=$?
    grep -E "==[0-9]+== " "$WORK/memcheck.out" | head -80 >&2
    die "memcheck failed (exit $rc); full output in $WORK/memcheck.out"
}
grep -q 'mismatches=0' "$WORK/memcheck.out" ||
    { grep -E "ERROR|mismatches" "$WORK/memcheck.out" >&2; die "device_last_status is not exact after the workload"; }
if grep -E "^[0-9-]+ [0-9:.]+ UTC \[[0-9]+\] (ERROR|FATAL)" "$WORK/memcheck.out" | grep -v "no device" >&2; then
    die "the workload raised unexpected errors"
fi
log "memcheck: no memory errors, last status exact"
