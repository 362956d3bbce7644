# scripts/lib.sh — shared helpers for the demo, the tests and the benchmarks.
#
# Sourced, not run. Everything here works on a fresh Debian 12 machine as
# root (packages are installed with apt-get; PostgreSQL runs as the
# "postgres" user, which it requires) and, when the packages are already
# there, as the postgres user itself.

set -euo pipefail

HB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

# The Debian packages every job needs. Kept in one place.
HB_PACKAGES=(
    build-essential cmake pkg-config libgtest-dev clang-format
    postgresql-15 postgresql-server-dev-15 postgresql-contrib
    postgresql-15-cron postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    libipc-run-perl libcurl4-openssl-dev libssl-dev zlib1g-dev libmicrohttpd-dev
    valgrind awscli python3
)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the postgres user (from root), or directly (as postgres).
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Installs what is missing; a no-op when everything is already there.
ensure_packages() {
    local missing=()
    local p
    # npm for s3rver: Debian's, unless the machine has a Node.js with its
    # own npm already (NodeSource's nodejs package includes npm).
    local extra=()
    command -v npm >/dev/null || extra=(nodejs npm)
    for p in "${HB_PACKAGES[@]}" "${extra[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    is_root || die "missing packages (${missing[*]}); run this as root to install them"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    # Debian creates and starts a default cluster; we use scratch clusters.
    if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q '^15 *main .*online'; then
        pg_ctlcluster 15 main stop || true
    fi
}

# Builds and installs the extension into the server's directories.
# HB_SKIP_BUILD=1 uses what is installed already.
build_and_install() {
    if [ "${HB_SKIP_BUILD:-0}" = 1 ]; then
        log "HB_SKIP_BUILD=1: using the installed hb_lifecycle"
        return 0
    fi
    log "building hb_lifecycle"
    make -C "$HB_ROOT" -s -j"$(nproc)" WERROR=1 >/dev/null
    if is_root; then
        make -C "$HB_ROOT" -s install >/dev/null
    else
        [ -w "$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir)" ] ||
            die "cannot install into PostgreSQL's directories; run as root"
        make -C "$HB_ROOT" -s install >/dev/null
    fi
}

# start_cluster DIR PORT [extra postgresql.conf lines...]
# Creates (if needed) and starts a cluster owned by postgres in DIR, with
# its socket in DIR, listening on no TCP address unless a line says so.
start_cluster() {
    local dir="$1" port="$2"
    shift 2
    mkdir -p "$dir"
    is_root && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
        {
            echo "port = $port"
            echo "unix_socket_directories = '$dir'"
            echo "listen_addresses = ''"
            echo "shared_preload_libraries = 'pg_cron,hb_lifecycle'"
            echo "cron.database_name = 'postgres'"
            echo "max_connections = 50"
            echo "fsync = on"
            local line
            for line in "$@"; do echo "$line"; done
        } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { tail -20 "$dir/server.log" >&2; die "the cluster in $dir did not start"; }
}

stop_cluster() {
    local dir="$1"
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 -m fast stop >/dev/null || true
}

# pg_psql DIR PORT DB [psql args...]
pg_psql() {
    local dir="$1" port="$2" db="$3"
    shift 3
    as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d "$db" "$@"
}
