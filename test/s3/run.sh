#!/usr/bin/env bash
# The S3 client (src/core/s3_client) against a real S3 API server that
# checks SigV4 signatures: the moto_server that test/s3/servers.sh started
# (its environment file gives the address and the IAM user's key). Then
# the test binary (built by CMake: hb_s3_tests) runs.
#
#   test/s3/run.sh BUILD_DIR S3_ENV_FILE
set -euo pipefail
source "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"
BUILD="$1"
# shellcheck disable=SC1090
source "$2"
log "S3 client tests against moto_server"
HB_S3_ENDPOINT="$HB_MOTO_ENDPOINT" HB_S3_ACCESS_KEY_ID="$HB_MOTO_KEY_ID" \
    HB_S3_SECRET_ACCESS_KEY="$HB_MOTO_SECRET" "$BUILD/hb_s3_tests"
