#!/usr/bin/env bash
# Runs test/memcheck/workload.sql in a single-user backend under valgrind's
# memcheck and fails on any error memcheck reports, or on a wrong final
# state. The workload goes through the triggers' paths in one session: new
# devices, HOT and non-HOT updates, TOASTed payloads, retries over dead
# index entries, subtransaction rollback, UPDATE/DELETE recomputation, rows
# moved to another partition, COPY, direct partition inserts, the SQL write
# path, bigint, text and uuid keys; and the partition lifecycle's C parts
# (slots, bounds, catch-all moves and quarantine, maintenance without a
# worker slot, as in single-user mode), and the archive's late-write
# trigger (an archive's SQL steps called by hand, then writes), the read
# path's functions (both paths, the comparison), a backfill and capped
# reconcile runs. (Concurrent waits are the isolation specs' job.) Debian's server is built without USE_VALGRIND, so memcheck
# sees errors in malloc'd memory, stack and C++ objects, and use of freed
# or uninitialised memory inside palloc'd blocks only when a context has
# returned the block to malloc (a context reset or delete, a large chunk).
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
    -c TimeZone=UTC -c log_timezone=UTC postgres <"$WORK/workload.sql" >"$WORK/memcheck.out" 2>&1 || {
    rc=$?
    grep -E "==[0-9]+== " "$WORK/memcheck.out" | head -80 >&2
    die "memcheck failed (exit $rc); full output in $WORK/memcheck.out"
}
for check in '"mismatches=0"' '"tagged mismatches=0"' '"unit mismatches=0"' '"partition mismatches=0"' \
    '"lifecycle mismatches=0"' '"read path compare mismatches=1 without heartbeats=7002"' '"backfill mismatches=0"' \
    '"late write state=active"'; do
    grep -q "= $check" "$WORK/memcheck.out" ||
        { grep -E "ERROR|mismatches" "$WORK/memcheck.out" >&2; die "a last-status table is not exact after the workload ($check)"; }
done
rm -f /tmp/hb_memcheck_copy.csv
if grep -E "[0-9-]+ [0-9:.]+ UTC \[[0-9]+\] (ERROR|FATAL)" "$WORK/memcheck.out" >&2; then
    die "the workload raised unexpected errors"
fi
log "memcheck: no memory errors, last status exact"
