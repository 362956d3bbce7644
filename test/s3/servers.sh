#!/usr/bin/env bash
# Starts the S3 API servers the tests use, on loopback, and writes what the
# tests need to reach them into an environment file:
#   * moto_server, which checks SigV4 signatures: started with
#     INITIAL_NO_AUTH_ACTION_COUNT=4, so that the first four (unsigned)
#     calls create an IAM user with an access key and a policy allowing
#     s3:*; from then on every request must be signed with that key;
#   * s3rver (npm), a second S3 implementation (it does not check
#     signatures), installed into WORK/npm when it is not there.
#
#   test/s3/servers.sh start WORK    writes WORK/s3.env (HB_MOTO_*, HB_S3RVER_*)
#   test/s3/servers.sh stop WORK
# Run as root: moto lives in root's pyenv.
set -euo pipefail
source "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"
ACTION="$1"
WORK="$2"
MOTO_PORT="${HB_MOTO_PORT:-54501}"
S3RVER_PORT="${HB_S3RVER_PORT:-54502}"

stop() {
    local f
    local f pid i
    for f in "$WORK/moto.pid" "$WORK/s3rver.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        # Gone, and its port with it, before a new server starts.
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$f"
    done
}

# A TCP probe, not an HTTP one: an HTTP request would use up one of moto's
# unauthenticated calls.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Refuses a port something else listens on: the probe below would take that
# listener for our server.
port_free() {
    ! port_open "$1" || die "127.0.0.1:$1 is in use by another process (set $2 to another port)"
}

# Waits (up to 60 s) until the server started as PID listens on PORT;
# fails at once if it exits:  wait_port PORT PID
wait_port() {
    local i
    for i in $(seq 1 600); do
        port_open "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

if [ "$ACTION" = stop ]; then
    stop
    exit 0
fi
[ "$ACTION" = start ] || die "usage: servers.sh start|stop WORK"

MOTO="${HB_MOTO_SERVER:-$(command -v moto_server || echo /root/.pyenv/shims/moto_server)}"
[ -x "$MOTO" ] || die "moto_server not found (set HB_MOTO_SERVER)"
command -v aws >/dev/null || die "awscli not found (apt-get install awscli)"
command -v npm >/dev/null || die "npm not found (apt-get install npm)"
mkdir -p "$WORK"
stop

port_free "$MOTO_PORT" HB_MOTO_PORT
port_free "$S3RVER_PORT" HB_S3RVER_PORT
log "starting moto_server on 127.0.0.1:$MOTO_PORT (signatures checked)"
INITIAL_NO_AUTH_ACTION_COUNT=4 setsid "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
echo $! >"$WORK/moto.pid"
wait_port "$MOTO_PORT" "$(cat "$WORK/moto.pid")" || { cat "$WORK/moto.log" >&2; die "moto_server did not start"; }
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
# From here on, moto refuses unsigned or wrongly signed requests: prove it.
if AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "http://127.0.0.1:$MOTO_PORT" s3api list-buckets >/dev/null 2>&1; then
    die "moto_server accepted a request signed with an unknown key: signatures are not checked"
fi

S3RVER="$WORK/npm/node_modules/.bin/s3rver"
if [ ! -x "$S3RVER" ]; then
    log "installing s3rver 3.7.1 (npm) into $WORK/npm"
    npm install --silent --no-audit --no-fund --prefix "$WORK/npm" s3rver@3.7.1 >/dev/null
fi
log "starting s3rver on 127.0.0.1:$S3RVER_PORT"
rm -rf "$WORK/s3rver-data"
mkdir -p "$WORK/s3rver-data"
setsid "$S3RVER" --address 127.0.0.1 --port "$S3RVER_PORT" --directory "$WORK/s3rver-data" \
    --silent >"$WORK/s3rver.log" 2>&1 &
echo $! >"$WORK/s3rver.pid"
wait_port "$S3RVER_PORT" "$(cat "$WORK/s3rver.pid")" || { cat "$WORK/s3rver.log" >&2; die "s3rver did not start"; }

cat >"$WORK/s3.env" <<ENV
HB_MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
HB_MOTO_KEY_ID=$KEY_ID
HB_MOTO_SECRET=$SECRET
HB_S3RVER_ENDPOINT=http://127.0.0.1:$S3RVER_PORT
HB_S3RVER_KEY_ID=S3RVER
HB_S3RVER_SECRET=S3RVER
ENV
chmod 644 "$WORK/s3.env"
