#!/usr/bin/env bash
# The S3 client (src/core/s3_client) against a real S3 API server that
# checks SigV4 signatures: moto_server on loopback, started with
# INITIAL_NO_AUTH_ACTION_COUNT=4 so that the first four (unsigned) calls
# create an IAM user with an access key and a policy allowing s3:*, after
# which every request must be signed with that key. awscli makes those
# calls. Then the test binary (built by CMake: hb_s3_tests) runs.
#
#   test/s3/run.sh BUILD_DIR WORK_DIR      (as root: moto lives in root's pyenv)
set -euo pipefail
source "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"
BUILD="$1"
WORK="$2"
# moto ships with this machine image's Python, in root's pyenv.
MOTO="${HB_MOTO_SERVER:-$(command -v moto_server || echo /root/.pyenv/shims/moto_server)}"
[ -x "$MOTO" ] || die "moto_server not found (set HB_MOTO_SERVER)"
command -v aws >/dev/null || die "awscli not found (apt-get install awscli)"
PORT="${HB_S3_PORT:-54501}"
mkdir -p "$WORK"

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

log "starting moto_server on 127.0.0.1:$PORT (signatures checked)"
INITIAL_NO_AUTH_ACTION_COUNT=4 "$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true; wait $MOTO_PID 2>/dev/null || true' EXIT
wait_port "$PORT" || { cat "$WORK/moto.log" >&2; die "moto_server did not start"; }

awsm() {
    AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap AWS_DEFAULT_REGION=us-east-1 \
        aws --endpoint-url "http://127.0.0.1:$PORT" --output text "$@"
}
awsm iam create-user --user-name hb-archiver >/dev/null
read -r KEY_ID SECRET < <(awsm iam create-access-key --user-name hb-archiver \
    --query 'AccessKey.[AccessKeyId,SecretAccessKey]')
POLICY_ARN=$(awsm iam create-policy --policy-name hb-archiver-s3 --query 'Policy.Arn' \
    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')
awsm iam attach-user-policy --user-name hb-archiver --policy-arn "$POLICY_ARN" >/dev/null

# From here on, moto refuses unsigned or wrongly signed requests: prove it.
if AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "http://127.0.0.1:$PORT" s3api list-buckets >/dev/null 2>&1; then
    die "moto_server accepted a request signed with an unknown key: signatures are not checked"
fi

log "S3 client tests against it"
HB_S3_ENDPOINT="http://127.0.0.1:$PORT" HB_S3_ACCESS_KEY_ID="$KEY_ID" HB_S3_SECRET_ACCESS_KEY="$SECRET" \
    "$BUILD/hb_s3_tests"
