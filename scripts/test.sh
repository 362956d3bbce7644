#!/usr/bin/env bash
# Runs every test of hb_lifecycle on this machine and exits non-zero if any
# fails:
#   format     clang-format --Werror over the C++ sources (.clang-format)
#   unit       GoogleTest unit tests of the pure C++ parts (CMake + ctest)
#   s3         the S3 client against moto_server with signature checks (test/s3)
#   regress    pg_regress, sql/ + expected/
#   isolation  pg_isolation_regress, test/isolation/
#   tap        PostgreSQL's TAP framework (crash/restart), test/tap/*.pl
#   pgtap      pgTAP files run by pg_prove, test/pgtap/*.sql
#   memcheck   valgrind memcheck of a backend running the triggers' paths
#
#   scripts/test.sh [format|unit|s3|regress|isolation|tap|pgtap|memcheck ...]   (default: all)
#
# On a fresh Debian 12 machine run it as root: it installs what is missing
# with apt-get, builds and installs the extension, and runs PostgreSQL as the
# postgres user on a scratch cluster (shared_preload_libraries =
# 'pg_cron,hb_lifecycle') that it starts and stops itself.
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=(format unit s3 regress isolation tap pgtap memcheck)
wants() { local s; for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

ensure_packages

WORK="${HB_TEST_DIR:-/tmp/hb_lifecycle_test}"
PORT="${HB_TEST_PORT:-54329}"
CLUSTER="$WORK/cluster"
TREE="$WORK/tree"
declare -a FAILED=()
declare -a PASSED=()
record() { if [ "$2" -eq 0 ]; then PASSED+=("$1"); else FAILED+=("$1"); fi; }

if wants format; then
    log "clang-format"
    rc=0
    (cd "$HB_ROOT" && clang-format --dry-run --Werror src/*.cpp src/*.hpp src/core/*.cpp \
        src/core/*.hpp test/unit/*.cpp test/s3/*.cpp) || rc=$?
    record format $rc
fi

# Configures (if needed) and builds the CMake tree of the pure C++ parts:
#   cmake_build [TARGET]   (default: everything)
cmake_build() {
    cmake -S "$HB_ROOT" -B "$WORK/unit-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHB_WERROR=ON >/dev/null &&
        cmake --build "$WORK/unit-build" -j"$(nproc)" ${1:+--target "$1"} >/dev/null
}

if wants unit; then
    log "unit tests (CMake + GoogleTest)"
    rc=0
    rm -rf "$WORK/unit-build"
    { cmake_build && ctest --test-dir "$WORK/unit-build" --output-on-failure; } || rc=$?
    record unit $rc
fi

# The S3 servers (moto_server with signature checks, s3rver), for the s3
# suite and the archive TAP tests; their addresses and keys are in S3_ENV.
S3_ENV="$WORK/s3/s3.env"
if wants s3 || wants tap; then
    bash "$HB_ROOT/test/s3/servers.sh" start "$WORK/s3"
    trap 'bash "$HB_ROOT/test/s3/servers.sh" stop "$WORK/s3"' EXIT
fi

if wants s3; then
    log "S3 client against moto_server (signatures checked)"
    rc=0
    { cmake_build hb_s3_tests && bash "$HB_ROOT/test/s3/run.sh" "$WORK/unit-build" "$S3_ENV"; } || rc=$?
    record s3 $rc
fi

if wants regress || wants isolation || wants tap || wants pgtap || wants memcheck; then
    build_and_install
    stop_cluster "$CLUSTER"
    rm -rf "$CLUSTER" "$TREE"
    mkdir -p "$WORK"
    # pg_regress writes its results next to the tests: give the postgres
    # user a copy of the tree to run them in.
    mkdir -p "$TREE"
    tar -C "$HB_ROOT" --exclude=./.git --exclude=./build -cf - . | tar -C "$TREE" -xf -
    is_root && chown -R postgres:postgres "$WORK"
    start_cluster "$CLUSTER" "$PORT" "max_prepared_transactions = 10"
    trap 'stop_cluster "$CLUSTER"; bash "$HB_ROOT/test/s3/servers.sh" stop "$WORK/s3"' EXIT
    PGENV=(env PGHOST="$CLUSTER" PGPORT="$PORT" PGUSER=postgres)
fi

# Tests name partitions after today's UTC date, read once, then write rows
# at now(): a suite that runs across midnight UTC would find its rows in
# the next day's partition. Before a suite of the kind, wait out the last
# SECONDS before midnight:  clear_of_midnight SUITE SECONDS
clear_of_midnight() {
    local left=$((86400 - $(date -u +%s) % 86400))
    if [ "$left" -lt "$2" ]; then
        log "$1: waiting ${left}s for midnight UTC, so that the suite runs within one day"
        sleep $((left + 5))
    fi
}

# One PGXS installcheck suite against the scratch cluster, its diffs shown
# when it fails:  installcheck SUITE DIFFS-FILE MAKE-VARIABLE...
installcheck() {
    local suite=$1 diffs=$2 rc=0
    shift 2
    as_pg "${PGENV[@]}" make -C "$TREE" -s installcheck "$@" || rc=$?
    if [ $rc -ne 0 ] && [ -f "$diffs" ]; then cat "$diffs" >&2; fi
    record "$suite" $rc
}

if wants regress; then
    log "pg_regress"
    clear_of_midnight regress 60
    installcheck regress "$TREE/regression.diffs" ISOLATION= TAP_TESTS=
fi

if wants isolation; then
    log "pg_isolation_regress"
    clear_of_midnight isolation 180
    installcheck isolation "$TREE/output_iso/regression.diffs" REGRESS= TAP_TESTS=
fi

if wants tap; then
    log "TAP tests (PostgreSQL::Test::Cluster)"
    clear_of_midnight tap 480
    rc=0
    as_pg env HB_S3_ENV="$S3_ENV" make -C "$TREE" -s installcheck REGRESS= ISOLATION= \
        PROVE_FLAGS="--timer" || rc=$?
    record tap $rc
fi

if wants pgtap; then
    log "pgTAP (pg_prove)"
    clear_of_midnight pgtap 120
    rc=0
    as_pg "${PGENV[@]}" dropdb --if-exists hb_pgtap
    as_pg "${PGENV[@]}" createdb hb_pgtap
    as_pg "${PGENV[@]}" psql -X -q -v ON_ERROR_STOP=1 -d hb_pgtap \
        -c "CREATE EXTENSION pgtap; CREATE EXTENSION hb_lifecycle;" || rc=$?
    if [ $rc -eq 0 ]; then
        (cd "$TREE" && as_pg "${PGENV[@]}" pg_prove --failures -d hb_pgtap test/pgtap/*.sql) || rc=$?
    fi
    record pgtap $rc
fi

if wants memcheck; then
    clear_of_midnight memcheck 300
    rc=0
    bash "$HB_ROOT/test/memcheck/run.sh" "$WORK/memcheck" || rc=$?
    record memcheck $rc
fi

echo
[ ${#PASSED[@]} -gt 0 ] && log "passed: ${PASSED[*]}"
if [ ${#FAILED[@]} -gt 0 ]; then
    log "FAILED: ${FAILED[*]}"
    exit 1
fi
log "all test suites passed"
